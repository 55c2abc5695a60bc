"""Neighbour resolution: ARP for IPv4, neighbour discovery for IPv6.

A packet for a next hop with no known MAC is parked and a request is sent;
the answer fills the neighbour table (``permanent=False``, as Linux's learned
entries) and releases the parked packets. With no answer after 3 s (virtual),
parked packets are dropped; a forwarded one earns its sender an ICMP host
unreachable, as Linux does. Linux answers requests for any of its addresses
on any interface (arp_ignore=0).
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from scapy.layers.inet6 import (
    ICMPv6ND_NA,
    ICMPv6ND_NS,
    ICMPv6NDOptDstLLAddr,
    ICMPv6NDOptSrcLLAddr,
    IPv6,
)
from scapy.layers.l2 import ARP
from scapy.packet import Packet

from netsim.kernel.fake.dataplane import ipvlan, links, routing
from netsim.kernel.fake.dataplane import stack as ip_stack
from netsim.kernel.fake.dataplane.packets import BROADCAST_MAC, ether, make, stack
from netsim.kernel.fake.dataplane.walk import NEIGHBOUR_GIVE_UP
from netsim.kernel.fake.state import FakeNeighbour

if TYPE_CHECKING:
    from netsim.kernel.fake.dataplane.walk import Walk
    from netsim.kernel.fake.state import FakeLink, FakeNamespace, IPAddr


def send(walk: Walk, link: FakeLink, gateway: IPAddr, ip: Packet, *, forwarded: bool) -> None:
    """Send IP packet ``ip`` out of ``link`` to the neighbour ``gateway``."""
    ns = link.ns
    if link.kind == "loopback":
        links.transmit(walk, link, ether(link.mac, link.mac, ip))
        return
    if ipvlan.is_noarp(link):
        ipvlan.noarp_send(walk, link, ip)
        return
    entry = ns.neighbours.get((link.name, gateway))
    if entry is not None and entry.mac is not None:
        links.transmit(walk, link, ether(link.mac, entry.mac, ip))
        return
    key = (ns.name, link.name, str(gateway))
    waiting = walk.pending.get(key)
    if waiting is not None:
        waiting.append((ip, forwarded))
        return
    walk.pending[key] = [(ip, forwarded)]
    _solicit(walk, link, gateway, ip)
    walk.after(NEIGHBOUR_GIVE_UP, lambda: _give_up(walk, link, gateway))


def _solicit(walk: Walk, link: FakeLink, target: IPAddr, trigger: Packet) -> None:
    ns = link.ns
    source = routing.source_for(ns, link, target.version)
    if target.version == 4:
        request = make(ARP, op=1, hwsrc=link.mac, psrc=str(source or "0.0.0.0"), pdst=str(target))
        frame = ether(link.mac, BROADCAST_MAC, request)
        walk.hop(ns, link, "arp", f"who-has {target}", frame)
    else:
        packed = target.packed
        solicited = ipaddress.IPv6Address(b"\xff\x02" + b"\x00" * 9 + b"\x01\xff" + packed[13:])
        mac = "33:33:ff:" + ":".join(f"{b:02x}" for b in packed[13:])
        probe = stack(
            make(IPv6, src=str(source or "::"), dst=str(solicited), hlim=255),
            make(ICMPv6ND_NS, tgt=str(target)),
            make(ICMPv6NDOptSrcLLAddr, lladdr=link.mac),
        )
        frame = ether(link.mac, mac, probe)
        walk.hop(ns, link, "nd", f"neighbour solicitation for {target}", frame)
    links.transmit(walk, link, frame)


def _learn(walk: Walk, link: FakeLink, ip: IPAddr, mac: str, *, create: bool) -> None:
    ns = link.ns
    entry = ns.neighbours.get((link.name, ip))
    if entry is None:
        if not create and (ns.name, link.name, str(ip)) not in walk.pending:
            return
        ns.neighbours[(link.name, ip)] = FakeNeighbour(link.name, ip, mac, permanent=False)
    elif not entry.permanent:
        entry.mac = mac
    _release(walk, link, ip)


def _release(walk: Walk, link: FakeLink, ip: IPAddr) -> None:
    waiting = walk.pending.pop((link.ns.name, link.name, str(ip)), None)
    entry = link.ns.neighbours.get((link.name, ip))
    if not waiting or entry is None or entry.mac is None:
        return
    for packet, _ in waiting:
        links.transmit(walk, link, ether(link.mac, entry.mac, packet))


def _give_up(walk: Walk, link: FakeLink, gateway: IPAddr) -> None:
    waiting = walk.pending.pop((link.ns.name, link.name, str(gateway)), None)
    if not waiting:
        return
    for packet, forwarded in waiting:
        walk.hop(link.ns, link, "drop", f"neighbour {gateway} did not answer (FAILED)", packet)
        if forwarded:
            ip_stack.send_error(walk, link.ns, "host", packet)
        else:
            ip_stack.local_send_failed(walk, link.ns, packet, "host-unreachable")


def arp_input(walk: Walk, link: FakeLink, arp: Packet) -> None:
    ns = link.ns
    try:
        sender = ipaddress.IPv4Address(arp.psrc)
        target = ipaddress.IPv4Address(arp.pdst)
    except ValueError:
        walk.hop(ns, link, "drop", "malformed ARP", arp)
        return
    if int(arp.op) == 1:
        if not _owns(ns, target):
            walk.hop(ns, link, "drop", f"ARP for {target}: not ours", arp)
            return
        _learn(walk, link, sender, arp.hwsrc, create=True)
        reply = make(ARP, op=2, hwsrc=link.mac, psrc=str(target), hwdst=arp.hwsrc, pdst=str(sender))
        frame = ether(link.mac, arp.hwsrc, reply)
        walk.hop(ns, link, "arp", f"{target} is-at {link.mac}", frame)
        links.transmit(walk, link, frame)
    elif int(arp.op) == 2:
        walk.hop(ns, link, "arp", f"learned {sender} is-at {arp.hwsrc}", arp)
        _learn(walk, link, sender, arp.hwsrc, create=False)


def _owns(ns: FakeNamespace, addr: IPAddr) -> bool:
    return any(iface.ip == addr for _, iface in routing.addresses(ns, addr.version))


def nd_input(walk: Walk, link: FakeLink, ip: Packet) -> None:
    ns = link.ns
    message = ip.payload
    target = ipaddress.IPv6Address(message.tgt)
    if isinstance(message, ICMPv6ND_NS):
        if not _owns(ns, target):
            walk.hop(ns, link, "drop", f"neighbour solicitation for {target}: not ours", ip)
            return
        option = message.payload
        sender_mac = option.lladdr if isinstance(option, ICMPv6NDOptSrcLLAddr) else None
        sender = ipaddress.IPv6Address(ip.src)
        if sender_mac is not None and not sender.is_unspecified:
            _learn(walk, link, sender, sender_mac, create=True)
        if sender_mac is None or sender.is_unspecified:
            return
        answer = stack(
            make(IPv6, src=str(target), dst=str(sender), hlim=255),
            make(ICMPv6ND_NA, tgt=str(target), R=0, S=1, O=1),
            make(ICMPv6NDOptDstLLAddr, lladdr=link.mac),
        )
        frame = ether(link.mac, sender_mac, answer)
        walk.hop(ns, link, "nd", f"neighbour advertisement {target} is-at {link.mac}", frame)
        links.transmit(walk, link, frame)
    elif isinstance(message, ICMPv6ND_NA):
        option = message.payload
        if isinstance(option, ICMPv6NDOptDstLLAddr):
            walk.hop(ns, link, "nd", f"learned {target} is-at {option.lladdr}", ip)
            _learn(walk, link, target, option.lladdr, create=False)
