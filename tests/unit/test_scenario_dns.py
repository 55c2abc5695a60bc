"""Scenario files: ``aliases:`` on an attachment and DNS expectations
(``{from, resolve, type, expect}``), read and refused with file and key path."""

from __future__ import annotations

from typing import Any

import pytest

from netsim.errors import ScenarioError
from netsim.scenario.dnscheck import DnsQuery
from netsim.scenario.schema import parse_scenario


def _scenario(*expect: Any, aliases: Any = None, steps: Any = None) -> dict[str, Any]:
    attachment: dict[str, Any] = {"network": "back"}
    if aliases is not None:
        attachment["aliases"] = aliases
    data: dict[str, Any] = {
        "networks": [{"name": "back", "ipam": {"subnet": "10.30.0.0/24"}}],
        "containers": [{"name": "web", "networks": ["back"]}, {"name": "db", "networks": [attachment]}],
        "expect": list(expect),
    }
    if steps is not None:
        data["steps"] = steps
    return data


def _refusal(data: dict[str, Any]) -> str:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(data, file="dns.yaml")
    return str(caught.value)


def test_dns_expectations_and_aliases_load() -> None:
    scenario = parse_scenario(
        _scenario(
            {"from": "web", "resolve": "db", "expect": ["10.30.0.3"]},
            {"from": "web", "resolve": "PG", "type": "AAAA", "expect": []},
            {"from": "web", "resolve": "10.30.0.3", "expect": ["db.back"]},
            {"from": "web", "resolve": "nosuch", "expect": "SERVFAIL"},
            aliases=["PG", "primary.db"],
        ),
        file="dns.yaml",
    )
    assert scenario.containers[1].networks[0].aliases == ("pg", "primary.db")
    queries = [exp.dns for exp in scenario.expect]
    assert queries == [
        DnsQuery("A", ("10.30.0.3",)),
        DnsQuery("AAAA", ()),
        DnsQuery("PTR", ("db.back",)),
        DnsQuery("A", (), "SERVFAIL"),
    ]
    assert scenario.expect[2].describe() == "web resolves 10.30.0.3 (PTR): db.back"
    assert scenario.expect[0].proto_port == "dns/A"


def test_connect_step_takes_aliases() -> None:
    data = _scenario(steps=[{"connect": {"container": "web", "network": "front", "aliases": ["www"]}}])
    data["networks"].append({"name": "front", "ipam": {"subnet": "10.31.0.0/24"}})
    step = parse_scenario(data, file="dns.yaml").steps[0]
    assert step.attachment is not None and step.attachment.aliases == ("www",)


@pytest.mark.parametrize(
    ("entry", "where", "message"),
    [
        ({"from": "web", "resolve": "db"}, "expect[0].expect", "required key is missing"),
        ({"from": "web", "resolve": "db", "expect": ["db.back"]}, "expect[0].expect[0]", "db.back"),
        ({"from": "web", "resolve": "db", "expect": "nope"}, "expect[0].expect", "servfail"),
        ({"from": "web", "resolve": "db", "type": "MX", "expect": []}, "expect[0].type", "MX"),
        ({"from": "web", "resolve": "db", "type": "AAAA", "expect": ["10.30.0.3"]}, "expect[0].expect[0]", "IPv6"),
        ({"from": "web", "resolve": "db", "type": "PTR", "expect": []}, "expect[0].resolve", "takes an address"),
        ({"from": "web", "resolve": "10.30.0.3", "type": "A", "expect": []}, "expect[0].type", "PTR"),
        ({"from": "web", "resolve": "db..x", "expect": []}, "expect[0].resolve", "invalid DNS name"),
        ({"from": "web", "resolve": "db", "expect": [], "port": 53}, "expect[0].port", "unknown key"),
        ({"from": "nobody", "resolve": "db", "expect": []}, "expect[0].from", "unknown container 'nobody'"),
        ({"from": "outside", "resolve": "db", "expect": []}, "expect[0].from", "unknown container 'outside'"),
    ],
)
def test_dns_expectation_refusals_name_file_and_key(entry: dict[str, Any], where: str, message: str) -> None:
    text = _refusal(_scenario(entry))
    assert text.startswith(f"dns.yaml:{where}:"), text
    assert message in text


def test_bad_alias_is_refused_with_its_path() -> None:
    text = _refusal(_scenario(aliases=["ok", "not valid!"]))
    assert text.startswith("dns.yaml:containers[1].networks[0].aliases[1]:"), text
    assert "invalid DNS name" in text


def test_a_removed_container_cannot_ask() -> None:
    text = _refusal(
        _scenario(steps=[{"remove_container": "web", "expect": [{"from": "web", "resolve": "db", "expect": []}]}])
    )
    assert "steps[0].expect[0].from" in text and "'web'" in text


def test_via_dns_probes_load() -> None:
    scenario = parse_scenario(
        _scenario({"from": "web", "to": "pg", "proto": "tcp", "port": 5432, "via_dns": True}, aliases=["pg"]),
        file="dns.yaml",
    )
    exp = scenario.expect[0]
    assert exp.via_dns and exp.target == "pg"  # an alias: no container of that name, and no refusal
    assert exp.describe() == "web -> pg (via DNS) tcp/5432 reachable"


@pytest.mark.parametrize(
    ("entry", "where", "message"),
    [
        ({"from": "outside", "to": "db", "via_dns": True}, "expect[0].from", "must start in a container"),
        ({"from": "web", "to": "10.30.0.3", "via_dns": True}, "expect[0].to", "a name the resolver answers"),
        ({"from": "web", "to": "outside", "via_dns": True}, "expect[0].to", "a name the resolver answers"),
        ({"from": "web", "to": "db", "via_dns": True, "seen_from": "web"}, "expect[0].seen_from", "cannot be combined"),
        ({"from": "web", "to": "db", "via_dns": "yes"}, "expect[0].via_dns", "true or false"),
    ],
)
def test_via_dns_refusals(entry: dict[str, Any], where: str, message: str) -> None:
    text = _refusal(_scenario(entry))
    assert text.startswith(f"dns.yaml:{where}:"), text
    assert message in text
