"""``netsim run -j N`` on the fake kernel: the same table, JSON and JUnit as a
sequential run, in file order; progress in whole blocks per scenario; a
worker that dies fails only its own scenario; refusals before anything runs."""

from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from netsim.cli import main
from netsim.scenario import parallel
from netsim.scenario.model import Scenario
from netsim.scenario.results import ScenarioResult
from netsim.scenario.schema import load_scenario, scenario_files

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
#: single-host scenarios the fake kernel runs in well under a second each
SOME = ["quickstart", "isolated-bridges", "icc-disabled", "internal-network", "multi-network", "null-driver"]


def _files() -> list[str]:
    return [str(SCENARIOS / f"{name}.yaml") for name in SOME]


def _run(capsys: pytest.CaptureFixture[str], tmp_path: Path, tag: str, *argv: str) -> tuple[int, str, str, Path, Path]:
    json_file, junit_file = tmp_path / f"{tag}.json", tmp_path / f"{tag}.xml"
    status = main(["run", *argv, "--json", str(json_file), "--junit", str(junit_file)])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return status, out, err, json_file, junit_file


def _junit_without_times(path: Path) -> str:
    return re.sub(r' time="[0-9.]+"', "", ET.tostring(ET.parse(path).getroot(), encoding="unicode"))


def _json_without_times(path: Path) -> object:
    """The --json report without its ``seconds`` (each scenario's and each row's run time)."""

    def strip(node: object) -> object:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k != "seconds"}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    return strip(json.loads(path.read_text()))


def test_parallel_run_reports_exactly_what_a_sequential_run_does(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    seq = _run(capsys, tmp_path, "seq", *_files())
    par = _run(capsys, tmp_path, "par", *_files(), "-j", "3")
    assert seq[0] == par[0] == 0, par[1] + par[2]
    assert par[1] == seq[1]  # the table, in file order
    assert _json_without_times(par[3]) == _json_without_times(seq[3])
    assert _junit_without_times(par[4]) == _junit_without_times(seq[4])
    names = [line.split()[1] for line in par[2].splitlines() if line.startswith("[")]
    assert sorted(names) == sorted(SOME)


def test_progress_comes_in_one_block_per_scenario(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, _, err, _, _ = _run(capsys, tmp_path, "p", *_files(), "-j", "4")
    assert status == 0
    blocks = re.split(r"(?m)^(?=\[\d+/6\] )", err.strip())[1:]
    assert len(blocks) == len(SOME)
    for number, block in enumerate(blocks, 1):
        lines = block.splitlines()
        name = lines[0].split()[1]
        assert lines[0] == f"[{number}/6] {name} on the fake kernel: building"
        assert lines[-1].startswith(f"    PASS {name} (")
        assert all(line.startswith("    ") for line in lines[1:])


def test_a_failed_scenario_fails_the_parallel_run(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.yaml"
    text = (SCENARIOS / "quickstart.yaml").read_text()
    wrong.write_text(
        text.replace("{from: db, to: outside, reachable: true}", "{from: db, to: outside, reachable: false}")
    )
    status, out, _, _, _ = _run(capsys, tmp_path, "w", str(SCENARIOS / "icc-disabled.yaml"), str(wrong), "-j", "2")
    assert status == 1
    assert out.splitlines()[-1] == "1/2 scenarios passed, 10/11 expectations hold"


def test_a_worker_that_dies_fails_only_its_scenario(monkeypatch: pytest.MonkeyPatch) -> None:
    real = parallel.run_scenario

    def dies_on_one(scenario: Scenario, *args: Any, **kwargs: Any) -> ScenarioResult:
        if scenario.name == "icc-disabled":
            os._exit(9)  # as a worker killed mid-run: no result, no goodbye
        return real(scenario, *args, **kwargs)

    monkeypatch.setattr(parallel, "run_scenario", dies_on_one)  # the forked workers inherit it
    scenarios = [load_scenario(path) for path in scenario_files(_files())]
    results = parallel.run_scenarios(scenarios, "fake", jobs=2)
    assert [r.name for r in results] == SOME
    dead = results[SOME.index("icc-disabled")]
    assert dead.error is not None and re.fullmatch(r"internal error: worker process \d exited with 9", dead.error)
    assert all(r.passed for r in results if r is not dead)


def test_every_worker_dying_fails_the_rest_with_a_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    def always_dies(scenario: Scenario, *args: Any, **kwargs: Any) -> ScenarioResult:
        os._exit(3)

    monkeypatch.setattr(parallel, "run_scenario", always_dies)
    scenarios = [load_scenario(path) for path in scenario_files(_files())]
    results = parallel.run_scenarios(scenarios, "fake", jobs=2)
    assert [r.name for r in results] == SOME
    assert all(r.error and r.error.startswith("internal error:") for r in results)
    assert sum("exited with 3" in (r.error or "") for r in results) == 2  # the two that were running


def test_jobs_zero_means_one_per_cpu_and_negative_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "-q", "-j", "0", *_files()[:2]]) == 0
    capsys.readouterr()
    assert main(["run", "-q", "-j", "-1", *_files()[:2]]) == 2
    assert "-j/--jobs must be 0 (one per CPU) or more, not -1" in capsys.readouterr().err


def test_a_run_id_too_long_for_the_worker_suffix_is_refused(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NETSIM_RUN_ID", "abcdefghijk")
    assert main(["run", "-q", "-j", "2", *_files()[:2]]) == 2
    err = capsys.readouterr().err
    assert err.startswith("netsim run: error: NETSIM_RUN_ID='abcdefghijk' leaves no room for -j 2's worker suffix")
