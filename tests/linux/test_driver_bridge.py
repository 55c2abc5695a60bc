"""The bridge driver's whole lifecycle on both kernels, proven with probes:
what must get through and what must not."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from drivers.bridge.setup import icc_rules, isolation_rule
from netsim import netlabel
from netsim.controller import Controller, ControllerConfig, Endpoint, IpamConfig, Network, PoolConfig, PortBinding
from netsim.controller.testing import ensure_default_ipam
from netsim.errors import ConflictError, InvalidParameterError
from netsim.kernel.base import Dnat, Filter, Isolated, Kernel, Listener, Masquerade
from netsim.probe import probe

MISS = 0.3  # seconds to wait for an answer that must not come


@pytest.fixture
def ctrl(kernel: Kernel) -> Iterator[Controller]:
    controller = Controller(kernel, ControllerConfig(host="h1"))
    ensure_default_ipam(controller)
    try:
        yield controller
    finally:
        controller.close()


def bridge_net(ctrl: Controller, name: str, subnet: str, **kwargs: Any) -> Network:
    return ctrl.create_network(name, "bridge", ipam=IpamConfig(pools=[PoolConfig(subnet=subnet)]), **kwargs)


def ip_of(ep: Endpoint) -> str:
    assert ep.address is not None
    return str(ep.address.ip)


def reach(ctrl: Controller, src_ns: str, dst: str, proto: str = "icmp", port: int | None = None) -> bool:
    return probe(ctrl.kernel, src_ns, dst, proto, port, timeout=2.0).reachable


def miss(ctrl: Controller, src_ns: str, dst: str, proto: str = "icmp", port: int | None = None) -> bool:
    return not probe(ctrl.kernel, src_ns, dst, proto, port, timeout=MISS).reachable


def test_bridge_lifecycle_connectivity(ctrl: Controller) -> None:
    net = bridge_net(ctrl, "front", "10.10.0.0/24")
    a = ctrl.connect("a", "front")
    b = ctrl.connect("b", "front")
    ns_a, ns_b = ctrl.sandbox("a").namespace, ctrl.sandbox("b").namespace
    assert str(a.address) == "10.10.0.2/24" and str(b.address) == "10.10.0.3/24"
    assert a.iface == "eth0" and a.mac == "02:42:0a:0a:00:02"
    # The container's interface is named eth0 and carries address, MAC and a default route.
    assert ("eth0", "10.10.0.2/24") in ctrl.kernel.addresses(ns_a)
    assert ctrl.kernel.link(ns_a, "eth0").mac == "02:42:0a:0a:00:02"
    defaults = [r for r in ctrl.kernel.routes(ns_a) if r.dst == "default"]
    assert [(r.via, r.dev) for r in defaults] == [("10.10.0.1", "eth0")]
    # Same network: reachable; gateway reachable; the outside reachable through masquerade.
    assert reach(ctrl, ns_a, ip_of(b))
    assert reach(ctrl, ns_a, "10.10.0.1")
    assert reach(ctrl, ns_b, ctrl.host.outside_address)
    # The outside has no route back into the container subnet.
    assert miss(ctrl, ctrl.host.outside_namespace, ip_of(a))
    bridge = f"br-{net.id[:12]}"
    assert Masquerade(src="10.10.0.0/24", not_out_iface=bridge) in ctrl.kernel.rules(ctrl.host.namespace)
    ctrl.disconnect("a", "front")
    ctrl.disconnect("b", "front")
    ctrl.delete_sandbox("a")
    ctrl.delete_sandbox("b")
    ctrl.delete_network("front")
    assert ctrl.kernel.rules(ctrl.host.namespace) == []
    assert [link.name for link in ctrl.kernel.links(ctrl.host.namespace)] == ["eth0", "lo"]


def test_published_port_dnat_from_outside(ctrl: Controller) -> None:
    bridge_net(ctrl, "front", "10.10.0.0/24")
    web = ctrl.connect("web", "front", ports=[PortBinding("tcp", 80, 8080)])
    ns_web = ctrl.sandbox("web").namespace
    ctrl.kernel.add_listener(ns_web, Listener("tcp", 80))
    # Userland proxy on (Docker's default): the DNAT skips the bridge (its
    # containers go through the docker-proxy listening on the host port).
    rule = Dnat(proto="tcp", dport=8080, to_addr=ip_of(web), to_port=80, not_in_iface=f"br-{web.network_id[:12]}")
    assert rule in ctrl.kernel.rules(ctrl.host.namespace)
    assert Listener("tcp", 8080, forward_to=(ip_of(web), 80)) in ctrl.kernel.listeners(ctrl.host.namespace)
    assert reach(ctrl, ctrl.host.outside_namespace, ctrl.host.host_ip, "tcp", 8080)
    # A second container may not publish the same host port.
    other = ctrl.create_endpoint("front", "other", ports=[PortBinding("tcp", 81, 8080)])
    sb = ctrl.create_sandbox("other")
    before = ctrl.kernel.snapshot()
    with pytest.raises(ConflictError, match="8080"):
        ctrl.join(other, sb)
    assert ctrl.kernel.snapshot() == before and other.sandbox is None
    # Leaving revokes the DNAT rule: the port is closed again.
    ctrl.kernel.delete_listener(ns_web, Listener("tcp", 80))
    ctrl.disconnect("web", "front")
    assert rule not in ctrl.kernel.rules(ctrl.host.namespace)
    assert ctrl.kernel.listeners(ctrl.host.namespace) == []
    assert miss(ctrl, ctrl.host.outside_namespace, ctrl.host.host_ip, "tcp", 8080)
    ctrl.join(other, sb)  # the port is free now
    assert any(isinstance(r, Dnat) and r.dport == 8080 for r in ctrl.kernel.rules(ctrl.host.namespace))


def test_isolation_between_bridge_networks(ctrl: Controller) -> None:
    front = bridge_net(ctrl, "front", "10.10.0.0/24")
    back = bridge_net(ctrl, "back", "10.20.0.0/24")
    side = bridge_net(ctrl, "side", "10.40.0.0/24")
    a = ctrl.connect("a", "front")
    b = ctrl.connect("b", "back")
    c = ctrl.connect("c", "side")
    ns_a, ns_c = ctrl.sandbox("a").namespace, ctrl.sandbox("c").namespace
    bridges = [f"br-{net.id[:12]}" for net in (front, back, side)]
    # One membership per network, not one rule per pair of networks.
    memberships = [r for r in ctrl.kernel.rules(ctrl.host.namespace) if isinstance(r, Isolated)]
    assert memberships == [isolation_rule(bridge) for bridge in bridges]
    assert not [r for r in ctrl.kernel.rules(ctrl.host.namespace) if isinstance(r, Filter)]
    assert miss(ctrl, ns_a, ip_of(b)) and miss(ctrl, ns_c, ip_of(b))
    assert reach(ctrl, ns_a, ctrl.host.outside_address)
    # Deleting one network takes its membership only: the others stay isolated.
    ctrl.disconnect("a", "front")
    ctrl.delete_network("front")
    memberships = [r for r in ctrl.kernel.rules(ctrl.host.namespace) if isinstance(r, Isolated)]
    assert memberships == [isolation_rule(bridge) for bridge in bridges[1:]]
    assert miss(ctrl, ns_c, ip_of(b))
    assert reach(ctrl, ns_c, ctrl.host.outside_address)
    assert a is not None and c is not None


def test_icc_off_blocks_containers_not_the_gateway(ctrl: Controller) -> None:
    net = bridge_net(ctrl, "quiet", "10.30.0.0/24", options={netlabel.BRIDGE_ENABLE_ICC: "false"})
    ctrl.connect("a", "quiet")
    b = ctrl.connect("b", "quiet")
    ns_a = ctrl.sandbox("a").namespace
    bridge = f"br-{net.id[:12]}"
    rules = ctrl.kernel.rules(ctrl.host.namespace)
    assert all(rule in rules for rule in icc_rules(bridge))
    assert miss(ctrl, ns_a, ip_of(b))
    assert reach(ctrl, ns_a, "10.30.0.1")
    # Docker drops IP only (iptables through br_netfilter): ARP still passes, so
    # a has resolved b's MAC although its ping was dropped.
    mac_b = b.mac
    resolved = {(n.ip, n.mac) for n in ctrl.kernel.neighbours(ns_a)}
    assert (ip_of(b), mac_b) in resolved
    assert reach(ctrl, ns_a, ctrl.host.outside_address)


def test_internal_network_has_no_way_out(ctrl: Controller) -> None:
    bridge_net(ctrl, "vault", "10.40.0.0/24", internal=True)
    a = ctrl.connect("a", "vault", ports=[PortBinding("tcp", 80, 8081)])
    b = ctrl.connect("b", "vault")
    ns_a = ctrl.sandbox("a").namespace
    assert not [r for r in ctrl.kernel.routes(ns_a) if r.dst == "default"]
    rules = ctrl.kernel.rules(ctrl.host.namespace)
    assert not [r for r in rules if isinstance(r, Masquerade | Dnat)]
    assert reach(ctrl, ns_a, ip_of(b))
    assert miss(ctrl, ns_a, ctrl.host.outside_address)
    assert a.address is not None


def test_mtu_applied_to_bridge_and_veths(ctrl: Controller) -> None:
    net = bridge_net(ctrl, "small", "10.50.0.0/24", options={netlabel.DRIVER_MTU: "1400"})
    ep = ctrl.connect("a", "small")
    host_links = {link.name: link for link in ctrl.kernel.links(ctrl.host.namespace)}
    assert host_links[f"br-{net.id[:12]}"].mtu == 1400
    assert host_links[f"veth{ep.id[:11]}"].mtu == 1400
    assert ctrl.kernel.link(ctrl.sandbox("a").namespace, "eth0").mtu == 1400


def test_custom_bridge_name_and_host_binding(ctrl: Controller) -> None:
    bridge_net(
        ctrl,
        "named",
        "10.60.0.0/24",
        options={netlabel.BRIDGE_NAME: "docker7", netlabel.BRIDGE_HOST_BINDING_IPV4: ctrl.host.host_ip},
    )
    ep = ctrl.connect("a", "named", ports=[PortBinding("udp", 53, 5353)])
    assert "docker7" in [link.name for link in ctrl.kernel.links(ctrl.host.namespace)]
    expected = Dnat("udp", 5353, ip_of(ep), 53, dst=ctrl.host.host_ip, not_in_iface="docker7")
    assert expected in ctrl.kernel.rules(ctrl.host.namespace)
    ctrl.kernel.add_listener(ctrl.sandbox("a").namespace, Listener("udp", 53))
    assert reach(ctrl, ctrl.host.outside_namespace, ctrl.host.host_ip, "udp", 5353)
    with pytest.raises(ConflictError, match="docker7"):
        bridge_net(ctrl, "again", "10.61.0.0/24", options={netlabel.BRIDGE_NAME: "docker7"})


def test_ipv6_dual_stack(ctrl: Controller) -> None:
    ctrl.create_network(
        "dual",
        "bridge",
        ipam=IpamConfig(pools=[PoolConfig(subnet="10.70.0.0/24")], pools_v6=[PoolConfig(subnet="fd00:70::/64")]),
        ipv6=True,
    )
    a = ctrl.connect("a", "dual")
    b = ctrl.connect("b", "dual")
    assert a.address_ipv6 is not None and b.address_ipv6 is not None
    ns_a = ctrl.sandbox("a").namespace
    assert ctrl.kernel.get_sysctl(ctrl.host.namespace, "net.ipv6.conf.all.forwarding") == "1"
    six = [r for r in ctrl.kernel.routes(ns_a) if r.dst == "default" and r.family == 6]
    assert [r.via for r in six] == ["fd00:70::1"]
    assert reach(ctrl, ns_a, str(b.address_ipv6.ip))
    assert reach(ctrl, ns_a, "fd00:70::1")
    ctrl.disconnect("a", "dual")
    ctrl.disconnect("b", "dual")
    ctrl.delete_network("dual")
    assert ctrl.kernel.get_sysctl(ctrl.host.namespace, "net.ipv6.conf.all.forwarding") == "0"


@pytest.mark.parametrize(
    ("option", "value"),
    [
        (netlabel.BRIDGE_ENABLE_ICC, "maybe"),
        (netlabel.BRIDGE_ENABLE_IP_MASQUERADE, "yes please"),
        (netlabel.DRIVER_MTU, "-1"),
        (netlabel.DRIVER_MTU, "big"),
        (netlabel.BRIDGE_NAME, "a-name-longer-than-15"),
        (netlabel.BRIDGE_HOST_BINDING_IPV4, "300.1.1.1"),
    ],
)
def test_bad_options_are_refused_and_change_nothing(ctrl: Controller, option: str, value: str) -> None:
    before = ctrl.kernel.snapshot()
    with pytest.raises(InvalidParameterError, match=option.replace(".", r"\.")):
        bridge_net(ctrl, "bad", "10.80.0.0/24", options={option: value})
    assert ctrl.kernel.snapshot() == before
    assert ctrl.networks() == []
    bridge_net(ctrl, "bad", "10.80.0.0/24")  # name and subnet were released
