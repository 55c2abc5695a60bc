"""The ``netsim`` CLI end to end on the fake kernel: exit statuses, table,
progress, JSON/JUnit files, show, trace, inspect, and bad input (exit 2, one
line, never a traceback, nothing built)."""

from __future__ import annotations

import argparse
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from netsim.cli import main

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
QUICKSTART = str(SCENARIOS / "quickstart.yaml")


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return status, out, err


def test_run_prints_progress_table_and_passes(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    json_file, junit_file = tmp_path / "r.json", tmp_path / "r.xml"
    status, out, err = run_cli(capsys, "run", QUICKSTART, "--json", str(json_file), "--junit", str(junit_file))
    assert status == 0, out + err
    assert err.splitlines()[0] == "[1/1] quickstart on the fake kernel: building"
    assert "    initial: 5/5 expectations hold ok" in err
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["expectation", "from", "to"]
    assert sum(line.endswith("PASS") for line in lines) == 5
    assert lines[-1] == "1/1 scenarios passed, 5/5 expectations hold"
    data = json.loads(json_file.read_text())
    assert data["scenarios"][0]["name"] == "quickstart" and data["scenarios"][0]["kernel"] == "fake"
    assert data["scenarios"][0]["passed"] is True and len(data["scenarios"][0]["expectations"]) == 5
    suite = ET.parse(junit_file).getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "0" and suite.get("tests") == "6"


def test_quiet_run_prints_no_progress(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run_cli(capsys, "run", "-q", QUICKSTART)
    assert status == 0 and err == "" and "PASS" in out


def test_a_failed_expectation_exits_1(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(
        (SCENARIOS / "quickstart.yaml")
        .read_text()
        .replace("{from: db, to: outside, reachable: true}", "{from: db, to: outside, reachable: false}")
    )
    status, out, _ = run_cli(capsys, "run", str(wrong))
    assert status == 1
    failed = [line for line in out.splitlines() if line.endswith("FAIL")]
    assert len(failed) == 1 and "db" in failed[0] and "unreachable" in failed[0]
    assert out.splitlines()[-1] == "0/1 scenarios passed, 4/5 expectations hold"


BAD_FILES = {
    "subnet33.yaml": ("networks:\n  - {name: n, ipam: {subnet: 10.1.0.0/33}}\n", "networks[0].ipam.subnet"),
    "dupe.yaml": ("networks:\n  - {name: n}\n  - {name: n}\n", "networks[1].name"),
    "unknown.yaml": ("containers:\n  - {name: c, networks: [ghost]}\n", "containers[0].networks[0]"),
    "overlap.yaml": (
        "networks:\n  - {name: a, ipam: {subnet: 10.0.0.0/16}}\n  - {name: b, ipam: {subnet: 10.0.5.0/24}}\n",
        "networks[1].ipam.subnet",
    ),
    "key.yaml": ("netwerks: []\n", "netwerks"),
    "yaml.yaml": ("a: [\n", "invalid YAML"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_invalid_input_exits_2_with_one_line_and_builds_nothing(
    name: str, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[str] = []

    def no_kernel(kind: str, run_id: str | None = None) -> Any:
        built.append(kind)
        raise AssertionError("a kernel was made for an invalid scenario")

    monkeypatch.setattr("netsim.kernel.make_kernel", no_kernel)
    text, where = BAD_FILES[name]
    bad = tmp_path / name
    bad.write_text(text)
    # a valid file first: nothing at all may be built when any file is invalid
    status, out, err = run_cli(capsys, "run", QUICKSTART, str(bad))
    assert status == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and str(bad) in err and where in err
    assert built == []


@pytest.mark.parametrize(
    "argv",
    [["run"], ["run", "x.yaml", "--kernel", "bsd"], ["show", QUICKSTART, "--format", "png"], ["frobnicate"], []],
)
def test_usage_errors_exit_2_in_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "error:" in err


def test_missing_file_and_linux_unavailable_exit_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    status, _, err = run_cli(capsys, "run", "no-such-file.yaml")
    assert status == 2 and "no-such-file.yaml: cannot read file" in err
    monkeypatch.setattr("netsim.safety.linux_unavailable_reason", lambda: "real-kernel mode needs root")
    status, _, err = run_cli(capsys, "run", QUICKSTART, "--kernel", "linux")
    assert status == 2 and "needs root" in err


@pytest.mark.parametrize("fmt", ["text", "dot", "svg", "mermaid"])
def test_show(fmt: str, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run_cli(capsys, "show", QUICKSTART, "--format", fmt)
    assert status == 0 and "web" in out and "db" in out


def test_trace_shows_hops(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run_cli(capsys, "trace", QUICKSTART, "--from", "web", "--to", "db:5432/tcp")
    assert status == 0
    assert out.splitlines()[0].startswith("trace web -> db (10.100.0.")
    assert out.splitlines()[1].split()[:4] == ["#", "namespace", "iface", "action"]
    assert "outcome: syn-ack (reachable)" in out


def test_trace_explains_a_drop(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run_cli(
        capsys, "trace", str(SCENARIOS / "icc-disabled.yaml"), "--from", "a", "--to", "b:80/tcp", "--timeout", "0.2"
    )
    assert status == 0
    assert "(unreachable)" in out
    assert "dropped in " in out


def test_trace_rejects_unknown_names(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run_cli(capsys, "trace", QUICKSTART, "--from", "ghost", "--to", "db")
    assert status == 2 and "--from: unknown container 'ghost'" in err
    status, _, err = run_cli(capsys, "trace", QUICKSTART, "--from", "web", "--to", "db:99999/tcp")
    assert status == 2 and "1-65535" in err


def test_inspect_prints_docker_like_json(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run_cli(capsys, "inspect", str(SCENARIOS / "multi-network.yaml"))
    assert status == 0, err
    data = json.loads(out)
    assert [net["Name"] for net in data] == ["front", "back"]
    assert {c["Name"] for c in data[1]["Containers"].values()} == {"app", "db"}


def test_clean_lists_what_it_removed(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, bool]] = []

    def fake_clean(prefix: str = "netsim-", dry_run: bool = False) -> list[str]:
        calls.append((prefix, dry_run))
        return ["netsim-abc123-h1", "netsim-abc123-outside"] if dry_run else []

    monkeypatch.setattr("netsim.kernel.linux.clean.clean", fake_clean)
    status, out, _ = run_cli(capsys, "clean", "--dry-run")
    assert status == 0 and out.splitlines() == ["would remove netsim-abc123-h1", "would remove netsim-abc123-outside"]
    status, out, _ = run_cli(capsys, "clean")
    assert status == 0 and out.strip() == "nothing to clean"
    assert calls == [("netsim-", True), ("netsim-", False)]


def test_plugin_serve_hands_over_its_arguments(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[str | None, str | None, str | None]] = []

    def fake_serve(args: argparse.Namespace) -> int:
        seen.append((args.target, args.builtin, args.socket))
        return 0

    monkeypatch.setattr("netsim.plugin.cli.serve", fake_serve)
    status, _, _ = run_cli(capsys, "plugin", "serve", "pkg.mod:Driver", "--socket", "/tmp/netsim-test.sock")
    assert status == 0 and seen == [("pkg.mod:Driver", None, "/tmp/netsim-test.sock")]
    # the console script and ``python -m netsim.plugin serve`` share one parser
    status, _, _ = run_cli(capsys, "plugin", "serve", "--builtin", "bridge", "--socket", "/tmp/netsim-test.sock")
    assert status == 0 and seen[-1] == (None, "bridge", "/tmp/netsim-test.sock")


def test_run_writes_one_pcap_per_probe(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, _, _ = run_cli(capsys, "run", "-q", QUICKSTART, "--pcap", str(tmp_path / "pcaps"))
    assert status == 0
    files = sorted(p.name for p in (tmp_path / "pcaps").iterdir())
    assert len(files) == 5 and files[0] == "quickstart-001-outside-published_8080.pcap"
    # a probe that got through left packets (more than the 24-byte pcap header);
    # outside -> db has no route, so nothing ever crossed an interface
    assert (tmp_path / "pcaps" / files[0]).stat().st_size > 24
    assert (tmp_path / "pcaps" / "quickstart-004-outside-db.pcap").stat().st_size == 24


def test_pcap_of_a_loopback_only_container(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, _, _ = run_cli(capsys, "run", "-q", str(SCENARIOS / "null-driver.yaml"), "--pcap", str(tmp_path))
    assert status == 0
    sealed = tmp_path / "null-driver-001-sealed-127.0.0.1.pcap"
    assert sealed.stat().st_size > 24  # the probe to 127.0.0.1 crossed lo
