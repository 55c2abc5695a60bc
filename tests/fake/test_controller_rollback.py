"""Rollback: a fault injected at every step of an operation (kernel call,
driver call, IPAM call) leaves kernel snapshot, IPAM holdings and store
exactly as they were. Both kernels."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import cast

import pytest

from netsim import netlabel
from netsim.controller import Controller, ControllerConfig, IpamConfig, PoolConfig, PortBinding
from netsim.controller.testing import (
    FaultInjector,
    FaultyIpam,
    FaultyKernel,
    ensure_default_ipam,
    every_step_fails,
    install_faults,
)
from netsim.errors import KernelError, NetsimError
from netsim.kernel.base import Kernel


@dataclass
class Rig:
    ctrl: Controller
    kernel: Kernel
    injector: FaultInjector
    ipams: dict[str, FaultyIpam]

    def every_step(self, operation: object) -> int:
        return every_step_fails(self.ctrl, self.kernel, self.injector, self.ipams, operation)  # type: ignore[arg-type]


@pytest.fixture
def rig(kernel: Kernel) -> Iterator[Rig]:
    injector = FaultInjector()
    ctrl = Controller(cast(Kernel, FaultyKernel(kernel, injector)), ControllerConfig(host="h1"))
    try:
        ensure_default_ipam(ctrl)
        ipams = install_faults(ctrl, injector)
        yield Rig(ctrl, kernel, injector, ipams)
    finally:
        injector.disarm()
        ctrl.close()


def front(rig: Rig, **options: str) -> None:
    rig.ctrl.create_network(
        "front", "bridge", options=options, ipam=IpamConfig(pools=[PoolConfig(subnet="10.10.0.0/24")])
    )


def test_create_bridge_network_every_step(rig: Rig) -> None:
    rig.ctrl.create_network("other", "bridge", ipam=IpamConfig(pools=[PoolConfig(subnet="10.20.0.0/24")]))
    steps = rig.every_step(
        lambda: rig.ctrl.create_network(
            "front",
            "bridge",
            options={netlabel.BRIDGE_ENABLE_ICC: "false", netlabel.DRIVER_MTU: "1400"},
            ipam=IpamConfig(
                pools=[PoolConfig(subnet="10.10.0.0/24", gateway="10.10.0.254", aux_addresses={"r": "10.10.0.9"})],
                pools_v6=[PoolConfig(subnet="fd00:10::/64")],
            ),
            ipv6=True,
        )
    )
    assert steps >= 15
    assert rig.ctrl.network("front").ipv6


def test_create_internal_network_every_step(rig: Rig) -> None:
    steps = rig.every_step(
        lambda: rig.ctrl.create_network(
            "vault", "bridge", internal=True, ipam=IpamConfig(pools=[PoolConfig(subnet="10.40.0.0/24")])
        )
    )
    assert steps >= 8


def test_endpoint_join_leave_every_step(rig: Rig) -> None:
    front(rig)
    ports = [PortBinding("tcp", 80, 8080), PortBinding("udp", 53, 5353)]
    rig.every_step(lambda: rig.ctrl.create_endpoint("front", "web", ports=ports))
    rig.every_step(lambda: rig.ctrl.create_sandbox("web"))
    ep, sb = rig.ctrl.endpoint("front", "web"), rig.ctrl.sandbox("web")
    steps = rig.every_step(lambda: rig.ctrl.join(ep, sb))
    assert steps >= 10 and ep.iface == "eth0"
    rig.every_step(lambda: rig.ctrl.leave(ep, sb))
    assert ep.sandbox is None


def test_disconnect_every_step(rig: Rig) -> None:
    front(rig)
    rig.ctrl.connect("c", "front", ports=[PortBinding("tcp", 80, 8080)])
    rig.every_step(lambda: rig.ctrl.disconnect("c", "front"))
    assert rig.ctrl.sandbox("c").endpoints() == []


def test_connect_second_network_every_step(rig: Rig) -> None:
    front(rig)
    rig.ctrl.create_network("back", "bridge", ipam=IpamConfig(pools=[PoolConfig(subnet="10.20.0.0/24")]))
    rig.ctrl.connect("c", "back")
    rig.every_step(lambda: rig.ctrl.connect("c", "front", ports=[PortBinding("tcp", 80, 8080)]))
    rig.every_step(lambda: rig.ctrl.connect("d", "front"))
    assert [ep.iface for ep in rig.ctrl.sandbox("c").endpoints()] == ["eth0", "eth1"]


def test_macvlan_every_step(rig: Rig) -> None:
    pool = PoolConfig(subnet="198.18.0.0/24", ip_range="198.18.0.128/25", gateway="198.18.0.1")
    rig.every_step(
        lambda: rig.ctrl.create_network(
            "lan", "macvlan", options={netlabel.MACVLAN_MODE: "private"}, ipam=IpamConfig(pools=[pool])
        )
    )
    rig.every_step(lambda: rig.ctrl.connect("a", "lan"))
    ep, sb = rig.ctrl.endpoint("lan", "a"), rig.ctrl.sandbox("a")
    rig.every_step(lambda: rig.ctrl.leave(ep, sb))


def test_macvlan_vlan_parent_every_step(rig: Rig) -> None:
    def create() -> None:
        rig.ctrl.create_network(
            "v10",
            "macvlan",
            options={netlabel.MACVLAN_PARENT: "eth0.10"},
            ipam=IpamConfig(pools=[PoolConfig(subnet="10.1.10.0/24")]),
        )

    try:
        rig.every_step(create)
    except KernelError as exc:  # a host kernel without 8021q: the plain failure must leave nothing either
        assert rig.kernel.kind == "linux", exc
        before = rig.kernel.snapshot()
        with pytest.raises(KernelError):
            create()
        assert rig.kernel.snapshot() == before


def test_null_and_host_every_step(rig: Rig) -> None:
    rig.every_step(lambda: rig.ctrl.create_network("none", "null"))
    rig.every_step(lambda: rig.ctrl.connect("n", "none"))
    rig.every_step(lambda: rig.ctrl.create_network("host", "host"))
    rig.every_step(lambda: rig.ctrl.connect("h", "host"))
    assert rig.ctrl.sandbox("h").namespace == rig.ctrl.host.namespace


def test_refused_deletes_change_nothing(rig: Rig) -> None:
    front(rig)
    ep = rig.ctrl.connect("web", "front")
    before = rig.kernel.snapshot()
    with pytest.raises(NetsimError, match="leave first"):
        rig.ctrl.delete_endpoint(ep)
    assert rig.kernel.snapshot() == before
    with pytest.raises(NetsimError, match="active endpoint"):
        rig.ctrl.delete_network("front")
    assert rig.kernel.snapshot() == before
    # A driver refusing the first call of a delete leaves everything in place.
    rig.ctrl.disconnect("web", "front")
    before = rig.kernel.snapshot()
    rig.injector.arm(1)
    with pytest.raises(NetsimError, match="injected"):
        rig.ctrl.delete_network("front")
    assert rig.kernel.snapshot() == before and rig.ctrl.network("front").name == "front"
