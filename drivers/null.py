"""The null driver: a sandbox on a null network keeps its loopback only.

libnetwork allows one null network per host (Docker's "none").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from netsim.driverapi import Capability, Driver, DriverCallback, InterfaceInfo, IPAMData, JoinInfo, NetworkInfo
from netsim.errors import ForbiddenError, NotFoundError

NETWORK_TYPE = "null"


class SingleNetworkDriver(Driver):
    """A driver that owns at most one network and gives endpoints nothing.

    Shared by null and host, whose only difference is where the sandbox lives
    (the controller decides that from the driver type).
    """

    network_type = ""

    def __init__(self) -> None:
        self._network: str | None = None
        self._endpoints: set[str] = set()

    def _check_network(self, nid: str) -> None:
        if nid != self._network:
            raise NotFoundError(f"{self.network_type} driver: network {nid!r} not found")

    def network_allocate(
        self, nid: str, options: Mapping[str, str], ipv4_data: Sequence[IPAMData], ipv6_data: Sequence[IPAMData]
    ) -> dict[str, str]:
        return {}

    def network_free(self, nid: str) -> None:
        return None

    def create_network(
        self,
        nid: str,
        options: Mapping[str, Any],
        ninfo: NetworkInfo,
        ipv4_data: Sequence[IPAMData],
        ipv6_data: Sequence[IPAMData],
    ) -> None:
        if self._network is not None:
            raise ForbiddenError(f'only one instance of "{self.network_type}" network is allowed')
        self._network = nid

    def delete_network(self, nid: str) -> None:
        self._check_network(nid)
        self._network = None
        self._endpoints.clear()

    def create_endpoint(self, nid: str, eid: str, ifinfo: InterfaceInfo, options: Mapping[str, Any]) -> None:
        self._check_network(nid)
        self._endpoints.add(eid)

    def delete_endpoint(self, nid: str, eid: str) -> None:
        self._check_network(nid)
        if eid not in self._endpoints:
            raise NotFoundError(f"{self.network_type} driver: endpoint {eid!r} not found")
        self._endpoints.discard(eid)

    def endpoint_oper_info(self, nid: str, eid: str) -> dict[str, Any]:
        self._check_network(nid)
        return {}

    def join(self, nid: str, eid: str, sbox_key: str, jinfo: JoinInfo, options: Mapping[str, Any]) -> None:
        self._check_network(nid)

    def leave(self, nid: str, eid: str) -> None:
        self._check_network(nid)

    def type(self) -> str:
        return self.network_type

    def is_builtin(self) -> bool:
        return True


class NullDriver(SingleNetworkDriver):
    network_type = NETWORK_TYPE


def init(registry: DriverCallback, config: Mapping[str, Any]) -> None:
    registry.register_driver(NETWORK_TYPE, NullDriver(), Capability(data_scope="local"))
