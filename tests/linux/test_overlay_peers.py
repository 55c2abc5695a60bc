"""The overlay's peer table at work, on both kernels: ARP and ND for known
peers are answered by the VXLAN proxy on the local host (a capture of the
underlay carries no broadcast ARP and no neighbour solicitation), a host
joining late is handed the existing peers before its first packet, a host
leaving has its peers withdrawn everywhere, and IPv6 overlay subnets work."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path

import pytest
from scapy.layers.inet import ICMP
from scapy.layers.inet6 import ICMPv6EchoRequest, ICMPv6ND_NS
from scapy.layers.l2 import ARP, Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet
from scapy.utils import rdpcap

from drivers.overlay import OverlayDriver
from netsim.cluster import Cluster, underlay_address
from netsim.controller import Endpoint, IpamConfig, PoolConfig
from netsim.errors import ConflictError, UnavailableError
from netsim.kernel.base import Kernel
from netsim.probe import probe

MISS = 0.3


@pytest.fixture
def cluster(kernel: Kernel) -> Iterator[Cluster]:
    made = Cluster(kernel, ["h1", "h2"])
    try:
        yield made
    finally:
        made.close()


def _address(cluster: Cluster, host: str, ep: Endpoint, key: str = "address") -> str:
    return str(ipaddress.ip_interface(cluster.controller(host).records.endpoint(ep.network_id, ep.id)[key]).ip)


def _overlay(cluster: Cluster, host: str) -> OverlayDriver:
    driver = cluster.controller(host).registry.driver("overlay").driver
    assert isinstance(driver, OverlayDriver)
    return driver


def _underlay_ports(cluster: Cluster) -> list[str]:
    return [f"ul{cluster._index_of[host]}" for host in cluster.hosts]


def _tunnelled(path: Path) -> list[Packet]:
    """The inner frames of every VXLAN packet captured on the underlay."""
    return [frame[VXLAN].payload for frame in rdpcap(str(path)) if VXLAN in frame]


def _broadcast_or_solicitation(inner: Packet) -> bool:
    return ARP in inner or ICMPv6ND_NS in inner or (isinstance(inner, Ether) and inner.dst == "ff:ff:ff:ff:ff:ff")


def test_no_broadcast_arp_crosses_the_underlay_between_known_peers(
    kernel: Kernel, cluster: Cluster, tmp_path: Path
) -> None:
    cluster.create_network("ov")
    a = cluster.connect("h1", "a", "ov")
    b = cluster.connect("h2", "b", "ov")
    a_ns, b_ns = cluster.sandbox_namespace("h1", "a"), cluster.sandbox_namespace("h2", "b")
    path = tmp_path / "underlay.pcap"
    with kernel.capture(cluster.underlay_namespace, _underlay_ports(cluster), str(path)):
        there = probe(kernel, a_ns, _address(cluster, "h2", b))
        back = probe(kernel, b_ns, _address(cluster, "h1", a))
        nobody = probe(kernel, a_ns, "10.0.0.250", timeout=MISS)  # no such peer: the proxy consumes the ARP
    assert (there.reachable, back.reachable, nobody.reachable) == (True, True, False)
    inner = _tunnelled(path)
    assert sum(ICMP in frame for frame in inner) >= 4, "the echoes crossed the underlay in VXLAN"
    assert [frame.summary() for frame in inner if _broadcast_or_solicitation(frame)] == []
    # each container learned its peer's MAC from the proxy's answer
    assert b.id in _overlay(cluster, "h1").peers(a.network_id)
    assert cluster.bus.failures == []


def test_ipv6_overlay_neighbour_discovery_is_answered_from_the_peer_table(
    kernel: Kernel, cluster: Cluster, tmp_path: Path
) -> None:
    ipam = IpamConfig(pools=[PoolConfig(subnet="10.91.0.0/24")], pools_v6=[PoolConfig(subnet="fd00:91::/64")])
    cluster.create_network("ov6", ipam=ipam, ipv6=True)
    a = cluster.connect("h1", "a", "ov6")
    b = cluster.connect("h2", "b", "ov6")
    a6, b6 = _address(cluster, "h1", a, "address_ipv6"), _address(cluster, "h2", b, "address_ipv6")
    assert ipaddress.ip_address(b6).version == 6
    sandbox = _overlay(cluster, "h1").namespace_of(a.network_id)
    assert {(n.ip, n.dev) for n in kernel.neighbours(sandbox)} >= {
        (b6, "vxlan0"),
        (_address(cluster, "h2", b), "vxlan0"),
    }
    path = tmp_path / "underlay6.pcap"
    with kernel.capture(cluster.underlay_namespace, _underlay_ports(cluster), str(path)):
        there = probe(kernel, cluster.sandbox_namespace("h1", "a"), b6, timeout=3.0)
        back = probe(kernel, cluster.sandbox_namespace("h2", "b"), a6, timeout=3.0)
    assert (there.reachable, back.reachable) == (True, True), (there.outcome, back.outcome)
    inner = _tunnelled(path)
    assert any(ICMPv6EchoRequest in frame for frame in inner)
    assert [frame.summary() for frame in inner if _broadcast_or_solicitation(frame)] == []


def test_a_late_host_reaches_existing_containers_on_its_first_packet(
    kernel: Kernel, cluster: Cluster, tmp_path: Path
) -> None:
    nid = cluster.create_network("ov")
    a = cluster.connect("h1", "a", "ov")
    b = cluster.connect("h2", "b", "ov")
    a_ip, b_ip = _address(cluster, "h1", a), _address(cluster, "h2", b)
    cluster.add_host("h3")
    # networkdb's bulk sync: h3 has both peers before it runs any container
    assert {p.vtep for p in _overlay(cluster, "h3").peers(nid).values()} == {underlay_address(0), underlay_address(1)}
    c = cluster.connect("h3", "c", "ov")
    c_ns = cluster.sandbox_namespace("h3", "c")
    path = tmp_path / "late.pcap"
    with kernel.capture(cluster.underlay_namespace, _underlay_ports(cluster), str(path)):
        first = probe(kernel, c_ns, a_ip)  # one echo request: the first packet must get there
    assert first.reachable and first.outcome == "echo-reply", first.outcome
    assert [frame.summary() for frame in _tunnelled(path) if _broadcast_or_solicitation(frame)] == []
    assert probe(kernel, c_ns, b_ip).reachable
    assert probe(kernel, cluster.sandbox_namespace("h1", "a"), _address(cluster, "h3", c)).reachable
    assert cluster.bus.failures == []


def test_a_leaving_hosts_peers_are_withdrawn_everywhere(kernel: Kernel, cluster: Cluster) -> None:
    nid = cluster.create_network("ov")
    a = cluster.connect("h1", "a", "ov")
    b = cluster.connect("h2", "b", "ov")
    cluster.add_host("h3")
    c = cluster.connect("h3", "c", "ov")
    b_ip, b_mac = _address(cluster, "h2", b), str(cluster.controller("h2").records.endpoint(nid, b.id)["mac"])
    cluster.remove_host("h2")
    for host, other in (("h1", c), ("h3", a)):
        driver = _overlay(cluster, host)
        assert list(driver.peers(nid)) == [other.id]
        sandbox = driver.namespace_of(nid)
        assert b_ip not in {n.ip for n in kernel.neighbours(sandbox)}
        assert b_mac not in {f.mac for f in kernel.fdb(sandbox)}
    assert {e.origin for e in cluster.bus.entries(nid)} == {"h1", "h3"}
    assert not probe(kernel, cluster.sandbox_namespace("h1", "a"), b_ip, timeout=MISS).reachable
    assert probe(kernel, cluster.sandbox_namespace("h1", "a"), _address(cluster, "h3", c)).reachable
    assert cluster.hosts == ["h1", "h3"]
    with pytest.raises(ConflictError, match="address allocation"):
        cluster.remove_host("h1")
    # the index h2 left is taken again by the next host, with its underlay address
    cluster.add_host("h4")
    assert cluster._index_of["h4"] == 1
    assert probe(
        kernel, cluster.sandbox_namespace("h1", "a"), _address(cluster, "h4", cluster.connect("h4", "d", "ov"))
    )
    assert cluster.bus.failures == []


def test_membership_changes_leave_the_kernel_as_it_was(kernel: Kernel) -> None:
    before = kernel.snapshot()
    with Cluster(kernel, ["h1", "h2"]) as cluster:
        cluster.create_network("ov")
        cluster.connect("h1", "a", "ov")
        cluster.add_host("h3")
        cluster.connect("h3", "c", "ov")
        cluster.add_host("h4")
        cluster.remove_host("h3")
        with pytest.raises(ConflictError, match="already in the cluster"):
            cluster.add_host("h4")
    assert kernel.snapshot() == before
    assert kernel.namespaces() == []


def test_encrypted_overlay_is_refused_on_every_kernel(kernel: Kernel, cluster: Cluster) -> None:
    before = kernel.snapshot()
    with pytest.raises(UnavailableError, match="ESP"):
        cluster.create_network("secret", options={"encrypted": ""})
    assert kernel.snapshot() == before and cluster.networks() == {}
