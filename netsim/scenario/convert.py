"""Scenario specs → the controller's configuration objects.

The controller is imported lazily: loading and validating a scenario (and
``netsim show``) must not pay for importing the controller and its drivers.
"""

from __future__ import annotations

from typing import Any

from netsim.scenario.model import ContainerSpec, NetworkSpec


def ipam_config(net: NetworkSpec) -> Any:
    """Docker's ``--subnet/--ip-range/--gateway/--aux-address`` → the controller's IpamConfig."""
    from netsim.controller import IpamConfig, PoolConfig

    ipam = net.ipam
    pools = []
    if ipam.subnet:
        pools.append(
            PoolConfig(
                subnet=ipam.subnet,
                ip_range=ipam.ip_range or "",
                gateway=ipam.gateway or "",
                aux_addresses=dict(ipam.aux_addresses),
            )
        )
    pools_v6 = []
    if ipam.subnet_v6:
        pools_v6.append(PoolConfig(subnet=ipam.subnet_v6, gateway=ipam.gateway_v6 or ""))
    return IpamConfig(driver=ipam.driver, pools=pools, pools_v6=pools_v6, options={})


def port_bindings(ctr: ContainerSpec) -> list[Any]:
    """``docker run -p`` specs → the controller's PortBindings."""
    if not ctr.publish:
        return []
    from netsim.controller import PortBinding

    return [
        PortBinding(
            proto=p.proto,
            container_port=p.container_port,
            host_port=p.host_port,
            host_ip=p.host_ip,
            host_port_end=p.host_port_end,
        )
        for p in ctr.publish
    ]
