"""The whole scenario set, end to end (build, probe, steps, teardown, leak
check), on the fake kernel and on the real one.

The reference measured in the same run is loading and validating the same
files (no kernel): figures read as "running the set costs N times parsing it".
Target: the fake-kernel set under 5 s.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from netsim.pytest_plugin import skip_unless_linux
from netsim.scenario.model import Scenario
from netsim.scenario.runner import run_scenario
from netsim.scenario.schema import load_scenario

#: the refusal of a real kernel without ipvlan (this machine kind's: divergences.py "no-ipvlan-here")
KERNEL_LACKS_IPVLAN = "this kernel has no ipvlan link kind"
SCENARIO_FILES = sorted((Path(__file__).resolve().parents[1] / "scenarios").glob("*.yaml"))


def load_all() -> list[Scenario]:
    return [load_scenario(path) for path in SCENARIO_FILES]


def run_all(kind: str, scenarios: list[Scenario]) -> list[Any]:
    return [run_scenario(s, kind, timeout=1.0) for s in scenarios]


def record(benchmark: Any, results: list[Any]) -> None:
    """Failures are the tests' business (tests/linux/test_scenarios.py); the
    benchmark notes them beside its figures, since a failed expectation costs
    a probe timeout and skews the time."""
    benchmark.extra_info["scenarios"] = len(results)
    benchmark.extra_info["expectations"] = sum(len(r.results) for r in results)
    benchmark.extra_info["failed"] = [r.name for r in results if not r.passed]


def test_reference_load_and_validate(benchmark: Any) -> None:
    scenarios = benchmark(load_all)
    assert len(scenarios) == len(SCENARIO_FILES) >= 12


def test_all_scenarios_fake_kernel(benchmark: Any) -> None:
    scenarios = load_all()
    results = benchmark.pedantic(run_all, args=("fake", scenarios), rounds=3, iterations=1)
    record(benchmark, results)
    assert len(results) == len(scenarios)
    assert all(r.error is None and not r.leaks for r in results)


@pytest.mark.linux
def test_all_scenarios_linux_kernel(benchmark: Any) -> None:
    skip_unless_linux()
    scenarios = load_all()
    results = benchmark.pedantic(run_all, args=("linux", scenarios), rounds=1, iterations=1)
    record(benchmark, results)
    assert len(results) == len(scenarios)
    # a kernel without the ipvlan link kind refuses those scenarios at once (divergences.py)
    assert all((r.error is None or KERNEL_LACKS_IPVLAN in r.error) and not r.leaks for r in results)
