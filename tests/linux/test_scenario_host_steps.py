"""``add_host`` / ``remove_host`` built and run, on both kernels: a joining
host has every peer before its first container sends, a leaving host takes
its containers, local networks and namespaces with it and every other host
withdraws its peers, and teardown leaves nothing (removed hosts included)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from netsim.cluster import Cluster, underlay_address
from netsim.errors import InvalidParameterError
from netsim.kernel.base import Kernel
from netsim.kernel.fake import FakeKernel
from netsim.scenario.model import StoreChoice
from netsim.scenario.outcomes import RETRY_SUFFIX
from netsim.scenario.report import format_table, to_json
from netsim.scenario.reportjson import REPORT_SCHEMA
from netsim.scenario.runner import Backend, BuiltScenario, built, run_scenario
from netsim.scenario.schema import load_scenario, parse_scenario

JOINS_AND_LEAVES = Path(__file__).resolve().parents[2] / "scenarios" / "overlay-host-joins-and-leaves.yaml"


def _peers(world: BuiltScenario, host: str) -> dict[str, Any]:
    driver = world.controllers[host].registry.driver("overlay").driver
    return dict(driver.peers(world.cluster.network_id("ov")))


def _host_namespaces(kernel: Kernel, host: str) -> list[str]:
    """The host's own namespace, its outside, its containers' and its overlay sandboxes."""
    return [ns for ns in kernel.namespaces() if ns == kernel.ns(host) or ns.startswith(kernel.ns(host + "-"))]


def test_a_host_joins_and_another_leaves_mid_run(
    kernel_kind: str, netsim_kernel_factory: Callable[[str], Kernel]
) -> None:
    scenario = load_scenario(JOINS_AND_LEAVES)
    join_h3, start_late, leave_h2, join_h4, start_edge = scenario.steps
    leaks: list[str] = []
    backend = Backend(make_kernel=netsim_kernel_factory)
    with built(scenario, kernel_kind, backend=backend, timeout=0.5, leaks=leaks) as world:
        kernel = world.kernel
        web, api = (world.containers[n].attached[0].endpoint.id for n in ("web", "api"))
        world.apply(join_h3)
        assert world.cluster.hosts == ["h1", "h2", "h3"]
        # networkdb's bulk sync: h3 holds both peers before any container of its own
        assert {eid: p.vtep for eid, p in _peers(world, "h3").items()} == {
            web: underlay_address(0),
            api: underlay_address(1),
        }
        world.apply(start_late)
        first = world.probe(start_late.expect[0], "late", retry=False)
        assert (first.reachable, first.outcome) == (True, "echo-reply"), "the first packet must get there"
        assert _host_namespaces(kernel, "h2")
        world.apply(leave_h2)
        assert world.cluster.hosts == ["h1", "h3"] and set(world.controllers) == {"h1", "h3"}
        assert "api" not in world.containers and world.gone["api"] == "10.66.0.20"
        late = world.containers["late"].attached[0].endpoint.id
        assert set(_peers(world, "h1")) == {late} and set(_peers(world, "h3")) == {web}
        assert _host_namespaces(kernel, "h2") == []
        world.apply(join_h4)
        # h4 takes the underlay address h2 left, and no stale peer of h2 with it
        assert {p.vtep for p in _peers(world, "h4").values()} == {underlay_address(0), underlay_address(2)}
        world.apply(start_edge)
        results = [world.probe(exp, "edge") for exp in (*leave_h2.expect, *start_edge.expect)]
        assert [r.passed for r in results] == [True] * len(results), [
            (r.expectation.describe(), r.outcome) for r in results
        ]
    assert leaks == []


def test_the_shipped_scenario_needs_no_retry_for_the_joining_hosts_first_probes(
    kernel_kind: str, netsim_kernel_factory: Callable[[str], Kernel]
) -> None:
    scenario = load_scenario(JOINS_AND_LEAVES)
    result = run_scenario(scenario, kernel_kind, backend=Backend(make_kernel=netsim_kernel_factory), timeout=0.5)
    assert result.error is None and result.leaks == [] and result.passed, "\n" + format_table([result])
    joined = [r for r in result.results if r.phase.startswith(("step 2:", "step 5:"))]
    assert joined and [r.outcome for r in joined if r.outcome.endswith(RETRY_SUFFIX)] == []
    report = to_json([result])
    jsonschema.validate(report, REPORT_SCHEMA)
    rows = report["scenarios"][0]["expectations"]
    assert {(row["phase"], row["step"]) for row in rows if row["step"] == 3} == {("step 3: remove host h2", 3)}


BRIDGE_HOSTS: dict[str, Any] = {
    "name": "bridge-hosts",
    "outside": {"listen": ["tcp/80"]},
    "networks": [{"name": "front", "ipam": {"subnet": "10.1.0.0/24"}}],
    "containers": [{"name": "web", "networks": ["front"]}],
    "steps": [
        {"add_host": "h2"},
        {"create_network": {"name": "back", "host": "h2", "ipam": {"subnet": "10.2.0.0/24"}}},
        {"create_container": {"name": "db", "host": "h2", "networks": ["back"], "listen": ["tcp/5432"]}},
        {
            "create_container": {"name": "idle", "host": "h2", "networks": ["back"], "state": "created"},
            "expect": [
                {"from": "db", "to": "outside@h2", "proto": "tcp", "port": 80, "seen_from": "host@h2"},
                {"from": "web", "to": "outside", "proto": "tcp", "port": 80, "seen_from": "host@h1"},
                {"from": "web", "to": "db", "reachable": False},
            ],
        },
        {"remove_host": "h2", "expect": [{"from": "web", "to": "outside@h1", "proto": "tcp", "port": 80}]},
    ],
}


def test_a_host_joins_a_bridge_scenario_and_leaves_with_its_network_and_stopped_container(
    kernel_kind: str, netsim_kernel_factory: Callable[[str], Kernel]
) -> None:
    scenario = parse_scenario(BRIDGE_HOSTS)
    leaks: list[str] = []
    backend = Backend(make_kernel=netsim_kernel_factory)
    with built(scenario, kernel_kind, backend=backend, timeout=0.5, leaks=leaks) as world:
        assert world.cluster is not None, "a scenario a host joins is built on a Cluster"
        for step in scenario.steps:
            world.apply(step)
            results = [world.probe(exp, step.describe()) for exp in step.expect]
            assert all(r.passed for r in results), [(r.expectation.describe(), r.outcome) for r in results]
        assert _host_namespaces(world.kernel, "h2") == []
        assert set(world.containers) == {"web"}
    assert leaks == []


class _FixedHosts:
    """A cluster without add_host/remove_host (as a third-party one might be)."""

    def __init__(self, cluster: Cluster) -> None:
        self._cluster = cluster

    def __getattr__(self, name: str) -> Any:
        if name in ("add_host", "remove_host"):
            raise AttributeError(name)
        return getattr(self._cluster, name)


def test_a_cluster_that_cannot_change_its_hosts_refuses_the_step_cleanly() -> None:
    backend = Backend(make_cluster=lambda kernel, hosts: _FixedHosts(Cluster(kernel, hosts)))
    result = run_scenario(parse_scenario(BRIDGE_HOSTS), "fake", backend=backend)
    assert result.error is not None and "add_host: this scenario is built on _FixedHosts" in result.error
    assert "cannot change its hosts" in result.error
    assert result.leaks == []


def test_a_local_store_hosts_would_share_is_refused_before_anything_is_built(tmp_path: Path) -> None:
    stores = StoreChoice(local=f"sqlite:///{tmp_path}/one.db")
    result = run_scenario(parse_scenario(BRIDGE_HOSTS), "fake", backend=Backend(stores=stores))
    assert result.error is not None and "put {host} in it" in result.error
    assert result.leaks == [] and not list(tmp_path.iterdir())


def test_the_cluster_refuses_a_joining_host_the_local_store_of_the_others(tmp_path: Path) -> None:
    with Cluster(FakeKernel(), ["h1"], local_store=f"sqlite:///{tmp_path}/one.db") as cluster:
        with pytest.raises(InvalidParameterError, match="hosts cannot share the local store"):
            cluster.add_host("h2")
        assert cluster.hosts == ["h1"]
