"""External connectivity: program and revoke are symmetric and repeatable."""

from __future__ import annotations

import pytest

from netsim import netlabel
from netsim.conformance.harness import DriverUnderTest, assert_unchanged
from netsim.controller import PortBinding
from netsim.kernel.base import Listener
from netsim.probe import probe

#: the host port the reachability check publishes (container port 80)
PUBLISHED_PORT = 18081


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


@pytest.mark.kernel_effects
def test_published_port_is_reachable_from_outside(dut: DriverUnderTest) -> None:
    """A driver that reports a published port (a port map in endpoint_oper_info,
    after a connect with ``-p 18081:80/tcp``) makes it answer: a TCP SYN from the
    outside namespace to the host's address and that port reaches a listener on
    port 80 in the container. Skipped for a driver that publishes nothing.

    libnetwork's bridge ProgramExternalConnectivity sets up the DNAT and
    docker-proxy for the endpoint's port bindings and EndpointOperInfo reports
    them under ``com.docker.network.portmap``; drivers that publish nothing
    (macvlan, overlay, null, host) return no port map."""
    net = dut.create_network("conf-pub")
    try:
        ep = dut.ctrl.connect("conf-pub-c", net.name, ports=[PortBinding("tcp", 80, PUBLISHED_PORT)])
        try:
            published = dut.driver.endpoint_oper_info(net.id, ep.id).get(netlabel.PORT_MAP) or []
            if not published:
                pytest.skip(f"{dut.name} reports no published port (no {netlabel.PORT_MAP} in endpoint_oper_info)")
            ports = {int(binding.get("HostPort", 0)) for binding in published}  # libnetwork types.PortBinding
            assert PUBLISHED_PORT in ports, f"asked to publish {PUBLISHED_PORT}, the driver reports {sorted(ports)}"
            sandbox = ep.sandbox
            assert sandbox is not None
            host = dut.ctrl.host
            listener = Listener("tcp", 80)
            dut.kernel.add_listener(sandbox.namespace, listener)
            try:
                result = probe(dut.kernel, host.outside_namespace, host.host_ip, "tcp", PUBLISHED_PORT, timeout=2.0)
                assert result.reachable, (
                    f"published port {host.host_ip}:{PUBLISHED_PORT} does not answer from outside: {result.outcome}"
                )
            finally:
                dut.kernel.delete_listener(sandbox.namespace, listener)
        finally:
            dut.ctrl.disconnect("conf-pub-c", net.name)
            dut.ctrl.delete_sandbox("conf-pub-c")
    finally:
        dut.ctrl.delete_network(net.name)
