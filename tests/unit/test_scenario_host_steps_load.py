"""``add_host`` and ``remove_host`` at load time: a host joining or leaving
the cluster mid-run is read, makes the scenario a cluster, and every name a
step, container, network or expectation gives a host is checked against the
hosts in the cluster at that point, with file and key path."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from netsim.cluster import MAX_CLUSTER_HOSTS, UNDERLAY_ROLE
from netsim.errors import ScenarioError
from netsim.scenario import hostcheck
from netsim.scenario.definition import SCENARIO
from netsim.scenario.schema import parse_scenario
from netsim.scenario.shape import to_json_schema

BASE: dict[str, Any] = {
    "hosts": ["h1", "h2"],
    "networks": [
        {"name": "ov", "driver": "overlay", "ipam": {"subnet": "10.66.0.0/24"}},
        {"name": "lan", "host": "h2", "ipam": {"subnet": "10.67.0.0/24"}},
    ],
    "containers": [
        {"name": "web", "host": "h1", "networks": ["ov"], "listen": ["tcp/80"]},
        {"name": "api", "host": "h2", "networks": ["ov", "lan"], "listen": ["tcp/8080"]},
    ],
    "steps": [
        {"add_host": "h3"},
        {
            "create_container": {"name": "late", "host": "h3", "networks": ["ov"]},
            "expect": [{"from": "late", "to": "web"}, {"from": "late", "to": "outside@h3", "reachable": False}],
        },
        {"remove_host": "h2", "expect": [{"from": "web", "to": "api", "reachable": False}]},
    ],
}


def with_steps(*steps: Any, **top: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data.update(top)
    data["steps"] = data.get("steps", []) + list(steps)
    return data


def test_host_steps_are_read_and_described() -> None:
    loaded = parse_scenario(copy.deepcopy(BASE), file="s.yaml")
    assert [(s.action, s.host) for s in loaded.steps] == [
        ("add_host", "h3"),
        ("create_container", ""),
        ("remove_host", "h2"),
    ]
    assert [s.describe() for s in loaded.steps] == ["add host h3", "create container late", "remove host h2"]
    assert loaded.hosts == ("h1", "h2") and loaded.all_hosts() == ("h1", "h2", "h3")
    assert loaded.expectation_count() == 3


def test_adding_a_host_makes_a_one_host_bridge_scenario_a_cluster() -> None:
    data = {
        "networks": [{"name": "front", "ipam": {"subnet": "10.1.0.0/24"}}],
        "containers": [{"name": "web", "networks": ["front"]}],
    }
    assert not parse_scenario(copy.deepcopy(data)).multi_host
    data["steps"] = [
        {"add_host": "h2"},
        {"create_network": {"name": "back", "host": "h2", "ipam": {"subnet": "10.1.0.0/24"}}},
        {
            "create_container": {"name": "db", "host": "h2", "networks": ["back"]},
            "expect": [{"from": "db", "to": "outside@h2"}],
        },
    ]
    loaded = parse_scenario(data)
    assert loaded.multi_host, "only a Cluster can take a joining host"
    assert loaded.network("back").host == "h2"


def test_a_host_that_left_may_be_named_by_probes_of_its_removed_containers() -> None:
    # "to: api" after h2 left probes where api was, as after remove_container
    loaded = parse_scenario(
        with_steps({"expect": [{"from": "web", "to": "api", "reachable": False}], "add_host": "h4"})
    )
    assert loaded.steps[-1].expect[0].target == "api"


@pytest.mark.parametrize(
    ("data", "path", "message"),
    [
        (with_steps({"add_host": "h1"}), "steps[3].add_host", "duplicate host 'h1' (already in hosts)"),
        (
            with_steps({"add_host": "h2"}),
            "steps[3].add_host",
            "duplicate host 'h2' (already in hosts); names are not reused",
        ),
        (with_steps({"add_host": "h3"}), "steps[3].add_host", "duplicate host 'h3' (already in steps[0])"),
        (
            with_steps({"add_host": "underlay"}),
            "steps[3].add_host",
            "'underlay' is reserved for the cluster's underlay",
        ),
        (with_steps(hosts=["h1", "underlay"]), "hosts[1]", "'underlay' is reserved for the cluster's underlay"),
        (with_steps({"add_host": "h1-out"}), "steps[3].add_host", "would clash with the namespaces of host 'h1'"),
        (
            with_steps({"add_host": "a"}, hosts=["h1", "a-b-c"], containers=[], networks=[], steps=[]),
            "steps[0].add_host",
            "host 'a' would clash with the namespaces of host 'a-b-c'",
        ),
        (with_steps({"remove_host": "h9"}), "steps[3].remove_host", "unknown host 'h9'"),
        (with_steps({"remove_host": "h2"}), "steps[3].remove_host", "host 'h2' left the cluster in steps[2]"),
        (with_steps({"remove_host": "h1"}), "steps[3].remove_host", "host 'h1' is the cluster's first host"),
        (
            with_steps({"remove_host": "h4"}, {"add_host": "h4"}),
            "steps[3].remove_host",
            "host 'h4' does not exist yet at this point (steps[4] adds it)",
        ),
        (
            with_steps({"add_host": "h4"}, containers=[{"name": "web", "host": "h4"}]),
            "containers[0].host",
            "host 'h4' does not exist yet at this point (steps[3] adds it)",
        ),
        (
            with_steps({"create_container": {"name": "x", "host": "h2"}}),
            "steps[3].create_container.host",
            "host 'h2' left the cluster in steps[2]",
        ),
        (
            with_steps({"create_network": {"name": "n", "host": "h2"}}),
            "steps[3].create_network.host",
            "host 'h2' left the cluster in steps[2]",
        ),
        (
            with_steps({"stop": "api"}),
            "steps[3].stop",
            "container 'api' was removed in an earlier step",
        ),
        (
            with_steps({"connect": {"container": "web", "network": "lan"}}),
            "steps[3].connect",
            "unknown or removed network 'lan'",
        ),
        (
            with_steps({"remove_network": "lan"}),
            "steps[3].remove_network",
            "unknown or removed network 'lan'",
        ),
        (
            with_steps({"add_host": "h4", "expect": [{"from": "api", "to": "web"}]}),
            "steps[3].expect[0].from",
            "container 'api' was removed in an earlier step",
        ),
        (
            with_steps({"add_host": "h4", "expect": [{"from": "web", "to": "outside@h2", "reachable": False}]}),
            "steps[3].expect[0].to",
            "'outside@h2': host 'h2' left the cluster in steps[2]",
        ),
        (
            with_steps(expect=[{"from": "outside@h3", "to": "web", "reachable": False}]),
            "expect[0].from",
            "'outside@h3': host 'h3' does not exist yet at this point (steps[0] adds it)",
        ),
        (
            with_steps(expect=[{"from": "web", "to": "host@h3", "reachable": False}]),
            "expect[0].to",
            "'host@h3': host 'h3' does not exist yet at this point",
        ),
        (
            with_steps({"add_host": "h4", "expect": [{"from": "web", "to": "late", "seen_from": "host@h2"}]}),
            "steps[3].expect[0].seen_from",
            "'host@h2': host 'h2' left the cluster in steps[2]",
        ),
        (
            with_steps(
                store={"local": "sqlite:///tmp/one.db"},
                hosts=["h1"],
                containers=[],
                networks=[],
                steps=[{"add_host": "h2"}],
            ),
            "store.local",
            "2 hosts would share one local store",
        ),
        (
            with_steps(
                {"remove_host": "h3"},
                plugins=[{"name": "weave", "command": ["weave-plugin"]}],
                hosts=["h1", "h2", "h3"],
                steps=[],
            ),
            "steps[0].remove_host",
            "plugin 'weave' runs inside host 'h3'",
        ),
        (
            with_steps(
                {"create_network": {"name": "w", "host": "h3", "driver": "weave"}},
                plugins=[{"name": "weave", "socket": "unix:///run/weave.sock"}],
            ),
            "steps[3].create_network.driver",
            "plugin 'weave' does not run on host 'h3' (its hosts: h1, h2)",
        ),
        (with_steps({"add_host": {"name": "h4"}}), "steps[3].add_host", "expected a string, got dict"),
        (with_steps({"remove_host": "no such"}), "steps[3].remove_host", "invalid name 'no such'"),
        (with_steps({"add_host": "h4", "remove_host": "h3"}), "steps[3]", "a step needs exactly one action of"),
    ],
)
def test_impossible_host_steps_are_refused_at_load(data: dict[str, Any], path: str, message: str) -> None:
    before = copy.deepcopy(data)
    with pytest.raises(ScenarioError) as info:
        parse_scenario(data, file="t.yaml")
    assert info.value.path == path, str(info.value)
    assert message in str(info.value)
    assert str(info.value).startswith(f"t.yaml:{path}: ")
    assert data == before  # validation never edits its input


def test_a_cluster_holds_at_most_its_underlay_worth_of_hosts_at_once() -> None:
    hosts = [f"n{i}" for i in range(MAX_CLUSTER_HOSTS)]
    data = {"hosts": hosts, "steps": [{"remove_host": "n7"}, {"add_host": "x1"}, {"add_host": "x2"}]}
    with pytest.raises(ScenarioError, match=r"steps\[2\]\.add_host: a cluster holds at most 253 hosts"):
        parse_scenario(data, file="t.yaml")
    data["steps"] = data["steps"][:2]  # one left, one joined: still 253
    assert len(parse_scenario(data).all_hosts()) == MAX_CLUSTER_HOSTS + 1


def test_the_checks_mirror_the_clusters_limits() -> None:
    assert hostcheck.UNDERLAY_NAME == UNDERLAY_ROLE
    assert hostcheck.MAX_HOSTS == MAX_CLUSTER_HOSTS


def test_the_json_schema_lists_the_host_steps() -> None:
    schema = to_json_schema(SCENARIO)
    step = schema["properties"]["steps"]["items"]
    assert step["properties"]["add_host"]["type"] == ["string", "number"]
    assert "remove_host" in step["properties"]
    assert {"required": ["add_host"]} in step["oneOf"] and {"required": ["remove_host"]} in step["oneOf"]
    assert "swarm join" in json.dumps(step["properties"]["add_host"])


def test_a_plugin_reached_by_socket_does_not_keep_a_host() -> None:
    # only a plugin netsim starts runs inside the host; one reached by socket runs elsewhere
    plugins = [{"name": "weave", "socket": "unix:///run/weave.sock"}]
    loaded = parse_scenario(with_steps({"remove_host": "h3"}, plugins=plugins))
    assert loaded.steps[-1].host == "h3"


def test_show_names_the_hosts_steps_add_and_remove() -> None:
    from netsim.scenario.render import render

    text = render(parse_scenario(copy.deepcopy(BASE)), "text")
    assert text.splitlines()[-1].endswith("; steps: h3 joins, h2 leaves")
