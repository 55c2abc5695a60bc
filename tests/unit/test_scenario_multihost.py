"""Multi-host scenarios: the model's scope helpers, the validation of hosts,
global (overlay) networks and ``outside@HOST``, and how ``netsim show`` draws
several hosts and the underlay. Pure: nothing is built."""

from __future__ import annotations

import copy
import re
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netsim.cluster import underlay_address
from netsim.errors import ScenarioError
from netsim.scenario.model import Expectation, NetworkSpec, Scenario, outside_host
from netsim.scenario.render import FORMATS, render
from netsim.scenario.schema import parse_scenario

TWO_HOSTS: dict[str, Any] = {
    "name": "two",
    "hosts": ["h1", "h2"],
    "networks": [
        {"name": "ov", "driver": "overlay", "ipam": {"subnet": "10.80.0.0/24"}},
        {"name": "lan", "host": "h2", "ipam": {"subnet": "10.81.0.0/24"}},
    ],
    "containers": [
        {"name": "a", "host": "h1", "networks": ["ov"], "listen": ["tcp/80"]},
        {"name": "b", "host": "h2", "networks": ["ov", "lan"]},
    ],
    "expect": [
        {"from": "a", "to": "b"},
        {"from": "outside@h1", "to": "b", "reachable": False},
        {"from": "b", "to": "outside@h2"},
    ],
}


def changed(edit: Any) -> dict[str, Any]:
    data = copy.deepcopy(TWO_HOSTS)
    edit(data)
    return data


def test_scope_helpers() -> None:
    assert NetworkSpec("ov", driver="overlay", host="h1").on_host("h9")
    assert not NetworkSpec("br", driver="bridge", host="h1").on_host("h2")
    assert Scenario("one", networks=(NetworkSpec("ov", driver="overlay"),)).multi_host
    assert not Scenario("one", networks=(NetworkSpec("br"),)).multi_host
    assert Scenario("two", hosts=("h1", "h2")).multi_host
    assert (outside_host("outside"), outside_host("outside@h2"), outside_host("outsider")) == ("", "h2", None)


def test_a_two_host_scenario_loads_with_overlay_on_every_host() -> None:
    scenario = parse_scenario(TWO_HOSTS, file="t.yaml")
    assert scenario.multi_host and scenario.hosts == ("h1", "h2")
    assert scenario.network("ov").is_global and not scenario.network("lan").is_global
    assert [e.source for e in scenario.expect] == ["a", "outside@h1", "b"]
    assert scenario.expect[2].target == "outside@h2"


def test_an_overlay_network_in_a_one_host_scenario_is_fine() -> None:
    data = changed(lambda d: (d.pop("hosts"), d["containers"][1].update(host="h1"), d["expect"].clear()))
    data["networks"][1].pop("host")
    scenario = parse_scenario(data)
    assert scenario.hosts == ("h1",) and scenario.multi_host


@pytest.mark.parametrize(
    ("edit", "path", "message"),
    [
        (lambda d: d["containers"][0].update(host="h3"), "containers[0].host", "unknown host 'h3'"),
        (lambda d: d["networks"][1].update(host="h3"), "networks[1].host", "unknown host 'h3'"),
        (
            lambda d: d["containers"][0]["networks"].append("lan"),
            "containers[0].networks[1]",
            "network 'lan' is on host 'h2', container 'a' on 'h1'",
        ),
        (lambda d: d["expect"].append({"from": "outside@h7", "to": "a"}), "expect[3].from", "unknown host 'h7'"),
        (lambda d: d["expect"].append({"from": "a", "to": "outside@h7"}), "expect[3].to", "unknown host 'h7'"),
        (
            lambda d: d["expect"].append({"from": "outside@h1", "to": "outside@h2"}),
            "expect[3].to",
            "outside to outside",
        ),
        (lambda d: d["expect"].append({"from": "outside@", "to": "a"}), "expect[3].from", "invalid name"),
        (lambda d: d["networks"][0].update(ipv6=True), "networks[0].ipv6", "IPv6 on a global-scope"),
        (lambda d: d["hosts"].append("h1"), "hosts[2]", "duplicate host 'h1'"),
        (
            lambda d: d["containers"][1].update(publish=["8080:80"]),
            "containers[1].publish",
            "leave with it when bridge network 'lan' brings a gateway",
        ),
        (
            lambda d: d["networks"][1]["ipam"].update(subnet="10.80.0.0/25"),
            "networks[1].ipam.subnet",
            "overlaps 10.80.0.0/24 of network 'ov'",
        ),
        (
            lambda d: d.update(steps=[{"connect": {"container": "a", "network": "lan"}}]),
            "steps[0].connect",
            "network 'lan' is on host 'h2'",
        ),
    ],
)
def test_invalid_multi_host_input_is_a_scenario_error(edit: Any, path: str, message: str) -> None:
    data = changed(edit)
    before = copy.deepcopy(data)
    with pytest.raises(ScenarioError) as info:
        parse_scenario(data, file="t.yaml")
    assert info.value.path == path, str(info.value)
    assert message in str(info.value)
    assert data == before  # validation never edits its input


def test_an_overlay_subnet_overlaps_local_networks_of_any_host() -> None:
    def on_h1(d: dict[str, Any]) -> None:
        d["networks"].insert(0, {"name": "early", "host": "h1", "ipam": {"subnet": "10.80.0.128/25"}})

    with pytest.raises(ScenarioError, match=re.escape("overlaps 10.80.0.128/25 of network 'early'")):
        parse_scenario(changed(on_h1))


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=1, max_value=6), st.data())
def test_local_networks_on_distinct_hosts_may_share_a_subnet(count: int, data: st.DataObject) -> None:
    """Hosts are separate machines: equal local subnets on different hosts are fine,
    on one host they overlap; placement is random."""
    hosts = [f"h{i}" for i in range(1, count + 1)]
    placed = [data.draw(st.sampled_from(hosts)) for _ in range(3)]
    doc = {
        "hosts": hosts,
        "networks": [{"name": f"n{i}", "host": h, "ipam": {"subnet": "10.9.0.0/24"}} for i, h in enumerate(placed)],
    }
    if len(set(placed)) == len(placed):
        assert [n.host for n in parse_scenario(doc).networks] == placed
    else:
        with pytest.raises(ScenarioError, match="overlaps"):
            parse_scenario(doc)


def test_the_renderers_use_the_clusters_underlay_addresses() -> None:
    scenario = parse_scenario(TWO_HOSTS)
    text = render(scenario, "text")
    for index, host in enumerate(scenario.hosts):
        assert f"host {host} (underlay eth1 {underlay_address(index)})" in text
    assert text.splitlines()[-1] == "└── underlay br0 198.19.0.0/24: h1, h2; VXLAN udp/4789 carries ov"
    # the overlay shows under both hosts, each with that host's containers only
    assert text.count("network ov (overlay, 10.80.0.0/24, global)") == 2
    assert text.index("a dynamic") < text.index("host h2") < text.index("b dynamic")


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_draws_the_underlay_and_each_vtep(fmt: str) -> None:
    text = render(parse_scenario(TWO_HOSTS), fmt)
    assert "underlay" in text
    assert "198.19.0.2" in text and "198.19.0.3" in text
    if fmt == "dot":
        assert '"vtep:h1" -- underlay;' in text and '"net:ov" -- "vtep:h2" [style=dotted];' in text
        assert text.count("{") == text.count("}")
    elif fmt == "mermaid":
        assert "vtep_h2 --- underlay" in text and "net_ov -.- vtep_h1" in text
    elif fmt == "svg":
        root = ET.fromstring(text)
        labels = [el.text for el in root.iter("{http://www.w3.org/2000/svg}text")]
        assert "ov [all hosts]" in labels and "vxlan" in labels


def test_a_one_host_bridge_scenario_renders_as_before() -> None:
    text = render(
        parse_scenario({"networks": [{"name": "n"}], "containers": [{"name": "c", "networks": ["n"]}]}), "text"
    )
    assert text.splitlines()[1:] == ["└── host h1", "    └── network n (bridge)", "        └── c dynamic"]
    assert "underlay" not in render(parse_scenario({"networks": [{"name": "n"}]}), "dot")


def test_expectation_describe_keeps_the_pinned_host() -> None:
    assert Expectation("outside@h2", "web").describe() == "outside@h2 -> web icmp reachable"
