"""The CLI with the traffic keys: trace shows the source translation and
takes host targets; run's table shows what the far end saw."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from netsim.cli import main

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
SEEN = str(SCENARIOS / "source-address-seen.yaml")
HOSTS = str(SCENARIOS / "host-by-name.yaml")


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return status, out, err


def test_trace_shows_masquerade_and_dnat(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run_cli(capsys, "trace", SEEN, "--from", "client", "--to", "outside:80/tcp")
    assert status == 0
    assert "source: sent from 10.91.1.3, seen by h1-out as 198.18.0.2 (translated)" in out
    assert any(line.split()[3:4] == ["snat"] for line in out.splitlines() if line[:1].isdigit())
    status, out, _ = run_cli(capsys, "trace", SEEN, "--from", "outside", "--to", "published:8080")
    assert status == 0 and "seen by h1-c-web as 198.18.0.1 (unchanged)" in out


def test_trace_takes_the_host_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run_cli(capsys, "trace", HOSTS, "--from", "outside@h2", "--to", "host@h2:9100")
    assert status == 0
    assert out.splitlines()[0] == "trace outside@h2 -> host@h2 (198.18.1.2) tcp/9100 on the fake kernel"
    status, _, err = run_cli(capsys, "trace", HOSTS, "--from", "web", "--to", "host@h9")
    assert status == 2 and "--to: unknown host 'h9' in 'host@h9'" in err


def test_run_reports_the_source_seen(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    status, out, _ = run_cli(capsys, "run", SEEN, "--json", str(report))
    assert status == 0
    assert "syn-ack; seen from 198.18.0.2" in out
    rows = json.loads(report.read_text())["scenarios"][0]["expectations"]
    assert {(row["seen_from"], row["seen"]) for row in rows if "seen_from" in row} >= {
        ("host", "198.18.0.2"),
        ("outside", "198.18.0.1"),
        ("hidden", "10.91.2.2"),
    }
