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
from netsim.validate import parse_mac

IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

Scope = Literal["local", "global", "swarm"]
SCOPES: tuple[Scope, ...] = ("local", "global", "swarm")

#: the :class:`netsim.kernel.base.Kernel` (fake or real) every kernel change goes through
CONFIG_KERNEL = "kernel"
#: the :class:`netsim.host.Host` the driver runs on: its namespace, uplink and outside
CONFIG_HOST = "host"
#: the controller's options for this driver (``ControllerConfig.driver_options[name]``)
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

#: route type of :meth:`JoinInfo.add_static_route`: through ``next_hop``
#: (libnetwork's ``types.NEXTHOP``); the sandbox gets ``DEST via NEXT_HOP``
NEXTHOP = 0
#: route type of :meth:`JoinInfo.add_static_route`: on-link, no next hop
#: (libnetwork's ``types.CONNECTED``); the sandbox gets ``DEST dev IFACE scope link``
CONNECTED = 1


class EventType(enum.IntEnum):
    """What happened to a table entry (:meth:`Driver.event_notify`)."""

    CREATE = 1
    UPDATE = 2
    DELETE = 3


class DiscoveryType(enum.IntEnum):
    """What :meth:`Driver.discover_new` announces: a node of the cluster
    (``{"Address", "BindAddress", "Self"}``), a datastore, encryption keys."""

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
    """What the driver declares at registration (libnetwork's driverapi.Capability).

    ``data_scope`` says where its networks' state lives: ``"local"`` (this
    host only; :meth:`Driver.network_allocate` is not called) or
    ``"global"``/``"swarm"`` (cluster-wide: allocate/free and table events).
    ``connectivity_scope`` says how far its endpoints reach: ``"local"``
    networks must not reach each other (the conformance suite checks it).
    """

    #: ``"local"``, ``"global"`` or ``"swarm"``
    data_scope: Scope = "local"
    #: ``"local"``, ``"global"`` or ``"swarm"``
    connectivity_scope: Scope = "local"

    def __post_init__(self) -> None:
        for label, value in (("data scope", self.data_scope), ("connectivity scope", self.connectivity_scope)):
            if value not in SCOPES:
                raise InvalidParameterError(f"invalid {label} {value!r}: expected one of {', '.join(SCOPES)}")


@dataclass
class IPAMData:
    """One pool handed to a network: libnetwork's driverapi.IPAMData.

    ``create_network`` receives one per IPv4 and per IPv6 pool, as IPAM
    allocated them: ``IPAMData("LocalDefault", IPv4Network("10.77.0.0/24"),
    gateway=IPv4Interface("10.77.0.1/24"))``.
    """

    #: the IPAM address space (``"LocalDefault"``, ``"GlobalDefault"``)
    address_space: str
    #: the subnet
    pool: IPNetwork
    #: the gateway address with the pool's prefix length (None: IPAM gave none)
    gateway: IPInterface | None = None
    #: addresses reserved by name (Docker's ``--aux-address``)
    aux_addresses: dict[str, IPInterface] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The Docker plugin protocol's shape (CIDR strings)."""
        return {
            "AddressSpace": self.address_space,
            "Pool": str(self.pool),
            "Gateway": str(self.gateway) if self.gateway else "",
            "AuxAddresses": {k: str(v) for k, v in self.aux_addresses.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> IPAMData:
        """From the plugin protocol's shape; malformed data is an InvalidParameterError."""
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
    """The endpoint's interface, handed to :meth:`Driver.create_endpoint`.

    Each value can be set once: the controller sets what the request and IPAM
    gave (the IPv4 address always, with the pool's prefix length; the IPv6
    address on dual-stack networks; the MAC when the user asked for one) and
    the driver may fill only what is still empty. A second set raises
    :class:`netsim.errors.ConflictError` (libnetwork: "already set").

    ``sandbox_key`` is the namespace of the container the endpoint is created
    for, when the controller knows it (``connect``, or ``create_endpoint(...,
    sandbox=...)``; libnetwork's ``NetnsPath``). A driver may then create the
    container's interface directly there and say so with
    :meth:`set_created_in_container` (libnetwork's ``SetCreatedInContainer``):
    at join the controller renames it in place instead of moving it from the
    host, which on Linux saves the move's RCU barrier (10-30 ms).
    """

    def __init__(
        self,
        mac: str | None = None,
        address: IPInterface | None = None,
        address_ipv6: IPInterface | None = None,
        sandbox_key: str | None = None,
    ) -> None:
        self._mac = mac
        self._address = address
        self._address_ipv6 = address_ipv6
        self._sandbox_key = sandbox_key
        self._created_in_container = False

    @property
    def sandbox_key(self) -> str | None:
        """The container's namespace, if known at creation (None: create in the host)."""
        return self._sandbox_key

    @property
    def created_in_container(self) -> bool:
        """Whether the driver made the interface in :attr:`sandbox_key` rather than the host."""
        return self._created_in_container

    def set_created_in_container(self, created: bool) -> None:
        """Say that the interface named at join lives in :attr:`sandbox_key` already."""
        if created and self._sandbox_key is None:
            raise InvalidParameterError("no sandbox known at endpoint creation: the interface belongs in the host")
        self._created_in_container = bool(created)

    @property
    def mac_address(self) -> str | None:
        """Lowercase colon form, or None while unset."""
        return self._mac

    @property
    def address(self) -> IPInterface | None:
        """The IPv4 address with the pool's prefix (``10.77.0.2/24``)."""
        return self._address

    @property
    def address_ipv6(self) -> IPInterface | None:
        """The IPv6 address with the pool's prefix, on dual-stack networks."""
        return self._address_ipv6

    def set_mac_address(self, mac: str) -> None:
        """Set the MAC if none is set (ConflictError otherwise); invalid is InvalidParameterError."""
        if self._mac is not None:
            raise ConflictError(f"endpoint interface MAC address already set to {self._mac}")
        self._mac = parse_mac(mac)

    def set_ip_address(self, address: IPInterface) -> None:
        """Set the IPv4 or IPv6 address (by its version) if that one is unset."""
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
    """A route the controller adds in the sandbox (see :class:`JoinInfo`)."""

    destination: IPNetwork
    #: :data:`NEXTHOP` or :data:`CONNECTED`
    route_type: int
    #: the gateway of a :data:`NEXTHOP` route (None for :data:`CONNECTED`)
    next_hop: IPAddress | None = None


class JoinInfo:
    """What a driver tells the sandbox at join (libnetwork's JoinInfo).

    After :meth:`Driver.join` returns, the controller, in this order:

    1. moves ``src_name`` from the host namespace into the container's
       namespace (renames it there, if the driver created it there: see
       :class:`InterfaceInfo`), named ``<dst_prefix><n>`` with the lowest free
       ``n`` (``eth0``, ``eth1``...), sets the endpoint's MAC if one was given,
       and raises it;
    2. adds the endpoint's addresses with the pool's prefix length
       (``10.77.0.2/24``), so the kernel adds the connected subnet route;
    3. adds ``static_routes`` in order: :data:`CONNECTED` as ``DEST dev
       IFACE scope link``, :data:`NEXTHOP` as ``DEST via NEXT_HOP`` (a next
       hop must be on-link by then: inside the subnet, or made on-link by an
       earlier CONNECTED route, as Calico does with a gateway outside the
       subnet);
    4. points the sandbox's default route (per family) at the gateway of the
       first endpoint joined that has one (none on ``internal`` networks);
    5. calls :meth:`Driver.program_external_connectivity` with the
       container's published ports.

    Leave undoes these in reverse and moves the interface back to the host
    namespace under ``src_name`` before :meth:`Driver.leave`
    (``netsim.controller.sandbox``: see the API reference's controller page).
    """

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
        """The IPv4 default gateway (a plain address, no prefix)."""
        if gateway.version != 4:
            raise InvalidParameterError(f"IPv4 gateway expected, got {gateway}")
        self.gateway = gateway

    def set_gateway_ipv6(self, gateway: ipaddress.IPv6Address) -> None:
        """The IPv6 default gateway (a plain address, no prefix)."""
        if gateway.version != 6:
            raise InvalidParameterError(f"IPv6 gateway expected, got {gateway}")
        self.gateway_ipv6 = gateway

    def add_static_route(self, destination: IPNetwork, route_type: int, next_hop: IPAddress | None = None) -> None:
        """A route for the sandbox: :data:`NEXTHOP` needs ``next_hop``; :data:`CONNECTED` is on-link.
        Any other type is an InvalidParameterError."""
        if route_type not in (NEXTHOP, CONNECTED):
            raise InvalidParameterError(f"invalid route type {route_type}: expected 0 (next hop) or 1 (connected)")
        if route_type == NEXTHOP and next_hop is None:
            raise InvalidParameterError(f"static route to {destination} of type next-hop needs a next hop")
        self.static_routes.append(StaticRoute(destination, route_type, next_hop))

    def disable_gateway_service(self) -> None:
        """libnetwork: this endpoint must not give the container its default gateway."""
        self.gateway_service_disabled = True

    def add_table_entry(self, table_name: str, key: str, value: bytes) -> None:
        """Global scope: publish ``key -> value`` in ``table_name`` to the other hosts."""
        self.table_entries.append((table_name, key, value))


class NetworkInfo:
    """Handed to create_network: table event registration and IPAM updates."""

    def __init__(self) -> None:
        self.tables: dict[str, ObjectType] = {}
        self.ipam_updates: list[IPAMData] = []

    def table_event_register(self, table_name: str, obj_type: ObjectType = ObjectType.ENDPOINT) -> None:
        """Global scope: receive :meth:`Driver.event_notify` for entries of ``table_name``."""
        self.tables[table_name] = obj_type

    def update_ipam_config(self, ipv4_data: Sequence[IPAMData]) -> None:
        """Replace the network's IPv4 IPAM data (libnetwork: a driver that changes the gateway)."""
        self.ipam_updates = list(ipv4_data)


class Driver(abc.ABC):
    """libnetwork's driverapi.Driver, in snake_case.

    The abstract methods are the contract; ``program_external_connectivity``,
    ``revoke_external_connectivity``, ``event_notify``, ``decode_table_entry``,
    ``discover_new`` and ``discover_delete`` do nothing by default. IDs are
    64-hex strings. What the conformance suite holds every driver to:

    * errors come from :mod:`netsim.errors`: :class:`~netsim.errors.NotFoundError`
      for an unknown network or endpoint ID, :class:`~netsim.errors.ConflictError`
      for a duplicate, :class:`~netsim.errors.InvalidParameterError` for a bad
      or unknown option, :class:`~netsim.errors.NotImplementedByDriverError`
      for a call a local-scope driver does not implement (allocate/free);
      never a bare ``KeyError``;
    * every call's inverse removes what it put in the kernel
      (``delete_network`` after ``create_network``, ``delete_endpoint``
      after ``create_endpoint``, ``leave`` after ``join``, ``revoke`` after
      ``program``);
    * calls for different endpoints may come from several threads at once,
      and a :class:`~netsim.kernel.base.Kernel` is not thread-safe: hold a
      lock around the driver's state and kernel work.
    """

    #: After a restart the controller rebuilds an in-process driver's state by
    #: calling it again with every recorded network, endpoint and join on a
    #: kernel that changes nothing (netsim.controller.recovery). A driver that
    #: keeps its own state elsewhere (an out-of-process plugin) sets this False.
    replay_on_recovery: bool = True

    @abc.abstractmethod
    def network_allocate(
        self, nid: str, options: Mapping[str, str], ipv4_data: Sequence[IPAMData], ipv6_data: Sequence[IPAMData]
    ) -> dict[str, str]:
        """Global scope: reserve cluster-wide resources (a VNI...); returns options for create_network.
        Local-scope drivers raise NotImplementedByDriverError."""

    @abc.abstractmethod
    def network_free(self, nid: str) -> None:
        """Global scope: release what network_allocate reserved."""

    @abc.abstractmethod
    def create_network(
        self,
        nid: str,
        options: Mapping[str, Any],
        ninfo: NetworkInfo,
        ipv4_data: Sequence[IPAMData],
        ipv6_data: Sequence[IPAMData],
    ) -> None:
        """Create network ``nid``. ``options`` is ``{netlabel.GENERIC_DATA: {driver options}, ENABLE_IPV6:
        bool, INTERNAL: bool}``; the IPAM data has one entry per pool. A known ``nid`` is a ConflictError."""

    @abc.abstractmethod
    def delete_network(self, nid: str) -> None:
        """Remove network ``nid`` and everything create_network made; unknown is NotFoundError."""

    @abc.abstractmethod
    def create_endpoint(self, nid: str, eid: str, ifinfo: InterfaceInfo, options: Mapping[str, Any]) -> None:
        """Create endpoint ``eid`` (its interface, e.g. a veth pair in the host namespace);
        fill only what ``ifinfo`` left empty. Unknown ``nid`` is NotFoundError."""

    @abc.abstractmethod
    def delete_endpoint(self, nid: str, eid: str) -> None:
        """Remove what create_endpoint made (called after leave)."""

    @abc.abstractmethod
    def endpoint_oper_info(self, nid: str, eid: str) -> dict[str, Any]:
        """Operational data about the endpoint, string keys (``docker network inspect``)."""

    @abc.abstractmethod
    def join(self, nid: str, eid: str, sbox_key: str, jinfo: JoinInfo, options: Mapping[str, Any]) -> None:
        """Attach the endpoint to the sandbox whose namespace is ``sbox_key``: tell the controller
        through ``jinfo`` which interface to move in, the gateway and static routes (see JoinInfo)."""

    @abc.abstractmethod
    def leave(self, nid: str, eid: str) -> None:
        """Undo join (the controller has moved the interface back to the host namespace)."""

    def program_external_connectivity(self, nid: str, eid: str, options: Mapping[str, Any]) -> None:
        """Publish the endpoint's ports: ``options[netlabel.PORT_MAP]`` is a list of
        :class:`netsim.netlabel.PortBinding`. Called after join; repeatable."""
        return None

    def revoke_external_connectivity(self, nid: str, eid: str) -> None:
        """Undo program_external_connectivity; harmless when nothing is programmed."""
        return None

    def event_notify(self, event: EventType, nid: str, table_name: str, key: str, value: bytes) -> None:
        """Global scope: another host created, updated or deleted an entry of a registered table."""
        return None

    def decode_table_entry(self, table_name: str, key: str, value: bytes) -> tuple[str, dict[str, str]]:
        """Global scope: ``(object id, fields)`` of a table entry, for inspection."""
        return "", {}

    @abc.abstractmethod
    def type(self) -> str:
        """The driver's type name (``"bridge"``), non-empty."""

    @abc.abstractmethod
    def is_builtin(self) -> bool:
        """True only for netsim's own drivers."""

    def discover_new(self, dtype: DiscoveryType, data: Any) -> None:
        """A node (or datastore, keys) appeared; local drivers accept and ignore it."""
        return None

    def discover_delete(self, dtype: DiscoveryType, data: Any) -> None:
        """A node went away; an unknown one is accepted."""
        return None


class DriverCallback(Protocol):
    """What an init function registers itself with (libnetwork's driverapi.Registerer)."""

    def register_driver(self, name: str, driver: Driver, capability: Capability) -> None: ...


class DriverInit(Protocol):
    """A driver's init function, named by a ``netsim.drivers`` entry point."""

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
