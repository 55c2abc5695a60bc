"""libnetwork's Driver contract in Python (snake_case, same semantics).

A network driver is an object implementing :class:`Driver`. It is added to a
registry by calling its *init function* ``init(registry, config)``, which
builds the driver and calls ``registry.register_driver(name, driver,
capability)``, exactly as libnetwork's ``AddDriver`` does.

``config`` is built by the controller for each driver (libnetwork's
``makeDriverConfig``): :data:`CONFIG_KERNEL` is the :class:`netsim.kernel.base.Kernel`,
:data:`CONFIG_HOST` the :class:`netsim.host.Host` the driver runs on, plus the
controller's per-driver options (e.g. ``{"bridge": {...}}`` →
``config["options"]``), and the stores: :data:`CONFIG_STORE` (local scope)
and :data:`CONFIG_GLOBAL_STORE` (global scope). IPAM init functions receive
the same two stores (libnetwork's ``Init(cb, lDs, gDs)``).
"""

from __future__ import annotations

import abc
import enum
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from netsim.errors import ConflictError, InvalidParameterError, NotImplementedByDriverError

IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

Scope = Literal["local", "global", "swarm"]
SCOPES: tuple[Scope, ...] = ("local", "global", "swarm")

CONFIG_KERNEL = "kernel"
CONFIG_HOST = "host"
CONFIG_OPTIONS = "options"
#: the controller's local-scope store (libnetwork's LocalKVClient)
CONFIG_STORE = "store"
#: the global-scope store shared by every host (libnetwork's GlobalKVClient);
#: the local store when the controller has no global one
CONFIG_GLOBAL_STORE = "global_store"
#: true when the controller was given a store to survive in (restart and
#: recovery): drivers and IPAM keep their state in the stores then; false for
#: the embedded default, a private in-memory store that dies with the process
CONFIG_PERSISTENT = "persistent"

# Route types of JoinInfo.add_static_route (libnetwork's types.NEXTHOP/CONNECTED).
NEXTHOP = 0
CONNECTED = 1


class EventType(enum.IntEnum):
    CREATE = 1
    UPDATE = 2
    DELETE = 3


class DiscoveryType(enum.IntEnum):
    NODE = 1
    DATASTORE = 2
    ENCRYPTION_KEYS = 3


class ObjectType(enum.IntEnum):
    """What a table registered through NetworkInfo describes."""

    ENDPOINT = 1
    NETWORK = 2
    USER = 3


@dataclass(frozen=True)
class Capability:
    """What the driver declares at registration."""

    data_scope: Scope = "local"
    connectivity_scope: Scope = "local"

    def __post_init__(self) -> None:
        for label, value in (("data scope", self.data_scope), ("connectivity scope", self.connectivity_scope)):
            if value not in SCOPES:
                raise InvalidParameterError(f"invalid {label} {value!r}: expected one of {', '.join(SCOPES)}")


@dataclass
class IPAMData:
    """One pool handed to a network: libnetwork's driverapi.IPAMData."""

    address_space: str
    pool: IPNetwork
    gateway: IPInterface | None = None
    aux_addresses: dict[str, IPInterface] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "AddressSpace": self.address_space,
            "Pool": str(self.pool),
            "Gateway": str(self.gateway) if self.gateway else "",
            "AuxAddresses": {k: str(v) for k, v in self.aux_addresses.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> IPAMData:
        try:
            gateway = data.get("Gateway") or None
            pool = data["Pool"]
            aux = data.get("AuxAddresses") or {}
            if not isinstance(pool, str) or not isinstance(gateway, str | None) or not isinstance(aux, Mapping):
                raise TypeError("Pool and Gateway must be CIDR strings, AuxAddresses a mapping")
            if not all(isinstance(v, str) for v in aux.values()):
                raise TypeError("AuxAddresses values must be CIDR strings")
            return cls(
                address_space=str(data.get("AddressSpace", "")),
                pool=ipaddress.ip_network(data["Pool"], strict=False),
                gateway=ipaddress.ip_interface(gateway) if gateway else None,
                aux_addresses={str(k): ipaddress.ip_interface(v) for k, v in (data.get("AuxAddresses") or {}).items()},
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidParameterError(f"malformed IPAMData {dict(data)!r}: {exc}") from exc


class InterfaceInfo:
    """The endpoint's interface: each value can be set once, by the controller
    (from the request and IPAM) or by the driver (only what is still empty)."""

    def __init__(
        self,
        mac: str | None = None,
        address: IPInterface | None = None,
        address_ipv6: IPInterface | None = None,
    ) -> None:
        self._mac = mac
        self._address = address
        self._address_ipv6 = address_ipv6

    @property
    def mac_address(self) -> str | None:
        return self._mac

    @property
    def address(self) -> IPInterface | None:
        return self._address

    @property
    def address_ipv6(self) -> IPInterface | None:
        return self._address_ipv6

    def set_mac_address(self, mac: str) -> None:
        if self._mac is not None:
            raise ConflictError(f"endpoint interface MAC address already set to {self._mac}")
        from netsim.validate import parse_mac

        self._mac = parse_mac(mac)

    def set_ip_address(self, address: IPInterface) -> None:
        if address.version == 4:
            if self._address is not None:
                raise ConflictError(f"endpoint interface IPv4 address already set to {self._address}")
            self._address = address
        else:
            if self._address_ipv6 is not None:
                raise ConflictError(f"endpoint interface IPv6 address already set to {self._address_ipv6}")
            self._address_ipv6 = address

    def __repr__(self) -> str:
        return f"InterfaceInfo(mac={self._mac!r}, address={self._address!s}, address_ipv6={self._address_ipv6!s})"


@dataclass(frozen=True)
class StaticRoute:
    destination: IPNetwork
    route_type: int  # NEXTHOP or CONNECTED
    next_hop: IPAddress | None = None


class JoinInfo:
    """What a driver tells the sandbox at join (libnetwork's JoinInfo)."""

    def __init__(self) -> None:
        self.src_name: str | None = None
        self.dst_prefix: str | None = None
        self.gateway: ipaddress.IPv4Address | None = None
        self.gateway_ipv6: ipaddress.IPv6Address | None = None
        self.static_routes: list[StaticRoute] = []
        self.gateway_service_disabled = False
        self.table_entries: list[tuple[str, str, bytes]] = []

    def set_names(self, src_name: str, dst_prefix: str) -> None:
        """The interface ``src_name`` (in the host namespace) moves into the
        sandbox and is renamed ``<dst_prefix><n>``."""
        self.src_name = src_name
        self.dst_prefix = dst_prefix

    def set_gateway(self, gateway: ipaddress.IPv4Address) -> None:
        if gateway.version != 4:
            raise InvalidParameterError(f"IPv4 gateway expected, got {gateway}")
        self.gateway = gateway

    def set_gateway_ipv6(self, gateway: ipaddress.IPv6Address) -> None:
        if gateway.version != 6:
            raise InvalidParameterError(f"IPv6 gateway expected, got {gateway}")
        self.gateway_ipv6 = gateway

    def add_static_route(self, destination: IPNetwork, route_type: int, next_hop: IPAddress | None = None) -> None:
        if route_type not in (NEXTHOP, CONNECTED):
            raise InvalidParameterError(f"invalid route type {route_type}: expected 0 (next hop) or 1 (connected)")
        if route_type == NEXTHOP and next_hop is None:
            raise InvalidParameterError(f"static route to {destination} of type next-hop needs a next hop")
        self.static_routes.append(StaticRoute(destination, route_type, next_hop))

    def disable_gateway_service(self) -> None:
        self.gateway_service_disabled = True

    def add_table_entry(self, table_name: str, key: str, value: bytes) -> None:
        self.table_entries.append((table_name, key, value))


class NetworkInfo:
    """Handed to create_network: table event registration and IPAM updates."""

    def __init__(self) -> None:
        self.tables: dict[str, ObjectType] = {}
        self.ipam_updates: list[IPAMData] = []

    def table_event_register(self, table_name: str, obj_type: ObjectType = ObjectType.ENDPOINT) -> None:
        self.tables[table_name] = obj_type

    def update_ipam_config(self, ipv4_data: Sequence[IPAMData]) -> None:
        self.ipam_updates = list(ipv4_data)


class Driver(abc.ABC):
    """libnetwork's driverapi.Driver. Optional calls raise
    :class:`NotImplementedByDriverError` by default."""

    #: After a restart the controller rebuilds an in-process driver's state by
    #: calling it again with every recorded network, endpoint and join on a
    #: kernel that changes nothing (netsim.controller.recovery). A driver that
    #: keeps its own state elsewhere (an out-of-process plugin) sets this False.
    replay_on_recovery: bool = True

    @abc.abstractmethod
    def network_allocate(
        self, nid: str, options: Mapping[str, str], ipv4_data: Sequence[IPAMData], ipv6_data: Sequence[IPAMData]
    ) -> dict[str, str]: ...

    @abc.abstractmethod
    def network_free(self, nid: str) -> None: ...

    @abc.abstractmethod
    def create_network(
        self,
        nid: str,
        options: Mapping[str, Any],
        ninfo: NetworkInfo,
        ipv4_data: Sequence[IPAMData],
        ipv6_data: Sequence[IPAMData],
    ) -> None: ...

    @abc.abstractmethod
    def delete_network(self, nid: str) -> None: ...

    @abc.abstractmethod
    def create_endpoint(self, nid: str, eid: str, ifinfo: InterfaceInfo, options: Mapping[str, Any]) -> None: ...

    @abc.abstractmethod
    def delete_endpoint(self, nid: str, eid: str) -> None: ...

    @abc.abstractmethod
    def endpoint_oper_info(self, nid: str, eid: str) -> dict[str, Any]: ...

    @abc.abstractmethod
    def join(self, nid: str, eid: str, sbox_key: str, jinfo: JoinInfo, options: Mapping[str, Any]) -> None: ...

    @abc.abstractmethod
    def leave(self, nid: str, eid: str) -> None: ...

    def program_external_connectivity(self, nid: str, eid: str, options: Mapping[str, Any]) -> None:
        return None

    def revoke_external_connectivity(self, nid: str, eid: str) -> None:
        return None

    def event_notify(self, event: EventType, nid: str, table_name: str, key: str, value: bytes) -> None:
        return None

    def decode_table_entry(self, table_name: str, key: str, value: bytes) -> tuple[str, dict[str, str]]:
        return "", {}

    @abc.abstractmethod
    def type(self) -> str: ...

    @abc.abstractmethod
    def is_builtin(self) -> bool: ...

    def discover_new(self, dtype: DiscoveryType, data: Any) -> None:
        return None

    def discover_delete(self, dtype: DiscoveryType, data: Any) -> None:
        return None


class DriverCallback(Protocol):
    """What an init function registers itself with (libnetwork's driverapi.Registerer)."""

    def register_driver(self, name: str, driver: Driver, capability: Capability) -> None: ...


class DriverInit(Protocol):
    def __call__(self, registry: DriverCallback, config: Mapping[str, Any]) -> None: ...


__all__ = [
    "CONNECTED",
    "NEXTHOP",
    "Capability",
    "DiscoveryType",
    "Driver",
    "DriverCallback",
    "DriverInit",
    "EventType",
    "IPAMData",
    "InterfaceInfo",
    "JoinInfo",
    "NetworkInfo",
    "NotImplementedByDriverError",
    "ObjectType",
    "StaticRoute",
]
