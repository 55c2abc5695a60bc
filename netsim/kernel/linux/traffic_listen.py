"""Listeners on the real kernel: sockets bound inside a namespace, served by
a background thread each.

TCP listeners accept and close every connection at once (a probe only needs
the SYN-ACK, which the kernel sends before ``accept``). UDP listeners echo
each datagram back to its sender, which is how a UDP probe tells "a listener
is there" (``udp-reply``) from "the port is closed" (ICMP port unreachable).

Serving threads wait in ``select`` on the socket and a self-pipe, so
:meth:`RunningListener.stop` wakes them at once and never hangs.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import os
import socket
import struct
import threading
from typing import Any

from netsim import waiting
from netsim.errors import kernel_error
from netsim.kernel.base import Listener, check_forward_to
from netsim.kernel.linux.traffic_nssocket import open_socket

#: how long ``stop`` waits for a serving thread before giving up on it (it is
#: a daemon thread blocked only in select, so this is never reached in practice)
STOP_JOIN_SECONDS = 2.0
UDP_MAX_DATAGRAM = 65535
#: how long a UDP proxy waits for its backend's answer (the fake kernel's too)
RELAY_TIMEOUT = 1.0
IP_PKTINFO = 8  # linux/in.h; Python 3.11's socket module does not export it
PKTINFO_SPACE = socket.CMSG_SPACE(40)  # room for in_pktinfo (12 bytes) or in6_pktinfo (20)


def enable_pktinfo(sock: socket.socket) -> None:
    """Ask for each datagram's destination address (IP_PKTINFO / IPV6_RECVPKTINFO)."""
    if sock.family == socket.AF_INET:
        sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
    else:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)


def echo_from_destination(sock: socket.socket, data: bytes, ancillary: list[tuple[int, int, bytes]], peer: Any) -> None:
    """Send ``data`` back to ``peer`` *from the address it was sent to*.

    A wildcard-bound socket would otherwise answer from whatever source the
    route back picks (the primary address), which the sender, having asked a
    secondary address, does not recognize as the answer: well-behaved UDP
    servers reply with the destination as source, and so does this one.
    """
    for level, kind, value in ancillary:
        reply_info: tuple[int, int, bytes] | None = None
        if level == socket.IPPROTO_IP and kind == IP_PKTINFO and len(value) >= 12:
            # in_pktinfo: ifindex, spec_dst (the source to use), addr (header destination)
            reply_info = (level, kind, struct.pack("@i4s4s", 0, value[8:12], bytes(4)))
        elif level == socket.IPPROTO_IPV6 and kind == socket.IPV6_PKTINFO and len(value) >= 20:
            reply_info = (level, kind, value[:20])
        if reply_info is not None:
            try:
                sock.sendmsg([data], [reply_info], 0, peer)
                return
            except OSError:  # asked at a broadcast or multicast address: not a valid source
                break
    sock.sendto(data, peer)


def listener_family(listener: Listener) -> int:
    """AF_INET or AF_INET6 for the listener's address; EINVAL if malformed."""
    try:
        addr = ipaddress.ip_address(listener.addr)
    except ValueError as exc:
        raise kernel_error(errno.EINVAL, f"invalid listener address {listener.addr!r}") from exc
    return socket.AF_INET if addr.version == 4 else socket.AF_INET6


def check_listener(listener: Listener) -> int:
    """Validate protocol, port and address as the kernel would (EINVAL); return the family."""
    if listener.proto not in ("tcp", "udp"):
        raise kernel_error(errno.EINVAL, f"invalid listener protocol {listener.proto!r}: expected tcp or udp")
    if isinstance(listener.port, bool) or not isinstance(listener.port, int) or not 1 <= listener.port <= 65535:
        raise kernel_error(errno.EINVAL, f"invalid listener port {listener.port!r}: expected 1-65535")
    check_forward_to(listener)
    return listener_family(listener)


def bind_listener_socket(ns: str, listener: Listener) -> socket.socket:
    """A bound (and for TCP, listening) non-blocking socket inside ``ns``.

    EADDRINUSE when the address and port are taken, EADDRNOTAVAIL when the
    address is not one of the namespace's. IPv6 sockets are v6-only, so
    ``0.0.0.0`` and ``::`` listeners on one port are independent.
    """
    family = check_listener(listener)
    kind = socket.SOCK_STREAM if listener.proto == "tcp" else socket.SOCK_DGRAM
    sock = open_socket(ns, family, kind)
    try:
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if listener.proto == "tcp" or ipaddress.ip_address(listener.addr).is_unspecified:
            # TCP: lets a deleted-then-re-added listener bind past TIME_WAIT; Linux still
            # refuses a second listening socket on the same address (EADDRINUSE).
            # UDP wildcard: lets the embedded DNS server (traffic_dns, also SO_REUSEADDR)
            # bind 127.0.0.11:53 beside it; two listeners still conflict as before,
            # as at most one of any conflicting pair is a wildcard of one family.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((listener.addr, listener.port))
        if listener.proto == "tcp":
            sock.listen(128)
        else:
            enable_pktinfo(sock)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise kernel_error(
            exc.errno or errno.EINVAL, f"listen {listener.proto} {listener.addr}:{listener.port} in {ns!r}: {exc}"
        ) from exc
    return sock


class RunningListener:
    """One bound socket and the thread serving it. ``stop`` closes both."""

    def __init__(self, ns: str, listener: Listener) -> None:
        self.ns = ns
        self.listener = listener
        self._sock = bind_listener_socket(ns, listener)
        self._wake_read, self._wake_write = os.pipe()
        serve = self._serve_tcp if listener.proto == "tcp" else self._serve_udp
        self._thread = threading.Thread(
            target=serve, name=f"netsim-listen-{ns}-{listener.proto}-{listener.port}", daemon=True
        )
        self._thread.start()

    def _wait_readable(self) -> bool:
        """Block until the socket is readable (True) or stop was asked (False)."""
        try:
            watched: list[socket.socket | int] = [self._sock, self._wake_read]
            readable = waiting.readable(watched)  # poll: select() stops at descriptor 1023
        except (OSError, ValueError):  # closed under us: treat as stop
            return False
        return self._wake_read not in readable

    def _serve_tcp(self) -> None:
        while self._wait_readable():
            # OSError covers a client that reset before accept and every other
            # per-connection failure: the listener itself must keep serving
            with contextlib.suppress(OSError):
                conn, _ = self._sock.accept()
                conn.close()

    def _serve_udp(self) -> None:
        while self._wait_readable():
            # an echo answered by ICMP port unreachable (the prober keeps no socket
            # on its source port) makes the next recv fail, and an echo with no
            # route back fails its send: neither may stop the listener
            with contextlib.suppress(OSError):
                data, ancillary, _, peer = self._sock.recvmsg(UDP_MAX_DATAGRAM, PKTINFO_SPACE)
                if self.listener.forward_to is not None:
                    answer = self._relay(data, self.listener.forward_to)
                    if answer is None:
                        continue
                    data = answer
                echo_from_destination(self._sock, data, ancillary, peer)

    def _relay(self, data: bytes, target: tuple[str, int]) -> bytes | None:
        """A proxy's second socket (docker-proxy's): send ``data`` to ``target`` from
        this namespace and return the answer, or None (none in time, or refused:
        the OSError of an ICMP port unreachable propagates to the caller's suppress)."""
        family = socket.AF_INET6 if ":" in target[0] else socket.AF_INET
        with contextlib.closing(open_socket(self.ns, family, socket.SOCK_DGRAM)) as out:
            out.connect(target)
            out.send(data)
            watched: list[socket.socket | int] = [out, self._wake_read]
            readable = waiting.readable(watched, RELAY_TIMEOUT)
            if out not in readable:
                return None
            return out.recv(UDP_MAX_DATAGRAM)

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
