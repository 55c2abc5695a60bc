"""Big topologies (issue 15, section 5): time and peak memory per container
as the topology grows, on the fake kernel (10 to 10,000 containers) and the
real one (10 to 1,000).

Each size is one whole scenario run (netsim.scenario.generate.big_topology:
build every network and container, three probes, teardown, leak check) with
one network per 200 containers (10,000 containers: 50 networks), so the
containers-per-network density stays about the same and the figures read as
the cost of a container. Per size, ``extra_info`` holds ``ms_per_container``
and ``peak_kib_per_container`` (the peak growth of Python's heap over the
run, by tracemalloc: on the fake kernel in a second, untimed run; on the real
one in the timed run itself), and the module prints them as a table at the
end. A small untimed run per kernel comes first (imports, first use).

Same-run references: generating and validating the 10,000-container scenario
without running it (``reference-load``), and the smallest size itself: each
row's ``x smallest`` column is its time per container over the 10-container
run's, the "flat or not" figure.

``networks`` (fake kernel, 10/25/50 networks of one container each) shows the
cost per network as the network count grows: flat since isolation became one
``Isolated`` membership per network (it was a drop rule per pair of bridges,
quadratic; ``test_bench_networks.py`` measures networks alone).

Run: ``python -m pytest benchmarks/test_bench_scale.py --benchmark-only -s``
(``--fake-only`` leaves out the real kernel; its 1,000-container run takes
minutes, so this module is never part of the test suite).
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest

from netsim.pytest_plugin import skip_unless_linux
from netsim.scenario.generate import big_topology
from netsim.scenario.model import Scenario
from netsim.scenario.results import ScenarioResult
from netsim.scenario.runner import run_scenario
from netsim.scenario.schema import parse_scenario

FAKE_SIZES = (10, 100, 1_000, 10_000)
LINUX_SIZES = (10, 100, 1_000)
CONTAINERS_PER_NETWORK = 200


def networks_for(containers: int) -> int:
    return max(1, containers // CONTAINERS_PER_NETWORK)


def scenario_of(containers: int, networks: int | None = None) -> Scenario:
    return parse_scenario(big_topology(containers, networks or networks_for(containers)))


_warm: set[str] = set()


def warm_up(kind: str) -> None:
    """One small untimed run per kernel first: imports and first-use costs
    are not a container's."""
    if kind not in _warm:
        run_scenario(scenario_of(2), kind, timeout=1.0)
        _warm.add(kind)


def timed_run(scenario: Scenario, kind: str) -> tuple[ScenarioResult, float]:
    gc.collect()
    started = time.perf_counter()
    result = run_scenario(scenario, kind, timeout=1.0)
    return result, time.perf_counter() - started


def traced_run(scenario: Scenario, kind: str) -> tuple[ScenarioResult, float, int]:
    """A run under tracemalloc: the result, its seconds and the peak growth
    of Python's heap over it, in bytes (whatever earlier runs freed and the
    allocator kept cannot hide it, as it would hide growth of the RSS)."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        result, seconds = timed_run(scenario, kind)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return result, seconds, peak - before


@pytest.fixture(scope="module")
def table(request: pytest.FixtureRequest) -> Iterator[list[dict[str, Any]]]:
    rows: list[dict[str, Any]] = []
    yield rows
    if not rows:
        return
    writer = request.config.pluginmanager.get_plugin("terminalreporter")
    if writer is None:
        return
    writer.write_line("")
    header = "| kernel | containers | networks | seconds | ms/container | x smallest | peak heap KiB/container |"
    writer.write_line(header)
    writer.write_line("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    smallest: dict[str, float] = {}
    for row in sorted(rows, key=lambda r: (r["kernel"], r["containers"])):
        base = smallest.setdefault(row["kernel"], row["ms_per_container"])
        writer.write_line(
            f"| {row['kernel']} | {row['containers']:,} | {row['networks']} | {row['seconds']:.2f} | "
            f"{row['ms_per_container']:.2f} | {row['ms_per_container'] / base:.2f} | "
            f"{row['peak_kib_per_container']:.1f} |"
        )


def _record(
    benchmark: Any, table: list[dict[str, Any]], kind: str, scenario: Scenario, seconds: float, peak: int
) -> None:
    containers = len(scenario.containers)
    row = {
        "kernel": kind,
        "containers": containers,
        "networks": len(scenario.networks),
        "seconds": seconds,
        "ms_per_container": seconds * 1e3 / containers,
        "peak_kib_per_container": peak / 1024 / containers,
    }
    benchmark.extra_info.update(row)
    table.append(row)


def _check(result: ScenarioResult) -> None:
    assert result.error is None and not result.leaks, (result.error, result.leaks[:5])
    assert result.passed, [(r.expectation.describe(), r.outcome) for r in result.results if not r.passed]


@pytest.mark.reference
def test_reference_load(benchmark: Any) -> None:
    """Generate and validate the largest scenario, no kernel."""
    scenario = benchmark.pedantic(scenario_of, args=(FAKE_SIZES[-1],), rounds=3, iterations=1)
    assert len(scenario.containers) == FAKE_SIZES[-1]


@pytest.mark.parametrize("containers", FAKE_SIZES, ids=[f"fake-{n}" for n in FAKE_SIZES])
def test_scale(benchmark: Any, table: list[dict[str, Any]], containers: int) -> None:
    """Timed as is; the peak memory comes from a second run under tracemalloc."""
    warm_up("fake")
    scenario = scenario_of(containers)
    result, seconds = benchmark.pedantic(timed_run, args=(scenario, "fake"), rounds=1, iterations=1)
    _check(result)
    traced, _, peak = traced_run(scenario, "fake")
    _check(traced)
    _record(benchmark, table, "fake", scenario, seconds, peak)


@pytest.mark.linux
@pytest.mark.parametrize("containers", LINUX_SIZES, ids=[f"linux-{n}" for n in LINUX_SIZES])
def test_scale_linux(benchmark: Any, table: list[dict[str, Any]], containers: int) -> None:
    """One run, under tracemalloc (the real kernel's own time dwarfs what
    tracing adds; a second run of 1,000 real containers would take minutes)."""
    skip_unless_linux()
    warm_up("linux")
    scenario = scenario_of(containers)
    result, seconds, peak = benchmark.pedantic(traced_run, args=(scenario, "linux"), rounds=1, iterations=1)
    _check(result)
    _record(benchmark, table, "linux", scenario, seconds, peak)


@pytest.mark.parametrize("networks", (10, 25, 50), ids=lambda n: f"fake-{n}")
def test_networks(benchmark: Any, networks: int) -> None:
    """One container per network: what a network costs as their number grows."""
    warm_up("fake")
    scenario = scenario_of(networks, networks)
    result, seconds = benchmark.pedantic(timed_run, args=(scenario, "fake"), rounds=1, iterations=1)
    benchmark.extra_info.update({"networks": networks, "ms_per_network": seconds * 1e3 / networks})
    _check(result)
