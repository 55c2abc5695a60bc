"""libnetwork's IPAM contract (ipamapi.Ipam) in Python.

An IPAM driver's init function is ``init(registry, config)`` and calls
``registry.register_ipam_driver(name, driver, capability)``.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from netsim.driverapi import IPAddress, IPInterface, IPNetwork

LOCAL_DEFAULT = "LocalDefault"
GLOBAL_DEFAULT = "GlobalDefault"

# Option keys libnetwork honours.
ALLOC_SERIAL = "com.docker.network.ipam.serial"
REQUEST_ADDRESS_TYPE = "RequestAddressType"
GATEWAY_TYPE = "com.docker.network.gateway"

DEFAULT_IPAM = "default"
NULL_IPAM = "null"


@dataclass(frozen=True)
class IpamCapability:
    requires_mac_address: bool = False
    requires_request_replay: bool = False


class Ipam(abc.ABC):
    @abc.abstractmethod
    def get_default_address_spaces(self) -> tuple[str, str]:
        """``(local, global)`` address space names."""

    @abc.abstractmethod
    def request_pool(
        self, address_space: str, pool: str, sub_pool: str, options: Mapping[str, str], v6: bool
    ) -> tuple[str, IPNetwork, dict[str, str]]:
        """Reserve ``pool`` (a CIDR, or "" for any predefined pool of the
        family) optionally restricted to ``sub_pool``; returns
        ``(pool_id, pool, data)``."""

    @abc.abstractmethod
    def release_pool(self, pool_id: str) -> None: ...

    @abc.abstractmethod
    def request_address(
        self, pool_id: str, preferred: IPAddress | None, options: Mapping[str, str]
    ) -> tuple[IPInterface | None, dict[str, str]]:
        """An address of the pool with the pool's mask; ``None`` when the driver
        hands out no address at all (the null IPAM, libnetwork's nil)."""

    @abc.abstractmethod
    def release_address(self, pool_id: str, address: IPAddress) -> None: ...

    @abc.abstractmethod
    def is_builtin(self) -> bool: ...

    def capabilities(self) -> IpamCapability:
        return IpamCapability()


class IpamCallback(Protocol):
    def register_ipam_driver(self, name: str, driver: Ipam, capability: IpamCapability | None = None) -> None: ...


class IpamInit(Protocol):
    def __call__(self, registry: IpamCallback, config: Mapping[str, Any]) -> None: ...
