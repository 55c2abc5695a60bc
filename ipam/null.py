"""libnetwork's null IPAM driver: one catch-all IPv4 pool and no addresses.

Networks whose addressing is managed elsewhere use it. Every pool request
gets ``null/0.0.0.0/0``; address requests hand out no address: ``None``, as
libnetwork's nil (the controller then assigns nothing).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from netsim.driverapi import IPAddress, IPInterface, IPNetwork
from netsim.errors import InvalidParameterError, NotFoundError
from netsim.ipamapi import NULL_IPAM, Ipam, IpamCallback, IpamCapability

NULL_ADDRESS_SPACE = "null"
NULL_POOL = "0.0.0.0/0"
NULL_POOL_ID = f"{NULL_ADDRESS_SPACE}/{NULL_POOL}"


class NullIpam(Ipam):
    """Stateless; every call is O(1)."""

    def get_default_address_spaces(self) -> tuple[str, str]:
        return NULL_ADDRESS_SPACE, NULL_ADDRESS_SPACE

    def is_builtin(self) -> bool:
        return True

    def capabilities(self) -> IpamCapability:
        return IpamCapability()

    def request_pool(
        self, address_space: str, pool: str, sub_pool: str, options: Mapping[str, str], v6: bool
    ) -> tuple[str, IPNetwork, dict[str, str]]:
        if address_space != NULL_ADDRESS_SPACE:
            raise NotFoundError(f"null IPAM: unknown address space {address_space!r}")
        if pool:
            raise InvalidParameterError(f"null IPAM does not handle specific pool requests ({pool!r})")
        if sub_pool:
            raise InvalidParameterError(f"null IPAM does not handle sub-pool requests ({sub_pool!r})")
        if v6:
            raise InvalidParameterError("null IPAM does not handle IPv6 pool requests")
        return NULL_POOL_ID, ipaddress.IPv4Network(NULL_POOL), {}

    def release_pool(self, pool_id: str) -> None:
        self._check_pool(pool_id)

    def request_address(
        self, pool_id: str, preferred: IPAddress | None, options: Mapping[str, str]
    ) -> tuple[IPInterface | None, dict[str, str]]:
        self._check_pool(pool_id)
        return None, {}

    def release_address(self, pool_id: str, address: IPAddress) -> None:
        self._check_pool(pool_id)

    @staticmethod
    def _check_pool(pool_id: object) -> None:
        if pool_id != NULL_POOL_ID:
            raise NotFoundError(f"null IPAM: unknown pool id {pool_id!r}")


def init(registry: IpamCallback, config: Mapping[str, Any]) -> None:
    """Register the null IPAM driver (it takes no configuration)."""
    driver = NullIpam()
    registry.register_ipam_driver(NULL_IPAM, driver, driver.capabilities())
