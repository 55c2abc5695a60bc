"""Multi-host scenarios on the fake kernel, as ratios to the one-host
quickstart measured in the same run: what a Cluster (underlay, per-host
controllers, shared IPAM, table events) adds to a scenario's lifecycle.

Figures read as "overlay-two-hosts costs N quickstarts"; the 10 expectations
of the overlay file against quickstart's 5 explain part of it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from netsim.scenario.runner import run_scenario
from netsim.scenario.schema import load_scenario

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


def _run(name: str, benchmark: Any) -> None:
    scenario = load_scenario(SCENARIOS / name)
    result = benchmark.pedantic(run_scenario, args=(scenario, "fake"), rounds=15, iterations=1, warmup_rounds=1)
    benchmark.extra_info["expectations"] = len(result.results)
    benchmark.extra_info["hosts"] = len(scenario.hosts)
    assert result.error is None and not result.leaks


def test_reference_quickstart_one_host(benchmark: Any) -> None:
    _run("quickstart.yaml", benchmark)


def test_overlay_two_hosts(benchmark: Any) -> None:
    _run("overlay-two-hosts.yaml", benchmark)


def test_overlay_published_web(benchmark: Any) -> None:
    _run("overlay-published-web.yaml", benchmark)
