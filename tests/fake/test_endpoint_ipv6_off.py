"""An endpoint's interface has IPv6 if and only if its network gives it an
IPv6 address (libnetwork's osl setInterfaceIPv6, which writes the interface's
``disable_ipv6`` before it comes up): on an IPv4-only network it takes no
link-local address, so it sends nothing IPv6 (no router solicitations, no
MLD) that a bridge could learn its MAC from. Both kernels."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from netsim.controller import Controller, ControllerConfig, IpamConfig, PoolConfig
from netsim.kernel.base import Kernel


@pytest.fixture
def ctrl(kernel: Kernel) -> Iterator[Controller]:
    controller = Controller(kernel, ControllerConfig(host="h1"))
    try:
        yield controller
    finally:
        controller.close()


def container_addresses(kernel: Kernel, ns: str, dev: str) -> list[str]:
    return sorted(address for name, address in kernel.addresses(ns) if name == dev)


def test_ipv4_only_endpoint_has_ipv6_off_and_no_link_local(ctrl: Controller, kernel: Kernel) -> None:
    ctrl.create_network("v4", "bridge", ipam=IpamConfig(pools=[PoolConfig(subnet="10.30.0.0/24")]))
    ep = ctrl.connect("web", "v4")
    assert ep.sandbox is not None and ep.iface is not None
    ns, dev = ep.sandbox.namespace, ep.iface
    assert kernel.get_sysctl(ns, f"net.ipv6.conf.{dev}.disable_ipv6") == "1"
    assert container_addresses(kernel, ns, dev) == ["10.30.0.2/24"]


def test_dual_stack_endpoint_keeps_ipv6_with_its_link_local(ctrl: Controller, kernel: Kernel) -> None:
    pools = [PoolConfig(subnet="10.31.0.0/24"), PoolConfig(subnet="fd31::/64")]
    ctrl.create_network("dual", "bridge", ipv6=True, ipam=IpamConfig(pools=pools[:1], pools_v6=pools[1:]))
    ep = ctrl.connect("web", "dual")
    assert ep.sandbox is not None and ep.iface is not None
    ns, dev = ep.sandbox.namespace, ep.iface
    assert kernel.get_sysctl(ns, f"net.ipv6.conf.{dev}.disable_ipv6") == "0"
    addresses = container_addresses(kernel, ns, dev)
    assert "10.31.0.2/24" in addresses and "fd31::2/64" in addresses
    assert any(address.startswith("fe80::") for address in addresses)


def test_disconnect_and_reconnect_to_a_dual_stack_network_turns_ipv6_back_on(ctrl: Controller, kernel: Kernel) -> None:
    ctrl.create_network("v4", "bridge", ipam=IpamConfig(pools=[PoolConfig(subnet="10.32.0.0/24")]))
    pools = [PoolConfig(subnet="10.33.0.0/24"), PoolConfig(subnet="fd33::/64")]
    ctrl.create_network("dual", "bridge", ipv6=True, ipam=IpamConfig(pools=pools[:1], pools_v6=pools[1:]))
    first = ctrl.connect("web", "v4")
    assert first.sandbox is not None and first.iface is not None
    ns, dev = first.sandbox.namespace, first.iface
    ctrl.disconnect("web", "v4")
    second = ctrl.connect("web", "dual")
    assert second.iface == dev  # the freed name is reused
    assert kernel.get_sysctl(ns, f"net.ipv6.conf.{dev}.disable_ipv6") == "0"
    assert "fd33::2/64" in container_addresses(kernel, ns, dev)
