"""Reachability: endpoints of one network reach each other, unless the driver
gives endpoints no interface of their own (null semantics), in which case the
sandbox must hold loopback only."""

from __future__ import annotations

import pytest

from netsim.conformance.harness import DriverUnderTest
from netsim.errors import ForbiddenError
from netsim.probe import probe


@pytest.mark.kernel_effects
def test_endpoints_of_one_network_reach_each_other(dut: DriverUnderTest) -> None:
    net = dut.create_network("conf-reach")
    for name in ("conf-a", "conf-b"):
        dut.ctrl.create_sandbox(name)
    try:
        ep_a = dut.ctrl.connect("conf-a", net.name)
        ep_b = dut.ctrl.connect("conf-b", net.name)
        sandbox_a = dut.ctrl.sandbox("conf-a")
        if ep_b.iface is None:
            links = [link.name for link in dut.kernel.links(sandbox_a.namespace)]
            if sandbox_a.namespace != dut.ctrl.host.namespace:
                assert links == ["lo"], f"an endpoint without an interface, yet the sandbox has {links}"
            return
        assert ep_b.address is not None, "endpoint joined with an interface but no address"
        result = probe(dut.kernel, sandbox_a.namespace, str(ep_b.address.ip), "icmp", timeout=1.0)
        if not result.reachable:
            # Linux raises carrier asynchronously: the first frames after a link comes up
            # can be lost (netsim/kernel/divergences.py), so a positive check tries twice.
            result = probe(dut.kernel, sandbox_a.namespace, str(ep_b.address.ip), "icmp", timeout=2.0)
        assert result.reachable, f"{ep_a.address} cannot reach {ep_b.address}: {result.outcome}"
    finally:
        for name in ("conf-a", "conf-b"):
            dut.ctrl.delete_sandbox(name)
        dut.ctrl.delete_network(net.name)


@pytest.mark.kernel_effects
def test_separate_networks_do_not_reach_each_other(dut: DriverUnderTest) -> None:
    """Only for drivers whose endpoints get their own interface and address."""
    left = dut.create_network("conf-left")
    try:
        right = dut.create_network("conf-right")
    except ForbiddenError:
        dut.ctrl.delete_network(left.name)
        pytest.skip(f"{dut.name} allows one network per host")
    for name in ("conf-l", "conf-r"):
        dut.ctrl.create_sandbox(name)
    try:
        dut.ctrl.connect("conf-l", left.name)
        ep_r = dut.ctrl.connect("conf-r", right.name)
        if ep_r.iface is None or ep_r.address is None:
            pytest.skip(f"{dut.name} gives endpoints no interface of their own")
        if dut.capability.connectivity_scope != "local":
            pytest.skip(f"{dut.name} has {dut.capability.connectivity_scope} connectivity scope")
        result = probe(dut.kernel, dut.ctrl.sandbox("conf-l").namespace, str(ep_r.address.ip), "icmp", timeout=1.0)
        assert not result.reachable, f"{left.name} reaches {right.name}: networks are not isolated"
    finally:
        for name in ("conf-l", "conf-r"):
            dut.ctrl.delete_sandbox(name)
        dut.ctrl.delete_network(left.name)
        dut.ctrl.delete_network(right.name)
