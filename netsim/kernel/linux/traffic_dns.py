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

One thread serves every resolver of the kernel (:class:`DnsServers`); a
server's socket is closed before its namespace goes (an open socket would
keep a deleted namespace alive), and the thread when the kernel closes.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import selectors
import socket
import threading
import time

from netsim import waiting
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


class DnsServers:
    """The DNS servers of one kernel, by namespace and address, all served by
    one thread waiting on every server socket at once (``selectors``): a
    thousand containers cost a thousand sockets, not a thousand threads.

    Thread-safe. ``add``/``delete`` O(1); each datagram costs one lookup and
    the scapy build and parse of the messages. The thread starts with the
    first server and stops in :meth:`close` (woken through a self-pipe).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._servers: dict[str, dict[str, socket.socket]] = {}
        self._selector: selectors.BaseSelector | None = None
        self._thread: threading.Thread | None = None
        self._wake_read = self._wake_write = -1

    def add(self, ns: str, addr: str, lookup: DnsLookup) -> None:
        with self._lock:
            held = self._servers.setdefault(ns, {})
            if addr in held:  # checked here: two SO_REUSEADDR sockets could share the address
                raise kernel_error(errno.EADDRINUSE, f"udp {addr}:{DNS_PORT} is taken in {ns!r}")
            sock = bind_dns_socket(ns, addr)
            self._start_locked().register(sock, selectors.EVENT_READ, lookup)
            held[addr] = sock

    def delete(self, ns: str, addr: str) -> None:
        with self._lock:
            sock = self._servers.get(ns, {}).pop(addr, None)
            if sock is None:
                raise kernel_error(errno.ENOENT, f"no DNS server on {addr} in {ns!r}")
            self._forget_locked(sock)

    def servers(self, ns: str) -> list[str]:
        with self._lock:
            return sorted(self._servers.get(ns, {}))

    def close_namespace(self, ns: str) -> None:
        """Close every server socket of ``ns`` (before the namespace goes)."""
        with self._lock:
            for sock in self._servers.pop(ns, {}).values():
                self._forget_locked(sock)

    def namespaces(self) -> list[str]:
        with self._lock:
            return sorted(ns for ns, held in self._servers.items() if held)

    def close(self) -> None:
        """Every socket, then the thread. Idempotent."""
        for ns in self.namespaces():
            self.close_namespace(ns)
        with self._lock:
            thread, self._thread = self._thread, None
            if thread is not None:
                with contextlib.suppress(OSError):
                    os.write(self._wake_write, b"x")
        if thread is not None:
            thread.join(STOP_JOIN_SECONDS)
        with self._lock:
            if self._selector is not None:
                self._selector.close()
                self._selector = None
                os.close(self._wake_read)
                os.close(self._wake_write)
                self._wake_read = self._wake_write = -1

    def _start_locked(self) -> selectors.BaseSelector:
        if self._selector is None:
            self._selector = selectors.DefaultSelector()
            self._wake_read, self._wake_write = os.pipe()
            self._selector.register(self._wake_read, selectors.EVENT_READ, None)
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, args=(self._selector,), name="netsim-dns", daemon=True)
            self._thread.start()
        return self._selector

    def _forget_locked(self, sock: socket.socket) -> None:
        if self._selector is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(sock)
        sock.close()

    def _serve(self, selector: selectors.BaseSelector) -> None:
        while True:
            try:
                ready = selector.select()
            except (OSError, ValueError):  # closed under us: stop
                return
            for key, _ in ready:
                if key.data is None:  # the wake pipe: close() asks the thread to stop
                    return
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                # a socket closed since select returned raises OSError (its fd is -1);
                # a client gone before its answer (ICMP port unreachable on the send,
                # ECONNREFUSED on the next recv) must not stop the server either
                with contextlib.suppress(OSError):
                    data, peer = sock.recvfrom(MAX_DATAGRAM)
                    answer = answer_query(data, key.data)
                    if answer is not None:
                        sock.sendto(answer, peer)


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
            readable = waiting.readable([sock], left)  # poll: select() stops at descriptor 1023
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


__all__ = ["DnsServers", "bind_dns_socket", "resolve"]
