"""Fake dataplane: VXLAN over an underlay bridge, macvlan modes, 802.1q sub-interfaces."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from netsim.kernel.base import Kernel, Listener


@pytest.fixture
def fake(netsim_kernel_factory: Callable[[str], Kernel]) -> Kernel:
    return netsim_kernel_factory("fake")


def underlay(kernel: Kernel, hosts: int = 2) -> list[str]:
    """Namespace ``ul`` with bridge ``ul0``; hosts h1..hN with eth0 at 192.168.100.N/24 on it."""
    hub = kernel.ns("ul")
    kernel.add_namespace(hub)
    kernel.add_bridge(hub, "ul0")
    kernel.set_link_up(hub, "ul0")
    names = []
    for index in range(1, hosts + 1):
        host = kernel.ns(f"h{index}")
        kernel.add_namespace(host)
        kernel.add_veth(hub, f"p{index}", "eth0", host)
        kernel.set_master(hub, f"p{index}", "ul0")
        kernel.set_link_up(hub, f"p{index}")
        kernel.set_link_up(host, "eth0")
        kernel.add_address(host, "eth0", f"192.168.100.{index}/24")
        names.append(host)
    return names


def overlay(kernel: Kernel, *, use_fdb: bool) -> tuple[str, str]:
    """Each host: vxlan0 (vni 42) in bridge br0 with container cN at 10.10.0.N/24."""
    h1, h2 = underlay(kernel)
    containers = []
    for index, (host, other) in enumerate(((h1, "192.168.100.2"), (h2, "192.168.100.1")), start=1):
        local = f"192.168.100.{index}"
        if use_fdb:
            kernel.add_vxlan(host, "vxlan0", 42, local=local, dev="eth0")
            kernel.add_fdb(host, "vxlan0", "00:00:00:00:00:00", dst=other)
        else:
            kernel.add_vxlan(host, "vxlan0", 42, local=local, remote=other, dev="eth0")
        kernel.add_bridge(host, "br0")
        kernel.set_master(host, "vxlan0", "br0")
        kernel.set_link_up(host, "vxlan0")
        kernel.set_link_up(host, "br0")
        container = kernel.ns(f"c{index}")
        kernel.add_namespace(container)
        kernel.add_veth(host, "veth0", "eth0", container)
        kernel.set_master(host, "veth0", "br0")
        kernel.set_link_up(host, "veth0")
        kernel.set_link_up(container, "eth0")
        kernel.add_address(container, "eth0", f"10.10.0.{index}/24")
        containers.append(container)
    return containers[0], containers[1]


@pytest.mark.parametrize("use_fdb", [True, False], ids=["fdb-flood-entry", "remote"])
def test_vxlan_between_two_hosts(fake: Kernel, use_fdb: bool) -> None:
    c1, c2 = overlay(fake, use_fdb=use_fdb)
    result = fake.probe(c1, "10.10.0.2")
    assert result.outcome == "echo-reply"
    actions = [hop.action for hop in result.trace]
    assert "encap" in actions and "decap" in actions
    encap = next(hop for hop in result.trace if hop.action == "encap")
    assert "vni 42" in encap.detail and "192.168.100.2:4789" in encap.detail
    fake.add_listener(c2, Listener("tcp", 80))
    assert fake.probe(c1, "10.10.0.2", "tcp", 80).outcome == "syn-ack"
    assert fake.probe(c2, "10.10.0.1", "udp", 9).outcome == "port-unreachable"
    # learned remote MACs stay out of the permanent FDB
    assert all(entry.permanent for entry in fake.fdb(fake.ns("h1")))


def test_vxlan_vni_mismatch_is_dropped(fake: Kernel) -> None:
    h1, h2 = underlay(fake)
    fake.add_vxlan(h1, "vx", 1, local="192.168.100.1", remote="192.168.100.2", dev="eth0")
    fake.add_vxlan(h2, "vx", 2, local="192.168.100.2", remote="192.168.100.1", dev="eth0")
    for host, cidr in ((h1, "10.20.0.1/24"), (h2, "10.20.0.2/24")):
        fake.set_link_up(host, "vx")
        fake.add_address(host, "vx", cidr)
    result = fake.probe(h1, "10.20.0.2")
    assert result.outcome == "timeout"
    assert any("no device for vni 1" in hop.detail for hop in result.trace)


def test_vxlan_without_remote_or_fdb_has_nowhere_to_go(fake: Kernel) -> None:
    (h1,) = underlay(fake, hosts=1)
    fake.add_vxlan(h1, "vx", 7, local="192.168.100.1", dev="eth0")
    fake.set_link_up(h1, "vx")
    fake.add_address(h1, "vx", "10.30.0.1/24")
    result = fake.probe(h1, "10.30.0.2")
    assert result.outcome == "timeout"
    assert any("no FDB entry or remote" in hop.detail for hop in result.trace)


def macvlan_host(kernel: Kernel, mode: str) -> tuple[str, str, str, str]:
    """lan (192.168.1.1) -- eth0 of host h (192.168.1.2); macvlans of h's eth0 in c1 (.11), c2 (.12)."""
    host, lan = kernel.ns("h"), kernel.ns("lan")
    kernel.add_namespace(host)
    kernel.add_namespace(lan)
    kernel.add_veth(host, "eth0", "eth0", lan)
    for ns, cidr in ((host, "192.168.1.2/24"), (lan, "192.168.1.1/24")):
        kernel.set_link_up(ns, "eth0")
        kernel.add_address(ns, "eth0", cidr)
    containers = []
    for index in (1, 2):
        container = kernel.ns(f"c{index}")
        kernel.add_namespace(container)
        kernel.add_macvlan(host, f"mv{index}", "eth0", mode)  # type: ignore[arg-type]
        kernel.move_link(host, f"mv{index}", container, "eth0")
        kernel.set_link_up(container, "eth0")
        kernel.add_address(container, "eth0", f"192.168.1.{10 + index}/24")
        containers.append(container)
    return host, lan, containers[0], containers[1]


@pytest.mark.parametrize(("mode", "siblings"), [("bridge", "echo-reply"), ("private", "timeout"), ("vepa", "timeout")])
def test_macvlan_modes(fake: Kernel, mode: str, siblings: str) -> None:
    host, _, c1, _ = macvlan_host(fake, mode)
    assert fake.probe(c1, "192.168.1.12").outcome == siblings
    assert fake.probe(c1, "192.168.1.1").outcome == "echo-reply"  # the wire beyond the parent
    assert fake.probe(c1, "192.168.1.2").outcome == "timeout"  # never the parent's own stack
    assert fake.probe(host, "192.168.1.11").outcome == "timeout"  # nor the other way round


def test_macvlan_passthru_owns_the_parent(fake: Kernel) -> None:
    host, lan = fake.ns("h"), fake.ns("lan")
    fake.add_namespace(host)
    fake.add_namespace(lan)
    fake.add_veth(host, "eth0", "eth0", lan)
    fake.set_link_up(host, "eth0")
    fake.set_link_up(lan, "eth0")
    fake.add_address(lan, "eth0", "192.168.1.1/24")
    fake.add_macvlan(host, "mv0", "eth0", "passthru")
    fake.set_link_up(host, "mv0")
    fake.add_address(host, "mv0", "192.168.1.50/24")
    assert fake.probe(host, "192.168.1.1").outcome == "echo-reply"


def test_vlan_subinterfaces_keep_vlans_apart(fake: Kernel) -> None:
    a, b = fake.ns("a"), fake.ns("b")
    fake.add_namespace(a)
    fake.add_namespace(b)
    fake.add_veth(a, "eth0", "eth0", b)
    for ns in (a, b):
        fake.set_link_up(ns, "eth0")
    fake.add_vlan(a, "eth0.10", "eth0", 10)
    fake.add_vlan(a, "eth0.30", "eth0", 30)
    fake.add_vlan(b, "eth0.10", "eth0", 10)
    fake.add_vlan(b, "eth0.20", "eth0", 20)
    for ns, dev, cidr in (
        (a, "eth0.10", "10.40.0.1/24"),
        (a, "eth0.30", "10.50.0.1/24"),
        (b, "eth0.10", "10.40.0.2/24"),
        (b, "eth0.20", "10.50.0.2/24"),
    ):
        fake.set_link_up(ns, dev)
        fake.add_address(ns, dev, cidr)
    result = fake.probe(a, "10.40.0.2")
    assert result.outcome == "echo-reply"
    assert any("802.1q tag 10" in hop.detail for hop in result.trace)
    other = fake.probe(a, "10.50.0.2")  # a asks on vlan 30, b only has vlan 20
    assert other.outcome == "timeout"
    assert any("no vlan 30" in hop.detail for hop in other.trace)


def test_macvlan_on_a_vlan_parent(fake: Kernel) -> None:
    host, lan, c1 = fake.ns("h"), fake.ns("lan"), fake.ns("c1")
    for ns in (host, lan, c1):
        fake.add_namespace(ns)
    fake.add_veth(host, "eth0", "eth0", lan)
    fake.set_link_up(host, "eth0")
    fake.set_link_up(lan, "eth0")
    fake.add_vlan(host, "eth0.10", "eth0", 10)
    fake.add_vlan(lan, "eth0.10", "eth0", 10)
    fake.set_link_up(host, "eth0.10")
    fake.set_link_up(lan, "eth0.10")
    fake.add_address(lan, "eth0.10", "10.60.0.1/24")
    fake.add_macvlan(host, "mv0", "eth0.10", "bridge")
    fake.move_link(host, "mv0", c1, "eth0")
    fake.set_link_up(c1, "eth0")
    fake.add_address(c1, "eth0", "10.60.0.11/24")
    result = fake.probe(c1, "10.60.0.1")
    assert result.outcome == "echo-reply"
    assert any("802.1q tag 10" in hop.detail for hop in result.trace)
