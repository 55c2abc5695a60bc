"""Ipvlan, by mode and flag, as Linux's drivers/net/ipvlan (ipvlan_core.c) and
Documentation/networking/ipvlan.rst describe it.

Every slave carries its parent's MAC, so frames are told apart by their
layer-3 destination: the IPv4/IPv6 destination, an ARP target, an IPv6
neighbour solicitation's target (the kernel's ``ipvlan_addr_lookup``).

* l2: the slave does its own ARP/ND on the parent's segment. A unicast frame
  to the shared MAC whose destination is a sibling's address goes to that
  sibling (bridge flag), or is dropped (private); otherwise it is handed to
  the parent as if received there (``dev_forward_skb``). Broadcasts go to the
  wire, and to the siblings with the bridge flag. Everything else goes out
  through the parent to the wire.
* l3 and l3s: no broadcast or multicast either way, no ARP/ND (the slave is
  IFF_NOARP, so the neighbour layer is skipped): a packet for a sibling's
  address goes to it (bridge) or is dropped (private); anything else is
  routed by the *parent's* namespace, restricted to routes out of the parent
  (assumed on-link when none matches, as Linux does for an output interface),
  and the parent's namespace resolves the next hop. A packet for the
  parent's own address is delivered to the parent's stack (RTN_LOCAL), but
  that stack's answer follows its own routes, which never lead back into a
  slave. Not modelled: the parent namespace's netfilter hooks on this path
  (Linux runs OUTPUT/POSTROUTING there, and l3s adds the input side so that
  conntrack and NAT work for slaves), so l3s behaves as l3.
* vepa (any mode): sibling traffic is not switched locally; it leaves
  through the parent and returns only through a hairpinning switch (none is
  modelled), so it does not come back.

Frames arriving on the parent from the wire: unicast (and, in l2, ARP/ND)
to a slave's address go to that slave, and the parent's stack never sees
them; in l2, broadcasts go to every slave and to the parent. The parent's own
frames never reach its slaves, so the parent cannot reach them (as macvlan).
Choice of the model: private and vepa slaves get no local copy of a
sibling's broadcast (its unicast is blocked anyway).
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from scapy.layers.inet import IP
from scapy.layers.inet6 import ICMPv6ND_NS, IPv6
from scapy.layers.l2 import ARP
from scapy.packet import Packet

from netsim.kernel.fake.dataplane import links, neighbour, stack
from netsim.kernel.fake.dataplane.packets import ether, fget, is_multicast_mac

if TYPE_CHECKING:
    from netsim.kernel.fake.dataplane.walk import Walk
    from netsim.kernel.fake.state import FakeLink, IPAddr


def mode(link: FakeLink) -> str:
    return str(link.attrs.get("mode", "l2"))


def _flag(link: FakeLink) -> str:
    return str(link.attrs.get("flag", "bridge"))


def is_noarp(link: FakeLink) -> bool:
    """An l3/l3s slave resolves no neighbours (IFF_NOARP): frames carry its own MAC."""
    return link.kind == "ipvlan" and mode(link) != "l2"


def _slaves(walk: Walk, parent: FakeLink) -> list[FakeLink]:
    return [child for child in walk.macvlans_of(parent) if child.kind == "ipvlan"]


def _l3_destination(walk: Walk, payload: Packet) -> IPAddr | None:
    """What ``ipvlan_addr_lookup`` looks up: IP destination, ARP target, ND target."""
    try:
        if isinstance(payload, ARP):
            return ipaddress.IPv4Address(payload.pdst)
        if isinstance(payload, IPv6) and isinstance(payload.payload, ICMPv6ND_NS):
            return ipaddress.IPv6Address(payload.payload.tgt)
        if isinstance(payload, IP | IPv6):
            return walk.address(fget(payload, "dst"))
    except ValueError:
        return None
    return None


def _owner(walk: Walk, parent: FakeLink, frame: Packet) -> FakeLink | None:
    """The slave of ``parent`` holding the frame's layer-3 destination."""
    dst = _l3_destination(walk, frame.payload)
    if dst is None:
        return None
    for slave in _slaves(walk, parent):
        if any(iface.ip == dst for iface in slave.addresses):
            return slave
    return None


def transmit(walk: Walk, link: FakeLink, frame: Packet) -> None:
    """An ipvlan slave sends ``frame``."""
    parent = link.parent
    if parent is None:
        walk.hop(link.ns, link, "drop", "ipvlan without parent", frame)
        return
    if mode(link) == "l2":
        _l2_transmit(walk, link, parent, frame)
    else:
        _l3_transmit(walk, link, parent, frame)


def _to_sibling(walk: Walk, link: FakeLink, sibling: FakeLink, frame: Packet) -> None:
    if _flag(link) == "private":
        walk.hop(link.ns, link, "drop", f"ipvlan private: {sibling.name} is a sibling", frame)
        return
    walk.hop(link.ns, link, "tx", f"ipvlan {mode(link)}: to sibling {sibling.ns.name}/{sibling.name}", frame)
    walk.deliver(sibling, frame)


def _l2_transmit(walk: Walk, link: FakeLink, parent: FakeLink, frame: Packet) -> None:
    dst = frame.dst
    vepa = _flag(link) == "vepa"
    if not vepa and dst == link.mac:
        sibling = _owner(walk, parent, frame)
        if sibling is not None and sibling is not link:
            _to_sibling(walk, link, sibling, frame)
            return
        # for the shared MAC but no slave's address: the parent's own (dev_forward_skb)
        walk.hop(link.ns, link, "tx", f"ipvlan l2: to the parent {parent.ns.name}/{parent.name} as received", frame)
        walk.deliver(parent, frame)
        return
    if is_multicast_mac(dst) and _flag(link) == "bridge":
        for sibling in _slaves(walk, parent):
            if sibling is not link and sibling.oper_up:
                walk.hop(link.ns, link, "tx", f"ipvlan l2: broadcast to sibling {sibling.name}", frame)
                walk.deliver(sibling, frame.copy())  # each receiver may rewrite its frame in place
    walk.hop(link.ns, link, "tx", f"ipvlan l2 {_flag(link)}: out through {parent.ns.name}/{parent.name}", frame)
    links.transmit(walk, parent, frame)


def _l3_transmit(walk: Walk, link: FakeLink, parent: FakeLink, frame: Packet) -> None:
    ip = frame.payload
    if not isinstance(ip, IP | IPv6):
        walk.hop(link.ns, link, "drop", f"ipvlan {mode(link)}: not an IP packet", frame)
        return
    dst = walk.address(fget(ip, "dst"))
    if dst.is_multicast or (dst.version == 4 and dst == ipaddress.IPv4Address("255.255.255.255")):
        walk.hop(link.ns, link, "drop", f"ipvlan {mode(link)}: no multicast or broadcast", frame)
        return
    if _flag(link) != "vepa":
        sibling = _owner(walk, parent, frame)
        if sibling is not None and sibling is not link:
            _to_sibling(walk, link, sibling, frame)
            return
    _route_in_parent(walk, link, parent, ip, dst)


def _route_in_parent(walk: Walk, link: FakeLink, parent: FakeLink, ip: Packet, dst: IPAddr) -> None:
    """ipvlan_process_outbound: the parent's namespace routes the packet out of the parent."""
    ns = parent.ns
    if any(iface.ip == dst for iface in parent.addresses):
        walk.hop(ns, parent, "route", f"ipvlan {mode(link)}: {dst} is the parent's own address (local)", ip)
        stack.ip_input(walk, parent, ip)
        return
    gateway = _gateway_out_of(ns.routes, parent.name, dst)
    detail = f"ipvlan {mode(link)}: routed by {ns.name} out of {parent.name} via {gateway or 'on-link'}"
    walk.hop(ns, parent, "route", detail, ip)
    neighbour.send(walk, parent, gateway or dst, ip, forwarded=False)


def _gateway_out_of(routes: list, dev: str, dst: IPAddr) -> IPAddr | None:  # type: ignore[type-arg]
    """The gateway of the best route out of ``dev`` for ``dst`` (longest prefix,
    then lowest metric); None: on-link, also when no route out of ``dev`` matches."""
    best = None
    for route in routes:
        if route.dev != dev or route.scope == "host" or route.dst.version != dst.version or dst not in route.dst:
            continue
        rank = (-route.dst.prefixlen, route.metric)
        if best is None or rank < best[0]:
            best = (rank, route.via)
    return best[1] if best is not None else None


def parent_input(walk: Walk, parent: FakeLink, frame: Packet) -> bool:
    """A frame arrived on ``parent`` from the wire (or from an l2 slave for the
    parent); True if a slave took it (the parent's stack must then not see it)."""
    slaves = _slaves(walk, parent)
    if not slaves:
        return False
    port_mode = mode(slaves[0])
    if port_mode == "l2" and is_multicast_mac(frame.dst):
        for slave in slaves:
            if slave.oper_up and not _own_reflection(slave, frame):
                walk.deliver(slave, frame.copy())  # the parent's stack gets the original
        return False
    # l2 unicast, and every l3 frame (broadcast ARP included), go by layer-3 destination
    owner = _owner(walk, parent, frame)
    if owner is None:
        return False
    if port_mode != "l2" and isinstance(frame.payload, ARP):
        walk.hop(parent.ns, parent, "drop", f"ipvlan {port_mode}: {owner.name} answers no ARP (IFF_NOARP)", frame)
        return True
    walk.hop(parent.ns, parent, "rx", f"ipvlan {port_mode}: to {owner.ns.name}/{owner.name}", frame)
    walk.deliver(owner, frame)
    return True


def _own_reflection(slave: FakeLink, frame: Packet) -> bool:
    """ipvlan_external_frame: a broadcast a slave sent that a switch hairpinned back."""
    if frame.src != slave.mac:
        return False
    payload = frame.payload
    if isinstance(payload, ARP):
        source = payload.psrc
    elif isinstance(payload, IP | IPv6):
        source = fget(payload, "src")
    else:
        return False
    return source is not None and any(str(iface.ip) == str(source) for iface in slave.addresses)


def noarp_send(walk: Walk, link: FakeLink, ip: Packet) -> None:
    """The neighbour layer on an l3/l3s slave: no resolution, the frame carries the slave's own MAC."""
    links.transmit(walk, link, ether(link.mac, link.mac, ip))
