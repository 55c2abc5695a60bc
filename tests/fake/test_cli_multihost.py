"""Multi-host scenarios end to end on the fake kernel: the runner builds them
on a Cluster, the CLI's run/trace/inspect work across hosts, errors and
removals leave nothing behind."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from netsim.cli import main
from netsim.cluster import underlay_address
from netsim.errors import NetsimError, ScenarioError
from netsim.kernel.base import Kernel
from netsim.scenario.model import Expectation, IpamSpec
from netsim.scenario.runner import Backend, built, run_scenario
from netsim.scenario.schema import load_scenario, parse_scenario

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
TWO_HOSTS = str(SCENARIOS / "overlay-two-hosts.yaml")
PUBLISHED = str(SCENARIOS / "overlay-published-web.yaml")


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return status, out, err


def refuse(*args: Any) -> Any:
    raise AssertionError(f"this path must not be taken: {args!r}")


@pytest.mark.parametrize("path", [TWO_HOSTS, PUBLISHED])
def test_multi_host_scenarios_pass_on_a_cluster_without_per_host_controllers(path: str) -> None:
    scenario = load_scenario(path)
    result = run_scenario(scenario, backend=Backend(make_controller=refuse))
    assert result.error is None and result.leaks == []
    assert result.passed and len(result.results) == scenario.expectation_count()


def test_a_one_host_scenario_keeps_the_single_controller_path() -> None:
    result = run_scenario(load_scenario(SCENARIOS / "quickstart.yaml"), backend=Backend(make_cluster=refuse))
    assert result.passed and result.error is None


def test_removing_an_overlay_network_removes_it_from_every_host() -> None:
    scenario = parse_scenario(
        {
            "hosts": ["h1", "h2"],
            "networks": [{"name": "ov", "driver": "overlay"}, {"name": "ov2", "driver": "overlay"}],
            "containers": [
                {"name": "a", "host": "h1", "networks": ["ov"]},
                {"name": "b", "host": "h2", "networks": ["ov", "ov2"]},
            ],
            "steps": [{"disconnect": {"container": "b", "network": "ov2"}}, {"remove_network": "ov2"}],
        }
    )
    leaks: list[str] = []
    with built(scenario, leaks=leaks) as world:
        for step in scenario.steps:
            world.apply(step)
        left = {host: sorted(n.name for n in ctrl.networks()) for host, ctrl in world.controllers.items()}
        assert world.cluster.networks().keys() == {"ov"}
        assert world.probe(Expectation("b", "a"), "after").reachable
    assert all("ov2" not in names and "ov" in names for names in left.values()), left
    assert leaks == []


def test_connecting_to_a_removed_overlay_is_refused_before_anything_is_built() -> None:
    data = {
        "hosts": ["h1", "h2"],
        "networks": [{"name": "ov", "driver": "overlay"}],
        "containers": [{"name": "a", "host": "h1"}],
        "steps": [{"remove_network": "ov"}, {"connect": {"container": "a", "network": "ov"}}],
    }
    with pytest.raises(ScenarioError, match=r"steps\[1\]\.connect: unknown or removed network 'ov'"):
        parse_scenario(data)


def test_a_failure_while_building_the_cluster_leaks_nothing() -> None:
    scenario = parse_scenario(
        {
            "hosts": ["h1", "h2"],
            "networks": [{"name": "ov", "driver": "overlay"}],
            "containers": [{"name": "a", "host": "h2", "networks": ["ov"]}],
            "expect": [{"from": "a", "to": "outside"}],
        }
    )
    # the loader refuses an unknown IPAM driver: put one in after it, so the cluster build fails
    ov = dataclasses.replace(scenario.networks[0], ipam=IpamSpec(driver="no-such-ipam"))
    scenario = dataclasses.replace(scenario, networks=(ov,))
    result = run_scenario(scenario)
    assert result.error is not None and "no-such-ipam" in result.error
    assert result.leaks == [] and not result.passed
    assert [r.outcome for r in result.results] == ["not-run"]  # never probed


def test_the_cluster_close_failure_is_reported_as_a_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    from netsim.cluster import Cluster

    closes: list[Cluster] = []

    def make(kernel: Kernel, hosts: list[str]) -> Cluster:
        cluster = Cluster(kernel, hosts)
        real_close = cluster.close

        def close() -> None:
            real_close()
            closes.append(cluster)
            raise NetsimError("close went wrong")

        monkeypatch.setattr(cluster, "close", close)
        return cluster

    result = run_scenario(load_scenario(TWO_HOSTS), backend=Backend(make_cluster=make))
    assert len(closes) == 1
    assert "closing the cluster: error: close went wrong" in result.leaks


def test_trace_crosses_the_vxlan_underlay(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run_cli(capsys, "trace", TWO_HOSTS, "--from", "web", "--to", "api:8080/tcp")
    assert status == 0
    assert out.splitlines()[0] == "trace web -> api (10.50.0.3) tcp/8080 on the fake kernel"
    rows = [line.split() for line in out.splitlines()[2:] if line.split()[0].isdigit()]
    namespaces = {row[1] for row in rows}
    assert {"h1-c-web", "h1", "underlay", "h2", "h2-c-api"} <= namespaces
    actions = [row[3] for row in rows]
    assert "encap" in actions and "decap" in actions
    assert out.splitlines()[-5:] == [
        "hosts: web on h1, api on h2",
        f"underlay: h1 vxlan vni 4096 to {underlay_address(1)}:4789",
        f"underlay: h2 vxlan vni 4096 to {underlay_address(0)}:4789",
        "source: sent from 10.50.0.2, seen by h2-c-api as 10.50.0.2 (unchanged)",  # an overlay translates nothing
        "outcome: syn-ack (reachable)",
    ]


def test_trace_from_the_outside_of_another_host(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run_cli(capsys, "trace", PUBLISHED, "--from", "outside@h1", "--to", "published:8080")
    assert status == 0
    assert "outcome: net-unreachable (unreachable)" in out
    status, _, err = run_cli(capsys, "trace", PUBLISHED, "--from", "outside@h9", "--to", "web")
    assert status == 2 and "unknown host 'h9'" in err


def test_inspect_shows_overlays_once_with_their_peers(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run_cli(capsys, "inspect", TWO_HOSTS)
    assert status == 0
    data = {net["Name"]: net for net in json.loads(out)}
    assert sorted(data) == ["blue", "local", "red"]
    blue = data["blue"]
    assert (blue["Driver"], blue["Scope"], blue["IPAM"]["Driver"]) == ("overlay", "global", "default")
    assert sorted(c["Name"] for c in blue["Containers"].values()) == ["api", "web"]
    assert blue["Peers"] == [{"Name": "h1", "IP": underlay_address(0)}, {"Name": "h2", "IP": underlay_address(1)}]
    endpoints = {c["EndpointID"]: c["Name"] for c in blue["Containers"].values()}
    origin = {endpoints[e["EndpointID"]]: (e["Host"], e["Info"]["Host IP"]) for e in blue["PeerEntries"]}
    assert origin == {"web": ("h1", underlay_address(0)), "api": ("h2", underlay_address(1))}
    assert data["red"]["Peers"] == [{"Name": "h2", "IP": underlay_address(1)}]
    assert (data["local"]["Driver"], data["local"]["Scope"]) == ("bridge", "local")
    assert "Peers" not in data["local"]


def test_run_the_whole_directory_includes_the_multi_host_files(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run_cli(capsys, "run", "-q", str(SCENARIOS))
    assert status == 0, out
    assert "overlay-two-hosts#10 [step 1]" in out and "overlay-published-web#9 [step 1]" in out
