"""libnetwork's overlay driver: one L2 segment per network spanning hosts, carried
in VXLAN over the hosts' underlay.

Per network and host, a sandbox namespace holds the bridge ``br0`` and the
VXLAN device ``vxlan0`` (see :mod:`drivers.overlay.sandbox`, which follows
libnetwork's ``ov_network.go``). Endpoints are veth pairs with one end on
``br0``. A joined endpoint publishes a :class:`PeerRecord` in
``overlay_peer_table``; the controller carries it to the other hosts, whose
:meth:`OverlayDriver.event_notify` programs the peer (libnetwork's peerAdd):
permanent neighbours IP → MAC and an FDB entry MAC → VTEP on ``vxlan0``,
whose ARP/ND proxy then answers for it: nothing is flooded to other VTEPs.

Differences from libnetwork, each deliberate: the sandbox is built when the
network is created on a host, not at its first join or peer; one bridge and
VXLAN per network (libnetwork makes one pair per IPv4 subnet); the peer
record carries the endpoint's IPv6 address too (libnetwork's has one address);
encrypted networks are refused (ESP is not available on this kernel kind).
The join gives no gateway; the controller then gives the container egress
through ``docker_gwbridge``, as libnetwork's does
(:mod:`netsim.controller.default_gateway`).
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from drivers.overlay import sandbox
from drivers.overlay.peers import PEER_TABLE, FloodRefs, PeerRecord
from drivers.overlay.vni import VniAllocator, parse_vni
from netsim import netlabel
from netsim.driverapi import Driver, EventType, InterfaceInfo, IPAMData, IPInterface, IPNetwork, JoinInfo, NetworkInfo
from netsim.errors import (
    ConflictError,
    ForbiddenError,
    InvalidParameterError,
    KernelError,
    NotFoundError,
    UnavailableError,
)
from netsim.host import Host
from netsim.kernel.base import Kernel
from netsim.netutils import mac_from_ipv4
from netsim.undo import rollback_on_error

log = logging.getLogger(__name__)

NETWORK_TYPE = "overlay"
VXLANID_LIST = "com.docker.network.driver.overlay.vxlanid_list"
#: libnetwork's secureOption: ``docker network create -d overlay --opt encrypted``
ENCRYPTED = "encrypted"
CONTAINER_IFACE_PREFIX = "eth"
VXLAN_PORT = sandbox.VXLAN_PORT
OVERLAY_MTU = sandbox.OVERLAY_MTU


def refuse_encrypted(options: Mapping[str, Any]) -> None:
    """libnetwork encrypts an ``encrypted`` overlay with IPsec ESP between the
    VTEPs (xfrm states and policies); this machine kind's kernel has no ESP
    (no xfrm), and netsim does not fake encryption: refuse, on both kernels."""
    if ENCRYPTED in options:
        raise UnavailableError(
            f"overlay option {ENCRYPTED!r}: encrypted overlay networks need IPsec ESP (xfrm), "
            "which this kernel kind lacks; netsim refuses them rather than send clear text"
        )


@dataclass(frozen=True)
class Underlay:
    """Where a host's VXLAN traffic leaves: device and local address (the VTEP)."""

    dev: str
    address: str


@dataclass
class OverlayEndpoint:
    eid: str
    bridge_side: str
    container_side: str
    address: IPInterface
    mac: str
    address_ipv6: IPInterface | None = None
    joined: bool = False


@dataclass
class OverlayNetwork:
    nid: str
    vni: int
    #: this host allocated the VNI itself (single-host use): free it on delete
    owns_vni: bool
    #: the network sandbox (namespace) on this host
    namespace: str
    subnets: list[IPNetwork] = field(default_factory=list)
    endpoints: dict[str, OverlayEndpoint] = field(default_factory=dict)
    #: remote endpoints by table key (endpoint id)
    peers: dict[str, PeerRecord] = field(default_factory=dict)
    #: FDB entries by (VTEP, MAC): libnetwork's fdbCnt
    fdb_refs: FloodRefs = field(default_factory=FloodRefs)

    def holds(self, record: PeerRecord) -> bool:
        """Whether every address of the peer lies in one of the network's subnets."""
        return all(any(a.ip in subnet for subnet in self.subnets) for a in record.addresses())


class OverlayDriver(Driver):
    def __init__(self, kernel: Kernel, host: Host, underlay: Underlay, vnis: VniAllocator) -> None:
        self.kernel = kernel
        self.host = host
        self.underlay = underlay
        self.vnis = vnis
        self.tunnel = sandbox.Tunnel(host.namespace, underlay.dev, underlay.address)
        self.networks: dict[str, OverlayNetwork] = {}
        self._lock = threading.RLock()

    # --- global allocation (libnetwork's ovmanager) ------------------------------------------
    def network_allocate(
        self, nid: str, options: Mapping[str, str], ipv4_data: Sequence[IPAMData], ipv6_data: Sequence[IPAMData]
    ) -> dict[str, str]:
        refuse_encrypted(options)
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

    def namespace_of(self, nid: str) -> str:
        """The network sandbox's namespace on this host."""
        return self._network(nid).namespace

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
        refuse_encrypted(generic)
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
                ns = self.kernel.ns(sandbox.namespace_role(self.host.name, nid))
                network = OverlayNetwork(nid, vni, given is None, ns, [d.pool for d in [*ipv4_data, *ipv6_data]])
                sandbox.build(self.kernel, ns, vni, nid, self.tunnel, ipv4_data, undo)
            ninfo.table_event_register(PEER_TABLE)
            self.networks[nid] = network

    def delete_network(self, nid: str) -> None:
        with self._lock:
            network = self._network(nid)
            if network.endpoints:
                raise ForbiddenError(f"overlay network {nid[:12]} has {len(network.endpoints)} active endpoints")
            problem = None
            # The namespace takes the bridge, neighbours and FDB entries with it.
            try:
                sandbox.destroy(self.kernel, network.namespace)
            except (KernelError, NotFoundError) as exc:
                problem = f"delete sandbox {network.namespace}: {exc}"
            del self.networks[nid]
            if network.owns_vni:
                with contextlib.suppress(NotFoundError):
                    self.vnis.free(nid)
            if problem:
                raise KernelError(errno.EIO, f"overlay network {nid[:12]} teardown incomplete: {problem}")

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
            endpoint = OverlayEndpoint(
                eid, f"vo{link}", f"vc{link}", ifinfo.address, ifinfo.mac_address, ifinfo.address_ipv6
            )
            sandbox.add_endpoint_veth(
                self.kernel,
                network.namespace,
                ifinfo.sandbox_key or self.host.namespace,
                endpoint.bridge_side,
                endpoint.container_side,
                endpoint.mac,
            )
            if ifinfo.sandbox_key is not None:
                ifinfo.set_created_in_container(True)
            network.endpoints[eid] = endpoint

    def delete_endpoint(self, nid: str, eid: str) -> None:
        with self._lock:
            network, endpoint = self._endpoint(nid, eid)
            # Not found: the pair went with a deleted sandbox namespace.
            with contextlib.suppress(NotFoundError):
                self.kernel.delete_link(network.namespace, endpoint.bridge_side)
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
            record = PeerRecord(endpoint.address, endpoint.mac, self.underlay.address, endpoint.address_ipv6)
            jinfo.add_table_entry(PEER_TABLE, eid, record.encode())
            endpoint.joined = True

    def leave(self, nid: str, eid: str) -> None:
        with self._lock:
            _, endpoint = self._endpoint(nid, eid)
            endpoint.joined = False

    # --- table events (networkdb) ---------------------------------------------------------------
    def event_notify(self, event: EventType, nid: str, table_name: str, key: str, value: bytes) -> None:
        """Program (CREATE/UPDATE) or remove (DELETE) a remote peer. Events for
        other tables, unknown networks, this host's own VTEP, addresses outside
        the network's subnets or malformed values are ignored, as libnetwork
        logs and drops them: gossip must not fail a remote host's operation."""
        if table_name != PEER_TABLE:
            return
        with self._lock:
            network = self.networks.get(nid)
            if network is None:
                log.debug("overlay: event for unknown network %s dropped", nid[:12])
                return
            if event == EventType.DELETE:
                if key in network.peers:
                    sandbox.delete_peer(self.kernel, network.namespace, network.peers.pop(key), network.fdb_refs)
                return
            try:
                record = PeerRecord.decode(value)
            except InvalidParameterError as exc:
                log.warning("overlay: %s", exc)
                return
            if record.vtep == self.underlay.address or network.peers.get(key) == record:
                return
            if not network.holds(record):
                log.warning("overlay: peer %s is outside network %s's subnets: dropped", key[:12], nid[:12])
                return
            if key in network.peers:
                sandbox.delete_peer(self.kernel, network.namespace, network.peers.pop(key), network.fdb_refs)
            sandbox.add_peer(self.kernel, network.namespace, record, network.fdb_refs)
            network.peers[key] = record

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
