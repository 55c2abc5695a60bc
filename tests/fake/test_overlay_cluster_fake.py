"""The cluster on the fake kernel: refusals, all-or-nothing network creation,
three hosts, and random connect/disconnect sequences checked against a model."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.overlay import OverlayDriver
from netsim.cluster import Cluster, underlay_address
from netsim.controller import IpamConfig, PoolConfig
from netsim.errors import ConflictError, InvalidParameterError, NotFoundError
from netsim.kernel.fake import FakeKernel
from netsim.probe import probe


def _overlay(cluster: Cluster, host: str) -> OverlayDriver:
    driver = cluster.controller(host).registry.driver("overlay").driver
    assert isinstance(driver, OverlayDriver)
    return driver


def _global_state(cluster: Cluster) -> tuple[Any, ...]:
    shared = cluster._shared_ipams.get("default")
    return (
        cluster.kernel.snapshot(),
        cluster.networks(),
        [(p.key, p.value) for p in cluster.global_store.list("")],
        shared.held() if shared else None,
        [[r["name"] for r in ctrl.records.networks()] for ctrl in cluster.controllers.values()],
    )


@pytest.mark.parametrize("hosts", [[], ["h1", "h1"], ["bad name"]])
def test_bad_host_lists_are_refused_before_anything_is_made(hosts: list[str]) -> None:
    kernel = FakeKernel()
    with pytest.raises(InvalidParameterError):
        Cluster(kernel, hosts)
    assert kernel.namespaces() == []


def test_network_refusals_change_nothing() -> None:
    with Cluster(FakeKernel(), ["h1", "h2"]) as cluster:
        cluster.create_network("ov")
        before = _global_state(cluster)
        with pytest.raises(ConflictError, match="exists already"):
            cluster.create_network("ov")
        with pytest.raises(InvalidParameterError, match="local scope"):
            cluster.create_network("br", driver="bridge")
        with pytest.raises(NotFoundError, match="not found"):
            cluster.create_network("x", driver="nope")
        with pytest.raises(InvalidParameterError, match="IpamConfig"):
            cluster.create_network("x", ipam="default")  # type: ignore[arg-type]
        with pytest.raises(NotFoundError, match="not found"):
            cluster.delete_network("missing")
        with pytest.raises(NotFoundError, match="not in the cluster"):
            cluster.connect("h9", "a", "ov")
        assert _global_state(cluster) == before


def test_one_id_one_vni_one_subnet_on_every_host() -> None:
    with Cluster(FakeKernel(), ["h1", "h2", "h3"]) as cluster:
        pool = PoolConfig(subnet="10.77.0.0/24")
        nid = cluster.create_network("ov", ipam=IpamConfig(pools=[pool]))
        records = [ctrl.records.network(nid) for ctrl in cluster.controllers.values()]
        assert {r["options"]["com.docker.network.driver.overlay.vxlanid_list"] for r in records} == {"4096"}
        assert {r["ipv4"][0]["data"]["Gateway"] for r in records} == {"10.77.0.1/24"}
        assert cluster.global_store.get(f"overlay/network/{nid}").value == "4096"
        addresses = [
            cluster.controller(h).records.endpoint(nid, cluster.connect(h, f"c{h}", "ov").id)["address"]
            for h in cluster.hosts
        ]
        assert addresses == ["10.77.0.2/24", "10.77.0.3/24", "10.77.0.4/24"]


def test_a_failure_on_the_second_host_undoes_the_first() -> None:
    kernel = FakeKernel()
    with Cluster(kernel, ["h1", "h2"]) as cluster:
        # Something on h2 already holds the VNI the network gets, on VXLAN's port.
        kernel.add_vxlan(cluster.controller("h2").host.namespace, "squatter", 4096)
        before = _global_state(cluster)
        with pytest.raises(ConflictError):
            cluster.create_network("ov")
        assert _global_state(cluster) == before
        kernel.delete_link(cluster.controller("h2").host.namespace, "squatter")
        cluster.create_network("ov")  # and the name, VNI and pool are free again


def test_delete_network_waits_for_every_host() -> None:
    with Cluster(FakeKernel(), ["h1", "h2"]) as cluster:
        cluster.create_network("ov")
        cluster.connect("h2", "b", "ov")
        before = _global_state(cluster)
        with pytest.raises(ConflictError, match="on host 'h2'"):
            cluster.delete_network("ov")
        assert _global_state(cluster) == before
        cluster.disconnect("h2", "b", "ov")
        cluster.delete_network("ov")
        assert cluster.global_store.list("overlay/") == [] and cluster.networks() == {}
        assert cluster._shared_ipams["default"].held() == (0, 0)


def test_three_hosts_reach_each_other_with_fdb_entries_per_peer_and_no_flood_list() -> None:
    kernel = FakeKernel()
    with Cluster(kernel, ["h1", "h2", "h3"]) as cluster:
        nid = cluster.create_network("ov")
        ips = {}
        for host in cluster.hosts:
            ep = cluster.connect(host, f"c-{host}", "ov")
            ips[host] = str(ipaddress.ip_interface(cluster.controller(host).records.endpoint(nid, ep.id)["address"]).ip)
        for src in cluster.hosts:
            for dst in cluster.hosts:
                if src != dst:
                    result = probe(kernel, cluster.sandbox_namespace(src, f"c-{src}"), ips[dst])
                    assert result.reachable, (src, dst, result.outcome)
        h3 = _overlay(cluster, "h3")
        h3_fdb = {(f.mac, f.dst) for f in kernel.fdb(h3.namespace_of(nid))}
        assert h3_fdb == {(p.mac, p.vtep) for p in h3.peers(nid).values()}
        assert {dst for _, dst in h3_fdb} == {underlay_address(0), underlay_address(1)}


HOSTS = ["h1", "h2", "h3"]
NETWORKS = ["n1", "n2"]
Op = tuple[str, str, str]  # host, container, network


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(HOSTS), st.sampled_from(["a", "b"]), st.sampled_from(NETWORKS)), max_size=14))
def test_peer_tables_follow_joins_on_the_other_hosts(ops: list[Op]) -> None:
    """Model: the set of joined (host, container, network). Each host's overlay
    peers for a network are exactly the endpoints joined on the other hosts,
    and its vxlan FDB holds their MACs; toggling = connect or disconnect."""
    kernel = FakeKernel()
    with Cluster(kernel, HOSTS) as cluster:
        ids = {name: cluster.create_network(name) for name in NETWORKS}
        joined: dict[tuple[str, str, str], str] = {}  # -> endpoint id
        for host, container, network in ops:
            key = (host, f"{container}-{network}", network)
            if key in joined:
                cluster.disconnect(host, key[1], network)
                del joined[key]
            else:
                joined[key] = cluster.connect(host, key[1], network).id
            for viewer in HOSTS:
                for name, nid in ids.items():
                    expected = {eid for (h, _, n), eid in joined.items() if n == name and h != viewer}
                    assert set(_overlay(cluster, viewer).peers(nid)) == expected
        assert cluster.bus.failures == []
    assert kernel.namespaces() == []
