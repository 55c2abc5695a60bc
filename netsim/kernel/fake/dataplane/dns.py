"""DNS on the fake kernel: a namespace's DNS servers answer UDP queries to
``addr:53``, and :func:`resolve` sends one query from a namespace and reads
the answer. Both go through the same walk as any probe (loopback, routing,
NAT, filters), and the messages are built and read by :mod:`netsim.kernel.dns`,
as on the real kernel.

A DNS server is looked up before the namespace's UDP listeners: on Linux a
socket bound to ``127.0.0.11:53`` receives what is sent there even when a
wildcard socket listens on port 53 too (the more specific bind wins).
Only UDP is modelled: the fake kernel tracks no TCP streams, and the real
kernel's resolver serves UDP only too, so that both answer alike.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.packet import Packet, Raw

from netsim.errors import kernel_error
from netsim.kernel.dns import DNS_PORT, DnsResult, answer_query, build_query, check_query, read_response
from netsim.kernel.fake.dataplane import links, routing, sockets, stack
from netsim.kernel.fake.dataplane.packets import make
from netsim.kernel.fake.dataplane.walk import Walk

if TYPE_CHECKING:
    from netsim.kernel.fake.state import FakeLink, FakeNamespace, FakeWorld

#: the stub resolver's source port and query id (fixed: walks are deterministic)
QUERY_SPORT = 47053
QUERY_ID = 0x6E73


def udp_input(walk: Walk, ns: FakeNamespace, link: FakeLink, ip: Packet) -> bool:
    """True if a DNS server of ``ns`` took the datagram ``ip`` (answered or dropped it)."""
    datagram = ip.payload
    if int(datagram.dport) != DNS_PORT or not ns.dns_servers:
        return False
    lookup = ns.dns_servers.get(str(ip.dst))
    if lookup is None:
        return False
    answer = answer_query(bytes(datagram.payload), lookup)
    if answer is None:
        walk.hop(ns, link, "deliver", f"dns server {ip.dst}: not a query, dropped", ip)
        return True
    walk.hop(ns, link, "deliver", f"dns server {ip.dst}: answered", ip)
    family: type[Packet] = IP if isinstance(ip, IP) else IPv6
    reply = make(family, src=ip.dst, dst=ip.src)
    segment = make(UDP, sport=DNS_PORT, dport=datagram.sport)
    segment.add_payload(make(Raw, load=answer))
    reply.add_payload(segment)
    stack.local_output(walk, ns, reply)
    return True


def resolve(world: FakeWorld, ns: str, name: str, qtype: str, server: str, timeout: float) -> DnsResult:
    """One query from namespace ``ns`` to ``server:53``; the answer, or the
    outcome of the datagram when none came (port unreachable, timeout, ...)."""
    _, target = check_query(name, qtype, server, timeout)
    namespace = world.namespaces.get(ns)
    if namespace is None:
        raise kernel_error(errno.ENOENT, f"DNS query from unknown namespace {ns!r}")
    hop = routing.route_to(namespace, target)
    source = routing.source_for(namespace, hop.link, target.version) if hop is not None else None
    if hop is None or source is None:
        # Linux: connect() on the resolver's socket fails at once
        return DnsResult(name, qtype, "net-unreachable")
    socket = sockets.ProbeSocket(ns, "udp", str(source), str(target), QUERY_SPORT, DNS_PORT)
    walk = Walk(world, socket=socket)
    family: type[Packet] = IP if target.version == 4 else IPv6
    packet = make(family, src=str(source), dst=str(target))
    segment = make(UDP, sport=QUERY_SPORT, dport=DNS_PORT)
    segment.add_payload(make(Raw, load=build_query(name, qtype, QUERY_ID)))
    packet.add_payload(segment)
    walk.hop(namespace, None, "send", f"dns query {qtype} {name} to {target}", packet)
    failure = stack.local_output(walk, namespace, packet)
    if failure is not None:
        return DnsResult(name, qtype, failure)
    walk.run(links.receive, deadline=timeout)
    if socket.outcome != "udp-reply":
        return DnsResult(name, qtype, socket.outcome or "timeout")
    answer = read_response(bytes(socket.reply.payload.payload), QUERY_ID)
    if answer is None:
        return DnsResult(name, qtype, "timeout")  # not an answer to this query: a client keeps waiting
    return DnsResult(name, qtype, answer[0], answer[1])


__all__ = ["resolve", "udp_input"]
