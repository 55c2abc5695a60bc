"""Local delivery: what a namespace's sockets answer.

* ICMP echo requests are answered (net.ipv4.icmp_echo_ignore_all=0).
* TCP: a SYN to a listened port gets SYN-ACK, anything to a closed port RST.
* UDP: a datagram to a listened port is echoed back (netsim's listener
  contract); to a closed port it earns ICMP port unreachable. A vxlan
  device's UDP port is its own socket: it decapsulates.
* The probe's own socket sees its answer first (a raw socket sees all).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6DestUnreach, ICMPv6EchoReply, ICMPv6EchoRequest, ICMPv6TimeExceeded, IPv6
from scapy.packet import Packet, Raw

from netsim.kernel.base import Listener
from netsim.kernel.fake.dataplane import dns, stack, vxlan
from netsim.kernel.fake.dataplane.packets import (
    ICMP_ECHO_REPLY,
    ICMP_ECHO_REQUEST,
    ICMP_TIME_EXCEEDED,
    embedded,
    fget,
    fset,
    make,
)

if TYPE_CHECKING:
    from netsim.kernel.fake.dataplane.walk import Walk
    from netsim.kernel.fake.state import FakeLink, FakeNamespace

SYN, RST, ACK = 0x02, 0x04, 0x10
#: how long a UDP proxy waits for its backend's answer (the real kernel's proxy too)
RELAY_TIMEOUT = 1.0
#: the initial sequence number listeners answer with (fixed: walks are deterministic)
LISTENER_ISN = 0x6E657473

_ICMP4_OUTCOMES = {
    0: "net-unreachable",
    1: "host-unreachable",
    3: "port-unreachable",
    9: "admin-prohibited",
    10: "admin-prohibited",
    13: "admin-prohibited",
    6: "net-unreachable",
    7: "host-unreachable",
}
_ICMP6_OUTCOMES = {0: "net-unreachable", 1: "admin-prohibited", 3: "host-unreachable", 4: "port-unreachable"}


@dataclass
class ProbeSocket:
    """The probe's socket in namespace ``namespace``: it recognises the answer
    to the one packet it sent and stops the walk when it arrives."""

    namespace: str
    proto: str
    src: str
    dst: str
    sport: int
    dport: int
    outcome: str | None = None
    reply: Any = None
    at: float | None = None

    def offer(self, walk: Walk, ip: Packet) -> bool:
        """True if ``ip`` is the answer (recorded on the socket)."""
        l4 = ip.payload
        outcome: str | None = None
        if fget(ip, "src") == self.dst and fget(ip, "dst") == self.src:
            outcome = self._direct(l4)
        if outcome is None:
            quoted = embedded(ip)
            if quoted is not None and quoted.src == self.src and quoted.dst == self.dst:
                outcome = _error_outcome(l4)
        if outcome is None:
            return False
        self.outcome, self.reply, self.at = outcome, ip, walk.clock
        walk.done = True
        return True

    def _direct(self, l4: Packet) -> str | None:
        if self.proto == "icmp":
            if isinstance(l4, ICMP) and fget(l4, "type") == ICMP_ECHO_REPLY and fget(l4, "id") == self.sport:
                return "echo-reply"
            if isinstance(l4, ICMPv6EchoReply) and int(l4.id) == self.sport:
                return "echo-reply"
            return None
        if self.proto == "tcp" and isinstance(l4, TCP) and (int(l4.sport), int(l4.dport)) == (self.dport, self.sport):
            flags = int(l4.flags)
            if flags & RST:
                return "rst"
            if flags & SYN and flags & ACK:
                return "syn-ack"
            return None
        if self.proto == "udp" and isinstance(l4, UDP) and (int(l4.sport), int(l4.dport)) == (self.dport, self.sport):
            return "udp-reply"
        return None


def _error_outcome(l4: Packet) -> str:
    if isinstance(l4, ICMP):
        if int(l4.type) == ICMP_TIME_EXCEEDED:
            return "time-exceeded"
        return _ICMP4_OUTCOMES.get(int(l4.code), "host-unreachable")
    if isinstance(l4, ICMPv6TimeExceeded):
        return "time-exceeded"
    if isinstance(l4, ICMPv6DestUnreach):
        return _ICMP6_OUTCOMES.get(int(l4.code), "host-unreachable")
    return "host-unreachable"


def local_input(walk: Walk, ns: FakeNamespace, link: FakeLink, ip: Packet) -> None:
    socket = walk.socket
    if socket is not None and socket.namespace == ns.name and socket.offer(walk, ip):
        walk.hop(ns, link, "deliver", f"answer to the probe: {socket.outcome}", ip)
        return
    l4 = ip.payload
    if isinstance(l4, ICMP):
        if fget(l4, "type") == ICMP_ECHO_REQUEST:
            _echo_reply_v4(walk, ns, link, ip)
        else:
            walk.hop(ns, link, "deliver", "ICMP message consumed", ip)
    elif type(l4) is ICMPv6EchoRequest:  # not isinstance: scapy's echo reply subclasses it
        answer = make(IPv6, src=ip.dst, dst=ip.src, hlim=64)
        answer.add_payload(make(ICMPv6EchoReply, id=l4.id, seq=l4.seq, data=l4.data))
        walk.hop(ns, link, "deliver", "ICMPv6 echo request answered", ip)
        stack.local_output(walk, ns, answer)
    elif isinstance(l4, TCP):
        _tcp_input(walk, ns, link, ip, l4)
    elif isinstance(l4, UDP):
        if vxlan.udp_input(walk, ns, ip) or dns.udp_input(walk, ns, link, ip):
            return
        listener = _listener(ns, "udp", ip.dst, int(l4.dport))
        if listener is not None:
            if listener.forward_to is not None and not _relayed(walk, ns, link, ip, listener.forward_to):
                return
            walk.hop(ns, link, "deliver", f"udp listener on {l4.dport}: echo back", ip)
            payload = bytes(l4.payload)
            family: type[Packet] = IP if isinstance(ip, IP) else IPv6
            reply = make(family, src=ip.dst, dst=ip.src)
            datagram = make(UDP, sport=l4.dport, dport=l4.sport)
            datagram.add_payload(make(Raw, load=payload))
            reply.add_payload(datagram)
            stack.local_output(walk, ns, reply)
        else:
            walk.hop(ns, link, "deliver", f"udp port {l4.dport} closed: ICMP port unreachable", ip)
            stack.send_error(walk, ns, "port", ip)
    else:
        walk.hop(ns, link, "deliver", "no handler for this protocol", ip)


def _echo_reply_v4(walk: Walk, ns: FakeNamespace, link: FakeLink, ip: Packet) -> None:
    """Answer in place: same id, seq and data, swapped addresses, fresh TTL.
    (A new packet would cost ~100 µs of scapy field defaults for no difference.)"""
    walk.hop(ns, link, "deliver", "ICMP echo request answered", ip)
    l4 = ip.payload
    fset(ip, src=fget(ip, "dst"), dst=fget(ip, "src"), ttl=64, chksum=None)
    fset(l4, type=ICMP_ECHO_REPLY, chksum=None)
    walk.changed(ip)
    stack.local_output(walk, ns, ip)


def _listener(ns: FakeNamespace, proto: str, dst: str, port: int) -> Listener | None:
    # "::" listens on IPv6 only (the real kernel's sockets set IPV6_V6ONLY), so
    # IPv4 needs its own 0.0.0.0 or address listener, as on the real kernel.
    wildcard = "::" if ":" in dst else "0.0.0.0"
    for listener in ns.listeners:
        if listener.proto == proto and listener.port == port and listener.addr in (dst, wildcard):
            return listener
    return None


def _listening(ns: FakeNamespace, proto: str, dst: str, port: int) -> bool:
    return _listener(ns, proto, dst, port) is not None


def _relayed(walk: Walk, ns: FakeNamespace, link: FakeLink, ip: Packet, target: tuple[str, int]) -> bool:
    """A UDP proxy (docker-proxy) relays the datagram from ``ns`` to ``target``: a
    walk of its own, as the real proxy's second socket. True if the backend answered."""
    from netsim.kernel.fake.dataplane.probe import probe as relay  # the probe module imports this one

    result = relay(walk.world, ns.name, target[0], "udp", target[1], timeout=RELAY_TIMEOUT)
    walk.hop(ns, link, "deliver", f"proxy relays to udp {target[0]}:{target[1]}: {result.outcome}", ip)
    return result.outcome == "udp-reply"


def _tcp_input(walk: Walk, ns: FakeNamespace, link: FakeLink, ip: Packet, l4: Packet) -> None:
    flags = int(l4.flags)
    if flags & RST:
        walk.hop(ns, link, "deliver", "RST consumed", ip)
        return
    family: type[Packet] = IP if isinstance(ip, IP) else IPv6
    reply = make(family, src=ip.dst, dst=ip.src)
    open_port = _listening(ns, "tcp", ip.dst, int(l4.dport))
    if open_port and flags & SYN and not flags & ACK:
        segment = make(TCP, sport=l4.dport, dport=l4.sport, flags="SA", seq=LISTENER_ISN, ack=int(l4.seq) + 1)
        walk.hop(ns, link, "deliver", f"tcp listener on {l4.dport}: SYN-ACK", ip)
    elif open_port:
        walk.hop(ns, link, "deliver", "segment for a connection netsim does not track", ip)
        return
    else:
        ack = int(l4.seq) + (1 if flags & SYN else len(l4.payload))
        segment = make(TCP, sport=l4.dport, dport=l4.sport, flags="RA", seq=0, ack=ack)
        walk.hop(ns, link, "deliver", f"tcp port {l4.dport} closed: RST", ip)
    reply.add_payload(segment)
    stack.local_output(walk, ns, reply)


def local_error(walk: Walk, ns: FakeNamespace, packet: Packet, outcome: str) -> None:
    """A locally sent packet failed before leaving: the probe socket, if it
    sent it, reports ``outcome``."""
    socket = walk.socket
    if socket is None or socket.namespace != ns.name or socket.outcome is not None:
        return
    if packet.src == socket.src and packet.dst == socket.dst:
        socket.outcome, socket.at = outcome, walk.clock
        walk.done = True


__all__ = ["ProbeSocket", "local_error", "local_input"]
