"""The comparison as a table a person reads in ten seconds, and as JSON for CI.

Gated benchmarks come first, worst verdict first; references (never gated)
follow. The last line printed is the one-line summary with the outcome.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from netsim.benchcmp.compare import Comparison, Row

_RANK = {"broken": 0, "slower": 1, "unsure": 2, "faster": 3, "same": 4, "failed": 5, "not measured": 6}


def duration(seconds: float | None) -> str:
    """A time with a unit a person reads: ``412 ns``, ``3.07 µs``, ``18.2 ms``, ``1.25 s``.

    >>> duration(4.12e-7), duration(3.071e-6), duration(0.01824), duration(1.25), duration(None)
    ('412 ns', '3.07 µs', '18.2 ms', '1.25 s', '-')
    """
    if seconds is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{_three(seconds / scale)} {unit}"
    return f"{_three(seconds / 1e-9)} ns"


def _three(value: float) -> str:
    """Three significant figures, no exponent."""
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def short_name(nodeid: str) -> str:
    """``test_bench_ipam.py::test_fill[serial-2^8]`` → ``ipam::fill[serial-2^8]``."""
    path, _, test = nodeid.partition("::")
    module = Path(path).stem.removeprefix("test_bench_").removeprefix("test_")
    return f"{module}::{test.removeprefix('test_')}"


def ratio_text(row: Row) -> str:
    if row.decision is None:
        return "-"
    d = row.decision
    return f"{d.estimate:.2f} [{d.low:.2f}-{d.high:.2f}]"


def _never_ran(row: Row) -> bool:
    """Skipped by the benchmark itself on both sides (a reference too slow at that size...)."""
    return row.verdict == "not measured" and not any(row.failures) and not any(row.base_rounds + row.head_rounds)


def ordered(rows: list[Row]) -> list[Row]:
    return sorted(rows, key=lambda r: (r.reference, _RANK.get(r.verdict, 9), r.nodeid))


def table(comparison: Comparison) -> str:
    header = ("benchmark", "base", "head", "head/base [CI]", "verdict")
    lines: list[tuple[str, ...]] = [header]
    skipped = [r for r in comparison.rows if _never_ran(r)]
    for row in ordered([r for r in comparison.rows if not _never_ran(r)]):
        verdict = row.verdict.upper() if row.gated and row.verdict in ("slower", "broken") else row.verdict
        if any(row.failures) and row.verdict not in ("broken", "failed"):
            verdict += f" (flaky: failed {row.failures[0]}x base, {row.failures[1]}x head)"
        lines.append(
            (
                short_name(row.nodeid),
                duration(row.base_median),
                duration(row.head_median),
                ratio_text(row),
                f"{verdict} (reference, not gated)" if row.reference else verdict,
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for n, line in enumerate(lines):
        cells = [line[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(line[1:4], widths[1:4], strict=True)), line[4]]
        out.append("  ".join(cells).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    if skipped:
        out.append(f"({len(skipped)} skipped on both sides in every round, e.g. {short_name(skipped[0].nodeid)})")
    for nodeid in comparison.only_head:
        out.append(f"{short_name(nodeid)}: only on head (new?), not compared")
    for nodeid in comparison.only_base:
        out.append(f"{short_name(nodeid)}: only on base (removed?), not compared")
    return "\n".join(out)


def summary(comparison: Comparison) -> str:
    """One line: counts per verdict, the trees, the wall time, the outcome."""
    gated = [r for r in comparison.rows if r.gated]
    counts = {v: sum(1 for r in gated if r.verdict == v) for v in _RANK}
    parts = [f"{n} {v}" for v, n in counts.items() if n]
    refs = len(comparison.rows) - len(gated)
    outcome = "REGRESSION" if comparison.exit_status else "no regression"
    c = comparison
    return (
        f"{outcome}: {', '.join(parts) or 'nothing'} of {len(gated)} gated ({refs} references not gated); "
        f"base {c.base.short}, head {c.head.short}; {c.options.rounds} rounds at {c.options.confidence:.0%}, "
        f"tolerance {c.options.tolerance:.0%}; {c.seconds / 60:.1f} min"
    )


def to_json(comparison: Comparison) -> dict[str, Any]:
    c = comparison

    def tree(t: Any) -> dict[str, Any]:
        return {"spec": t.spec, "commit": t.commit, "dirty": t.dirty}

    return {
        "format": "netsim-bench-compare/1",
        "base": tree(c.base),
        "head": tree(c.head),
        "interpreter": c.interpreter,
        "rounds": c.options.rounds,
        "confidence": c.options.confidence,
        "tolerance": c.options.tolerance,
        "fake_only": c.options.fake_only,
        "seconds": round(c.seconds, 1),
        "measure_seconds": round(c.measure_seconds, 1),
        "exit_status": c.exit_status,
        "summary": summary(c),
        "regressions": [r.nodeid for r in c.regressions],
        "only_head": c.only_head,
        "only_base": c.only_base,
        "benchmarks": [
            {
                "nodeid": r.nodeid,
                "reference": r.reference,
                "gated": r.gated,
                "verdict": r.verdict,
                "base_median_s": r.base_median,
                "head_median_s": r.head_median,
                "ratio": r.decision.estimate if r.decision else None,
                "ratio_low": r.decision.low if r.decision else None,
                "ratio_high": r.decision.high if r.decision else None,
                "coverage": r.decision.coverage if r.decision else None,
                "failed_rounds": {"base": r.failures[0], "head": r.failures[1]},
                "base_rounds_s": r.base_rounds,
                "head_rounds_s": r.head_rounds,
            }
            for r in ordered(c.rows)
        ],
    }


def write_json(comparison: Comparison, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_json(comparison), indent=2) + "\n")
