"""DNS on the real kernel: DNS servers as UDP sockets bound inside a
namespace, each served by a thread, and one-shot queries from a namespace.

Messages are built and read by :mod:`netsim.kernel.dns` (scapy), as on the
fake kernel. A server socket sets SO_REUSEADDR, and so do wildcard UDP
listeners (:func:`netsim.kernel.linux.traffic_listen.bind_listener_socket`):
then ``127.0.0.11:53`` and a container's own ``0.0.0.0:53`` coexist, and
Linux hands each datagram to the most specific bound socket, the resolver for
what is sent to 127.0.0.11. (Docker's resolver binds a random port instead
and DNATs port 53 to it inside the container; netsim keeps the container's
rule set to what its drivers install.)

Each server's thread waits in ``select`` on its socket and a self-pipe, so
``stop`` wakes it at once; the socket is closed before its namespace goes
(an open socket would keep a deleted namespace alive).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import select
import socket
import threading
import time

from netsim.errors import kernel_error
from netsim.kernel.dns import (
    DNS_PORT,
    DnsLookup,
    DnsResult,
    answer_query,
    build_query,
    check_query,
    read_response,
)
from netsim.kernel.linux.traffic_nssocket import open_socket

STOP_JOIN_SECONDS = 2.0
MAX_DATAGRAM = 65535


def bind_dns_socket(ns: str, addr: str) -> socket.socket:
    """A non-blocking UDP socket on ``addr:53`` in ``ns`` (SO_REUSEADDR: see the module docstring)."""
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    sock = open_socket(ns, family, socket.SOCK_DGRAM)
    try:
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((addr, DNS_PORT))
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise kernel_error(exc.errno or errno.EINVAL, f"DNS server on {addr}:{DNS_PORT} in {ns!r}: {exc}") from exc
    return sock


class RunningDnsServer:
    """One bound socket answering queries through ``lookup``, and its thread."""

    def __init__(self, ns: str, addr: str, lookup: DnsLookup) -> None:
        self.ns, self.addr, self._lookup = ns, addr, lookup
        self._sock = bind_dns_socket(ns, addr)
        self._wake_read, self._wake_write = os.pipe()
        self._thread = threading.Thread(target=self._serve, name=f"netsim-dns-{ns}-{addr}", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        watched: list[socket.socket | int] = [self._sock, self._wake_read]
        while True:
            try:
                readable, _, _ = select.select(watched, [], [])
            except (OSError, ValueError):  # closed under us: stop
                return
            if self._wake_read in readable:
                return
            # a client gone before its answer (ICMP port unreachable on the send,
            # ECONNREFUSED on the next recv) must not stop the server
            with contextlib.suppress(OSError):
                data, peer = self._sock.recvfrom(MAX_DATAGRAM)
                answer = answer_query(data, self._lookup)
                if answer is not None:
                    self._sock.sendto(answer, peer)

    def stop(self) -> None:
        """Wake the thread, wait for it, close the socket. Idempotent."""
        if self._wake_write < 0:
            return
        with contextlib.suppress(OSError):
            os.write(self._wake_write, b"x")
        self._thread.join(STOP_JOIN_SECONDS)
        self._sock.close()
        os.close(self._wake_write)
        os.close(self._wake_read)
        self._wake_write = self._wake_read = -1


class DnsServers:
    """The DNS servers of one kernel, by namespace and address (thread-safe;
    add, delete and lookup O(1), ``servers(ns)`` sorts)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._servers: dict[str, dict[str, RunningDnsServer]] = {}

    def add(self, ns: str, addr: str, lookup: DnsLookup) -> None:
        with self._lock:
            held = self._servers.setdefault(ns, {})
            if addr in held:
                raise kernel_error(errno.EADDRINUSE, f"udp {addr}:{DNS_PORT} is taken in {ns!r}")
            held[addr] = RunningDnsServer(ns, addr, lookup)

    def delete(self, ns: str, addr: str) -> None:
        with self._lock:
            running = self._servers.get(ns, {}).pop(addr, None)
        if running is None:
            raise kernel_error(errno.ENOENT, f"no DNS server on {addr} in {ns!r}")
        running.stop()

    def servers(self, ns: str) -> list[str]:
        with self._lock:
            return sorted(self._servers.get(ns, {}))

    def close_namespace(self, ns: str) -> None:
        with self._lock:
            running = list(self._servers.pop(ns, {}).values())
        for server in running:
            server.stop()

    def namespaces(self) -> list[str]:
        with self._lock:
            return sorted(ns for ns, held in self._servers.items() if held)


def resolve(ns: str, name: str, qtype: str, server: str, timeout: float) -> DnsResult:
    """One query from ``ns`` to ``server:53`` (a connected UDP socket, as a stub
    resolver uses): the answer, or what the socket saw instead."""
    _, target = check_query(name, qtype, server, timeout)
    family = socket.AF_INET if target.version == 4 else socket.AF_INET6
    ident = secrets.randbelow(1 << 16)
    with contextlib.closing(open_socket(ns, family, socket.SOCK_DGRAM)) as sock:
        try:
            sock.connect((str(target), DNS_PORT))
            sock.send(build_query(name, qtype, ident))
        except OSError as exc:
            return DnsResult(name, qtype, _failure(exc))
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            readable, _, _ = select.select([sock], [], [], left)
            if not readable:
                break
            try:
                data = sock.recv(MAX_DATAGRAM)
            except OSError as exc:
                return DnsResult(name, qtype, _failure(exc))
            answer = read_response(data, ident)
            if answer is not None:  # anything else is not the answer: keep waiting
                return DnsResult(name, qtype, answer[0], answer[1])
    return DnsResult(name, qtype, "timeout")


def _failure(exc: OSError) -> str:
    """The probe outcome for a socket error (the fake kernel reports the same words)."""
    return {
        errno.ECONNREFUSED: "port-unreachable",
        errno.ENETUNREACH: "net-unreachable",
        errno.EHOSTUNREACH: "host-unreachable",
        errno.EACCES: "admin-prohibited",
        errno.EPERM: "admin-prohibited",
    }.get(exc.errno or 0, f"error-{exc.errno}")


__all__ = ["DnsServers", "RunningDnsServer", "resolve"]
