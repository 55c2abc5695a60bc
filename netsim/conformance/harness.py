"""Build a kernel, a controller and the driver under test for one check."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from netsim.conformance.target import DriverTarget, load_python_target
from netsim.controller import Controller, ControllerConfig, IpamConfig, PoolConfig
from netsim.driverapi import Capability, Driver, IPAMData, NetworkInfo
from netsim.kernel.base import Kernel


def new_id() -> str:
    """A 64-hex id like Docker's network and endpoint IDs."""
    return uuid.uuid4().hex + uuid.uuid4().hex


@dataclass
class DriverUnderTest:
    """What every check receives: the driver as registered in a controller."""

    target: DriverTarget
    kernel: Kernel
    ctrl: Controller
    name: str
    driver: Driver
    capability: Capability
    options: dict[str, str] = field(default_factory=dict)
    _subnets: Iterator[int] = field(default_factory=lambda: itertools.count(0))

    @property
    def is_global(self) -> bool:
        return self.capability.data_scope in ("global", "swarm")

    def next_subnet(self) -> str:
        """A fresh /24 from 10.77.0.0/16 for each network a check creates."""
        return f"10.77.{next(self._subnets)}.0/24"

    def ipam_data(self, subnet: str | None = None) -> list[IPAMData]:
        import ipaddress

        net = ipaddress.ip_network(subnet or self.next_subnet())
        gateway = ipaddress.ip_interface(f"{next(net.hosts())}/{net.prefixlen}")
        return [IPAMData(address_space="LocalDefault", pool=net, gateway=gateway)]

    def create_network_direct(self, nid: str | None = None, subnet: str | None = None) -> tuple[str, list[IPAMData]]:
        """Call the driver's create_network with options shaped as the controller does."""
        nid = nid or new_id()
        data = self.ipam_data(subnet)
        self.driver.create_network(nid, self.network_options(), NetworkInfo(), data, [])
        return nid, data

    def network_options(self) -> dict[str, Any]:
        from netsim import netlabel

        return {
            netlabel.GENERIC_DATA: dict(self.options),
            netlabel.ENABLE_IPV6: False,
            netlabel.INTERNAL: False,
        }

    def create_network(self, name: str, subnet: str | None = None, **kwargs: Any) -> Any:
        """Create a network through the controller (IPAM, allocate, create)."""
        return self.ctrl.create_network(
            name,
            driver=self.name,
            options=dict(self.options),
            ipam=IpamConfig(driver="default", pools=[PoolConfig(subnet=subnet or self.next_subnet())]),
            **kwargs,
        )


def build(target: DriverTarget, kernel: Kernel, host: str = "h1") -> DriverUnderTest:
    """A controller on ``kernel`` with the target driver registered."""
    extra: dict[str, Any] = {}
    name = target.spec
    if target.kind == "python":
        extra[target.spec] = load_python_target(target.spec)
    elif target.kind == "remote":
        from drivers.remote import RemoteDriver

        name = "remote-under-test"
        extra[name] = RemoteDriver.init_for(target.spec, name=name)
    elif target.kind == "plugin":
        from netsim.conformance.plugin_roundtrip import roundtrip_init

        name = "plugin-" + target.spec.split(":", 1)[1]
        extra[name] = roundtrip_init(target.spec.split(":", 1)[1], name)
    ctrl = Controller(kernel, ControllerConfig(host=host, extra_drivers=extra))
    try:
        if target.kind == "python":
            name = ctrl.registry.names_added_by(target.spec)[0]
        driver = ctrl.registry.driver(name)
        capability = ctrl.registry.capability(name)
    except BaseException:
        ctrl.close()
        raise
    return DriverUnderTest(target, kernel, ctrl, name, driver, capability, dict(target.options))


def registered_options(options: Mapping[str, str]) -> dict[str, str]:
    return dict(options)
