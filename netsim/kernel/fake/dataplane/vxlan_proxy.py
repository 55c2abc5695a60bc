"""A VXLAN device's ARP/ND proxy (Linux's ``VXLAN_F_PROXY``: ``arp_reduce``
and ``neigh_reduce`` in drivers/net/vxlan/vxlan_core.c).

With ``proxy`` on, an ARP packet or IPv6 neighbour solicitation leaving the
device never reaches a VTEP: a request whose target the device's own
neighbour table knows (a permanent entry, or a learned one with a MAC) is
answered at once, the reply arriving on the device as if received; anything
else is consumed (with ``l3miss`` Linux also reports the miss on netlink,
which nobody here listens to). libnetwork's overlay driver relies on this:
it programs every remote endpoint as a neighbour on the vxlan, so ARP and ND
for known peers never cross the underlay.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from scapy.layers.inet6 import ICMPv6ND_NA, ICMPv6ND_NS, ICMPv6NDOptDstLLAddr, IPv6
from scapy.layers.l2 import ARP
from scapy.packet import Packet

from netsim.kernel.fake.dataplane.packets import ether, make, stack

if TYPE_CHECKING:
    from netsim.kernel.fake.dataplane.walk import Walk
    from netsim.kernel.fake.state import FakeLink, IPAddr


def consumes(walk: Walk, link: FakeLink, frame: Packet) -> bool:
    """Handle ``frame`` leaving proxy-enabled vxlan ``link``; True when the
    proxy took it (answered or dropped), False when it travels on as usual."""
    payload = frame.payload
    if isinstance(payload, ARP):
        _arp_reduce(walk, link, payload)
        return True
    if isinstance(payload, IPv6) and isinstance(payload.payload, ICMPv6ND_NS):
        _nd_reduce(walk, link, payload)
        return True
    return False


def _known_mac(link: FakeLink, target: IPAddr) -> str | None:
    entry = link.ns.neighbours.get((link.name, target))
    return entry.mac if entry is not None else None


def _miss(walk: Walk, link: FakeLink, what: str, packet: Packet) -> None:
    reported = " (l3miss reported)" if link.attrs.get("l3miss") else ""
    walk.hop(link.ns, link, "drop", f"vxlan proxy: {what}{reported}", packet)


def _arp_reduce(walk: Walk, link: FakeLink, arp: Packet) -> None:
    if int(arp.op) != 1:
        walk.hop(link.ns, link, "drop", "vxlan proxy: only ARP requests are answered, nothing is sent", arp)
        return
    try:
        target = ipaddress.IPv4Address(arp.pdst)
    except ValueError:
        walk.hop(link.ns, link, "drop", "vxlan proxy: malformed ARP", arp)
        return
    if target.is_loopback or target.is_multicast:
        walk.hop(link.ns, link, "drop", f"vxlan proxy: ARP for {target} ignored", arp)
        return
    mac = _known_mac(link, target)
    if mac is None:
        _miss(walk, link, f"no neighbour for {target}", arp)
        return
    reply = make(ARP, op=2, hwsrc=mac, psrc=str(target), hwdst=arp.hwsrc, pdst=arp.psrc)
    frame = ether(mac, arp.hwsrc, reply)
    walk.hop(link.ns, link, "arp", f"vxlan proxy: {target} is-at {mac}", frame)
    walk.deliver(link, frame)


def _nd_reduce(walk: Walk, link: FakeLink, ip: Packet) -> None:
    solicitation = ip.payload
    target = ipaddress.IPv6Address(solicitation.tgt)
    sender = ipaddress.IPv6Address(ip.src)
    if target.is_multicast or sender.is_unspecified:
        walk.hop(link.ns, link, "drop", f"vxlan proxy: solicitation for {target} from {sender} ignored", ip)
        return
    mac = _known_mac(link, target)
    if mac is None:
        _miss(walk, link, f"no neighbour for {target}", ip)
        return
    answer = stack(
        make(IPv6, src=str(target), dst=str(sender), hlim=255),
        make(ICMPv6ND_NA, tgt=str(target), R=0, S=1, O=1),
        make(ICMPv6NDOptDstLLAddr, lladdr=mac),
    )
    requester = ip.underlayer.src if ip.underlayer is not None else None
    frame = ether(mac, requester or _solicitor_mac(ip), answer)
    walk.hop(link.ns, link, "nd", f"vxlan proxy: neighbour advertisement {target} is-at {mac}", frame)
    walk.deliver(link, frame)


def _solicitor_mac(ip: Packet) -> str:
    """The source link-layer address option of a solicitation (Linux answers
    to the frame's source; this is only used for a bare IPv6 packet)."""
    option = ip.payload.payload
    return str(getattr(option, "lladdr", "ff:ff:ff:ff:ff:ff"))
