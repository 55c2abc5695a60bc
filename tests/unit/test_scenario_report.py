"""Reports (table, the issue's JSON shape, JUnit) and renderers (text, dot,
mermaid, svg), from hand-made results and the shipped scenario files."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from netsim.scenario.model import Expectation
from netsim.scenario.progress import ProgressPrinter
from netsim.scenario.render import FORMATS, render
from netsim.scenario.report import format_table, to_json, write_json, write_junit
from netsim.scenario.results import ExpectationResult, ScenarioResult, snapshot_diff
from netsim.scenario.schema import load_scenario

SCENARIO_DIR = Path(__file__).resolve().parents[2] / "scenarios"


def sample_results() -> list[ScenarioResult]:
    good = ScenarioResult("good", "fake", "good.yaml", seconds=0.5)
    good.results = [
        ExpectationResult(Expectation("web", "db", "tcp", 5432, True), "initial", "10.0.0.3", True, "syn-ack"),
        ExpectationResult(
            Expectation("outside", "web", "icmp", None, False),
            "step 1: remove container db",
            "10.0.0.2",
            False,
            "timeout",
        ),
    ]
    bad = ScenarioResult("bad", "linux", error="conflict: network exists", leaks=["namespace x is left behind"])
    bad.results = [
        ExpectationResult(Expectation("a", "b", "udp", 53, True), "initial", "10.0.0.9", False, "port-unreachable"),
        ExpectationResult(Expectation("a", "outside", "icmp", None, True), "initial"),
    ]
    return [good, bad]


def test_pass_fail_accounting() -> None:
    good, bad = sample_results()
    assert good.passed and good.failures == 0
    assert not bad.passed and bad.failures == 2
    assert bad.results[1].reachable is None and not bad.results[1].passed


def test_table_has_one_row_per_expectation_and_the_verdicts() -> None:
    text = format_table(sample_results())
    lines = text.splitlines()
    assert lines[0].split() == ["expectation", "from", "to", "proto/port", "expected", "got", "outcome", "result"]
    assert "good#1" in lines[2] and lines[2].endswith("PASS") and "db (10.0.0.3)" in lines[2]
    assert "[step 1]" in lines[3]
    assert "port-unreachable" in lines[4] and lines[4].endswith("FAIL")
    assert "not-run" in lines[5]
    assert "bad: FAIL: conflict: network exists" in text
    assert "bad: FAIL: leak: namespace x is left behind" in text
    assert lines[-1] == "1/2 scenarios passed, 2/4 expectations hold"


def test_json_carries_what_the_table_shows(tmp_path: Path) -> None:
    data = to_json(sample_results())
    assert list(data) == ["version", "scenarios"]
    first = data["scenarios"][0]
    assert list(first) == ["name", "kernel", "file", "passed", "seconds", "error", "leaks", "expectations"]
    row = first["expectations"][0]
    # the keys, unchanged ...
    assert {k: row[k] for k in ("from", "to", "proto", "port", "expect", "reachable", "passed")} == {
        "from": "web",
        "to": "db",
        "proto": "tcp",
        "port": 5432,
        "expect": True,
        "reachable": True,
        "passed": True,
    }
    # ... and the table's other cells: id, step, the address probed, its family, how it ended
    assert (row["id"], row["phase"], row["step"]) == ("good#1", "initial", None)
    assert (row["address"], row["family"], row["outcome"], row["probe_outcome"]) == ("10.0.0.3", 4, "ok", "syn-ack")
    assert first["expectations"][1]["step"] == 1 and first["expectations"][1]["id"] == "good#2 [step 1]"
    bad = data["scenarios"][1]
    assert bad["error"] == "conflict: network exists" and bad["leaks"] == ["namespace x is left behind"]
    assert bad["expectations"][1]["reachable"] is None and bad["expectations"][1]["address"] is None
    path = tmp_path / "out.json"
    write_json(sample_results(), str(path))
    assert json.loads(path.read_text()) == data


def test_junit_counts_failures(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    write_junit(sample_results(), str(path))
    root = ET.parse(path).getroot()
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["good[fake]", "bad[linux]"]
    assert [s.get("tests") for s in suites] == ["3", "3"]
    assert [s.get("failures") for s in suites] == ["0", "3"]
    failures = suites[1].findall("testcase/failure")
    assert "leak" in (failures[-1].text or "") and "conflict" in (failures[-1].get("message") or "")


def test_progress_lines_and_quiet() -> None:
    scenario = load_scenario(SCENARIO_DIR / "quickstart.yaml")
    good, bad = sample_results()
    out = io.StringIO()
    printer = ProgressPrinter(out, total=2)
    printer.scenario_started(scenario, "fake")
    printer.phase_done(scenario, "initial", good.results)
    printer.scenario_done(bad)
    lines = out.getvalue().splitlines()
    assert lines[0] == "[1/2] quickstart on the fake kernel: building"
    assert lines[1] == "    initial: 2/2 expectations hold ok"
    assert lines[2].startswith("    FAIL bad")
    assert lines[3:] == ["    error: conflict: network exists", "    leak: namespace x is left behind"]
    silent = io.StringIO()
    ProgressPrinter(silent, quiet=True).scenario_done(bad)
    assert silent.getvalue() == ""


def test_snapshot_diff_names_what_changed() -> None:
    assert snapshot_diff({"a": {"rules": []}}, {"a": {"rules": []}}) == []
    assert snapshot_diff({}, {"n": {}}) == ["namespace n is left behind"]
    assert snapshot_diff({"a": {"rules": [], "links": []}}, {"a": {"rules": [1], "links": []}}) == [
        "namespace a: rules differ"
    ]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("path", sorted(SCENARIO_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_scenario_renders_in_every_format(path: Path, fmt: str) -> None:
    scenario = load_scenario(path)
    text = render(scenario, fmt)
    for ctr in scenario.containers:
        assert ctr.name in text
    for net in scenario.networks:
        assert net.name in text
    if fmt == "svg":
        root = ET.fromstring(text)
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
    elif fmt == "dot":
        assert text.startswith("graph ") and text.endswith("}") and text.count("{") == text.count("}")
    elif fmt == "mermaid":
        assert text.startswith("graph LR")
    elif scenario.multi_host:
        assert text.splitlines()[1].startswith("├── host h1 (underlay eth1 198.19.0.2)")
        assert text.splitlines()[-1].startswith("└── underlay br0")
    else:
        assert text.splitlines()[1] == "└── host h1"


def test_text_tree_shows_addresses_and_ports() -> None:
    text = render(load_scenario(SCENARIO_DIR / "published-ports.yaml"), "text")
    assert "network pub (bridge, 10.40.0.0/24)" in text
    assert "web dynamic (listens tcp/80 udp/53; publishes 8080:80/tcp 5353:53/udp 127.0.0.1:9090:80/tcp)" in text
    sealed = render(load_scenario(SCENARIO_DIR / "ipv6-dual-stack.yaml"), "text")
    assert "a 10.60.0.10 fd00:60::10" in sealed
