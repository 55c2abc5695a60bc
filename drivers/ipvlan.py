"""The ipvlan driver, as Docker's (libnetwork/drivers/ipvlan): endpoints are
ipvlan slaves of a parent interface. Every slave shares the parent's MAC;
the kernel tells them apart by IP address.

Options (Docker's names): ``parent`` (default: the host's uplink, as netsim's
macvlan; Docker makes a ``di-<id>`` dummy parent instead and marks the
network internal), ``parent.VLAN`` (``eth0.10``: the driver creates that
802.1q sub-interface and removes it with the network), ``ipvlan_mode`` l2
(default), l3 or l3s, ``ipvlan_flag`` bridge (default), private or vepa.

As in Docker: one ipvlan network per parent (the mode and flag are the
parent's, in the kernel); the slave is created at join, named for the
endpoint, and deleted with the endpoint; a custom MAC is refused; in l2 mode
the sandbox's gateway is the IPAM gateway (the LAN's router); in l3 and l3s
modes there is no gateway, but an on-link default route through the slave
(the parent's namespace routes what the slave sends), for each family the
endpoint has an address of; every join disables the gateway service; an
internal network gets neither gateway nor route. Unlike Docker, the kernel
is probed at network creation (Docker checks the kernel version there), so
a kernel without the ipvlan link kind refuses the network, not the first
container.
"""

from __future__ import annotations

import contextlib
import ipaddress
import threading
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from drivers.macvlan import parse_parent
from netsim import netlabel
from netsim.driverapi import (
    CONFIG_STORE,
    CONNECTED,
    Capability,
    Driver,
    DriverCallback,
    InterfaceInfo,
    IPAMData,
    IPInterface,
    JoinInfo,
    NetworkInfo,
)
from netsim.errors import ConflictError, ForbiddenError, InvalidParameterError, NotFoundError
from netsim.host import Host
from netsim.kernel.base import IpvlanFlag, IpvlanMode, Kernel
from netsim.netutils import has_link
from netsim.registry import kernel_and_host
from netsim.store import KVStore, MemoryStore
from netsim.undo import rollback_on_error

NETWORK_TYPE = "ipvlan"
PARENT = "parent"
MODE = "ipvlan_mode"
FLAG = "ipvlan_flag"
MODES: tuple[IpvlanMode, ...] = ("l2", "l3", "l3s")
FLAGS: tuple[IpvlanFlag, ...] = ("bridge", "private", "vepa")
LINK_PREFIX = "ipvl"
#: the name Docker gives a network's dummy parent, and uses in its conflict message
DUMMY_PREFIX = "di-"
DEFAULT_V4 = ipaddress.ip_network("0.0.0.0/0")
DEFAULT_V6 = ipaddress.ip_network("::/0")
#: store key prefix: the parents this driver created, by network id (Docker's CreatedSlaveLink)
CREATED_PARENT_KEY = "ipvlan/created-parent/"


def dummy_name(nid: str) -> str:
    """Docker's ``getDummyName``: ``di-`` and the first 12 characters of the id."""
    return DUMMY_PREFIX + nid[:12]


@dataclass(frozen=True)
class IpvlanConfig:
    nid: str
    parent: str
    #: (base link, VLAN id) when the parent is an 802.1q sub-interface
    vlan: tuple[str, int] | None
    mode: IpvlanMode
    flag: IpvlanFlag
    internal: bool
    #: IPAM pools with their gateways (l2 mode gives the endpoint's subnet's gateway)
    subnets: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, IPInterface | None], ...]


def parse_config(
    nid: str, options: Mapping[str, Any], uplink: str, ipv4_data: Sequence[IPAMData], ipv6_data: Sequence[IPAMData]
) -> IpvlanConfig:
    """Docker's ``parseNetworkOptions``, with its messages (prefixed by the option
    key, which the scenario loader points at)."""
    generic = netlabel.generic_options(options)
    mode = str(generic.get(MODE) or "l2")
    if mode not in MODES:
        raise InvalidParameterError(
            f"invalid value {mode!r} for {MODE}: requested ipvlan mode '{mode}' is not valid, "
            "'l2' mode is the ipvlan driver default"
        )
    flag = str(generic.get(FLAG) or "bridge")
    if flag not in FLAGS:
        raise InvalidParameterError(
            f"invalid value {flag!r} for {FLAG}: requested ipvlan flag '{flag}' is not valid, "
            "'bridge' is the ipvlan driver default"
        )
    requested = str(generic.get(PARENT) or uplink)
    if requested == "lo":
        raise InvalidParameterError(
            f"invalid value 'lo' for {PARENT}: loopback interface is not a valid ipvlan parent link"
        )
    parent, vlan = parse_parent(requested)
    subnets = tuple((data.pool, data.gateway) for data in (*ipv4_data, *ipv6_data))
    return IpvlanConfig(
        nid=nid,
        parent=parent,
        vlan=vlan,
        mode=mode,
        flag=flag,
        internal=netlabel.flag(options, netlabel.INTERNAL),
        subnets=subnets,
    )


def validate_network_options(options: Mapping[str, Any], host_links: Collection[str] = ()) -> None:
    """Check parent, mode and flag without a kernel (the scenario loader's road;
    :func:`parse_config` is the same check at ``create_network``). The parent,
    or the base link of a ``parent.VLAN``, must be one of ``host_links`` when
    they are given: the driver creates VLAN sub-interfaces, never base links."""
    config = parse_config("0" * 64, options, "eth0", [], [])
    base = config.vlan[0] if config.vlan else config.parent
    if host_links and PARENT in netlabel.generic_options(options) and base not in host_links:
        raise InvalidParameterError(
            f"invalid value {config.parent!r} for {PARENT}: the host has no link {base!r} "
            f"(it has {', '.join(sorted(host_links))})"
        )


@dataclass
class IpvlanEndpoint:
    address: IPInterface | None
    address_ipv6: IPInterface | None
    #: the slave's name in the host namespace (set at the first join)
    link: str | None = None


@dataclass
class IpvlanNetwork:
    config: IpvlanConfig
    #: whether this driver created the parent (a VLAN sub-interface) and removes it
    created_parent: bool = False
    endpoints: dict[str, IpvlanEndpoint] = field(default_factory=dict)


class IpvlanDriver(Driver):
    def __init__(self, kernel: Kernel, host: Host, store: KVStore | None = None) -> None:
        self.kernel = kernel
        self.host = host
        #: remembers which VLAN parents this driver created across a restart, as
        #: Docker's store does: a replayed create_network finds the parent there
        #: and must still claim (and later remove) it
        self.store: KVStore = store if store is not None else MemoryStore()
        self.networks: dict[str, IpvlanNetwork] = {}
        self._lock = threading.RLock()

    def _network(self, nid: str) -> IpvlanNetwork:
        network = self.networks.get(nid)
        if network is None:
            raise NotFoundError(f"network not found: {nid}")
        return network

    def _endpoint(self, nid: str, eid: str) -> tuple[IpvlanNetwork, IpvlanEndpoint]:
        network = self._network(nid)
        endpoint = network.endpoints.get(eid)
        if endpoint is None:
            raise NotFoundError(f"could not find endpoint with id {eid}")
        return network, endpoint

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
        config = parse_config(nid, options, self.host.uplink, ipv4_data, ipv6_data)
        with self._lock:
            if nid in self.networks:
                raise ConflictError(f"ipvlan network {nid[:12]!r} exists already")
            for other in self.networks.values():
                if other.config.parent == config.parent:
                    raise ForbiddenError(
                        f"network {dummy_name(other.config.nid)} is already using parent interface {config.parent}"
                    )
            network = IpvlanNetwork(config)
            key = CREATED_PARENT_KEY + nid
            # A restarted controller replays this call with the parent already there: the
            # store says it is ours (the replay records the creation without applying it).
            ours = config.vlan is not None and self.store.exists(key)
            with rollback_on_error() as undo:
                if ours or not self._exists(config.parent):
                    self._create_vlan(config)
                    network.created_parent = True
                    undo.push("delete vlan", lambda: self.kernel.delete_link(self.host.namespace, config.parent))
                self._probe_kernel(config)
                if network.created_parent:
                    self.store.put(key, config.parent)
            self.networks[nid] = network

    def _create_vlan(self, config: IpvlanConfig) -> None:
        """Docker's ``createVlanLink``: only a ``parent.VLAN`` name is created."""
        if config.vlan is None:
            raise NotFoundError(
                f"invalid subinterface vlan name {config.parent}, example formatting is eth0.10 "
                f"(no link {config.parent!r} on the host)"
            )
        base, vlan_id = config.vlan
        if not self._exists(base):
            raise NotFoundError(f"-o parent interface was not found on the host: {base}")
        ns = self.host.namespace
        with rollback_on_error() as undo:
            self.kernel.add_vlan(ns, config.parent, base, vlan_id)
            undo.push("delete vlan", lambda: self.kernel.delete_link(ns, config.parent))
            self.kernel.set_link_up(ns, config.parent)

    def _probe_kernel(self, config: IpvlanConfig) -> None:
        """Make and remove one slave now, so that a kernel without ipvlan (or a
        parent that cannot carry one) refuses the network rather than its first
        container (Docker checks the kernel version here)."""
        ns, name = self.host.namespace, f"{LINK_PREFIX}{config.nid[:11]}"
        self.kernel.add_ipvlan(ns, name, config.parent, config.mode, config.flag)
        self.kernel.delete_link(ns, name)

    def _exists(self, link: str) -> bool:
        return has_link(self.kernel, self.host.namespace, link)

    def delete_network(self, nid: str) -> None:
        with self._lock:
            network = self._network(nid)
            if network.endpoints:
                raise ForbiddenError(f"ipvlan network {nid[:12]} has {len(network.endpoints)} active endpoints")
            if network.created_parent:
                with contextlib.suppress(NotFoundError):
                    self.kernel.delete_link(self.host.namespace, network.config.parent)
                with contextlib.suppress(NotFoundError):
                    self.store.delete(CREATED_PARENT_KEY + nid)
            del self.networks[nid]

    def create_endpoint(self, nid: str, eid: str, ifinfo: InterfaceInfo, options: Mapping[str, Any]) -> None:
        with self._lock:
            network = self._network(nid)
            if eid in network.endpoints:
                raise ConflictError(f"ipvlan endpoint {eid[:12]} exists already")
            if ifinfo.mac_address is not None:
                raise InvalidParameterError("ipvlan interfaces do not support custom mac address assignment")
            # Docker only warns about port mappings and exposed ports: ipvlan publishes none.
            network.endpoints[eid] = IpvlanEndpoint(ifinfo.address, ifinfo.address_ipv6)

    def delete_endpoint(self, nid: str, eid: str) -> None:
        with self._lock:
            network, endpoint = self._endpoint(nid, eid)
            if endpoint.link is not None:
                with contextlib.suppress(NotFoundError):  # it went with a deleted sandbox namespace
                    self.kernel.delete_link(self.host.namespace, endpoint.link)
            del network.endpoints[eid]

    def endpoint_oper_info(self, nid: str, eid: str) -> dict[str, Any]:
        self._endpoint(nid, eid)
        return {}

    def join(self, nid: str, eid: str, sbox_key: str, jinfo: JoinInfo, options: Mapping[str, Any]) -> None:
        with self._lock:
            network, endpoint = self._endpoint(nid, eid)
            config = network.config
            name = f"{LINK_PREFIX}{eid[:11]}"
            if not self._exists(name):  # a rejoin finds the slave a leave moved back
                self.kernel.add_ipvlan(self.host.namespace, name, config.parent, config.mode, config.flag)
            endpoint.link = name
        jinfo.set_names(name, "eth")
        if not config.internal:
            if config.mode in ("l3", "l3s"):
                # the slave has no neighbours to resolve: everything is on-link
                if endpoint.address is not None:
                    jinfo.add_static_route(DEFAULT_V4, CONNECTED)
                if endpoint.address_ipv6 is not None:
                    jinfo.add_static_route(DEFAULT_V6, CONNECTED)
            else:
                self._set_l2_gateways(config, endpoint, jinfo)
        jinfo.disable_gateway_service()

    @staticmethod
    def _set_l2_gateways(config: IpvlanConfig, endpoint: IpvlanEndpoint, jinfo: JoinInfo) -> None:
        """The gateway of the IPAM pool holding the endpoint's address (Docker's getSubnetForIP)."""
        for address in (endpoint.address, endpoint.address_ipv6):
            if address is None or not config.subnets:
                continue
            prefix = address.network.prefixlen
            match = [gw for pool, gw in config.subnets if pool.prefixlen == prefix and address.ip in pool]
            if not match:
                raise InvalidParameterError(f"could not find a valid ipv{address.version} subnet for endpoint")
            gateway = match[0].ip if match[0] is not None else None
            if isinstance(gateway, ipaddress.IPv4Address):
                jinfo.set_gateway(gateway)
            elif isinstance(gateway, ipaddress.IPv6Address):
                jinfo.set_gateway_ipv6(gateway)

    def leave(self, nid: str, eid: str) -> None:
        self._endpoint(nid, eid)

    def type(self) -> str:
        return NETWORK_TYPE

    def is_builtin(self) -> bool:
        return True


def init(registry: DriverCallback, config: Mapping[str, Any]) -> None:
    kernel, host = kernel_and_host(config, NETWORK_TYPE)
    store = config.get(CONFIG_STORE)  # explicit None check: an empty store is falsy
    driver = IpvlanDriver(kernel, host, store if store is not None else None)
    registry.register_driver(NETWORK_TYPE, driver, Capability(data_scope="local", connectivity_scope="global"))
