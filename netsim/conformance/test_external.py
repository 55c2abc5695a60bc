"""External connectivity: program and revoke are symmetric and repeatable."""

from __future__ import annotations

import pytest

from netsim import netlabel
from netsim.conformance.harness import DriverUnderTest, assert_unchanged
from netsim.controller import PortBinding


def _port_options() -> dict[str, object]:
    return {netlabel.PORT_MAP: [PortBinding(proto="tcp", container_port=80, host_port=18080, host_ip="")]}


@pytest.mark.kernel_effects
def test_program_then_revoke_restores_the_kernel(dut: DriverUnderTest) -> None:
    net = dut.create_network("conf-ext")
    dut.ctrl.create_sandbox("conf-ext-c")
    try:
        ep = dut.ctrl.connect("conf-ext-c", net.name)
        before = dut.kernel.snapshot()
        dut.driver.program_external_connectivity(net.id, ep.id, _port_options())
        dut.driver.revoke_external_connectivity(net.id, ep.id)
        assert_unchanged(dut.kernel, before, "revoke did not undo program")
    finally:
        dut.ctrl.delete_sandbox("conf-ext-c")
        dut.ctrl.delete_network(net.name)


@pytest.mark.kernel_effects
def test_revoke_is_safe_to_repeat(dut: DriverUnderTest) -> None:
    net = dut.create_network("conf-ext2")
    dut.ctrl.create_sandbox("conf-ext2-c")
    try:
        ep = dut.ctrl.connect("conf-ext2-c", net.name)
        before = dut.kernel.snapshot()
        for _ in range(2):
            dut.driver.program_external_connectivity(net.id, ep.id, _port_options())
            dut.driver.revoke_external_connectivity(net.id, ep.id)
        dut.driver.revoke_external_connectivity(net.id, ep.id)
        assert_unchanged(dut.kernel, before, "the kernel changed")
    finally:
        dut.ctrl.delete_sandbox("conf-ext2-c")
        dut.ctrl.delete_network(net.name)
