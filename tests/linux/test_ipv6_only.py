"""IPv6-only bridge networks (Docker's ``--ipv4=false``) and IPv6 beyond the
host, on both kernels: no IPv4 pool is requested, the bridge and the
container have IPv6 only, and IPv6 egress is masqueraded to the outside's
2001:2:: address while published ports answer on the host's."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from netsim.controller import Controller, ControllerConfig, IpamConfig, PoolConfig, PortBinding
from netsim.controller.testing import ensure_default_ipam
from netsim.errors import InvalidParameterError
from netsim.kernel.base import Kernel, Listener, Masquerade
from netsim.probe import probe


class CountingIpam:
    """Counts the pools asked of the real default IPAM, by family."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.requests: list[bool] = []

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def request_pool(self, address_space: str, pool: str, sub_pool: str, options: object, v6: bool) -> object:
        self.requests.append(v6)
        return self.inner.request_pool(address_space, pool, sub_pool, options, v6)  # type: ignore[attr-defined]


@pytest.fixture
def ctrl(kernel: Kernel) -> Iterator[Controller]:
    controller = Controller(kernel, ControllerConfig(host="h1"))
    ensure_default_ipam(controller)
    try:
        yield controller
    finally:
        controller.close()


def test_the_host_and_its_outside_have_ipv6_from_the_benchmarking_range(ctrl: Controller) -> None:
    host, kernel = ctrl.host, ctrl.kernel
    assert (host.host_ip_v6, host.outside_address_v6) == ("2001:2::2", "2001:2::1")
    assert ("eth0", "2001:2::2/64") in kernel.addresses(host.namespace)
    assert ("eth0", "2001:2::1/64") in kernel.addresses(host.outside_namespace)
    assert probe(kernel, host.outside_namespace, host.host_ip_v6, "icmp", timeout=2.0).outcome == "echo-reply"


def test_no_ipv4_pool_is_requested_and_nothing_ipv4_is_made(ctrl: Controller) -> None:
    default = ctrl.registry.ipam("default").driver
    counting = CountingIpam(default)
    ctrl.registry.replace_ipam_driver("default", counting)  # type: ignore[arg-type]
    try:
        net = ctrl.create_network(
            "v6only", "bridge", ipv6=True, ipv4=False, ipam=IpamConfig(pools_v6=[PoolConfig(subnet="fd00:98::/64")])
        )
    finally:
        ctrl.registry.replace_ipam_driver("default", default)
    assert counting.requests == [True]  # Docker's --ipv4=false: no IPv4 pool invented
    kernel, ns = ctrl.kernel, ctrl.host.namespace
    bridge = next(link.name for link in kernel.links(ns) if link.kind == "bridge")
    assert [cidr for dev, cidr in kernel.addresses(ns) if dev == bridge and not cidr.startswith("fe80")] == [
        "fd00:98::1/64"
    ]
    assert [r for r in kernel.rules(ns) if isinstance(r, Masquerade)] == [
        Masquerade(src="fd00:98::/64", not_out_iface=bridge)
    ]
    sandbox = ctrl.create_sandbox("web")
    endpoint = ctrl.create_endpoint(net, "web", ports=[PortBinding("tcp", container_port=80, host_port=8080)])
    ctrl.join(endpoint, sandbox)
    assert endpoint.address is None and endpoint.address_ipv6 is not None
    container = str(endpoint.address_ipv6.ip)
    global_addresses = [cidr for dev, cidr in kernel.addresses(sandbox.namespace) if dev != "lo" and "fe80" not in cidr]
    assert global_addresses == [str(endpoint.address_ipv6)]
    kernel.add_listener(sandbox.namespace, Listener("tcp", 80, "::"))
    try:
        outside = ctrl.host.outside_namespace
        assert probe(kernel, sandbox.namespace, "2001:2::1", "icmp", timeout=2.0).outcome == "echo-reply"
        assert probe(kernel, outside, "2001:2::2", "tcp", 8080, timeout=2.0).outcome == "syn-ack"
        assert probe(kernel, outside, "198.18.0.2", "tcp", 8080, timeout=0.5).outcome == "rst"
        assert probe(kernel, outside, container, "icmp", timeout=0.5).outcome == "net-unreachable"
    finally:
        kernel.delete_listener(sandbox.namespace, Listener("tcp", 80, "::"))
        ctrl.leave(endpoint, sandbox)
        ctrl.delete_endpoint(endpoint)
        ctrl.delete_sandbox(sandbox)


def test_a_network_needs_one_family_and_no_ipv4_pool_when_ipv4_is_off(ctrl: Controller) -> None:
    with pytest.raises(InvalidParameterError, match="neither IPv4 nor IPv6"):
        ctrl.create_network("none", "bridge", ipv6=False, ipv4=False)
    with pytest.raises(InvalidParameterError, match="IPv4 pools but IPv4 is disabled"):
        ctrl.create_network(
            "both", "bridge", ipv6=True, ipv4=False, ipam=IpamConfig(pools=[PoolConfig(subnet="10.98.0.0/24")])
        )
    assert ctrl.kernel.rules(ctrl.host.namespace) == []
