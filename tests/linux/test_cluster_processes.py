"""Hosts as separate processes on the real kernel, sharing a global store
(etcd, ZooKeeper, or one sqlite file): a global network made on one host is
usable on every other, addresses never collide, overlay peers travel
through the store's watch, and a host that gets the network late catches up."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from netsim.cluster.process import ProcessCluster
from netsim.controller import IpamConfig, PoolConfig
from netsim.errors import ConflictError, InvalidParameterError
from netsim.kernel.base import Kernel
from netsim.safety import namespaces_with_prefix
from netsim.store import open_store

pytestmark = pytest.mark.linux


@pytest.mark.parametrize("backend", ["etcd", "zk", "sqlite"])
def test_overlay_across_host_processes(
    backend: str, server_store_url: Callable[[str], str], netsim_kernel_factory: Callable[[str], Kernel]
) -> None:
    kernel = netsim_kernel_factory("linux")
    url = server_store_url(backend)
    with ProcessCluster(["h1", "h2", "h3"], url, kernel=kernel) as cluster:
        cluster.create_network("ov", ipam=IpamConfig(pools=[PoolConfig(subnet="10.77.0.0/24")]))
        with pytest.raises(ConflictError):
            cluster.create_network("ov")
        a = cluster.connect("h1", "a", "ov")
        b = cluster.connect("h2", "b", "ov")
        assert a["address"] != b["address"]
        cluster.listen("h2", "b", "tcp", 80)
        b_ip = b["address"].split("/")[0]
        assert cluster.probe("h1", "a", b_ip)["reachable"]
        assert cluster.probe("h1", "a", b_ip, "tcp", 80)["outcome"] == "syn-ack"
        # h3 got the network at creation but no container until now; its
        # container reaches both earlier ones (it caught up on their peers).
        c = cluster.connect("h3", "c", "ov")
        assert len({a["address"], b["address"], c["address"]}) == 3
        assert cluster.probe("h3", "c", a["address"].split("/")[0])["reachable"]
        assert cluster.probe("h3", "c", b_ip)["reachable"]
        # The peer entries are in the global store, one per joined endpoint.
        store = open_store(url)
        try:
            assert len([p for p in store.list("cluster/table/") if "/overlay_peer_table/" in p.key]) == 3
        finally:
            store.close()
        cluster.disconnect("h2", "b", "ov")
        assert not cluster.probe("h1", "a", b_ip)["reachable"]
        with pytest.raises(ConflictError, match="endpoint"):
            cluster.delete_network("ov")
    assert namespaces_with_prefix(f"netsim-{kernel.run_id[:9]}h") == []
    store = open_store(url)
    try:
        # Everything global went with the cluster: no definitions, peers, pools or VNIs left.
        assert [p.key for p in store.list("")] == []
    finally:
        store.close()


def test_processes_refuse_what_cannot_work(netsim_kernel_factory: Callable[[str], Kernel]) -> None:
    fake = netsim_kernel_factory("fake")
    with pytest.raises(InvalidParameterError, match="real kernel"):
        ProcessCluster(["h1", "h2"], "sqlite:///tmp/x.db", kernel=fake)
    with pytest.raises(InvalidParameterError, match="global store"):
        ProcessCluster(["h1", "h2"], "memory://", kernel=fake)


def test_a_host_process_joining_late_gets_networks_and_peers_from_the_store(
    server_store_url: Callable[[str], str], netsim_kernel_factory: Callable[[str], Kernel]
) -> None:
    """The global store carries what the in-process bus carries: a host
    started after the network and its containers exist gets the network from
    its definition and the peers from the table entries, so its container's
    first probe arrives; a host leaving takes its peers with it."""
    kernel = netsim_kernel_factory("linux")
    url = server_store_url("sqlite")
    with ProcessCluster(["h1", "h2"], url, kernel=kernel) as cluster:
        cluster.create_network("ov", ipam=IpamConfig(pools=[PoolConfig(subnet="10.78.0.0/24")]))
        a = cluster.connect("h1", "a", "ov")
        b = cluster.connect("h2", "b", "ov")
        cluster.add_host("h3")
        with pytest.raises(ConflictError, match="already"):
            cluster.add_host("h3")
        c = cluster.connect("h3", "c", "ov")
        a_ip, b_ip = a["address"].split("/")[0], b["address"].split("/")[0]
        first = cluster.probe("h3", "c", a_ip)
        assert first["reachable"] and first["outcome"] == "echo-reply"
        assert cluster.probe("h1", "a", c["address"].split("/")[0])["reachable"]
        cluster.remove_host("h2")
        assert not cluster.probe("h3", "c", b_ip)["reachable"]
        assert cluster.probe("h3", "c", a_ip)["reachable"]
        store = open_store(url)
        try:
            assert len([p for p in store.list("cluster/table/") if "/overlay_peer_table/" in p.key]) == 2
        finally:
            store.close()
    assert namespaces_with_prefix(f"netsim-{kernel.run_id[:9]}h") == []
