"""Egress for overlay containers through ``docker_gwbridge``, on both kernels
(libnetwork's default gateway): a second interface, the default route, egress
masqueraded behind the host, published ports answering from outside; none of
it for internal overlays or containers that have a gateway already; gone
with the last container that needed it."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import pytest

from netsim.cluster import Cluster
from netsim.controller import Controller, Endpoint
from netsim.controller.default_gateway import GW_NETWORK
from netsim.kernel.base import Kernel, Listener, Masquerade
from netsim.netlabel import PortBinding
from netsim.probe import probe

MISS = 0.3


@pytest.fixture
def cluster(kernel: Kernel) -> Iterator[Cluster]:
    made = Cluster(kernel, ["h1", "h2"])
    try:
        yield made
    finally:
        made.close()


def _gw_endpoints(ctrl: Controller) -> list[str]:
    nid = ctrl.records.lookup_name("network", GW_NETWORK)
    return [] if nid is None else sorted(e["name"] for e in ctrl.records.endpoints(nid))


def _address(cluster: Cluster, host: str, ep: Endpoint) -> str:
    return str(ipaddress.ip_interface(cluster.controller(host).records.endpoint(ep.network_id, ep.id)["address"]).ip)


def test_an_overlay_container_gets_egress_and_published_ports_through_docker_gwbridge(
    kernel: Kernel, cluster: Cluster
) -> None:
    cluster.create_network("ov")
    a = cluster.connect("h1", "a", "ov", ports=[PortBinding("tcp", 80, 8080)])
    b = cluster.connect("h2", "b", "ov")
    h1 = cluster.controller("h1")
    ns = cluster.sandbox_namespace("h1", "a")
    assert [link.name for link in kernel.links(ns)] == ["eth0", "eth1", "lo"]
    sandbox = h1.records.sandbox(h1.records.lookup_name("sandbox", "a"))
    assert _gw_endpoints(h1) == [f"gateway_{sandbox['id'][:12]}"]
    gw_link = kernel.link(h1.host.namespace, GW_NETWORK)
    assert gw_link.kind == "bridge"
    [default] = [r for r in kernel.routes(ns) if r.dst == "default"]
    assert default.dev == "eth1"
    gw_subnet = str(
        ipaddress.ip_interface(next(c for d, c in kernel.addresses(h1.host.namespace) if d == GW_NETWORK)).network
    )
    assert Masquerade(src=gw_subnet, not_out_iface=GW_NETWORK) in kernel.rules(h1.host.namespace)
    # egress: the world answers the host's address (masqueraded)
    out = probe(kernel, ns, h1.host.outside_address)
    assert out.reachable and out.outcome == "echo-reply"
    # the published port answers from outside, on the host's address
    kernel.add_listener(ns, Listener("tcp", 80))
    published = probe(kernel, h1.host.outside_namespace, h1.host.host_ip, "tcp", 8080)
    assert published.reachable and published.outcome == "syn-ack"
    # the overlay still carries container to container
    assert probe(kernel, ns, _address(cluster, "h2", b)).reachable
    # ICC is off on docker_gwbridge: two containers of one host do not meet there
    cluster.connect("h1", "c", "ov")
    gw_nid = h1.records.lookup_name("network", GW_NETWORK)
    c_gw = next(e for e in h1.records.endpoints(gw_nid) if e["name"] != f"gateway_{sandbox['id'][:12]}")
    assert not probe(kernel, ns, c_gw["address"].split("/")[0], timeout=MISS).reachable
    assert a.network_id == cluster.network_id("ov")


def test_no_gateway_endpoint_for_internal_overlays_or_containers_with_a_gateway(
    kernel: Kernel, cluster: Cluster
) -> None:
    cluster.create_network("sealed", internal=True)
    cluster.create_network("ov")
    h1 = cluster.controller("h1")
    cluster.connect("h1", "x", "sealed")
    assert _gw_endpoints(h1) == [] and [link.name for link in kernel.links(cluster.sandbox_namespace("h1", "x"))] == [
        "eth0",
        "lo",
    ]
    # a bridge network brings a gateway: the later overlay endpoint needs none
    h1.create_network("front", "bridge")
    h1.connect("w", "front")
    cluster.connect("h1", "w", "ov")
    assert _gw_endpoints(h1) == []
    # the other way round: an overlay first, then a bridge -> the gateway endpoint goes
    cluster.connect("h1", "y", "ov")
    assert len(_gw_endpoints(h1)) == 1
    front = h1.connect("y", "front")
    assert _gw_endpoints(h1) == [] and GW_NETWORK not in [n.name for n in h1.networks()]
    [default] = [r for r in kernel.routes(cluster.sandbox_namespace("h1", "y")) if r.dst == "default"]
    assert default.dev == h1.records.endpoint(front.network_id, front.id)["iface"]  # front's gateway now


def test_the_gateway_goes_with_the_last_container_that_needed_it(kernel: Kernel, cluster: Cluster) -> None:
    before = kernel.snapshot()
    cluster.create_network("ov")
    h1 = cluster.controller("h1")
    ov_only = kernel.snapshot()
    cluster.connect("h1", "a", "ov")
    cluster.connect("h1", "b", "ov")
    cluster.disconnect("h1", "a", "ov")
    assert len(_gw_endpoints(h1)) == 1
    cluster.disconnect("h1", "b", "ov")
    h1.delete_sandbox("a")
    h1.delete_sandbox("b")
    assert _gw_endpoints(h1) == [] and GW_NETWORK not in [n.name for n in h1.networks()]
    assert kernel.snapshot() == ov_only
    cluster.delete_network("ov")
    assert kernel.snapshot() == before
