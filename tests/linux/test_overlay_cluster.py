"""A two-host cluster with the overlay driver, on both kernels: containers on
different hosts share an overlay network through VXLAN over the underlay,
separate overlays stay apart, leave withdraws peers, teardown leaves nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from drivers.overlay import OverlayDriver
from drivers.overlay.driver import VXLANID_LIST
from drivers.overlay.peers import PEER_TABLE
from netsim.cluster import Cluster, underlay_address
from netsim.controller import Endpoint
from netsim.kernel.base import Kernel, Listener
from netsim.probe import probe

MISS = 0.3


@pytest.fixture
def cluster(kernel: Kernel) -> Iterator[Cluster]:
    made = Cluster(kernel, ["h1", "h2"])
    try:
        yield made
    finally:
        made.close()


def _ip(cluster: Cluster, host: str, ep: Endpoint) -> str:
    address = cluster.controller(host).records.endpoint(ep.network_id, ep.id)["address"]
    return str(address).split("/")[0]


def _mac(cluster: Cluster, host: str, ep: Endpoint) -> str:
    return str(cluster.controller(host).records.endpoint(ep.network_id, ep.id)["mac"])


def test_containers_on_different_hosts_reach_each_other(kernel: Kernel, cluster: Cluster) -> None:
    cluster.create_network("ov")
    a = cluster.connect("h1", "a", "ov")
    b = cluster.connect("h2", "b", "ov")
    a_ns, b_ns = cluster.sandbox_namespace("h1", "a"), cluster.sandbox_namespace("h2", "b")
    assert _ip(cluster, "h1", a) != _ip(cluster, "h2", b), "one IPAM allocation: no address twice"
    there = probe(kernel, a_ns, _ip(cluster, "h2", b))
    back = probe(kernel, b_ns, _ip(cluster, "h1", a))
    assert (there.reachable, back.reachable) == (True, True), (there.outcome, back.outcome)
    kernel.add_listener(b_ns, Listener("tcp", 8080))
    tcp = probe(kernel, a_ns, _ip(cluster, "h2", b), "tcp", 8080)
    assert tcp.reachable and tcp.outcome == "syn-ack"
    closed = probe(kernel, a_ns, _ip(cluster, "h2", b), "tcp", 8081, timeout=MISS)
    assert not closed.reachable and closed.outcome == "rst"


def _sandbox(cluster: Cluster, host: str, nid: str) -> str:
    driver = cluster.controller(host).registry.driver("overlay").driver
    assert isinstance(driver, OverlayDriver)
    return driver.namespace_of(nid)


def test_the_tunnel_is_vxlan_from_each_hosts_underlay_address(kernel: Kernel, cluster: Cluster) -> None:
    """libnetwork's layout: per network and host, a namespace with br0 and
    vxlan0 (learning, proxy, l2miss, l3miss), the tunnel on the host's underlay."""
    nid = cluster.create_network("ov")
    vni = int(cluster.controller("h1").records.network(nid)["options"][VXLANID_LIST])
    for index, host in enumerate(cluster.hosts):
        ns = _sandbox(cluster, host, nid)
        vxlan = kernel.link(ns, "vxlan0")
        assert vxlan.kind == "vxlan" and vxlan.master == "br0" and kernel.link(ns, "br0").kind == "bridge"
        assert vxlan.attrs["vni"] == vni and vxlan.attrs["dstport"] == 4789
        assert {k: vxlan.attrs[k] for k in ("learning", "proxy", "l2miss", "l3miss")} == dict.fromkeys(
            ("learning", "proxy", "l2miss", "l3miss"), True
        )
        assert vxlan.attrs["local"] == underlay_address(index) and vxlan.parent == "eth1"


def test_separate_overlays_do_not_reach_each_other(kernel: Kernel, cluster: Cluster) -> None:
    cluster.create_network("blue")
    cluster.create_network("red")
    a = cluster.connect("h1", "a", "blue")
    cluster.connect("h2", "b", "blue")
    x = cluster.connect("h2", "x", "red")
    a_ns, x_ns = cluster.sandbox_namespace("h1", "a"), cluster.sandbox_namespace("h2", "x")
    assert not probe(kernel, a_ns, _ip(cluster, "h2", x), timeout=MISS).reachable
    assert not probe(kernel, x_ns, _ip(cluster, "h1", a), timeout=MISS).reachable
    # The red host learned nothing about blue's endpoints, and vice versa.
    red, blue = cluster.network_id("red"), cluster.network_id("blue")
    h1_overlay = cluster.controller("h1").registry.driver("overlay").driver
    assert isinstance(h1_overlay, OverlayDriver)
    assert [str(p.address.ip) for p in h1_overlay.peers(red).values()] == [_ip(cluster, "h2", x)]
    assert _ip(cluster, "h2", x) not in [str(p.address.ip) for p in h1_overlay.peers(blue).values()]


def _programmed(kernel: Kernel, cluster: Cluster, host: str, nid: str) -> dict[str, Any]:
    ns = _sandbox(cluster, host, nid)
    return {
        "fdb": {(f.mac, f.dst) for f in kernel.fdb(ns) if f.dev == "vxlan0"},
        "neighbours": {(n.ip, n.mac) for n in kernel.neighbours(ns) if n.dev == "vxlan0"},
    }


def test_leave_removes_the_peer_on_the_other_host(kernel: Kernel, cluster: Cluster) -> None:
    cluster.create_network("ov")
    a = cluster.connect("h1", "a", "ov")
    b = cluster.connect("h2", "b", "ov")
    a_ip, a_mac = _ip(cluster, "h1", a), _mac(cluster, "h1", a)
    nid = a.network_id
    on_h2 = _programmed(kernel, cluster, "h2", nid)
    assert on_h2["fdb"] == {(a_mac, underlay_address(0))}  # no flood entry: the proxy answers ARP
    assert on_h2["neighbours"] == {(a_ip, a_mac)}
    b_ns = cluster.sandbox_namespace("h2", "b")
    cluster.disconnect("h1", "a", "ov")
    assert _programmed(kernel, cluster, "h2", nid) == {"fdb": set(), "neighbours": set()}
    assert [e.origin for e in cluster.bus.entries(a.network_id) if e.table == PEER_TABLE] == ["h2"]
    assert not probe(kernel, b_ns, a_ip, timeout=MISS).reachable
    # h1 still knows b: its peer stays until b leaves.
    assert _programmed(kernel, cluster, "h1", nid)["neighbours"] == {(_ip(cluster, "h2", b), _mac(cluster, "h2", b))}
    assert cluster.bus.failures == []


def test_peer_entries_decode_like_network_inspect_verbose(cluster: Cluster) -> None:
    cluster.create_network("ov")
    a = cluster.connect("h1", "a", "ov")
    b = cluster.connect("h2", "b", "ov")
    decoded = {key: (entry.origin, fields) for entry, key, fields in cluster.peer_entries("ov")}
    assert decoded == {
        a.id: ("h1", {"Host IP": underlay_address(0)}),
        b.id: ("h2", {"Host IP": underlay_address(1)}),
    }


def test_teardown_leaves_the_kernel_as_it_was(kernel: Kernel) -> None:
    before = kernel.snapshot()
    cluster = Cluster(kernel, ["h1", "h2"])
    try:
        cluster.create_network("ov")
        cluster.connect("h1", "a", "ov")
        cluster.connect("h2", "b", "ov")
        assert kernel.snapshot() != before
    finally:
        cluster.close()
    assert kernel.snapshot() == before
    assert kernel.namespaces() == []
    cluster.close()  # idempotent


def test_reconnecting_restores_the_path(kernel: Kernel, cluster: Cluster) -> None:
    cluster.create_network("ov")
    cluster.connect("h1", "a", "ov")
    b = cluster.connect("h2", "b", "ov")
    b_ip = _ip(cluster, "h2", b)
    a_ns = cluster.sandbox_namespace("h1", "a")
    cluster.disconnect("h2", "b", "ov")
    assert not probe(kernel, a_ns, b_ip, timeout=MISS).reachable
    again = cluster.connect("h2", "b", "ov", ipv4=b_ip)
    assert _ip(cluster, "h2", again) == b_ip
    assert probe(kernel, a_ns, b_ip).reachable
    assert cluster.bus.failures == []
