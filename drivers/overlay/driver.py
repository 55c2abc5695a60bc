"""libnetwork's overlay driver: one L2 segment per network spanning hosts, carried
in VXLAN over the hosts' underlay.

Per network and host: a bridge ``ov-<vni>`` with a vxlan ``vx-<vni>`` (learning
off, dstport 4789, local = the host's underlay address) enslaved to it.
Endpoints are veth pairs whose host side sits on the bridge. A joined endpoint
publishes a :class:`PeerRecord` in ``overlay_peer_table``; the controller
carries it to the other hosts, whose :meth:`OverlayDriver.event_notify`
programs the peer (libnetwork's peerAdd): FDB mac → VTEP on the vxlan, a
permanent neighbour ip → mac on the bridge, and an all-zero FDB entry per
remote VTEP so that ARP and broadcast reach every host of the network (head-end
replication; libnetwork answers ARP from the vxlan's proxy instead).

Simplifications, each deliberate: the bridge and vxlan live in the host
namespace (libnetwork gives every network its own sandbox namespace); there is
no egress (libnetwork adds a second interface on ``docker_gwbridge``), so
containers get no gateway; no encryption; IPv4 peers only.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from drivers.overlay.peers import PEER_TABLE, FloodRefs, PeerRecord
from drivers.overlay.vni import VniAllocator, parse_vni
from netsim import netlabel
from netsim.driverapi import Driver, EventType, InterfaceInfo, IPAMData, IPInterface, JoinInfo, NetworkInfo
from netsim.errors import ConflictError, ForbiddenError, InvalidParameterError, KernelError, NotFoundError
from netsim.host import Host
from netsim.kernel.base import Kernel
from netsim.netutils import mac_from_ipv4
from netsim.undo import Undo, rollback_on_error

log = logging.getLogger(__name__)

NETWORK_TYPE = "overlay"
VXLANID_LIST = "com.docker.network.driver.overlay.vxlanid_list"
CONTAINER_IFACE_PREFIX = "eth"
VXLAN_PORT = 4789
#: 1500 minus the 50 bytes of outer Ethernet, IP, UDP and VXLAN headers
OVERLAY_MTU = 1450
ZERO_MAC = "00:00:00:00:00:00"


def bridge_mac(vtep: str, vni: int) -> str:
    """A fixed, locally administered MAC for a network's bridge on one host.

    Linux gives a bridge the lowest MAC of its ports and flushes every
    neighbour on it, permanent ones included, when that MAC changes: without
    a set MAC, the peers programmed before a local container arrived vanish.
    """
    raw = b"\x06" + ipaddress.ip_address(vtep).packed[-2:] + vni.to_bytes(3, "big")
    return ":".join(f"{b:02x}" for b in raw)


@dataclass(frozen=True)
class Underlay:
    """Where a host's VXLAN traffic leaves: device and local address (the VTEP)."""

    dev: str
    address: str


@dataclass
class OverlayEndpoint:
    eid: str
    host_side: str
    container_side: str
    address: IPInterface
    mac: str
    joined: bool = False


@dataclass
class OverlayNetwork:
    nid: str
    vni: int
    #: this host allocated the VNI itself (single-host use): free it on delete
    owns_vni: bool
    bridge: str
    vxlan: str
    endpoints: dict[str, OverlayEndpoint] = field(default_factory=dict)
    #: remote endpoints by table key (endpoint id)
    peers: dict[str, PeerRecord] = field(default_factory=dict)
    flood: FloodRefs = field(default_factory=FloodRefs)


class OverlayDriver(Driver):
    def __init__(self, kernel: Kernel, host: Host, underlay: Underlay, vnis: VniAllocator) -> None:
        self.kernel = kernel
        self.host = host
        self.underlay = underlay
        self.vnis = vnis
        self.networks: dict[str, OverlayNetwork] = {}
        self._lock = threading.RLock()

    # --- global allocation (libnetwork's ovmanager) ------------------------------------------
    def network_allocate(
        self, nid: str, options: Mapping[str, str], ipv4_data: Sequence[IPAMData], ipv6_data: Sequence[IPAMData]
    ) -> dict[str, str]:
        wanted = parse_vni(options[VXLANID_LIST]) if VXLANID_LIST in options else None
        vni = self.vnis.allocate(nid, wanted)
        return {VXLANID_LIST: str(vni)}

    def network_free(self, nid: str) -> None:
        self.vnis.free(nid)

    # --- networks on this host -------------------------------------------------------------
    def _network(self, nid: str) -> OverlayNetwork:
        network = self.networks.get(nid)
        if network is None:
            raise NotFoundError(f"overlay network {nid[:12]!r} not found")
        return network

    def create_network(
        self,
        nid: str,
        options: Mapping[str, Any],
        ninfo: NetworkInfo,
        ipv4_data: Sequence[IPAMData],
        ipv6_data: Sequence[IPAMData],
    ) -> None:
        generic = options.get(netlabel.GENERIC_DATA) or {}
        if not isinstance(generic, Mapping):
            raise InvalidParameterError(f"overlay network options must be a mapping, got {generic!r}")
        given = parse_vni(generic[VXLANID_LIST]) if VXLANID_LIST in generic else None
        if not ipv4_data:
            raise InvalidParameterError("overlay network needs an IPv4 pool")
        with self._lock:
            if nid in self.networks:
                raise ConflictError(f"overlay network {nid[:12]!r} exists already")
            if given is not None and any(n.vni == given for n in self.networks.values()):
                raise ConflictError(f"VXLAN id {given} is already used on host {self.host.name!r}")
            with rollback_on_error() as undo:
                kept = self.vnis.lookup(nid) if given is None else None
                if kept is not None:
                    vni = kept  # this host allocated it before a restart: the store kept it
                elif given is None:
                    # Created without network_allocate (a single-host controller): allocate here.
                    vni = self.vnis.allocate(nid)
                    undo.push(f"free VNI {vni}", lambda: self.vnis.free(nid))
                else:
                    vni = given
                network = OverlayNetwork(nid, vni, given is None, f"ov-{vni}", f"vx-{vni}")
                self._build_links(network, undo)
            ninfo.table_event_register(PEER_TABLE)
            self.networks[nid] = network

    def _build_links(self, network: OverlayNetwork, undo: Undo) -> None:
        kernel, ns = self.kernel, self.host.namespace
        kernel.add_bridge(ns, network.bridge)
        undo.push(f"delete {network.bridge}", lambda: kernel.delete_link(ns, network.bridge))
        kernel.set_mac(ns, network.bridge, bridge_mac(self.underlay.address, network.vni))
        kernel.add_vxlan(
            ns,
            network.vxlan,
            network.vni,
            local=self.underlay.address,
            dstport=VXLAN_PORT,
            learning=False,
            dev=self.underlay.dev,
        )
        undo.push(f"delete {network.vxlan}", lambda: kernel.delete_link(ns, network.vxlan))
        kernel.set_mtu(ns, network.vxlan, OVERLAY_MTU)
        kernel.set_master(ns, network.vxlan, network.bridge)
        kernel.set_link_up(ns, network.vxlan)
        kernel.set_link_up(ns, network.bridge)

    def delete_network(self, nid: str) -> None:
        with self._lock:
            network = self._network(nid)
            if network.endpoints:
                raise ForbiddenError(f"overlay network {nid[:12]} has {len(network.endpoints)} active endpoints")
            problems: list[str] = []
            # Deleting the links takes their FDB entries and neighbours with them.
            for name in (network.vxlan, network.bridge):
                try:
                    self.kernel.delete_link(self.host.namespace, name)
                except (KernelError, NotFoundError) as exc:
                    problems.append(f"delete {name}: {exc}")
            del self.networks[nid]
            if network.owns_vni:
                with contextlib.suppress(NotFoundError):
                    self.vnis.free(nid)
            if problems:
                raise KernelError(errno.EIO, f"overlay network {nid[:12]} teardown incomplete: {'; '.join(problems)}")

    # --- endpoints ---------------------------------------------------------------------------
    def _endpoint(self, nid: str, eid: str) -> tuple[OverlayNetwork, OverlayEndpoint]:
        network = self._network(nid)
        endpoint = network.endpoints.get(eid)
        if endpoint is None:
            raise NotFoundError(f"overlay endpoint {eid[:12]!r} not found in network {nid[:12]!r}")
        return network, endpoint

    def create_endpoint(self, nid: str, eid: str, ifinfo: InterfaceInfo, options: Mapping[str, Any]) -> None:
        with self._lock:
            network = self._network(nid)
            if eid in network.endpoints:
                raise ConflictError(f"overlay endpoint {eid[:12]} exists already")
            if ifinfo.address is None or ifinfo.address.version != 4:
                raise InvalidParameterError("overlay endpoint needs an IPv4 address")
            if ifinfo.mac_address is None:
                ifinfo.set_mac_address(mac_from_ipv4(ifinfo.address))
            assert ifinfo.mac_address is not None
            # 13 hex digits (52 bits, the most 15 bytes allow): two of 10,000 endpoints on a host
            # share a name with odds ~1e-8 (40 bits: ~5e-5); the same id always gives the same name,
            # which recovery relies on
            link = eid[:13]
            endpoint = OverlayEndpoint(eid, f"vo{link}", f"vc{link}", ifinfo.address, ifinfo.mac_address)
            kernel, ns = self.kernel, self.host.namespace
            with rollback_on_error() as undo:
                kernel.add_veth(ns, endpoint.host_side, endpoint.container_side)
                undo.push("delete veth", lambda: kernel.delete_link(ns, endpoint.host_side))
                for side in (endpoint.host_side, endpoint.container_side):
                    kernel.set_mtu(ns, side, OVERLAY_MTU)
                kernel.set_mac(ns, endpoint.container_side, endpoint.mac)
                kernel.set_master(ns, endpoint.host_side, network.bridge)
                kernel.set_link_up(ns, endpoint.host_side)
            network.endpoints[eid] = endpoint

    def delete_endpoint(self, nid: str, eid: str) -> None:
        with self._lock:
            network, endpoint = self._endpoint(nid, eid)
            # Not found: the pair went with a deleted sandbox namespace.
            with contextlib.suppress(NotFoundError):
                self.kernel.delete_link(self.host.namespace, endpoint.host_side)
            del network.endpoints[eid]

    def endpoint_oper_info(self, nid: str, eid: str) -> dict[str, Any]:
        network, endpoint = self._endpoint(nid, eid)
        return {netlabel.MAC_ADDRESS: endpoint.mac, "vxlan_id": str(network.vni)}

    # --- sandbox -------------------------------------------------------------------------------
    def join(self, nid: str, eid: str, sbox_key: str, jinfo: JoinInfo, options: Mapping[str, Any]) -> None:
        with self._lock:
            _, endpoint = self._endpoint(nid, eid)
            if endpoint.joined:
                raise ConflictError(f"overlay endpoint {eid[:12]} is already joined")
            jinfo.set_names(endpoint.container_side, CONTAINER_IFACE_PREFIX)
            record = PeerRecord(endpoint.address, endpoint.mac, self.underlay.address)
            jinfo.add_table_entry(PEER_TABLE, eid, record.encode())
            endpoint.joined = True

    def leave(self, nid: str, eid: str) -> None:
        with self._lock:
            _, endpoint = self._endpoint(nid, eid)
            endpoint.joined = False

    # --- table events (networkdb) ---------------------------------------------------------------
    def event_notify(self, event: EventType, nid: str, table_name: str, key: str, value: bytes) -> None:
        """Program (CREATE/UPDATE) or remove (DELETE) a remote peer. Events for
        other tables, unknown networks, this host's own VTEP or with malformed
        values are ignored, as libnetwork logs and drops them: gossip must not
        fail a remote host's operation."""
        if table_name != PEER_TABLE:
            return
        with self._lock:
            network = self.networks.get(nid)
            if network is None:
                log.debug("overlay: event for unknown network %s dropped", nid[:12])
                return
            if event == EventType.DELETE:
                if key in network.peers:
                    self._peer_delete(network, key)
                return
            try:
                record = PeerRecord.decode(value)
            except InvalidParameterError as exc:
                log.warning("overlay: %s", exc)
                return
            if record.vtep == self.underlay.address or network.peers.get(key) == record:
                return
            if key in network.peers:
                self._peer_delete(network, key)
            self._peer_add(network, key, record)

    def _peer_add(self, network: OverlayNetwork, key: str, record: PeerRecord) -> None:
        kernel, ns = self.kernel, self.host.namespace
        with rollback_on_error() as undo:
            kernel.add_fdb(ns, network.vxlan, record.mac, dst=record.vtep)
            undo.push("delete fdb", lambda: kernel.delete_fdb(ns, network.vxlan, record.mac, dst=record.vtep))
            kernel.add_neighbour(ns, network.bridge, str(record.address.ip), record.mac)
            undo.push("delete neighbour", lambda: kernel.delete_neighbour(ns, network.bridge, str(record.address.ip)))
            if network.flood.count(record.vtep) == 0:
                kernel.add_fdb(ns, network.vxlan, ZERO_MAC, dst=record.vtep)
            network.flood.add(record.vtep)
        network.peers[key] = record

    def _peer_delete(self, network: OverlayNetwork, key: str) -> None:
        """Remove what _peer_add programmed; an entry already gone (the kernel
        dropped it) is not an error, the bookkeeping must still move on."""
        kernel, ns = self.kernel, self.host.namespace
        record = network.peers.pop(key)
        steps: list[Callable[[], None]] = [lambda: kernel.delete_fdb(ns, network.vxlan, record.mac, dst=record.vtep)]
        steps.append(lambda: kernel.delete_neighbour(ns, network.bridge, str(record.address.ip)))
        if network.flood.remove(record.vtep):
            steps.append(lambda: kernel.delete_fdb(ns, network.vxlan, ZERO_MAC, dst=record.vtep))
        for step in steps:
            with contextlib.suppress(NotFoundError):
                step()

    def peers(self, nid: str) -> dict[str, PeerRecord]:
        """The remote endpoints programmed for ``nid`` (a copy)."""
        with self._lock:
            return dict(self._network(nid).peers)

    def decode_table_entry(self, table_name: str, key: str, value: bytes) -> tuple[str, dict[str, str]]:
        if table_name != PEER_TABLE:
            return key, {}
        try:
            return key, PeerRecord.decode(value).decode_fields()
        except InvalidParameterError:
            return key, {}

    def type(self) -> str:
        return NETWORK_TYPE

    def is_builtin(self) -> bool:
        return True


def _is_ipv4(text: str) -> bool:
    try:
        return ipaddress.ip_address(text).version == 4
    except ValueError:
        return False
