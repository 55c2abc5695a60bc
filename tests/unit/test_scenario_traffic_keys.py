"""The traffic keys of a scenario (outside listen, to: host, family, outcome,
seen_from) at load: what they read as, and every impossible or malformed use
refused with file and key path before anything is built."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoReply, ICMPv6EchoRequest, IPv6
from scapy.layers.l2 import Ether

from netsim.errors import ScenarioError
from netsim.scenario.model import ListenSpec
from netsim.scenario.observe import first_request_source, translation_line
from netsim.scenario.outcomes import OUTCOMES, observed_outcome
from netsim.scenario.report import to_json
from netsim.scenario.results import ExpectationResult, ScenarioResult
from netsim.scenario.schema import parse_scenario

BASE: dict[str, Any] = {
    "name": "traffic",
    "hosts": ["h1", {"name": "h2", "outside": {"listen": ["udp/53"]}}],
    "outside": {"listen": ["tcp/80"]},
    "networks": [
        {"name": "dual", "ipv6": True, "ipam": {"subnet": "10.1.0.0/24", "subnet_v6": "fd00:1::/64"}},
        {"name": "v4", "ipam": {"subnet": "10.2.0.0/24"}},
        {"name": "hostnet", "driver": "host", "host": "h2"},
    ],
    "containers": [
        {"name": "a", "networks": ["dual"], "listen": ["tcp/80"], "publish": ["8080:80/tcp"]},
        {"name": "b", "networks": ["v4"], "publish": ["9090:90/tcp"]},
        {"name": "agent", "host": "h2", "networks": ["hostnet"], "listen": ["tcp/9100"]},
    ],
    "expect": [],
}


def load(*expect: dict[str, Any], **top: Any) -> Any:
    data = copy.deepcopy(BASE)
    data["expect"] = list(expect)
    data.update(top)
    return parse_scenario(data, file="t.yaml")


def refused(*expect: dict[str, Any], **top: Any) -> str:
    with pytest.raises(ScenarioError) as info:
        load(*expect, **top)
    return str(info.value)


def test_outside_listeners_per_host_add_to_the_shared_ones() -> None:
    scenario = load()
    assert scenario.outside_listen == {
        "h1": (ListenSpec("tcp", 80),),
        "h2": (ListenSpec("tcp", 80), ListenSpec("udp", 53)),
    }


def test_keys_read_as_written() -> None:
    scenario = load(
        {"from": "b", "to": "outside", "proto": "tcp", "port": 80, "seen_from": "host"},
        {"from": "b", "to": "a", "proto": "tcp", "port": 81, "outcome": "RST"},
        {"from": "b", "to": "a", "family": 6},
        {"from": "outside", "to": "host@h2", "proto": "tcp", "port": 9100, "seen_from": "outside@h2"},
    )
    first, second, third, fourth = scenario.expect
    assert (first.seen_from, first.reachable) == ("host", True)
    assert (second.outcome, second.reachable) == ("rst", False)  # the outcome implies unreachable
    assert third.family == 6
    assert (fourth.target, fourth.seen_from) == ("host@h2", "outside@h2")
    assert second.describe() == "b -> a tcp/81 unreachable (rst)"
    assert third.describe() == "b -> a IPv6 icmp reachable"


@pytest.mark.parametrize(
    ("expect", "where", "message"),
    [
        ({"from": "b", "to": "outside", "proto": "tcp", "port": 81}, "expect[0].port", "outside of 'h1' does not"),
        ({"from": "agent", "to": "outside", "proto": "tcp", "port": 443}, "expect[0].port", "does not listen"),
        ({"from": "b", "to": "outside", "proto": "udp", "port": 53}, "expect[0].port", "listen on udp/53"),
        ({"from": "b", "to": "host", "proto": "tcp", "port": 22}, "expect[0].port", "nothing on host 'h1'"),
        ({"from": "b", "to": "host@h9"}, "expect[0].to", "unknown host 'h9'"),
        ({"from": "b", "to": "a", "outcome": "refused"}, "expect[0].outcome", "unknown outcome 'refused'"),
        ({"from": "b", "to": "a", "outcome": "rst"}, "expect[0].outcome", "icmp probe never ends in 'rst'"),
        ({"from": "b", "to": "a", "proto": "udp", "port": 5, "outcome": "rst"}, "expect[0].outcome", "udp"),
        ({"from": "b", "to": "a", "outcome": "timeout", "reachable": True}, "expect[0].outcome", "reachable: true"),
        ({"from": "b", "to": "a", "outcome": "ok", "reachable": False}, "expect[0].outcome", "means reachable"),
        ({"from": "b", "to": "a", "family": 5}, "expect[0].family", "expected 4 or 6"),
        ({"from": "b", "to": "a", "family": True}, "expect[0].family", "expected 4 or 6"),
        ({"from": "a", "to": "b", "family": 6}, "expect[0].family", "no IPv6 address"),
        ({"from": "b", "to": "10.1.0.5", "family": 6}, "expect[0].family", "contradicts the IPv4"),
        ({"from": "b", "to": "outside", "family": 6}, "expect[0].family", "'b' has no IPv6 address to send from"),
        ({"from": "outside", "to": "published:9090", "proto": "tcp", "family": 6}, "expect[0].family", "'b' publishes"),
        ({"from": "b", "to": "a", "seen_from": "ghost"}, "expect[0].seen_from", "unknown container 'ghost'"),
        ({"from": "b", "to": "a", "seen_from": "host@h9"}, "expect[0].seen_from", "unknown host 'h9'"),
        ({"from": "b", "to": "a", "seen_from": "outside@h9"}, "expect[0].seen_from", "unknown host 'h9'"),
        ({"from": "b", "to": "10.1.0.5", "seen_from": "b"}, "expect[0].seen_from", "needs a named target"),
        ({"from": "b", "to": "a", "seen_from": "no/such"}, "expect[0].seen_from", "invalid name"),
    ],
)
def test_impossible_or_malformed_traffic_keys_are_refused(expect: dict[str, Any], where: str, message: str) -> None:
    text = refused(expect)
    assert text.startswith(f"t.yaml:{where}: ")
    assert message in text


def test_outside_shape_errors_name_the_key() -> None:
    assert refused(outside={"listen": ["tcp/80", "tcp/80"]}).startswith("t.yaml:outside.listen[1]: duplicate")
    assert refused(outside={"listen": ["http"]}).startswith("t.yaml:outside.listen[0]: invalid listener")
    assert refused(outside={"ports": []}).startswith("t.yaml:outside.ports: unknown key")
    hosts = ["h1", {"name": "h2", "outside": {"listen": ["tcp/80"]}}]
    assert refused(hosts=hosts).startswith("t.yaml:hosts[1].outside.listen[0]: duplicate listener tcp/80")


def test_host_is_a_reserved_container_name() -> None:
    data = copy.deepcopy(BASE)
    data["containers"].append({"name": "host", "networks": ["v4"]})
    with pytest.raises(ScenarioError, match="'host' is reserved for the host itself"):
        parse_scenario(data, file="t.yaml")


def test_removed_container_cannot_be_seen_from() -> None:
    steps = [
        {
            "remove_container": "b",
            "expect": [{"from": "a", "to": "outside", "proto": "tcp", "port": 80, "seen_from": "b"}],
        }
    ]
    assert "steps[0].expect[0].seen_from: container 'b' was removed" in refused(steps=steps)


@settings(max_examples=60, deadline=None)
@given(outcome=st.sampled_from(OUTCOMES), reachable=st.booleans(), proto=st.sampled_from(["icmp", "tcp", "udp"]))
def test_outcome_and_reachable_agree_or_are_refused(outcome: str, reachable: bool, proto: str) -> None:
    """Every combination either loads with an outcome that means what
    ``reachable`` says, or is refused at the outcome's key."""
    target = {"icmp": {}, "tcp": {"port": 80}, "udp": {"port": 53}}[proto]
    exp = {"from": "b", "to": "a", "proto": proto, **target, "outcome": outcome, "reachable": reachable}
    if proto == "udp" and reachable:
        exp["to"] = "outside@h2"
    try:
        scenario = load(exp)
    except ScenarioError as exc:
        assert str(exc).startswith("t.yaml:expect[0].")
        never = {"icmp": {"rst", "port-unreachable"}, "tcp": set(), "udp": {"rst"}}[proto]
        assert (outcome == "ok") != reachable or outcome in never, str(exc)
        return
    assert (scenario.expect[0].outcome == "ok") == scenario.expect[0].reachable


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=1, max_size=12))
def test_any_other_outcome_word_is_refused(word: str) -> None:
    if word.lower() in OUTCOMES:
        return
    text = refused({"from": "b", "to": "a", "outcome": word})
    assert text.startswith("t.yaml:expect[0].outcome: ")


def test_observed_outcome_names() -> None:
    assert [observed_outcome(o) for o in ("echo-reply", "syn-ack", "udp-reply")] == ["ok"] * 3
    assert observed_outcome("timeout (retried)") == "timeout"
    assert observed_outcome("time-exceeded") == "time-exceeded"  # matches no expectation


def test_first_request_source_ignores_answers_and_own_traffic() -> None:
    own = {"10.1.0.2", "fd00:1::2"}
    frames = [
        Ether() / IP(src="10.1.0.2", dst="10.9.9.9") / TCP(flags="S"),  # its own outgoing SYN
        Ether() / IP(src="10.1.0.1", dst="10.1.0.2") / TCP(flags="SA"),  # an answer, not a request
        Ether() / IP(src="10.1.0.1", dst="10.1.0.3") / TCP(flags="S"),  # for someone else
        Ether() / IP(src="198.18.0.2", dst="10.1.0.2") / TCP(flags="S"),
        Ether() / IP(src="10.1.0.7", dst="10.1.0.2") / TCP(flags="S"),
    ]
    assert first_request_source(frames, "tcp", own) == "198.18.0.2"
    assert first_request_source(frames, "udp", own) is None
    icmp = [
        Ether() / IPv6(src="fd00:1::9", dst="fd00:1::2") / ICMPv6EchoReply(),
        Ether() / IPv6(src="fd00:1::3", dst="fd00:1::2") / ICMPv6EchoRequest(),
        Ether() / IP(src="10.1.0.4", dst="10.1.0.2") / ICMP(type=8),
    ]
    assert first_request_source(icmp, "icmp", own) == "fd00:1::3"
    assert first_request_source([Ether() / IP(src="1.2.3.4", dst="10.1.0.2") / UDP()], "udp", own) == "1.2.3.4"


def test_translation_line() -> None:
    assert translation_line("10.1.0.2", "p-h1-out", "198.18.0.2", "p-") == (
        "source: sent from 10.1.0.2, seen by h1-out as 198.18.0.2 (translated)"
    )
    assert translation_line("10.1.0.2", "p-h1-c-a", "10.1.0.2", "p-").endswith("as 10.1.0.2 (unchanged)")
    assert (
        translation_line("10.1.0.2", "p-h1-out", None, "p-") == "source: sent from 10.1.0.2; nothing arrived at h1-out"
    )
    assert translation_line("10.1.0.2", None, None) is None


def test_results_pass_only_on_the_named_outcome_and_source() -> None:
    scenario = load(
        {"from": "b", "to": "a", "proto": "tcp", "port": 81, "outcome": "rst"},
        {"from": "b", "to": "outside", "proto": "tcp", "port": 80, "seen_from": "host"},
    )
    rst, seen = scenario.expect
    assert ExpectationResult(rst, "initial", reachable=False, outcome="rst").passed
    assert not ExpectationResult(rst, "initial", reachable=False, outcome="timeout").passed
    good = ExpectationResult(seen, "initial", reachable=True, outcome="syn-ack", seen="198.18.0.2")
    good.seen_expected = ("10.2.0.1", "198.18.0.2")
    assert good.passed
    wrong = ExpectationResult(seen, "initial", reachable=True, outcome="syn-ack", seen="10.2.0.2")
    wrong.seen_expected = good.seen_expected
    assert not wrong.passed
    nothing = ExpectationResult(seen, "initial", reachable=True, outcome="syn-ack", seen=None)
    assert not nothing.passed
    report = to_json([ScenarioResult("traffic", "fake", results=[good, ExpectationResult(rst, "x", "", False, "rst")])])
    first, second = report["scenarios"][0]["expectations"]
    assert (first["seen_from"], first["seen"]) == ("host", "198.18.0.2")
    assert (second["expect_outcome"], second["outcome"]) == ("rst", "rst")


V6ONLY = {"name": "v6", "ipv6": True, "ipv4": False, "ipam": {"subnet_v6": "fd00:9::/64"}}


def test_an_ipv6_only_network_loads() -> None:
    data = copy.deepcopy(BASE)
    data["networks"].append(V6ONLY)
    data["containers"].append({"name": "c", "networks": [{"network": "v6", "ipv6": "fd00:9::10"}]})
    data["expect"] = [{"from": "b", "to": "c", "family": 6, "reachable": False}]
    scenario = parse_scenario(data, file="t.yaml")
    assert scenario.network("v6").ipv4 is False and scenario.network("dual").ipv4 is True


@pytest.mark.parametrize(
    ("change", "where", "message"),
    [
        ({"ipv6": False, "ipam": {}}, "networks[3].ipv4", "needs 'ipv6: true'"),
        ({"driver": "macvlan"}, "networks[3].ipv4", "bridge driver only"),
        ({"ipam": {"subnet": "10.9.0.0/24", "subnet_v6": "fd00:9::/64"}}, "networks[3].ipam.subnet", "no IPv4"),
        ({"ipam": {"aux_addresses": {"x": "10.9.0.5"}}}, "networks[3].ipam.aux_addresses", "no IPv4"),
    ],
)
def test_ipv6_only_networks_refuse_ipv4(change: dict[str, Any], where: str, message: str) -> None:
    data = copy.deepcopy(BASE)
    data["networks"].append({**V6ONLY, **change})
    with pytest.raises(ScenarioError) as info:
        parse_scenario(data, file="t.yaml")
    assert str(info.value).startswith(f"t.yaml:{where}: ") and message in str(info.value)


def test_no_static_ipv4_and_no_family_4_on_an_ipv6_only_network() -> None:
    data = copy.deepcopy(BASE)
    data["networks"].append(V6ONLY)
    data["containers"].append({"name": "c", "networks": [{"network": "v6", "ip": "10.9.0.5"}]})
    with pytest.raises(ScenarioError, match=r"containers\[3\]\.networks\[0\]\.ip: .*IPv6-only"):
        parse_scenario(data, file="t.yaml")
    data["containers"][-1] = {"name": "c", "networks": ["v6"]}
    data["expect"] = [{"from": "b", "to": "c", "family": 4}]
    with pytest.raises(ScenarioError, match=r"expect\[0\]\.family: container 'c' has no IPv4 address"):
        parse_scenario(data, file="t.yaml")


def test_container_subnets_stay_out_of_the_ipv6_outside_range() -> None:
    data = copy.deepcopy(BASE)
    data["networks"].append({"name": "clash", "ipv6": True, "ipam": {"subnet_v6": "2001:2:0:5::/64"}})
    with pytest.raises(ScenarioError, match=r"networks\[3\]\.ipam\.subnet_v6: .*2001:2::/48, RFC 5180"):
        parse_scenario(data, file="t.yaml")
