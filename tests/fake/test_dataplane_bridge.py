"""Fake dataplane, layer 2: bridges, veth, ICC filtering, isolation, link state."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from netsim.kernel.base import Filter, Kernel


def bridged_host(kernel: Kernel, containers: int = 2, bridge: str = "br0", subnet: str = "10.0.0") -> list[str]:
    """Host namespace ``h`` with ``bridge`` at .1 and containers c1..cN at .2.., default via .1."""
    host = kernel.ns("h")
    if host not in kernel.namespaces():
        kernel.add_namespace(host)
    kernel.add_bridge(host, bridge)
    kernel.add_address(host, bridge, f"{subnet}.1/24")
    kernel.set_link_up(host, bridge)
    names = []
    for index in range(1, containers + 1):
        name = kernel.ns(f"{bridge}c{index}")
        kernel.add_namespace(name)
        kernel.add_veth(host, f"{bridge}v{index}", "eth0", name)
        kernel.set_master(host, f"{bridge}v{index}", bridge)
        kernel.set_link_up(host, f"{bridge}v{index}")
        kernel.set_link_up(name, "eth0")
        kernel.add_address(name, "eth0", f"{subnet}.{index + 1}/24")
        kernel.add_route(name, "default", via=f"{subnet}.1")
        names.append(name)
    return names


@pytest.fixture
def fake(netsim_kernel_factory: Callable[[str], Kernel]) -> Kernel:
    return netsim_kernel_factory("fake")


def test_same_bridge_reach_and_learning(fake: Kernel) -> None:
    c1, _ = bridged_host(fake)
    result = fake.probe(c1, "10.0.0.3")
    assert result.reachable and result.outcome == "echo-reply"
    assert result.reply is not None and result.reply.src == "10.0.0.3"
    assert result.rtt is not None and 0 < result.rtt < 0.001
    actions = [hop.action for hop in result.trace]
    assert "bridge" in actions and actions[-1] == "deliver"
    # learned entries: in the neighbour tables, but not permanent (snapshots skip them)
    assert [(n.ip, n.permanent) for n in fake.neighbours(c1)] == [("10.0.0.3", False)]
    assert fake.snapshot()[c1]["neighbours"] == []
    assert fake.fdb(fake.ns("h")) == []


def test_bridge_address_is_a_gateway_and_host_port(fake: Kernel) -> None:
    (c1,) = bridged_host(fake, containers=1)
    assert fake.probe(c1, "10.0.0.1").outcome == "echo-reply"
    assert fake.probe(fake.ns("h"), "10.0.0.2").outcome == "echo-reply"


def test_second_probe_needs_no_resolution(fake: Kernel) -> None:
    c1, _ = bridged_host(fake)
    first = fake.probe(c1, "10.0.0.3")
    second = fake.probe(c1, "10.0.0.3")
    assert second.outcome == "echo-reply"
    assert len(second.trace) < len(first.trace)
    assert not any(hop.action == "arp" for hop in second.trace)


def test_icc_false_drops_between_ports_only(fake: Kernel) -> None:
    c1, _ = bridged_host(fake)
    fake.add_rule(fake.ns("h"), Filter("drop", in_iface="br0", out_iface="br0", layer="bridge"))
    blocked = fake.probe(c1, "10.0.0.3")
    assert blocked.outcome == "timeout" and not blocked.reachable
    assert any(hop.action == "drop" and "bridge filter" in hop.detail for hop in blocked.trace)
    assert fake.probe(c1, "10.0.0.1").outcome == "echo-reply"  # the host port is not filtered


def test_separate_bridges_are_isolated_without_forwarding(fake: Kernel) -> None:
    (a,) = bridged_host(fake, containers=1, bridge="br0", subnet="10.0.0")
    (b,) = bridged_host(fake, containers=1, bridge="br1", subnet="10.1.0")
    result = fake.probe(a, "10.1.0.2")
    assert result.outcome == "timeout"
    assert any("ip_forward=0" in hop.detail for hop in result.trace)
    fake.set_sysctl(fake.ns("h"), "net.ipv4.ip_forward", "1")
    assert fake.probe(a, "10.1.0.2").outcome == "echo-reply"
    fake.add_rule(fake.ns("h"), Filter("drop", in_iface="br0", out_iface="br1"))
    dropped = fake.probe(a, "10.1.0.2")
    assert dropped.outcome == "timeout"
    assert any("forward filter" in hop.detail for hop in dropped.trace)
    assert fake.probe(b, "10.0.0.2").outcome == "timeout"  # the reply direction is dropped too


def test_down_port_passes_nothing(fake: Kernel) -> None:
    c1, _ = bridged_host(fake)
    fake.set_link_up(fake.ns("h"), "br0v2", False)
    result = fake.probe(c1, "10.0.0.3")
    assert result.outcome == "timeout"
    fake.set_link_up(fake.ns("h"), "br0v2", True)
    assert fake.probe(c1, "10.0.0.3").outcome == "echo-reply"


def test_unknown_neighbour_times_out_or_reports_host_unreachable(fake: Kernel) -> None:
    (c1,) = bridged_host(fake, containers=1)
    quick = fake.probe(c1, "10.0.0.99", timeout=1.0)
    assert quick.outcome == "timeout"
    patient = fake.probe(c1, "10.0.0.99", timeout=5.0)  # Linux gives up resolving after 3 s
    assert patient.outcome == "host-unreachable"
    assert any("did not answer" in hop.detail for hop in patient.trace)


def test_veth_pair_without_bridge(fake: Kernel) -> None:
    a, b = fake.ns("a"), fake.ns("b")
    fake.add_namespace(a)
    fake.add_namespace(b)
    fake.add_veth(a, "p", "q", b)
    fake.add_address(a, "p", "192.168.5.1/30")
    fake.add_address(b, "q", "192.168.5.2/30")
    fake.set_link_up(a, "p")
    assert fake.probe(a, "192.168.5.2").outcome == "timeout"  # peer down: no carrier
    fake.set_link_up(b, "q")
    assert fake.probe(a, "192.168.5.2").outcome == "echo-reply"


def test_bridge_loop_storm_is_cut_and_reported(fake: Kernel) -> None:
    """Two bridges joined by two veth pairs and no STP: Linux would storm; the
    walk stops at its delivery budget and says so, instead of hanging."""
    (c1,) = bridged_host(fake, containers=1)
    host = fake.ns("h")
    fake.add_bridge(host, "br9")
    fake.set_link_up(host, "br9")
    for index in (1, 2):
        fake.add_veth(host, f"la{index}", f"lb{index}")
        fake.set_master(host, f"la{index}", "br0")
        fake.set_master(host, f"lb{index}", "br9")
        fake.set_link_up(host, f"la{index}")
        fake.set_link_up(host, f"lb{index}")
    result = fake.probe(c1, "10.0.0.77")
    assert result.outcome == "timeout"
    assert any("deliveries (loop?)" in hop.detail for hop in result.trace)
