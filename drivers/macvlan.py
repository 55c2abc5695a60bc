"""The macvlan driver: endpoints are macvlan links of a parent interface, so
containers sit directly on the parent's LAN (here: the host's uplink leading
to the outside namespace).

Options: ``parent`` (default: the host's uplink). ``parent.VLAN`` (e.g.
``eth0.10``) makes the driver create that 802.1q sub-interface, and remove it
when the last network using it goes (one it did not create is left alone).
As libnetwork's ``CreatedSlaveLink``, every network on a sub-interface the
driver created says so in the driver's store, so a restarted controller's
replay claims the sub-interface again instead of sweeping it.
``macvlan_mode``: bridge (default), private, vepa, passthru. As in libnetwork,
an endpoint's link is created in the host namespace and moved into the
sandbox at join; the IPAM gateway is the LAN's router.
"""

from __future__ import annotations

import contextlib
import ipaddress
import threading
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from drivers.bridge.config import parse_mtu
from netsim import netlabel
from netsim.driverapi import (
    CONFIG_STORE,
    Capability,
    Driver,
    DriverCallback,
    InterfaceInfo,
    IPAMData,
    JoinInfo,
    NetworkInfo,
)
from netsim.errors import ConflictError, ForbiddenError, InvalidParameterError, NotFoundError
from netsim.host import Host
from netsim.kernel.base import Kernel, MacvlanMode
from netsim.naming import MAX_IFNAME
from netsim.netutils import has_link, mac_from_ipv4
from netsim.registry import kernel_and_host
from netsim.store import KVStore, MemoryStore
from netsim.undo import rollback_on_error

NETWORK_TYPE = "macvlan"
MODES: tuple[MacvlanMode, ...] = ("bridge", "private", "vepa", "passthru")
LINK_PREFIX = "macv"
#: store key prefix: network id → the VLAN parent the driver created that it uses
#: (libnetwork's CreatedSlaveLink, which every network on that parent carries)
CREATED_PARENT_KEY = "macvlan/created-parent/"


@dataclass(frozen=True)
class MacvlanConfig:
    nid: str
    parent: str
    #: (base link, VLAN id) when the parent is an 802.1q sub-interface
    vlan: tuple[str, int] | None
    mode: MacvlanMode
    mtu: int | None
    internal: bool
    gateway: ipaddress.IPv4Address | None
    gateway_ipv6: ipaddress.IPv6Address | None


def parse_parent(value: str) -> tuple[str, tuple[str, int] | None]:
    """``eth0`` → (eth0, None); ``eth0.10`` → (eth0.10, (eth0, 10))."""
    if not value or len(value.encode()) > MAX_IFNAME or any(c in value for c in "/: \t\n"):
        raise InvalidParameterError(f"invalid value {value!r} for {netlabel.MACVLAN_PARENT}: not an interface name")
    base, dot, tag = value.rpartition(".")
    if not dot:
        return value, None
    if not base or not tag.isdigit() or not 1 <= int(tag) <= 4094:
        raise InvalidParameterError(
            f"invalid value {value!r} for {netlabel.MACVLAN_PARENT}: expected <link>.<vlan id 1-4094>"
        )
    return value, (base, int(tag))


def parse_config(
    nid: str, options: Mapping[str, Any], uplink: str, ipv4_data: Sequence[IPAMData], ipv6_data: Sequence[IPAMData]
) -> MacvlanConfig:
    generic = netlabel.generic_options(options)
    parent, vlan = parse_parent(str(generic.get(netlabel.MACVLAN_PARENT) or uplink))
    mode = str(generic.get(netlabel.MACVLAN_MODE) or "bridge")
    if mode not in MODES:
        raise InvalidParameterError(
            f"invalid value {mode!r} for {netlabel.MACVLAN_MODE}: expected one of {', '.join(MODES)}"
        )
    gateway = ipv4_data[0].gateway.ip if ipv4_data and ipv4_data[0].gateway else None
    gateway6 = ipv6_data[0].gateway.ip if ipv6_data and ipv6_data[0].gateway else None
    return MacvlanConfig(
        nid=nid,
        parent=parent,
        vlan=vlan,
        mode=mode,
        mtu=parse_mtu(generic.get(netlabel.DRIVER_MTU)),
        internal=netlabel.flag(options, netlabel.INTERNAL),
        gateway=gateway if isinstance(gateway, ipaddress.IPv4Address) else None,
        gateway_ipv6=gateway6 if isinstance(gateway6, ipaddress.IPv6Address) else None,
    )


def validate_network_options(options: Mapping[str, Any], host_links: Collection[str] = ()) -> None:
    """Check parent, mode and MTU without a kernel (the scenario loader's road;
    :func:`parse_config` is the same check at ``create_network``). The parent,
    or the base link of a ``parent.VLAN``, must be one of ``host_links`` when
    they are given: the driver creates VLAN sub-interfaces, never base links."""
    config = parse_config("0" * 64, options, "eth0", [], [])
    generic = netlabel.generic_options(options)
    base = config.vlan[0] if config.vlan else config.parent
    if host_links and netlabel.MACVLAN_PARENT in generic and base not in host_links:
        raise InvalidParameterError(
            f"invalid value {config.parent!r} for {netlabel.MACVLAN_PARENT}: the host has no link {base!r} "
            f"(it has {', '.join(sorted(host_links))})"
        )


@dataclass
class MacvlanNetwork:
    config: MacvlanConfig
    #: endpoint id → link name (in the host namespace until joined)
    endpoints: dict[str, str] = field(default_factory=dict)


class MacvlanDriver(Driver):
    def __init__(self, kernel: Kernel, host: Host, store: KVStore | None = None) -> None:
        self.kernel = kernel
        self.host = host
        #: remembers which networks use a VLAN parent this driver created, across a
        #: restart: a replayed create_network finds the parent in the kernel and must
        #: still claim it (and remove it with the last network)
        self.store: KVStore = store if store is not None else MemoryStore()
        self.networks: dict[str, MacvlanNetwork] = {}
        #: VLAN sub-interfaces this driver created → ids of networks using them
        self.vlan_users: dict[str, set[str]] = {}
        self._lock = threading.RLock()

    def _network(self, nid: str) -> MacvlanNetwork:
        network = self.networks.get(nid)
        if network is None:
            raise NotFoundError(f"macvlan network {nid[:12]!r} not found")
        return network

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
                raise ConflictError(f"macvlan network {nid[:12]!r} exists already")
            if config.mode == "passthru" and any(n.config.parent == config.parent for n in self.networks.values()):
                raise ForbiddenError(f"parent {config.parent!r} is already used: passthru mode needs it alone")
            ours = config.parent in self.vlan_users
            # A restarted controller replays this call with the parent already in the
            # kernel: the store says it is ours (the replay records the creation only,
            # noting the link against the network). A parent that is gone is made
            # again, as Docker does, also for a network sharing it: each network then
            # owns it in the replay, so each is found broken when it was lost.
            recorded = not ours and self._recorded_parent(nid) == config.parent
            with rollback_on_error() as undo:
                if recorded or not self._exists(config.parent):
                    if config.vlan is None:
                        raise NotFoundError(
                            f"{netlabel.MACVLAN_PARENT} interface {config.parent!r} not found on the host"
                        )
                    self._create_vlan(config.parent, *config.vlan)
                    undo.push("delete vlan", lambda: self.kernel.delete_link(self.host.namespace, config.parent))
                    ours = True
                if ours:
                    self.store.put(CREATED_PARENT_KEY + nid, config.parent)
            if ours:
                self.vlan_users.setdefault(config.parent, set()).add(nid)
            self.networks[nid] = MacvlanNetwork(config)

    def _recorded_parent(self, nid: str) -> str | None:
        try:
            return self.store.get(CREATED_PARENT_KEY + nid).value
        except NotFoundError:
            return None

    def _create_vlan(self, name: str, base: str, vlan_id: int) -> None:
        if not self._exists(base):
            raise NotFoundError(f"{netlabel.MACVLAN_PARENT} base interface {base!r} not found on the host")
        ns = self.host.namespace
        with rollback_on_error() as undo:
            self.kernel.add_vlan(ns, name, base, vlan_id)
            undo.push("delete vlan", lambda: self.kernel.delete_link(ns, name))
            self.kernel.set_link_up(ns, name)

    def _exists(self, link: str) -> bool:
        return has_link(self.kernel, self.host.namespace, link)

    def delete_network(self, nid: str) -> None:
        with self._lock:
            network = self._network(nid)
            if network.endpoints:
                raise ForbiddenError(f"macvlan network {nid[:12]} has {len(network.endpoints)} active endpoints")
            parent = network.config.parent
            users = self.vlan_users.get(parent)
            if users is not None and users == {nid}:
                # The last network on a sub-interface we created: remove it.
                with contextlib.suppress(NotFoundError):  # someone removed it already
                    self.kernel.delete_link(self.host.namespace, parent)
                del self.vlan_users[parent]
            elif users is not None:
                users.discard(nid)
            if users is not None:
                with contextlib.suppress(NotFoundError):
                    self.store.delete(CREATED_PARENT_KEY + nid)
            del self.networks[nid]

    def create_endpoint(self, nid: str, eid: str, ifinfo: InterfaceInfo, options: Mapping[str, Any]) -> None:
        with self._lock:
            network = self._network(nid)
            if eid in network.endpoints:
                raise ConflictError(f"macvlan endpoint {eid[:12]} exists already")
            if ifinfo.mac_address is None and ifinfo.address is not None:
                ifinfo.set_mac_address(mac_from_ipv4(ifinfo.address))
            name = f"{LINK_PREFIX}{eid[:11]}"
            ns = self.host.namespace
            with rollback_on_error() as undo:
                self.kernel.add_macvlan(ns, name, network.config.parent, network.config.mode)
                undo.push("delete macvlan", lambda: self.kernel.delete_link(ns, name))
                if ifinfo.mac_address is not None:
                    self.kernel.set_mac(ns, name, ifinfo.mac_address)
                if network.config.mtu is not None:
                    self.kernel.set_mtu(ns, name, network.config.mtu)
            network.endpoints[eid] = name

    def delete_endpoint(self, nid: str, eid: str) -> None:
        with self._lock:
            network = self._network(nid)
            name = network.endpoints.get(eid)
            if name is None:
                raise NotFoundError(f"macvlan endpoint {eid[:12]!r} not found")
            with contextlib.suppress(NotFoundError):  # it went with a deleted sandbox namespace
                self.kernel.delete_link(self.host.namespace, name)
            del network.endpoints[eid]

    def endpoint_oper_info(self, nid: str, eid: str) -> dict[str, Any]:
        network = self._network(nid)
        return {"parent": network.config.parent, "mode": network.config.mode}

    def join(self, nid: str, eid: str, sbox_key: str, jinfo: JoinInfo, options: Mapping[str, Any]) -> None:
        network = self._network(nid)
        name = network.endpoints.get(eid)
        if name is None:
            raise NotFoundError(f"macvlan endpoint {eid[:12]!r} not found")
        jinfo.set_names(name, "eth")
        if network.config.internal:
            return
        if network.config.gateway is not None:
            jinfo.set_gateway(network.config.gateway)
        if network.config.gateway_ipv6 is not None:
            jinfo.set_gateway_ipv6(network.config.gateway_ipv6)

    def leave(self, nid: str, eid: str) -> None:
        if eid not in self._network(nid).endpoints:
            raise NotFoundError(f"macvlan endpoint {eid[:12]!r} not found")

    def type(self) -> str:
        return NETWORK_TYPE

    def is_builtin(self) -> bool:
        return True


def init(registry: DriverCallback, config: Mapping[str, Any]) -> None:
    kernel, host = kernel_and_host(config, NETWORK_TYPE)
    store = config.get(CONFIG_STORE)  # explicit None check: an empty store is falsy
    driver = MacvlanDriver(kernel, host, store if store is not None else None)
    registry.register_driver(NETWORK_TYPE, driver, Capability(data_scope="local"))
