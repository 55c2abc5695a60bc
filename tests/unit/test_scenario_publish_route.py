"""Where a scenario's published ports can answer, checked at load.

Docker programs a container's ports on its first non-internal network; for a
container on a non-internal overlay that is its docker_gwbridge endpoint. The
loader accepts those files and refuses, naming the file and key, the ones
whose ports could never answer: host or null network mode, a docker_gwbridge
mapping a later bridge takes away, and an expectation that a port answers
while every publisher is on internal networks only (or stopped). Pure."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from netsim.errors import ScenarioError
from netsim.scenario.schema import parse_scenario

BASE: dict[str, Any] = {
    "hosts": ["h1", "h2"],
    "networks": [
        {"name": "ov", "driver": "overlay", "ipam": {"subnet": "10.90.0.0/24"}},
        {"name": "sealed", "driver": "overlay", "internal": True, "ipam": {"subnet": "10.91.0.0/24"}},
        {"name": "lan", "host": "h2", "ipam": {"subnet": "10.92.0.0/24"}},
        {"name": "quiet", "host": "h2", "internal": True, "ipam": {"subnet": "10.93.0.0/24"}},
    ],
    "containers": [
        {"name": "db", "host": "h1", "networks": ["ov"], "listen": ["tcp/5432"]},
        {"name": "web", "host": "h2", "networks": ["ov"], "listen": ["tcp/80"], "publish": ["8080:80/tcp"]},
    ],
    "expect": [{"from": "outside@h2", "to": "published:8080", "proto": "tcp"}],
}


def _with(**web: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data["containers"][1].update(web)
    return data


@pytest.mark.parametrize(
    "networks",
    [
        ["ov"],  # docker_gwbridge carries the mapping
        ["sealed", "ov"],  # an internal first network hands the ports on
        ["quiet", "ov"],
        ["lan", "ov"],  # the bridge is first: the ports go there
        ["ov", "sealed"],
    ],
)
def test_a_container_with_a_way_out_through_an_overlay_or_a_bridge_publishes(networks: list[str]) -> None:
    scenario = parse_scenario(_with(networks=networks), file="t.yaml")
    web = scenario.containers[1]
    assert [a.network for a in web.networks] == networks
    assert [(p.host_port, p.container_port, p.proto) for p in web.publish] == [(8080, 80, "tcp")]
    assert scenario.expect[0].published_port == 8080


def _refusal(data: dict[str, Any]) -> ScenarioError:
    before = copy.deepcopy(data)
    with pytest.raises(ScenarioError) as info:
        parse_scenario(data, file="t.yaml")
    assert data == before  # validation never edits its input
    return info.value


def test_a_later_bridge_would_take_the_gwbridge_mapping_away() -> None:
    error = _refusal(_with(networks=["ov", "lan"]))
    assert error.path == "containers[1].publish"
    assert str(error).startswith("t.yaml:containers[1].publish: ")
    assert "docker_gwbridge for overlay network 'ov'" in str(error)
    assert "list 'lan' before 'ov'" in str(error)


def test_an_internal_network_between_the_overlay_and_the_bridge_changes_nothing() -> None:
    error = _refusal(_with(networks=["quiet", "ov", "lan"]))
    assert error.path == "containers[1].publish" and "list 'lan' before 'ov'" in str(error)


@pytest.mark.parametrize(
    ("driver", "message"),
    [
        ("host", "no port can be published on the host network 'only': Docker discards them in host network mode"),
        ("null", "no port can be published on the null network 'only': it has no interface out"),
    ],
)
def test_host_and_null_network_modes_publish_nothing(driver: str, message: str) -> None:
    data = _with(networks=["only"])
    data["networks"].append({"name": "only", "driver": driver, "host": "h2"})
    data["expect"] = []
    error = _refusal(data)
    assert (error.path, str(error)) == ("containers[1].publish", f"t.yaml:containers[1].publish: {message}")


@pytest.mark.parametrize("networks", [["sealed"], ["quiet"], ["quiet", "sealed"]])
def test_a_port_cannot_answer_from_internal_networks_only(networks: list[str]) -> None:
    error = _refusal(_with(networks=networks))
    assert error.path == "expect[0].to"
    assert "impossible: no running container publishing 8080/tcp is on a network with a way out" in str(error)
    # the file itself is fine: Docker accepts -p there, and nothing answers
    data = _with(networks=networks)
    data["expect"][0]["reachable"] = False
    assert parse_scenario(data).containers[1].publish


def test_whether_a_port_answers_follows_the_steps() -> None:
    """Connecting a network with a way out publishes the ports of a container
    on internal networks; stopping or disconnecting takes them away."""
    data = _with(networks=["sealed"])
    data["expect"][0]["reachable"] = False
    answers = {"from": "outside@h2", "to": "published:8080", "proto": "tcp"}
    data["steps"] = [{"connect": {"container": "web", "network": "ov"}, "expect": [answers]}]
    assert len(parse_scenario(data).steps) == 1
    data["steps"].append({"disconnect": {"container": "web", "network": "ov"}, "expect": [answers]})
    assert _refusal(data).path == "steps[1].expect[0].to"
    data["steps"][1:] = [{"stop": "web", "expect": [answers]}]
    assert _refusal(data).path == "steps[1].expect[0].to"
    data["steps"][1:] = [{"stop": "web"}, {"start": "web", "expect": [answers]}]
    assert len(parse_scenario(data).steps) == 3
