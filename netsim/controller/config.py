"""Controller configuration and the request types of the controller API."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from netsim.driverapi import EventType, IPAddress, IPNetwork
from netsim.errors import InvalidParameterError
from netsim.netlabel import PortBinding
from netsim.registry import EntryPointScan
from netsim.store import KVStore
from netsim.validate import parse_ip, parse_network

# Docker's rule for container and network names.
NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
MAX_HOSTS = 256


def check_name(name: str, what: str, max_len: int = 64) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name) or len(name) > max_len:
        raise InvalidParameterError(
            f"invalid {what} name {name!r}: expected [a-zA-Z0-9][a-zA-Z0-9_.-]*, at most {max_len} characters"
        )
    return name


@dataclass(frozen=True)
class PoolConfig:
    """One IPAM pool request (``docker network create --subnet/--ip-range/--gateway/--aux-address``)."""

    subnet: str = ""
    ip_range: str = ""
    gateway: str = ""
    aux_addresses: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ParsedPool:
    subnet: IPNetwork | None
    ip_range: IPNetwork | None
    gateway: IPAddress | None
    aux_addresses: dict[str, IPAddress]


def parse_pool(pool: PoolConfig, version: int) -> ParsedPool:
    """Validate a pool request fully before IPAM is asked anything."""
    family = f"IPv{version}"
    subnet = parse_network(pool.subnet, what="subnet") if pool.subnet else None
    if subnet is not None and subnet.version != version:
        raise InvalidParameterError(f"subnet {pool.subnet!r} is not an {family} subnet")
    ip_range = parse_network(pool.ip_range, what="ip range") if pool.ip_range else None
    gateway = parse_ip(pool.gateway, what="gateway") if pool.gateway else None
    aux = {str(k): parse_ip(v, what=f"auxiliary address {k!r}") for k, v in dict(pool.aux_addresses).items()}
    if subnet is None:
        if ip_range is not None or gateway is not None or aux:
            raise InvalidParameterError("an ip range, gateway or auxiliary address needs a subnet")
        return ParsedPool(None, None, None, {})
    if ip_range is not None and (ip_range.version != version or not ip_range.subnet_of(subnet)):  # type: ignore[arg-type]
        raise InvalidParameterError(f"ip range {pool.ip_range!r} is not inside subnet {pool.subnet!r}")
    if gateway is not None and gateway not in subnet:
        raise InvalidParameterError(f"gateway {pool.gateway!r} is outside subnet {pool.subnet!r}")
    for key, address in aux.items():
        if address not in subnet:
            raise InvalidParameterError(f"auxiliary address {key}={address} is outside subnet {pool.subnet!r}")
    return ParsedPool(subnet, ip_range, gateway, aux)


@dataclass(frozen=True)
class IpamConfig:
    driver: str = "default"
    pools: Sequence[PoolConfig] = ()
    pools_v6: Sequence[PoolConfig] = ()
    options: Mapping[str, str] = field(default_factory=dict)


class TableEventSink(Protocol):
    """Where a controller publishes the table entries its drivers add at join
    (libnetwork's networkdb); :class:`netsim.cluster.TableEventBus` is one."""

    def publish(self, origin: str, event: EventType, nid: str, table: str, key: str, value: bytes) -> None: ...


@dataclass(frozen=True)
class ControllerConfig:
    """``host`` names the simulated host; ``host_index`` n gives it 198.18.n.2 on its uplink.

    ``driver_options`` maps a driver name to the options its init function
    receives under ``config["options"]``.
    """

    host: str = "h1"
    host_index: int = 0
    experimental: bool = False
    driver_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: the local-scope store (boltdb's role): a KVStore, or a URL such as
    #: ``sqlite:///var/lib/netsim/h1.db``; None: a private in-memory store that
    #: dies with the controller. A controller opened on a store that holds
    #: records recovers them (see netsim.controller.recovery).
    local_store: KVStore | str | None = None
    #: the global-scope store shared by hosts (``etcd://``, ``zk://``, or any
    #: KVStore); None: the local store serves both scopes
    global_store: KVStore | str | None = None
    #: the local store as an object (older spelling of ``local_store``)
    store: KVStore | None = None
    #: also load third-party drivers from the netsim.drivers / netsim.ipam entry points
    entry_points: bool = True
    #: makes network, endpoint and sandbox ids (64 hex); None: random. A deterministic
    #: one makes runs reproducible (bridge and veth names derive from ids).
    id_factory: Callable[[], str] | None = None
    #: multi-host: join publishes the driver's table entries here (CREATE), leave
    #: withdraws them (DELETE); None on a single host, where nobody listens.
    table_events: TableEventSink | None = None
    #: where third-party drivers are found: None shares one scan of the installed
    #: entry points per process (netsim.registry.process_entry_points); pass
    #: ``EntryPointScan.scan()`` to see plugins installed since that scan.
    discovery: EntryPointScan | None = None
    #: links in the host namespace that someone else manages (a cluster's
    #: underlay uplink): recovery never sweeps them as orphans
    keep_links: tuple[str, ...] = ()
    #: recover existing state while the controller is built (True), or leave it
    #: to an explicit ``Controller.recover()`` once more drivers are registered
    #: (drivers added after construction are replayed too then)
    recover_on_open: bool = True

    def __post_init__(self) -> None:
        check_name(self.host, "host", max_len=32)
        if not isinstance(self.host_index, int) or not 0 <= self.host_index < MAX_HOSTS:
            raise InvalidParameterError(f"invalid host index {self.host_index!r}: expected 0-{MAX_HOSTS - 1}")
        if self.store is not None and self.local_store is not None:
            raise InvalidParameterError("give the local store once: 'store' and 'local_store' are the same setting")
        for label, value in (("local_store", self.local_store), ("global_store", self.global_store)):
            if (
                value is not None
                and not isinstance(value, str)
                and not all(hasattr(value, method) for method in ("get", "put", "delete", "list", "exists"))
            ):
                raise InvalidParameterError(f"invalid {label} {value!r}: expected a store URL or a KVStore")
        if self.discovery is not None and not isinstance(self.discovery, EntryPointScan):
            raise InvalidParameterError(
                f"invalid discovery {self.discovery!r}: expected a netsim.registry.EntryPointScan or None"
            )


def parse_address(text: str | None, version: int, what: str) -> IPAddress | None:
    if text is None or text == "":
        return None
    address = parse_ip(text, what=what)
    if address.version != version:
        raise InvalidParameterError(f"invalid {what} {text!r}: IPv{version} expected")
    return address


def parse_ports(ports: Sequence[PortBinding] | None) -> list[PortBinding]:
    out = []
    for item in ports or ():
        if not isinstance(item, PortBinding):
            raise InvalidParameterError(f"invalid port binding {item!r}: expected a PortBinding")
        out.append(item)
    return out


def ip_network_of(address: str) -> IPNetwork:
    return ipaddress.ip_interface(address).network


__all__ = ["ControllerConfig", "IpamConfig", "PoolConfig", "PortBinding"]
