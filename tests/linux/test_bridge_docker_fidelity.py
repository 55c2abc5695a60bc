"""Bridge behaviours checked against Docker's source, on both kernels (issue 14).

Hairpin to a published port with the userland proxy on and off
(moby daemon/libnetwork/drivers/bridge/internal/iptabler/testdata/TestIptabler
goldens ``hairpin=false`` / ``hairpin=true``), ICC off dropping IP but not ARP,
the driver's own configuration (EnableUserlandProxy, EnableIPTables,
EnableIPForwarding) and the network options of ``labels.go``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from drivers.bridge.options import (
    CONTAINER_IFACE_PREFIX,
    DEFAULT_BRIDGE,
    GATEWAY_MODE_IPV4,
    GATEWAY_MODE_IPV6,
    INHIBIT_IPV4,
    TRUSTED_HOST_INTERFACES,
)
from netsim import netlabel
from netsim.controller import Controller, ControllerConfig, Endpoint, IpamConfig, Network, PoolConfig, PortBinding
from netsim.controller.testing import ensure_default_ipam
from netsim.errors import InvalidParameterError
from netsim.kernel.base import Dnat, Filter, Kernel, Listener, Masquerade
from netsim.probe import probe

MISS = 0.3


def controller(kernel: Kernel, **bridge_options: Any) -> Controller:
    ctrl = Controller(kernel, ControllerConfig(host="h1", driver_options={"bridge": bridge_options}))
    ensure_default_ipam(ctrl)
    return ctrl


@pytest.fixture
def make(kernel: Kernel) -> Iterator[Any]:
    made: list[Controller] = []

    def build(**bridge_options: Any) -> Controller:
        made.append(controller(kernel, **bridge_options))
        return made[-1]

    try:
        yield build
    finally:
        for ctrl in made:
            ctrl.close()


def bridge_net(ctrl: Controller, name: str, subnet: str, **options: str) -> Network:
    return ctrl.create_network(name, "bridge", options=options, ipam=IpamConfig(pools=[PoolConfig(subnet=subnet)]))


def ip_of(ep: Endpoint) -> str:
    assert ep.address is not None
    return str(ep.address.ip)


def outcome(
    ctrl: Controller, src: str, dst: str, proto: str = "icmp", port: int | None = None, wait: float = 2.0
) -> str:
    return probe(ctrl.kernel, src, dst, proto, port, timeout=wait).outcome


def web_and_peer(ctrl: Controller, **options: str) -> tuple[Network, Endpoint]:
    net = bridge_net(ctrl, "front", "10.80.0.0/24", **options)
    web = ctrl.connect("web", "front", ports=[PortBinding("tcp", 80, 8080), PortBinding("udp", 53, 5353)])
    ctrl.connect("peer", "front")
    ns_web = ctrl.sandbox("web").namespace
    ctrl.kernel.add_listener(ns_web, Listener("tcp", 80))
    ctrl.kernel.add_listener(ns_web, Listener("udp", 53))
    return net, web


# --- hairpin -------------------------------------------------------------------------------------


@pytest.mark.parametrize("proxy", [True, False], ids=["userland-proxy", "hairpin-nat"])
def test_containers_reach_their_hosts_published_ports(make: Any, proxy: bool) -> None:
    """Failed before with both modes: the DNAT answer bypassed the host."""
    ctrl = make(userland_proxy=proxy)
    net, web = web_and_peer(ctrl)
    bridge, host_ip = f"br-{net.id[:12]}", ctrl.host.host_ip
    rules = ctrl.kernel.rules(ctrl.host.namespace)
    dnat = Dnat("tcp", 8080, ip_of(web), 80, not_in_iface=bridge if proxy else None)
    assert dnat in rules
    hairpin_masquerade = Masquerade(src="10.80.0.0/24", out_iface=bridge)
    assert (hairpin_masquerade in rules) is not proxy
    proxies = ctrl.kernel.listeners(ctrl.host.namespace)
    docker_proxies = [
        Listener("tcp", 8080, forward_to=(ip_of(web), 80)),
        Listener("udp", 5353, forward_to=(ip_of(web), 53)),
    ]
    assert proxies == (docker_proxies if proxy else [])
    for src in ("peer", "web"):  # a neighbour on the same bridge, and the publisher itself
        ns = ctrl.sandbox(src).namespace
        assert outcome(ctrl, ns, host_ip, "tcp", 8080) == "syn-ack", src
        assert outcome(ctrl, ns, host_ip, "udp", 5353) == "udp-reply", src
    assert outcome(ctrl, ctrl.host.outside_namespace, host_ip, "tcp", 8080) == "syn-ack"
    # Revoking removes the docker-proxy with the DNAT.
    ctrl.disconnect("web", "front")
    assert ctrl.kernel.listeners(ctrl.host.namespace) == []
    assert outcome(ctrl, ctrl.sandbox("peer").namespace, host_ip, "tcp", 8080, MISS) != "syn-ack"


@pytest.mark.parametrize("proxy", [True, False], ids=["userland-proxy", "hairpin-nat"])
def test_udp_hairpin_needs_the_container_to_answer(make: Any, proxy: bool) -> None:
    """docker-proxy relays a datagram and sends back only the container's answer."""
    ctrl = make(userland_proxy=proxy)
    web_and_peer(ctrl)
    ctrl.kernel.delete_listener(ctrl.sandbox("web").namespace, Listener("udp", 53))
    peer = ctrl.sandbox("peer").namespace
    assert outcome(ctrl, peer, ctrl.host.host_ip, "udp", 5353, 1.5) != "udp-reply"


@pytest.mark.parametrize("proxy", [True, False], ids=["userland-proxy", "hairpin-nat"])
def test_icc_off_and_hairpin(make: Any, proxy: bool) -> None:
    """ICC off: Docker's ``-i BR -o BR -j DROP`` also drops hairpin NAT between two
    containers; the userland proxy connects from the host, which ICC allows."""
    ctrl = make(userland_proxy=proxy)
    web_and_peer(ctrl, **{netlabel.BRIDGE_ENABLE_ICC: "false"})
    peer = ctrl.sandbox("peer").namespace
    got = outcome(ctrl, peer, ctrl.host.host_ip, "tcp", 8080, 2.0 if proxy else MISS)
    assert (got == "syn-ack") is proxy


def test_icc_off_drops_ip_not_arp(make: Any) -> None:
    """iptables never sees ARP: with ICC off two containers still resolve each
    other (failed before: netsim's bridge filter dropped ARP too)."""
    ctrl = make()
    bridge_net(ctrl, "quiet", "10.81.0.0/24", **{netlabel.BRIDGE_ENABLE_ICC: "false"})
    ctrl.connect("a", "quiet")
    b = ctrl.connect("b", "quiet")
    ns_a = ctrl.sandbox("a").namespace
    assert outcome(ctrl, ns_a, ip_of(b), wait=MISS) == "timeout"
    assert outcome(ctrl, ns_a, ip_of(b), "udp", 53, MISS) == "timeout"
    assert (ip_of(b), b.mac) in {(n.ip, n.mac) for n in ctrl.kernel.neighbours(ns_a)}


# --- the driver's own configuration ------------------------------------------------------------


def test_iptables_disabled_writes_no_rule_and_the_proxy_still_serves(make: Any) -> None:
    """EnableIPTables=false: no NAT or filter rule at all; docker-proxy still
    listens on published ports, so the outside reaches them through it."""
    ctrl = make(EnableIPTables=False)
    web_and_peer(ctrl, **{netlabel.BRIDGE_ENABLE_ICC: "false"})
    bridge_net(ctrl, "other", "10.82.0.0/24")
    assert ctrl.kernel.rules(ctrl.host.namespace) == []
    assert [p.port for p in ctrl.kernel.listeners(ctrl.host.namespace)] == [8080, 5353]
    assert outcome(ctrl, ctrl.host.outside_namespace, ctrl.host.host_ip, "tcp", 8080) == "syn-ack"
    # No masquerade: the outside has no route back to the container subnet.
    assert outcome(ctrl, ctrl.sandbox("peer").namespace, ctrl.host.outside_address, wait=MISS) == "timeout"


def test_ip_forwarding_disabled_leaves_the_sysctl_alone(make: Any) -> None:
    ctrl = make(enable_ip_forwarding="false")
    ctrl.kernel.set_sysctl(ctrl.host.namespace, "net.ipv4.ip_forward", "0")  # as a host without forwarding
    bridge_net(ctrl, "front", "10.83.0.0/24")
    ctrl.connect("a", "front")
    assert ctrl.kernel.get_sysctl(ctrl.host.namespace, "net.ipv4.ip_forward") == "0"
    assert outcome(ctrl, ctrl.sandbox("a").namespace, ctrl.host.outside_address, wait=MISS) != "echo-reply"


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"userland_prox": True}, "userland_prox"),
        ({"userland_proxy": "maybe"}, "userland_proxy"),
        ({"userland_proxy": True, "EnableUserlandProxy": False}, "twice"),
    ],
)
def test_bad_driver_config_is_refused_by_name(kernel: Kernel, options: dict[str, Any], words: str) -> None:
    with pytest.raises(InvalidParameterError, match=words):
        controller(kernel, **options).close()


# --- network options ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value"),
    [
        (DEFAULT_BRIDGE, "true"),
        (GATEWAY_MODE_IPV4, "routed"),
        (GATEWAY_MODE_IPV4, "nat-unprotected"),
        (GATEWAY_MODE_IPV6, "isolated"),
        (GATEWAY_MODE_IPV4, "bogus"),
        (TRUSTED_HOST_INTERFACES, "eth1:eth2"),
        (INHIBIT_IPV4, "perhaps"),
        (CONTAINER_IFACE_PREFIX, "a-very-long-prefix"),
    ],
)
def test_options_not_modelled_are_refused_naming_them(make: Any, key: str, value: str) -> None:
    """Failed before: each was accepted and ignored."""
    ctrl = make()
    before = ctrl.kernel.snapshot()
    with pytest.raises(InvalidParameterError, match=key.replace(".", r"\.")):
        bridge_net(ctrl, "n", "10.84.0.0/24", **{key: value})
    assert ctrl.kernel.snapshot() == before


def test_options_docker_defaults_are_accepted(make: Any) -> None:
    ctrl = make()
    bridge_net(ctrl, "n", "10.85.0.0/24", **{DEFAULT_BRIDGE: "false", GATEWAY_MODE_IPV4: "nat", INHIBIT_IPV4: "false"})
    assert ctrl.network("n") is not None


def test_inhibit_ipv4_leaves_the_bridge_without_an_address(make: Any) -> None:
    ctrl = make()
    net = bridge_net(ctrl, "n", "10.86.0.0/24", **{INHIBIT_IPV4: "true"})
    bridge = f"br-{net.id[:12]}"
    assert not [cidr for dev, cidr in ctrl.kernel.addresses(ctrl.host.namespace) if dev == bridge and "." in cidr]
    ctrl.connect("a", "n")
    assert outcome(ctrl, ctrl.sandbox("a").namespace, "10.86.0.1", wait=MISS) != "echo-reply"


def test_container_iface_prefix_names_the_container_side(make: Any) -> None:
    ctrl = make()
    bridge_net(ctrl, "n", "10.87.0.0/24", **{CONTAINER_IFACE_PREFIX: "ctr"})
    ctrl.connect("a", "n")
    names = [link.name for link in ctrl.kernel.links(ctrl.sandbox("a").namespace)]
    assert "ctr0" in names and "eth0" not in names
    assert not [r for r in ctrl.kernel.rules(ctrl.host.namespace) if isinstance(r, Filter)]
