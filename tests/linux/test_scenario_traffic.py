"""The traffic keys on both kernels: what the far end saw (masquerade shows
the host, DNAT keeps the client), how a probe failed, the host and a family
by name, and the outside as a server; the kernels agree on all of it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from netsim.kernel.base import Kernel
from netsim.scenario.report import format_table
from netsim.scenario.results import ScenarioResult
from netsim.scenario.runner import Backend, run_scenario
from netsim.scenario.schema import parse_scenario

TOPOLOGY: dict[str, Any] = {
    "name": "traffic",
    "outside": {"listen": ["tcp/80", "udp/53"]},
    "networks": [
        {"name": "nat", "ipv6": True, "ipam": {"subnet": "10.95.1.0/24", "subnet_v6": "fd00:95:1::/64"}},
        {
            "name": "nonat",
            "options": {"com.docker.network.bridge.enable_ip_masquerade": "false"},
            "ipam": {"subnet": "10.95.2.0/24"},
        },
    ],
    "containers": [
        {
            "name": "web",
            "networks": [{"network": "nat", "ip": "10.95.1.10", "ipv6": "fd00:95:1::10"}],
            "listen": ["tcp/80"],
            "publish": ["8080:80/tcp"],
        },
        {"name": "client", "networks": [{"network": "nat", "ip": "10.95.1.11", "ipv6": "fd00:95:1::11"}]},
        {"name": "hidden", "networks": [{"network": "nonat", "ip": "10.95.2.10"}]},
    ],
}


def run(kernel_kind: str, factory: Callable[[str], Kernel], *expect: dict[str, Any]) -> ScenarioResult:
    scenario = parse_scenario({**TOPOLOGY, "expect": list(expect)}, file="traffic.yaml")
    result = run_scenario(scenario, kernel_kind, backend=Backend(make_kernel=factory), timeout=0.5)
    assert result.error is None and result.leaks == [], (result.error, result.leaks)
    return result


def test_the_far_end_sees_the_translated_source(
    kernel_kind: str, netsim_kernel_factory: Callable[[str], Kernel]
) -> None:
    result = run(
        kernel_kind,
        netsim_kernel_factory,
        {"from": "web", "to": "outside", "proto": "tcp", "port": 80, "seen_from": "host"},
        {"from": "web", "to": "outside", "proto": "udp", "port": 53, "seen_from": "web"},  # wrong: masqueraded
        {"from": "outside", "to": "published:8080", "proto": "tcp", "seen_from": "outside"},
        {"from": "hidden", "to": "outside", "seen_from": "hidden", "outcome": "timeout"},
        {"from": "web", "to": "client", "proto": "tcp", "port": 80, "seen_from": "web", "reachable": False},
    )
    masq, wrong, dnat, raw, refused = result.results
    assert (masq.seen, masq.passed) == ("198.18.0.2", True), format_table([result])
    assert (wrong.seen, wrong.seen_expected, wrong.passed) == ("198.18.0.2", ("10.95.1.10", "fd00:95:1::10"), False)
    assert (dnat.seen, dnat.passed) == ("198.18.0.1", True)
    assert (raw.seen, raw.outcome, raw.passed) == ("10.95.2.10", "timeout", True)
    # the SYN arrived (and was reset): the target still saw who sent it
    assert (refused.seen, refused.outcome, refused.passed) == ("10.95.1.10", "rst", True)
    assert "syn-ack; seen from 198.18.0.2" in format_table([result])


def test_a_named_outcome_must_be_the_one_observed(
    kernel_kind: str, netsim_kernel_factory: Callable[[str], Kernel]
) -> None:
    result = run(
        kernel_kind,
        netsim_kernel_factory,
        {"from": "web", "to": "outside", "proto": "tcp", "port": 81, "outcome": "rst"},
        {"from": "web", "to": "outside", "proto": "tcp", "port": 81, "outcome": "timeout"},
        {"from": "web", "to": "outside", "proto": "udp", "port": 54, "outcome": "port-unreachable"},
        {"from": "outside", "to": "web", "outcome": "net-unreachable"},
        {"from": "web", "to": "outside", "proto": "tcp", "port": 80, "outcome": "ok"},
    )
    outcomes = [(r.outcome, r.passed) for r in result.results]
    assert outcomes == [
        ("rst", True),
        ("rst", False),  # unreachable as expected, but not the way the file says
        ("port-unreachable", True),
        ("net-unreachable", True),
        ("syn-ack", True),
    ], format_table([result])


def test_host_and_family_by_name(kernel_kind: str, netsim_kernel_factory: Callable[[str], Kernel]) -> None:
    result = run(
        kernel_kind,
        netsim_kernel_factory,
        {"from": "outside", "to": "host"},
        {"from": "web", "to": "host", "seen_from": "web"},
        {"from": "outside", "to": "host", "proto": "tcp", "port": 8080, "seen_from": "outside"},
        {"from": "web", "to": "client", "family": 6},
        {"from": "client", "to": "web", "proto": "tcp", "port": 80, "family": 6, "seen_from": "fd00:95:1::11"},
        {"from": "client", "to": "web", "proto": "tcp", "port": 80, "family": 4},
    )
    assert all(r.passed for r in result.results), format_table([result])
    dsts = [r.dst for r in result.results]
    assert dsts[:3] == ["198.18.0.2"] * 3
    assert dsts[3:] == ["fd00:95:1::11", "fd00:95:1::10", "10.95.1.10"]
    assert result.results[4].seen == "fd00:95:1::11"
