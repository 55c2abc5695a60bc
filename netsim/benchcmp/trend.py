"""A trend over saved comparisons, as an SVG line chart (pygal).

One line per benchmark: HEAD's figure in each saved comparison of one
machine, relative to the first comparison that measured it (1.0 = as fast as
then; 1.3 = 30 % slower). Only comparisons from the same machine directory
are drawn, so a line never mixes two machines' figures. Each point's tooltip
carries that run's ratio to its BASE and the verdict: the gate decides on
those; the trend is for the eye.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from netsim.benchcmp.report import short_name
from netsim.errors import InvalidParameterError


def series(
    runs: Sequence[dict[str, Any]], *, references: bool = False, patterns: Sequence[str] = ()
) -> dict[str, list[dict[str, Any] | None]]:
    """Benchmark → one point per run (None where the run did not measure it).

    >>> run = lambda t, v: {"benchmarks": [{"nodeid": "a.py::t", "reference": False, "head_median_s": t,
    ...     "ratio": 1.0, "verdict": v}]}
    >>> [p and p["value"] for p in series([run(2.0, "same"), run(3.0, "slower")])["a.py::t"]]
    [1.0, 1.5]
    """
    first: dict[str, float] = {}
    out: dict[str, list[dict[str, Any] | None]] = {}
    for index, run in enumerate(runs):
        for bench in run.get("benchmarks", []):
            nodeid, figure = bench["nodeid"], bench.get("head_median_s")
            if (bench.get("reference") and not references) or not figure:
                continue
            if patterns and not any(p in nodeid for p in patterns):
                continue
            first.setdefault(nodeid, figure)
            points = out.setdefault(nodeid, [None] * len(runs))
            ratio = bench.get("ratio")
            points[index] = {
                "value": round(figure / first[nodeid], 4),
                "label": f"{figure * 1e6:.1f} µs; vs base {ratio:.2f}, {bench.get('verdict')}"
                if ratio
                else f"{figure * 1e6:.1f} µs",
            }
    return out


def render(
    runs: Sequence[dict[str, Any]],
    out: Path,
    *,
    title: str = "netsim benchmarks: HEAD relative to the first saved comparison",
    references: bool = False,
    patterns: Sequence[str] = (),
) -> int:
    """Write the SVG; returns the number of benchmarks drawn."""
    import pygal  # imported on use: only this command needs it

    lines = series(runs, references=references, patterns=patterns)
    if not lines:
        raise InvalidParameterError("no saved comparison measured a selected benchmark: nothing to draw")
    chart = pygal.Line(
        title=title,
        x_title="saved comparison (head commit)",
        y_title="head figure / first figure",
        legend_at_bottom=True,
        legend_at_bottom_columns=2,
        margin_bottom=40,  # pygal under-reserves the legend below rotated x labels
        truncate_legend=60,
        x_label_rotation=30,
        show_minor_x_labels=True,
        width=1200,
        height=650 + 30 * ((len(lines) + 1) // 2),  # room for the legend, two per row
    )
    chart.x_labels = [
        f"{run.get('saved_at', '')[:13]} {str(run.get('head', {}).get('commit', ''))[:8]}" for run in runs
    ]
    for nodeid, points in sorted(lines.items()):
        chart.add(short_name(nodeid), points)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(chart.render())
    return len(lines)
