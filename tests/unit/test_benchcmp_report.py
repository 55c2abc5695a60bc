"""``netsim bench compare``'s pieces around the statistics: selection, round
parsing, report, saved results, trend, and the CLI's bad-input handling."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from netsim.benchcmp import results, selection, stats, trend
from netsim.benchcmp.compare import CompareOptions, Comparison, Row, validate
from netsim.benchcmp.gitwork import Tree
from netsim.benchcmp.report import duration, short_name, summary, table, to_json
from netsim.benchcmp.runner import parse_round
from netsim.benchcmp.venvs import TOOL_PINS
from netsim.cli import main
from netsim.errors import InvalidParameterError

ROOT = Path(__file__).resolve().parents[2]


def bench(nodeid: str, reference: bool = False, real_kernel: bool = False) -> selection.Benchmark:
    return selection.Benchmark(nodeid, reference, real_kernel)


def test_select_filters_and_reports_one_sided_benchmarks() -> None:
    head = {b.nodeid: b for b in [bench("a.py::x"), bench("a.py::y[linux]", real_kernel=True), bench("a.py::new")]}
    base = {b.nodeid: b for b in [bench("a.py::x"), bench("a.py::y[linux]", real_kernel=True), bench("a.py::gone")]}
    chosen = selection.select(head, base, fake_only=True, patterns=[])
    assert chosen.nodeids == ["a.py::x"]
    assert chosen.only_head == ["a.py::new"] and chosen.only_base == ["a.py::gone"]
    assert selection.select(head, base, fake_only=False, patterns=["::y"]).nodeids == ["a.py::y[linux]"]
    assert selection.select(head, base, fake_only=False, patterns=[], excludes=["x", "y"]).nodeids == []


def test_parse_round_keeps_passed_benchmarks_and_names_the_rest(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    data = [{"fullname": n, "group": None, "extra_info": {}, "stats": {"data": [2e-6, 1e-6]}} for n in ("ok", "bad")]
    out.write_text(json.dumps({"benchmarks": data}))
    outcomes = tmp_path / "r.outcomes"
    lines = [{"nodeid": "ok", "outcome": "passed"}, {"nodeid": "bad", "outcome": "failed"}]
    outcomes.write_text("".join(json.dumps(line) + "\n" for line in lines))
    result = parse_round(out, outcomes, 1.0)
    assert result.samples == {"ok": [2e-6, 1e-6]}
    assert result.failed == {"bad"}


def comparison(rows: list[Row], rounds: int = 9) -> Comparison:
    tree = Tree("base", "main", "a" * 40, Path("/tmp/x"), False)
    head = Tree("head", "WORKTREE", "b" * 40, Path("/tmp/y"), True)
    options = CompareOptions(rounds=rounds)
    return Comparison(tree, head, Path("/tmp/y"), options, rows, ["t.py::new"], [], "cpython-3.11.7-x86_64", 61.0, 50.0)


def row(nodeid: str, ratio: float, reference: bool = False) -> Row:
    base = [1e-3] * 9
    head = [1e-3 * ratio] * 9
    decision = stats.decide(stats.paired_ratios(base, head), confidence=0.95, tolerance=0.05)
    return Row(nodeid, reference, list(base), list(head), decision, decision.verdict)


def test_report_puts_regressions_first_and_gates_only_non_references() -> None:
    rows = [
        row("benchmarks/test_bench_ipam.py::test_fill[2^8]", 1.0),
        row("benchmarks/test_bench_ipam.py::test_reference", 1.5, reference=True),
        row("benchmarks/test_bench_kernel.py::test_endpoint_setup[fake]", 1.3),
        Row("benchmarks/test_bench_ipam.py::test_skipped", False, [None] * 9, [None] * 9, None, "not measured"),
    ]
    result = comparison(rows)
    text = table(result)
    lines = text.splitlines()
    assert lines[2].startswith("kernel::endpoint_setup[fake]") and lines[2].endswith("SLOWER")
    assert "slower (reference, not gated)" in text
    assert "1 skipped on both sides" in text and "t::new: only on head" in text
    assert result.exit_status == 1 and [r.nodeid for r in result.regressions] == [rows[2].nodeid]
    line = summary(result)
    assert line.startswith("REGRESSION: 1 slower, 1 same") and "b" * 10 + "+dirty" in line
    data = to_json(result)
    assert data["exit_status"] == 1 and data["benchmarks"][0]["verdict"] == "slower"
    assert json.loads(json.dumps(data)) == data


def test_a_reference_alone_never_fails_the_gate() -> None:
    result = comparison([row("a.py::test_reference", 2.0, reference=True), row("a.py::x", 1.01)])
    assert result.exit_status == 0 and summary(result).startswith("no regression")


def test_durations_and_names_read_at_a_glance() -> None:
    assert duration(0.25) == "250 ms" and duration(2.5e-8) == "25.0 ns"
    assert short_name("benchmarks/test_bench_probe_fake.py::test_bridge_icmp") == "probe_fake::bridge_icmp"


def test_results_are_per_machine_and_never_in_the_baseline(tmp_path: Path) -> None:
    where = results.results_dir(tmp_path, "cpython-3.11.7-x86_64")
    assert where.parent == (tmp_path / "benchmarks" / ".results" / "compare").resolve()
    assert where.name.endswith("cpython-3.11.7-x86_64") and re.search(r"-\d+cpu-[0-9a-f]{8}-", where.name)
    with pytest.raises(InvalidParameterError, match="baseline"):
        results.results_dir(tmp_path, "x", tmp_path / "benchmarks" / "baseline" / "sub")
    saved = results.save(comparison([row("a.py::x", 1.0)]), tmp_path)
    assert saved.parent == where and results.load(where)[0]["benchmarks"][0]["nodeid"] == "a.py::x"
    assert "benchmarks/.results/" in (ROOT / ".gitignore").read_text()


def test_trend_draws_an_svg(tmp_path: Path) -> None:
    runs = [to_json(comparison([row("a.py::x", r), row("a.py::test_reference", 1.0, True)])) for r in (1.0, 1.3)]
    out = tmp_path / "t.svg"
    assert trend.render(runs, out) == 1
    assert out.read_text().lstrip().startswith("<?xml") and "<svg" in out.read_text()
    with pytest.raises(InvalidParameterError):
        trend.render(runs, out, patterns=["nothing-matches"])


def test_the_harness_pins_match_pyproject() -> None:
    test_extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["test"]
    assert set(TOOL_PINS) <= set(test_extra)


def test_bad_options_are_invalid_input() -> None:
    with pytest.raises(InvalidParameterError, match="at least 6"):
        validate(CompareOptions(rounds=4))
    with pytest.raises(InvalidParameterError, match="--timer"):
        validate(CompareOptions(timer="sundial"))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["no-such-commit", "HEAD"], "is not a commit"),
        (["HEAD", "HEAD", "--rounds", "3"], "too few"),
    ],
)
def test_cli_bad_input_is_one_line_and_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(
        [
            "git",
            "-C",
            str(tmp_path),
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "x",
        ],
        check=True,
    )
    status = main(["bench", "compare", *argv, "--repo", str(tmp_path), "--cache", str(tmp_path / "c"), "--no-save"])
    err = capsys.readouterr().err
    assert status == 2
    assert message in err and "Traceback" not in err


def test_cli_outside_a_checkout_is_status_2(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "netsim.cli", "bench", "compare", "--repo", str(tmp_path), "--no-save"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 2
    assert "not inside a git checkout" in done.stderr and "Traceback" not in done.stderr
