"""Macvlan on a ``parent.VLAN`` (an 802.1q sub-interface the driver creates) on
the fake kernel, which models 802.1q (this machine's real kernel has no 8021q,
so tests/linux/test_driver_macvlan.py skips these there): siblings on the
sub-interface reach each other, and a restarted controller keeps the
sub-interface, every container's link on it and the reachability between them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from drivers import macvlan
from netsim import netlabel
from netsim.controller import Controller, ControllerConfig, Endpoint, IpamConfig, PoolConfig
from netsim.controller.testing import ensure_default_ipam
from netsim.kernel.base import Kernel, Listener
from netsim.probe import probe
from netsim.store import KVStore, MemoryStore

POOL = PoolConfig(subnet="10.71.0.0/24", gateway="10.71.0.1")


@pytest.fixture
def ctrl(netsim_kernel_factory: Callable[[str], Kernel]) -> Iterator[Controller]:
    controller = Controller(netsim_kernel_factory("fake"), ControllerConfig(host="h1"))
    ensure_default_ipam(controller)
    try:
        yield controller
    finally:
        controller.close()


def vlan_network(ctrl: Controller, name: str = "v10", parent: str = "eth0.10", pool: PoolConfig = POOL) -> None:
    ctrl.create_network(name, "macvlan", {netlabel.MACVLAN_PARENT: parent}, ipam=IpamConfig(pools=[pool]))


def host_links(ctrl: Controller) -> list[str]:
    return sorted(link.name for link in ctrl.kernel.links(ctrl.host.namespace))


def ip_of(endpoint: Endpoint) -> str:
    assert endpoint.address is not None
    return str(endpoint.address.ip)


def assert_siblings_reach_each_other(ctrl: Controller, a: Endpoint, b: Endpoint) -> None:
    ns_a, ns_b = ctrl.sandbox("a").namespace, ctrl.sandbox("b").namespace
    assert probe(ctrl.kernel, ns_a, ip_of(b)).reachable
    assert probe(ctrl.kernel, ns_b, ip_of(a)).reachable
    ctrl.kernel.add_listener(ns_b, Listener("tcp", 8080))
    try:
        assert probe(ctrl.kernel, ns_a, ip_of(b), proto="tcp", port=8080).reachable
    finally:
        ctrl.kernel.delete_listener(ns_b, Listener("tcp", 8080))


# --- the dataplane: siblings on a VLAN parent ----------------------------------------------------


def test_siblings_on_a_vlan_parent_resolve_and_reach_each_other(ctrl: Controller) -> None:
    """The ARP broadcast a sibling sends goes both to its siblings and out through the
    VLAN parent, whose tagging rewrites the frame it transmits: each receiver must
    get a frame of its own (before the fix the siblings got an emptied one)."""
    vlan_network(ctrl)
    a = ctrl.connect("a", "v10")
    b = ctrl.connect("b", "v10")
    assert_siblings_reach_each_other(ctrl, a, b)
    ns_a = ctrl.sandbox("a").namespace
    learned = {(n.dev, n.ip, n.mac) for n in ctrl.kernel.neighbours(ns_a) if not n.permanent}
    assert ("eth0", ip_of(b), b.mac) in learned


def test_a_broadcast_on_the_wire_reaches_every_macvlan_and_the_vlan_parent(ctrl: Controller) -> None:
    """A broadcast arriving tagged on the base link is untagged once, then shared by
    every macvlan of the VLAN parent and the parent's own stack: the host's
    address on eth0.10 and both containers answer a neighbour on VLAN 10."""
    kernel, host = ctrl.kernel, ctrl.host.namespace
    vlan_network(ctrl)
    a = ctrl.connect("a", "v10")
    b = ctrl.connect("b", "v10")
    # a neighbour on VLAN 10 in the outside namespace, and an address for the host on it
    outside = ctrl.host.outside_namespace
    peer = next(link.name for link in kernel.links(outside) if link.kind == "veth")
    kernel.add_vlan(outside, "wire.10", peer, 10)
    kernel.set_link_up(outside, "wire.10")
    kernel.add_address(outside, "wire.10", "10.71.0.250/24")
    kernel.add_address(host, "eth0.10", "10.71.0.251/24")
    for target in (ip_of(a), ip_of(b), "10.71.0.251"):
        assert probe(kernel, outside, target).reachable, target
    assert_siblings_reach_each_other(ctrl, a, b)


# --- the driver: the VLAN parent survives a restart ----------------------------------------------


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_restart_keeps_the_vlan_parent_and_the_containers_links(
    netsim_kernel_factory: Callable[[str], Kernel], backend: str, tmp_path: Path
) -> None:
    """The driver's store says which VLAN parents it created (libnetwork's
    CreatedSlaveLink), so the replayed network claims eth0.10 again; without it the
    recovery swept eth0.10 as owned by nobody, and every container's macvlan went
    with it. Deleting the networks afterwards still removes it, with the last one."""
    kernel = netsim_kernel_factory("fake")
    before = kernel.snapshot()
    store: KVStore | str = MemoryStore() if backend == "memory" else f"sqlite:///{tmp_path}/h1.db"

    def restarted() -> Controller:
        return Controller(kernel, ControllerConfig(local_store=store, entry_points=False))

    old = restarted()
    vlan_network(old)
    vlan_network(old, "v10b", pool=PoolConfig(subnet="10.73.0.0/24"))
    a = old.connect("a", "v10")
    b = old.connect("b", "v10")
    old.connect("c", "v10b")
    assert "eth0.10" in host_links(old)
    new = restarted()  # the old one died
    last = new
    try:
        assert new.recovery is not None and new.recovery.clean, new.recovery
        assert "eth0.10" in host_links(new)
        for container in ("a", "b", "c"):
            link = new.kernel.link(new.sandbox(container).namespace, "eth0")
            assert link.kind == "macvlan" and link.parent == "eth0.10"
        assert_siblings_reach_each_other(new, a, b)
        new.disconnect("a", "v10")
        new.disconnect("b", "v10")
        new.delete_network("v10")
        assert "eth0.10" in host_links(new)  # still used by v10b
        # the new one dies too: the network left still knows the parent is the driver's
        last = restarted()
        assert last.recovery is not None and last.recovery.clean, last.recovery
        last.disconnect("c", "v10b")
        last.delete_network("v10b")
        assert "eth0.10" not in host_links(last)
        assert last.store.list(macvlan.CREATED_PARENT_KEY) == []
    finally:
        last.close()
    assert kernel.snapshot() == before


def test_a_vlan_parent_it_did_not_create_is_not_recorded(netsim_kernel_factory: Callable[[str], Kernel]) -> None:
    """A sub-interface that was there before the network is not the driver's: the
    store does not claim it, and deleting the network leaves it."""
    kernel = netsim_kernel_factory("fake")
    store = MemoryStore()
    ctrl = Controller(kernel, ControllerConfig(store=store, entry_points=False))
    try:
        kernel.add_vlan(ctrl.host.namespace, "eth0.20", "eth0", 20)
        kernel.set_link_up(ctrl.host.namespace, "eth0.20")
        vlan_network(ctrl, "v20", parent="eth0.20")
        assert store.list(macvlan.CREATED_PARENT_KEY) == []
        ctrl.delete_network("v20")
        assert "eth0.20" in host_links(ctrl)
    finally:
        ctrl.close()


def test_restart_after_the_vlan_parent_was_lost_removes_every_network_on_it(
    netsim_kernel_factory: Callable[[str], Kernel],
) -> None:
    """eth0.10 deleted while the controller was down took every container's macvlan
    with it: each network on it is broken (not only the first one replayed, which
    alone would recreate it otherwise), and the recovery removes them all with their
    endpoints and the driver's records."""
    kernel = netsim_kernel_factory("fake")
    store = MemoryStore()
    old = Controller(kernel, ControllerConfig(store=store, entry_points=False))
    vlan_network(old)
    vlan_network(old, "v10b", pool=PoolConfig(subnet="10.73.0.0/24"))
    old.connect("a", "v10")
    old.connect("c", "v10b")
    kernel.delete_link(old.host.namespace, "eth0.10")
    new = Controller(kernel, ControllerConfig(store=store, entry_points=False))  # the old one died
    try:
        assert new.recovery is not None
        removed = "\n".join(new.recovery.removed)
        assert "network 'v10'" in removed and "network 'v10b'" in removed, removed
        assert new.networks() == [] and "eth0.10" not in host_links(new)
        assert store.list(macvlan.CREATED_PARENT_KEY) == []
        vlan_network(new)  # the driver makes it again
        assert "eth0.10" in host_links(new)
        new.delete_network("v10")
        assert "eth0.10" not in host_links(new)
    finally:
        new.close()
