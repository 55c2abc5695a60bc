"""The network sandbox: the namespace libnetwork's overlay driver builds per
network on each host (``ov_network.go``: ``initSandbox``,
``setupSubnetSandbox``; ``ov_utils.go``: ``createVxlan``; ``peerdb.go``:
``addNeighbor``/``deleteNeighbor``).

In it: a bridge ``br0`` carrying the subnet's gateway address, and the VXLAN
device ``vxlan0``, enslaved to ``br0``. The VXLAN device is created in the
host namespace as ``vx-<vni>-<nid>`` (so that its UDP socket, and the
tunnel, stay on the host's underlay) and then moved in and renamed, as
libnetwork does, with libnetwork's flags: learning, proxy, l2miss, l3miss.
Each endpoint's veth has one end on ``br0`` here and the other in the
container's namespace when the controller names it at creation (no move at
join, as the bridge driver does), else in the host namespace until the
controller moves it into the container (libnetwork's way).

A remote endpoint (a peer) is programmed as a permanent neighbour IP → MAC
on ``vxlan0`` (one per address; IPv6 too) and an FDB entry MAC → VTEP on
``vxlan0``, counted per ``(VTEP, MAC)``: the proxy then answers ARP and ND
for every known peer on the local host, nothing is flooded.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from drivers.overlay.peers import FloodRefs, PeerRecord
from netsim.driverapi import IPAMData
from netsim.errors import NotFoundError
from netsim.kernel.base import Kernel
from netsim.undo import Undo

BRIDGE = "br0"
VXLAN = "vxlan0"
VXLAN_PORT = 4789
#: 1500 minus the 50 bytes of outer Ethernet, IP, UDP and VXLAN headers
OVERLAY_MTU = 1450


def namespace_role(host: str, nid: str) -> str:
    """The network sandbox's role name (the kernel adds the run prefix).

    libnetwork names it ``<epoch>-<nid[:10]>`` under /var/run/docker/netns;
    ``<host>-ov-`` keeps the namespaces of one simulated host together (the
    controller adopts them after a crash by that prefix)."""
    return f"{host}-ov-{nid[:12]}"


def vxlan_host_name(vni: int, nid: str) -> str:
    """libnetwork's ``generateVxlanName``: the name before the move (15 bytes)."""
    return f"vx-{vni:06x}-{nid[:5]}"


@dataclass(frozen=True)
class Tunnel:
    """Where a network's VXLAN starts on this host."""

    host_namespace: str
    underlay_dev: str
    underlay_address: str


def build(kernel: Kernel, ns: str, vni: int, nid: str, tunnel: Tunnel, pools: Sequence[IPAMData], undo: Undo) -> None:
    """Create the sandbox ``ns`` with ``br0`` (gateways on it) and ``vxlan0``."""
    kernel.add_namespace(ns)
    undo.push(f"delete namespace {ns}", lambda: kernel.delete_namespace(ns))
    kernel.set_link_up(ns, "lo")
    kernel.add_bridge(ns, BRIDGE)
    staged = vxlan_host_name(vni, nid)
    kernel.add_vxlan(
        tunnel.host_namespace,
        staged,
        vni,
        local=tunnel.underlay_address,
        dstport=VXLAN_PORT,
        learning=True,
        dev=tunnel.underlay_dev,
        proxy=True,
        l2miss=True,
        l3miss=True,
    )
    undo.push(f"delete {staged}", lambda: _delete_quietly(kernel, tunnel.host_namespace, staged))
    kernel.move_link(tunnel.host_namespace, staged, ns, VXLAN)
    kernel.set_master(ns, VXLAN, BRIDGE)
    kernel.set_link_up(ns, VXLAN)
    kernel.set_link_up(ns, BRIDGE)
    for pool in pools:
        if pool.gateway is not None and pool.gateway.version == 4:
            kernel.add_address(ns, BRIDGE, str(pool.gateway))


def destroy(kernel: Kernel, ns: str) -> None:
    """Remove the sandbox. ``vxlan0`` goes first and synchronously: Linux
    destroys a dead namespace's devices later, from a work queue, and until
    then the VNI stays taken on the host's socket."""
    _delete_quietly(kernel, ns, VXLAN)
    kernel.delete_namespace(ns)


def _delete_quietly(kernel: Kernel, ns: str, name: str) -> None:
    with contextlib.suppress(NotFoundError):
        kernel.delete_link(ns, name)


def add_endpoint_veth(
    kernel: Kernel, ns: str, container_ns: str, bridge_side: str, container_side: str, mac: str
) -> None:
    """The endpoint's veth: ``bridge_side`` on ``br0``, ``container_side`` in
    ``container_ns``: the container's namespace when the controller knows it
    (renamed there at join), else the host's (moved into the container at
    join, as libnetwork does)."""
    kernel.add_veth(ns, bridge_side, container_side, peer_ns=container_ns)
    try:
        kernel.set_mtu(ns, bridge_side, OVERLAY_MTU)
        kernel.set_mtu(container_ns, container_side, OVERLAY_MTU)
        kernel.set_mac(container_ns, container_side, mac)
        kernel.set_master(ns, bridge_side, BRIDGE)
        kernel.set_link_up(ns, bridge_side)
    except BaseException:
        _delete_quietly(kernel, ns, bridge_side)
        raise


def _fdb_key(record: PeerRecord) -> str:
    return f"{record.vtep}/{record.mac}"


def add_peer(kernel: Kernel, ns: str, record: PeerRecord, fdb_refs: FloodRefs) -> None:
    """libnetwork's ``addNeighbor``: neighbours for the peer's addresses, the
    FDB entry for its MAC when no other peer put it there. All or nothing."""
    done: list[Callable[[], None]] = []
    try:
        for address in record.addresses():
            ip = str(address.ip)
            kernel.add_neighbour(ns, VXLAN, ip, record.mac)
            done.append(lambda ip=ip: kernel.delete_neighbour(ns, VXLAN, ip))  # type: ignore[misc]
        if fdb_refs.count(_fdb_key(record)) == 0:
            kernel.add_fdb(ns, VXLAN, record.mac, dst=record.vtep)
    except BaseException:
        for step in reversed(done):
            with contextlib.suppress(NotFoundError):
                step()
        raise
    fdb_refs.add(_fdb_key(record))


def delete_peer(kernel: Kernel, ns: str, record: PeerRecord, fdb_refs: FloodRefs) -> None:
    """Undo :func:`add_peer`; an entry the kernel dropped already is not an
    error (the bookkeeping must move on)."""
    for address in record.addresses():
        with contextlib.suppress(NotFoundError):
            kernel.delete_neighbour(ns, VXLAN, str(address.ip))
    if fdb_refs.remove(_fdb_key(record)):
        with contextlib.suppress(NotFoundError):
            kernel.delete_fdb(ns, VXLAN, record.mac, dst=record.vtep)
