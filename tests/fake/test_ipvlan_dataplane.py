"""The fake kernel's ipvlan, link rules and dataplane per mode and flag, as
Linux's ipvlan (Documentation/networking/ipvlan.rst, ipvlan_core.c) behaves:
shared MAC, l2 switching by IP address, l3 routing through the parent's
namespace without ARP, private and vepa, the parent cut off from its slaves."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from netsim.errors import InvalidParameterError, error_kind
from netsim.kernel.base import IpvlanFlag, IpvlanMode, Kernel, ProbeResult

HOST_IP, OUTSIDE_IP = "198.18.0.2", "198.18.0.1"
MISS = 0.3


@pytest.fixture
def fake(netsim_kernel_factory: Callable[[str], Kernel]) -> Kernel:
    return netsim_kernel_factory("fake")


def uplinked_host(kernel: Kernel) -> tuple[str, str]:
    """Host ``h`` whose eth0 (198.18.0.2/24, default via .1) leads to ``out`` (198.18.0.1)."""
    host, out = kernel.ns("h"), kernel.ns("out")
    kernel.add_namespace(host)
    kernel.add_namespace(out)
    kernel.add_veth(host, "eth0", "eth0", out)
    for ns, address in ((host, HOST_IP), (out, OUTSIDE_IP)):
        kernel.set_link_up(ns, "lo")
        kernel.set_link_up(ns, "eth0")
        kernel.add_address(ns, "eth0", f"{address}/24")
    kernel.add_route(host, "default", via=OUTSIDE_IP)
    return host, out


def slaves(kernel: Kernel, mode: IpvlanMode, flag: IpvlanFlag = "bridge", count: int = 2) -> list[str]:
    """Containers s1..sN, each with an ipvlan slave of h/eth0 as its eth0; l2 slaves
    on the uplink's LAN (198.18.0.11..) via the outside, l3 slaves in 10.60.0.0/24
    with an on-link default route (what Docker's l3 mode gives)."""
    host = kernel.ns("h")
    names = []
    for index in range(1, count + 1):
        ns = kernel.ns(f"s{index}")
        kernel.add_namespace(ns)
        kernel.add_ipvlan(host, f"ipv{index}", "eth0", mode, flag)
        kernel.move_link(host, f"ipv{index}", ns, "eth0")
        kernel.set_link_up(ns, "lo")
        kernel.set_link_up(ns, "eth0")
        if mode == "l2":
            kernel.add_address(ns, "eth0", f"198.18.0.{10 + index}/24")
            kernel.add_route(ns, "default", via=OUTSIDE_IP)
        else:
            kernel.add_address(ns, "eth0", f"10.60.0.{10 + index}/24")
            kernel.add_route(ns, "0.0.0.0/0", dev="eth0", scope="link")
        names.append(ns)
    return names


def dropped_because(result: ProbeResult, words: str) -> bool:
    return any(hop.action == "drop" and words in hop.detail for hop in result.trace)


# --- link rules -------------------------------------------------------------------------


def test_slaves_share_the_parents_mac_and_follow_it(fake: Kernel) -> None:
    host, _ = uplinked_host(fake)
    s1, s2 = slaves(fake, "l2")
    parent = fake.link(host, "eth0")
    one, two = fake.link(s1, "eth0"), fake.link(s2, "eth0")
    assert one.mac == two.mac == parent.mac
    assert (one.kind, one.parent, one.mtu) == ("ipvlan", "eth0", 1500)
    assert dict(one.attrs) == {"mode": "l2", "flag": "bridge"}
    fake.set_mac(host, "eth0", "02:00:00:00:00:42")  # NETDEV_CHANGEADDR reaches every slave
    assert fake.link(s1, "eth0").mac == "02:00:00:00:00:42"
    with pytest.raises(InvalidParameterError) as refused:
        fake.set_mac(s1, "eth0", "02:00:00:00:00:43")
    assert error_kind(refused.value) == "kernel-invalid:ENOTSUP"


def test_mode_and_flag_belong_to_the_port(fake: Kernel) -> None:
    host, _ = uplinked_host(fake)
    (s1,) = slaves(fake, "l2", "bridge", count=1)
    fake.add_ipvlan(host, "late", "eth0", "l3", "private")
    assert dict(fake.link(s1, "eth0").attrs) == {"mode": "l3", "flag": "private"}


def test_what_cannot_carry_an_ipvlan(fake: Kernel) -> None:
    host, _ = uplinked_host(fake)
    refusals: dict[str, Callable[[], None]] = {
        "lo": lambda: fake.add_ipvlan(host, "i0", "lo"),
        "missing": lambda: fake.add_ipvlan(host, "i0", "nope"),
        "bad mode": lambda: fake.add_ipvlan(host, "i0", "eth0", "l4"),  # type: ignore[arg-type]
        "bad flag": lambda: fake.add_ipvlan(host, "i0", "eth0", "l2", "open"),  # type: ignore[arg-type]
    }
    fake.add_bridge(host, "br0")
    fake.add_veth(host, "p0", "p1")
    fake.set_master(host, "p0", "br0")
    refusals["bridge port"] = lambda: fake.add_ipvlan(host, "i0", "p0")
    fake.add_macvlan(host, "mv0", "p1")
    refusals["macvlan parent"] = lambda: fake.add_ipvlan(host, "i0", "p1")
    kinds = {}
    for what, attempt in refusals.items():
        with pytest.raises(Exception) as caught:
            attempt()
        kinds[what] = error_kind(caught.value)
    assert kinds == {
        "lo": "kernel-invalid:EINVAL",
        "missing": "kernel-not-found:ENODEV",
        "bad mode": "invalid-parameter",
        "bad flag": "invalid-parameter",
        "bridge port": "kernel-busy:EBUSY",
        "macvlan parent": "kernel-busy:EBUSY",
    }
    assert "i0" not in {link.name for link in fake.links(host)}


def test_a_carrier_of_ipvlans_refuses_macvlans_and_bridges(fake: Kernel) -> None:
    host, _ = uplinked_host(fake)
    fake.add_ipvlan(host, "i0", "eth0")
    fake.add_ipvlan(host, "i1", "i0")  # a slave's slave sits on the port's device
    assert fake.link(host, "i1").parent == "eth0"
    fake.add_bridge(host, "br0")
    attempts: list[Callable[[], None]] = [
        lambda: fake.add_macvlan(host, "mv0", "eth0"),
        lambda: fake.set_master(host, "eth0", "br0"),
    ]
    for attempt in attempts:
        with pytest.raises(Exception) as caught:
            attempt()
        assert error_kind(caught.value) == "kernel-busy:EBUSY"


def test_slaves_go_with_their_parent_and_stay_within_its_mtu(fake: Kernel) -> None:
    host, _ = uplinked_host(fake)
    (s1,) = slaves(fake, "l3", count=1)
    with pytest.raises(Exception) as caught:
        fake.set_mtu(s1, "eth0", 1600)
    assert error_kind(caught.value) == "kernel-invalid:EINVAL"
    fake.set_mtu(host, "eth0", 1400)
    assert fake.link(s1, "eth0").mtu == 1400
    fake.set_link_up(host, "eth0", False)  # no carrier below: the slave passes nothing
    assert not fake.probe(s1, "10.60.0.99", timeout=MISS).reachable
    fake.delete_link(host, "eth0")
    assert [link.name for link in fake.links(s1)] == ["lo"]


# --- l2 -------------------------------------------------------------------------------------


def test_l2_bridge_siblings_the_lan_and_the_parent(fake: Kernel) -> None:
    host, out = uplinked_host(fake)
    s1, _ = slaves(fake, "l2")
    between = fake.probe(s1, "198.18.0.12", "tcp", 9)  # closed port: an RST is an answer
    assert between.outcome == "rst"
    assert any("to sibling" in hop.detail for hop in between.trace)
    # switched locally: only the ARP broadcast goes out on the wire too
    assert not any(hop.namespace == out and "TCP" in hop.summary for hop in between.trace)
    assert fake.probe(s1, OUTSIDE_IP).outcome == "echo-reply"
    assert fake.probe(out, "198.18.0.12").outcome == "echo-reply"
    # the parent's own frames never enter its slaves, and slaves' ARP never reaches the parent's stack
    assert not fake.probe(host, "198.18.0.11", timeout=MISS).reachable
    assert not fake.probe(s1, HOST_IP, timeout=MISS).reachable


def test_l2_slave_reaches_the_parent_with_a_known_neighbour(fake: Kernel) -> None:
    """A frame for the shared MAC to no slave's address goes to the parent as if
    received (dev_forward_skb); only the parent's answer never comes back."""
    host, _ = uplinked_host(fake)
    (s1,) = slaves(fake, "l2", count=1)
    fake.add_neighbour(s1, "eth0", HOST_IP, fake.link(host, "eth0").mac)
    result = fake.probe(s1, HOST_IP, timeout=MISS)
    assert not result.reachable
    assert any(hop.namespace == host and hop.action == "deliver" for hop in result.trace)  # the request got in


def test_l2_private_blocks_siblings_only(fake: Kernel) -> None:
    _, out = uplinked_host(fake)
    s1, _ = slaves(fake, "l2", "private")
    blocked = fake.probe(s1, "198.18.0.12", timeout=MISS)
    assert not blocked.reachable
    assert fake.probe(s1, OUTSIDE_IP).outcome == "echo-reply"
    assert fake.probe(out, "198.18.0.11").outcome == "echo-reply"


def test_l2_private_drops_unicast_between_siblings(fake: Kernel) -> None:
    host, _ = uplinked_host(fake)
    s1, _ = slaves(fake, "l2", "private")
    fake.add_neighbour(s1, "eth0", "198.18.0.12", fake.link(host, "eth0").mac)  # no ARP needed
    result = fake.probe(s1, "198.18.0.12", timeout=MISS)
    assert not result.reachable and dropped_because(result, "ipvlan private")


def test_l2_vepa_sends_sibling_traffic_to_the_wire(fake: Kernel) -> None:
    host, out = uplinked_host(fake)
    s1, _ = slaves(fake, "l2", "vepa")
    fake.add_neighbour(s1, "eth0", "198.18.0.12", fake.link(host, "eth0").mac)
    result = fake.probe(s1, "198.18.0.12", timeout=MISS)
    assert not result.reachable  # no hairpinning switch out there
    assert any(hop.namespace == out for hop in result.trace)
    assert fake.probe(s1, OUTSIDE_IP).outcome == "echo-reply"


# --- l3 / l3s ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["l3", "l3s"])
def test_l3_routes_between_slaves_without_arp(fake: Kernel, mode: IpvlanMode) -> None:
    _, out = uplinked_host(fake)
    s1, _ = slaves(fake, mode)
    result = fake.probe(s1, "10.60.0.12", "tcp", 9)
    assert result.outcome == "rst"
    assert not any(hop.action in ("arp", "nd") for hop in result.trace)
    assert not any(hop.namespace == out for hop in result.trace)


@pytest.mark.parametrize("mode", ["l3", "l3s"])
def test_l3_parent_namespace_routes_and_the_world_needs_a_route_back(fake: Kernel, mode: IpvlanMode) -> None:
    host, out = uplinked_host(fake)
    (s1,) = slaves(fake, mode, count=1)
    lost = fake.probe(s1, OUTSIDE_IP, timeout=MISS)
    assert not lost.reachable
    assert any(hop.namespace == host and hop.action == "route" for hop in lost.trace)  # the host's table decided
    assert not fake.probe(out, "10.60.0.11", timeout=MISS).reachable
    fake.add_route(out, "10.60.0.0/24", via=HOST_IP)  # the upstream router's route Docker's docs ask for
    assert fake.probe(s1, OUTSIDE_IP).outcome == "echo-reply"
    assert fake.probe(out, "10.60.0.11").outcome == "echo-reply"
    assert not fake.probe(host, "10.60.0.11", timeout=MISS).reachable  # the parent still cannot


def test_l3_slaves_answer_no_arp(fake: Kernel) -> None:
    _, out = uplinked_host(fake)
    slaves(fake, "l3", count=1)
    fake.add_route(out, "10.60.0.0/24", dev="eth0", scope="link")  # on-link: the world ARPs for it
    result = fake.probe(out, "10.60.0.11", timeout=MISS)
    assert not result.reachable and dropped_because(result, "IFF_NOARP")


def test_l3_private_and_vepa_keep_siblings_apart(fake: Kernel) -> None:
    uplinked_host(fake)
    s1, _ = slaves(fake, "l3", "private")
    private = fake.probe(s1, "10.60.0.12", timeout=MISS)
    assert not private.reachable and dropped_because(private, "ipvlan private")
    fake.add_ipvlan(fake.ns("h"), "vepa", "eth0", "l3", "vepa")  # the port's flag, for every slave
    vepa = fake.probe(s1, "10.60.0.12", timeout=MISS)
    assert not vepa.reachable
    assert any(hop.action == "route" and "routed by" in hop.detail for hop in vepa.trace)


def test_l3_sends_no_broadcast(fake: Kernel) -> None:
    uplinked_host(fake)
    s1, _ = slaves(fake, "l3")
    result = fake.probe(s1, "10.60.0.255", timeout=MISS)
    assert not result.reachable
