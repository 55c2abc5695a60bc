"""A namespace's IP stack: input, forwarding and local output, with the
netfilter hooks in Linux's order (prerouting → routing → input | forward →
postrouting → neighbour output).

* A frame is accepted when it is addressed to the link's MAC or is a
  broadcast/multicast (no promiscuous mode).
* A packet for any local address is delivered (weak host model); other
  packets are forwarded only with forwarding on (ip_forward=0 drops them
  silently, as Linux's ip_error does), TTL is decremented, and at TTL 1 the
  sender gets ICMP time exceeded; no route earns ICMP net unreachable.
* A local sender with no route fails at once (ENETUNREACH).
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from scapy.layers.inet import IP
from scapy.layers.inet6 import ICMPv6ND_NA, ICMPv6ND_NS, IPv6
from scapy.layers.l2 import ARP
from scapy.packet import Packet

from netsim.kernel.fake.dataplane import filters, nat, neighbour, routing, sockets
from netsim.kernel.fake.dataplane.packets import embedded, fget, icmp_error, is_multicast_mac, set_ttl, ttl_of

if TYPE_CHECKING:
    from netsim.kernel.fake.dataplane.walk import Walk
    from netsim.kernel.fake.state import FakeLink, FakeNamespace


def frame_input(walk: Walk, link: FakeLink, frame: Packet) -> None:
    """``link`` (an L3 device: not a bridge port) hands ``frame`` to its stack."""
    ns = link.ns
    dst = fget(frame, "dst")
    if dst != link.mac and link.kind != "loopback" and not is_multicast_mac(dst):
        walk.hop(ns, link, "drop", f"frame for {dst}, not for {link.mac}", frame)
        return
    payload = frame.payload
    if isinstance(payload, ARP):
        neighbour.arp_input(walk, link, payload)
    elif isinstance(payload, IP | IPv6):
        ip_input(walk, link, payload)
    else:
        walk.hop(ns, link, "drop", f"ethertype {int(frame.type):#06x} not handled", frame)


def ip_input(walk: Walk, link: FakeLink, ip: Packet) -> None:
    ns = link.ns
    if isinstance(ip, IPv6) and isinstance(ip.payload, ICMPv6ND_NS | ICMPv6ND_NA):
        neighbour.nd_input(walk, link, ip)
        return
    walk.hop(ns, link, "rx", "", ip)
    if link.kind != "loopback":  # looped-back local traffic passed the output hook already
        nat.destination_hook(walk, ns, link, ip)
    dst = walk.address(fget(ip, "dst"))
    if walk.is_local(ns, dst):
        nat.source_hook(walk, ns, link, ip, new_flows=False)  # a reply's source is un-DNATed on input
        sockets.local_input(walk, ns, link, ip)
        return
    if dst.is_multicast or (dst.version == 4 and dst == ipaddress.IPv4Address("255.255.255.255")):
        walk.hop(ns, link, "drop", "multicast/broadcast not for a local listener", ip)
        return
    if not routing.forwarding(ns, dst.version):
        key = "net.ipv4.ip_forward" if dst.version == 4 else "net.ipv6.conf.all.forwarding"
        walk.hop(ns, link, "drop", f"not a local address and {key}=0", ip)
        return
    forward(walk, ns, link, ip, dst)


def forward(walk: Walk, ns: FakeNamespace, in_link: FakeLink, ip: Packet, dst: ipaddress._BaseAddress) -> None:
    hop = routing.lookup(ns, dst)  # type: ignore[arg-type]
    if hop is None:
        walk.hop(ns, in_link, "drop", f"no route to {dst}: ICMP net unreachable", ip)
        send_error(walk, ns, "net", ip)
        return
    if ttl_of(ip) <= 1:
        walk.hop(ns, in_link, "drop", "TTL expired in transit: ICMP time exceeded", ip)
        send_error(walk, ns, "time", ip)
        return
    rule = filters.forward_verdict(ns, in_link.name, hop.link.name, ip)
    if rule is not None:
        walk.hop(ns, in_link, "drop", f"forward filter {rule}", ip)
        return
    set_ttl(ip, ttl_of(ip) - 1)
    walk.changed(ip)
    walk.hop(ns, hop.link, "forward", f"{in_link.name} -> {hop.link.name} via {hop.gateway or 'on-link'}", ip)
    if not nat.source_hook(walk, ns, hop.link, ip):
        return
    neighbour.send(walk, hop.link, hop.gateway or dst, ip, forwarded=True)  # type: ignore[arg-type]


def local_output(walk: Walk, ns: FakeNamespace, ip: Packet) -> str | None:
    """Send a locally generated packet. Returns an outcome when the send fails
    at once ("net-unreachable": no route), else None."""
    dst = walk.address(fget(ip, "dst"))
    nat.destination_hook(walk, ns, None, ip)
    new_dst = walk.address(fget(ip, "dst"))
    hop = routing.route_to(ns, new_dst, walk.is_local(ns, new_dst))
    if hop is None:
        walk.hop(ns, None, "drop", f"no route to {new_dst} (ENETUNREACH)", ip)
        return "net-unreachable"
    if new_dst != dst:
        walk.hop(ns, hop.link, "route", f"rerouted after DNAT to {new_dst}", ip)
    if hop.local:
        walk.hop(ns, hop.link, "route", "local destination: loopback", ip)
        if not hop.link.up:
            walk.hop(ns, hop.link, "drop", "loopback is down", ip)
            return None
    elif not nat.source_hook(walk, ns, hop.link, ip):
        return None
    neighbour.send(walk, hop.link, hop.gateway or new_dst, ip, forwarded=False)
    return None


def send_error(walk: Walk, ns: FakeNamespace, kind: str, offender: Packet) -> None:
    """Send an ICMP error about ``offender`` back to its source, from the
    address this namespace would use to reach that source."""
    if embedded(offender) is not None:
        return  # never an error about an error
    back = walk.address(fget(offender, "src"))
    hop = routing.route_to(ns, back, walk.is_local(ns, back))
    source = routing.source_for(ns, hop.link, back.version) if hop is not None else None
    if hop is None or source is None:
        walk.hop(ns, None, "drop", f"cannot send ICMP {kind} error back to {back}: no route", offender)
        return
    error = icmp_error(kind, offender, str(source))
    walk.hop(ns, hop.link, "icmp-error", f"{kind} to {back}", error)
    local_output(walk, ns, error)


def local_send_failed(walk: Walk, ns: FakeNamespace, packet: Packet, outcome: str) -> None:
    """A locally sent packet was dropped before leaving (e.g. neighbour FAILED):
    its socket sees the error (EHOSTUNREACH)."""
    sockets.local_error(walk, ns, packet, outcome)
