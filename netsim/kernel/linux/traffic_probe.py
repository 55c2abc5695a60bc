"""Probes on the real kernel: scapy builds one ICMP echo, TCP SYN or UDP
datagram, a raw socket opened inside the source namespace sends it, and raw
sockets in the same namespace read what comes back.

Sending at layer 3 (IP_HDRINCL; for IPv6 ``IPPROTO_RAW``, which implies it)
lets the namespace's own kernel route the packet and resolve neighbours, so
scapy's caches, which describe the root namespace, are never consulted. The
source address is the one the namespace's kernel would pick: a UDP socket in
the namespace is ``connect``-ed to the destination (a route lookup that sends
nothing) and ``getsockname`` read; a failing lookup is the probe's answer
(ENETUNREACH → ``net-unreachable``).

Raw sockets receive a *copy* of every ICMP/TCP/UDP packet for the namespace,
so replies are matched on what only this probe can have caused: the echo id
and sequence, the TCP/UDP source port and sequence, and for ICMP errors the
quoted original header. Sockets stay open for the namespace's life; probes in
one namespace are serialized by a lock so one probe never eats another's reply.
"""

from __future__ import annotations

import errno
import ipaddress
import itertools
import random
import socket
import threading
import time
from dataclasses import dataclass, field

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6
from scapy.packet import Packet, Raw

from netsim import waiting
from netsim.errors import kernel_error
from netsim.kernel.base import ProbeResult, Proto
from netsim.kernel.linux.traffic_match import PROTO_NUMBERS, Expectation, match_v4, match_v6
from netsim.kernel.linux.traffic_nssocket import disconnect, inside_namespace, open_socket

REACHABLE_OUTCOMES = frozenset({"echo-reply", "syn-ack", "udp-reply"})
#: errno of a failed route lookup or send → the outcome Linux's ping would report
SEND_ERRNO_OUTCOMES = {
    errno.ENETUNREACH: "net-unreachable",
    errno.EHOSTUNREACH: "host-unreachable",
    errno.EACCES: "admin-prohibited",
    errno.EPERM: "admin-prohibited",
}
RX_BUFFER = 1 << 20
#: the same payload as the fake kernel's probes, so replies compare equal across kernels
PROBE_PAYLOAD = b"netsim-probe"
EPHEMERAL_PORTS = (32768, 60999)
IPPROTO_BY_NAME = {"icmp": socket.IPPROTO_ICMP, "tcp": socket.IPPROTO_TCP, "udp": socket.IPPROTO_UDP}


@dataclass
class FamilySockets:
    """The sockets one address family needs in one namespace."""

    sender: socket.socket
    router: socket.socket  # UDP socket used only for route lookups (connect sends nothing)
    receivers: dict[str, socket.socket] = field(default_factory=dict)

    def close(self) -> None:
        for sock in (self.sender, self.router, *self.receivers.values()):
            sock.close()


def open_family_sockets(ns: str, family: int) -> FamilySockets:
    """Open sender, route-lookup and receiving raw sockets inside ``ns``."""
    opened: list[socket.socket] = []
    try:
        sender = open_socket(ns, family, socket.SOCK_RAW, socket.IPPROTO_RAW)
        opened.append(sender)
        router = open_socket(ns, family, socket.SOCK_DGRAM)
        opened.append(router)
        if family == socket.AF_INET:  # a probe to a broadcast address is a question, not a mistake
            for sock in (sender, router):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        receivers = {}
        for name, number in IPPROTO_BY_NAME.items():
            proto = socket.IPPROTO_ICMPV6 if (family == socket.AF_INET6 and name == "icmp") else number
            sock = open_socket(ns, family, socket.SOCK_RAW, proto)
            opened.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RX_BUFFER)
            sock.setblocking(False)
            receivers[name] = sock
    except BaseException:
        for sock in opened:
            sock.close()
        raise
    return FamilySockets(sender, router, receivers)


def drain(sock: socket.socket) -> None:
    """Discard whatever is queued (copies of earlier traffic) without blocking."""
    while True:
        try:
            sock.recv(65535)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            continue  # a queued socket error (ICMP) is consumed by the read; keep draining


def chain(*layers: Packet) -> Packet:
    """``layers[0] / layers[1] / ...`` without the cost of ``/``.

    ``/`` copies both operands and building then clones every layer again to
    resolve random fields; probes have none (every field is a plain value),
    so layers are linked in place and marked ``explicit``: the bytes are the
    same, built 5-6 times faster (~0.3 ms instead of ~1.5 ms for IP/ICMP/Raw).
    """
    for upper, lower in itertools.pairwise(layers):
        upper.add_payload(lower)
    for layer in layers:
        layer.explicit = 1
    return layers[0]


def build_probe(
    version: int, src: str, dst: str, proto: Proto, port: int | None, rng: random.Random
) -> tuple[Packet, Expectation]:
    """The scapy packet to send and what its answer must look like.

    An IPv6 scope (``fe80::1%eth0``) is for the socket address only; it is
    not part of the packet, nor of the reply's source.
    """
    dst = str(ipaddress.ip_address(dst.split("%")[0]))
    src = src.split("%")[0]
    ip: Packet = IP(src=src, dst=dst, id=rng.getrandbits(16)) if version == 4 else IPv6(src=src, dst=dst)
    ident = rng.getrandbits(16)
    sport = rng.randint(*EPHEMERAL_PORTS)
    if sport == port:
        sport += 1
    seq = rng.getrandbits(32)
    if proto == "icmp":
        expect = Expectation(proto, dst, ident=ident, seq=seq & 0xFFFF)
        if version == 4:
            return chain(ip, ICMP(type=8, id=ident, seq=seq & 0xFFFF), Raw(PROBE_PAYLOAD)), expect
        return chain(ip, ICMPv6EchoRequest(id=ident, seq=seq & 0xFFFF, data=PROBE_PAYLOAD)), expect
    assert port is not None
    if proto == "tcp":
        segment = TCP(sport=sport, dport=port, flags="S", seq=seq, window=64240)
        return chain(ip, segment), Expectation(proto, dst, sport=sport, dport=port, seq=seq)
    return chain(ip, UDP(sport=sport, dport=port), Raw(PROBE_PAYLOAD)), Expectation(proto, dst, sport=sport, dport=port)


class NamespaceProber:
    """Kept-open probe sockets of one namespace. ``close`` releases them."""

    def __init__(self, ns: str) -> None:
        self.ns = ns
        self._lock = threading.Lock()
        self._families: dict[int, FamilySockets] = {}
        self._rng = random.Random()
        self._closed = False

    def _sockets(self, family: int) -> FamilySockets:
        if self._closed:
            raise kernel_error(errno.ENOENT, f"namespace {self.ns!r} is closed for probes")
        if family not in self._families:
            self._families[family] = open_family_sockets(self.ns, family)
        return self._families[family]

    def _socket_address(self, dst: str, port: int) -> tuple[str, int] | tuple[str, int, int, int]:
        """``dst`` as a socket address; an IPv6 scope (``%eth0``) names an interface
        of *this* namespace, so it is resolved here, not by Python in the root one."""
        if "%" not in dst:
            return (dst, port)
        host, scope = dst.split("%", 1)
        if scope.isdigit():
            return (host, port, 0, int(scope))
        try:
            with inside_namespace(self.ns):
                return (host, port, 0, socket.if_nametoindex(scope))
        except OSError as exc:
            raise kernel_error(errno.ENODEV, f"no interface {scope!r} in namespace {self.ns!r}") from exc

    def _source_for(self, sockets: FamilySockets, dst: str, port: int | None) -> str:
        """The address the namespace's kernel would send from (raises OSError on no route)."""
        # a re-connect keeps the source the first connect picked: dissolve first
        disconnect(sockets.router)
        sockets.router.connect(self._socket_address(dst, port or 9))
        return str(sockets.router.getsockname()[0])

    def probe(
        self, dst: str, proto: Proto, port: int | None = None, timeout: float = 1.0, src: str | None = None
    ) -> ProbeResult:
        """Send one probe and wait at most ``timeout`` seconds for its answer."""
        try:
            version = ipaddress.ip_address(dst).version
        except ValueError as exc:
            raise kernel_error(errno.EINVAL, f"invalid probe destination {dst!r}") from exc
        if proto not in IPPROTO_BY_NAME:
            raise kernel_error(errno.EINVAL, f"invalid probe protocol {proto!r}")
        family = socket.AF_INET if version == 4 else socket.AF_INET6
        result = ProbeResult(reachable=False, proto=proto, src_namespace=self.ns, dst=dst, port=port)
        with self._lock:
            sockets = self._sockets(family)
            try:
                source = src or self._source_for(sockets, dst, port)
            except OSError as exc:
                return self._send_failure(result, exc)
            packet, expect = build_probe(version, source, dst, proto, port, self._rng)
            # ICMP errors answer every protocol; TCP/UDP replies come on their own socket
            wanted = {sockets.receivers[name]: PROTO_NUMBERS[name][version == 6] for name in {"icmp", proto}}
            for sock in wanted:
                drain(sock)
            wire = bytes(packet)
            started = time.perf_counter()
            try:
                sockets.sender.sendto(wire, self._socket_address(dst, 0))
            except OSError as exc:
                return self._send_failure(result, exc)
            return self._await_reply(result, wanted, expect, version, source, started, timeout)

    def _send_failure(self, result: ProbeResult, exc: OSError) -> ProbeResult:
        outcome = SEND_ERRNO_OUTCOMES.get(exc.errno or 0)
        if outcome is None:
            raise kernel_error(exc.errno or errno.EINVAL, f"probe from {self.ns!r} to {result.dst}: {exc}") from exc
        result.outcome = outcome
        return result

    def _await_reply(
        self,
        result: ProbeResult,
        wanted: dict[socket.socket, int],
        expect: Expectation,
        version: int,
        source: str,
        started: float,
        timeout: float,
    ) -> ProbeResult:
        deadline = started + timeout
        while (remaining := deadline - time.perf_counter()) > 0:
            readable = waiting.readable(list(wanted), remaining)  # poll: select() stops at descriptor 1023
            for sock in readable:
                while True:
                    try:
                        data, peer = sock.recvfrom(65535)
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError:
                        continue
                    received = time.perf_counter()  # before decoding: rtt is the wire's, not scapy's
                    if version == 4:
                        matched = match_v4(data, expect)
                    else:
                        matched = match_v6(wanted[sock], data, peer[0], source, expect)
                    if matched is not None:
                        outcome, reply = matched
                        result.rtt = received - started
                        result.outcome = outcome
                        result.reply = reply
                        result.reachable = outcome in REACHABLE_OUTCOMES
                        return result
        result.outcome = "timeout"
        return result

    def close(self) -> None:
        """Close every socket; later probes raise ENOENT. Idempotent."""
        with self._lock:
            self._closed = True
            for sockets in self._families.values():
                sockets.close()
            self._families.clear()
