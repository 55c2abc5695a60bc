"""The null and host drivers on both kernels."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from netsim.controller import Controller, ControllerConfig, IpamConfig, PoolConfig
from netsim.controller.testing import ensure_default_ipam
from netsim.errors import ForbiddenError, InvalidParameterError
from netsim.kernel.base import Kernel
from netsim.probe import probe


@pytest.fixture
def ctrl(kernel: Kernel) -> Iterator[Controller]:
    controller = Controller(kernel, ControllerConfig(host="h1"))
    ensure_default_ipam(controller)
    try:
        yield controller
    finally:
        controller.close()


def test_null_sandbox_has_loopback_only(ctrl: Controller) -> None:
    ctrl.create_network("none", "null")
    ep = ctrl.connect("isolated", "none")
    ns = ctrl.sandbox("isolated").namespace
    assert ep.address is None and ep.iface is None
    assert [link.name for link in ctrl.kernel.links(ns)] == ["lo"]
    assert ctrl.kernel.link(ns, "lo").up
    assert [dev for dev, _ in ctrl.kernel.addresses(ns)] == ["lo"] * len(ctrl.kernel.addresses(ns))
    assert probe(ctrl.kernel, ns, "127.0.0.1", timeout=2).reachable
    assert not probe(ctrl.kernel, ns, ctrl.host.outside_address, timeout=0.3).reachable
    inspected = ctrl.inspect_network("none")
    assert inspected["Driver"] == "null" and inspected["IPAM"]["Config"] == []
    assert next(iter(inspected["Containers"].values()))["Name"] == "isolated"


def test_null_rules(ctrl: Controller) -> None:
    ctrl.create_network("none", "null")
    with pytest.raises(ForbiddenError, match="only one instance"):
        ctrl.create_network("none2", "null")
    with pytest.raises(InvalidParameterError, match="subnet"):
        ctrl.create_network("none3", "null", ipam=IpamConfig(pools=[PoolConfig(subnet="10.0.0.1/24")]))
    ctrl.create_network("front", "bridge", ipam=IpamConfig(pools=[PoolConfig(subnet="10.10.0.0/24")]))
    ctrl.connect("isolated", "none")
    before = ctrl.kernel.snapshot()
    with pytest.raises(ForbiddenError, match="null network"):
        ctrl.connect("isolated", "front")
    assert ctrl.kernel.snapshot() == before
    assert [e.name for e in ctrl.network("front").endpoints()] == []


def test_special_drivers_ignore_ipam_config(ctrl: Controller) -> None:
    """libnetwork skips IPAM for host and null networks, whatever was asked."""
    net = ctrl.create_network("none", "null", ipam=IpamConfig(pools=[PoolConfig(subnet="10.0.0.0/24")]))
    assert net.ipv4_data == [] and ctrl.inspect_network("none")["IPAM"]["Config"] == []
    ep = ctrl.connect("c", "none")
    assert ep.address is None
    with pytest.raises(InvalidParameterError, match="no address"):
        ctrl.create_endpoint("none", "d", ipv4="10.0.0.5")


def test_host_network_shares_the_host_namespace(ctrl: Controller) -> None:
    ctrl.create_network("host", "host")
    ep = ctrl.connect("hostc", "host")
    sandbox = ctrl.sandbox("hostc")
    assert sandbox.namespace == ctrl.host.namespace and sandbox.shares_host_namespace
    assert ep.address is None and ep.address_ipv6 is None
    assert probe(ctrl.kernel, sandbox.namespace, ctrl.host.outside_address, timeout=2).reachable
    ctrl.disconnect("hostc", "host")
    ctrl.delete_sandbox("hostc")
    assert ctrl.host.namespace in ctrl.kernel.namespaces()  # never deleted with a sandbox


def test_fresh_sandbox_moves_into_host_namespace(ctrl: Controller) -> None:
    ctrl.create_network("host", "host")
    ctrl.create_network("front", "bridge", ipam=IpamConfig(pools=[PoolConfig(subnet="10.10.0.0/24")]))
    sandbox = ctrl.create_sandbox("late")
    own = sandbox.namespace
    ep = ctrl.create_endpoint("host", "late")
    ctrl.join(ep, sandbox)
    assert sandbox.namespace == ctrl.host.namespace and own not in ctrl.kernel.namespaces()
    with pytest.raises(ForbiddenError, match="host namespace"):
        ctrl.connect("late", "front")
    with pytest.raises(ForbiddenError, match="only one instance"):
        ctrl.create_network("host2", "host")
