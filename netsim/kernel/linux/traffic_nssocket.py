"""Open sockets inside a network namespace without leaving the process.

A socket belongs to the network namespace its creating thread was in at
``socket()`` time, and keeps it for life. So the calling thread switches into
``/run/netns/<name>`` with ``setns(2)``, creates the socket, and switches back
to its own namespace in ``finally``. Only the calling thread moves (network
namespaces are per thread), so other threads never see the switch.

Python 3.11 has no ``os.setns``; libc's ``setns`` is called through ctypes.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import functools
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import cast

from netsim.errors import KernelError, kernel_error

NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000


@functools.cache
def _libc_setns() -> Callable[[int, int], int]:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    func = libc.setns
    func.argtypes = [ctypes.c_int, ctypes.c_int]
    func.restype = ctypes.c_int
    return cast(Callable[[int, int], int], func)


@functools.cache
def _libc_connect() -> Callable[[int, bytes, int], int]:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    func = libc.connect
    func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    func.restype = ctypes.c_int
    return cast(Callable[[int, bytes, int], int], func)


def disconnect(sock: socket.socket) -> None:
    """Dissolve a datagram socket's association (``connect`` to AF_UNSPEC).

    This also forgets the source address the last ``connect`` chose, which a
    re-``connect`` alone would keep; Python's ``connect`` cannot pass AF_UNSPEC.
    """
    unspec = bytes(16)  # struct sockaddr with sa_family AF_UNSPEC (0)
    if _libc_connect()(sock.fileno(), unspec, len(unspec)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _setns(fd: int) -> None:
    if _libc_setns()(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def namespace_path(ns: str) -> Path:
    """Where ``ip netns`` (and pyroute2) pin a named namespace."""
    if not ns or "/" in ns or ns in (".", ".."):
        raise kernel_error(errno.EINVAL, f"invalid namespace name {ns!r}")
    return NETNS_DIR / ns


@contextlib.contextmanager
def inside_namespace(ns: str) -> Iterator[None]:
    """Run the ``with`` body with the *calling thread* inside namespace ``ns``.

    Raises KernelNotFoundError (ENOENT) when the namespace does not exist.
    If switching back ever failed the thread would act in the wrong
    namespace, so that is raised as a KernelError rather than ignored.
    """
    path = namespace_path(ns)
    try:
        target = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError as exc:
        raise kernel_error(errno.ENOENT, f"no namespace {ns!r}") from exc
    try:
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        os.close(target)
        raise
    try:
        try:
            _setns(target)
        except OSError as exc:
            raise kernel_error(exc.errno or errno.EINVAL, f"cannot enter namespace {ns!r}: {exc}") from exc
        try:
            yield
        finally:
            try:
                _setns(home)
            except OSError as exc:  # pragma: no cover - would need a broken kernel
                raise KernelError(exc.errno or errno.EINVAL, f"cannot return from namespace {ns!r}") from exc
    finally:
        os.close(target)
        os.close(home)


def open_socket(ns: str, family: int, kind: int, proto: int = 0) -> socket.socket:
    """A socket created inside ``ns`` (close-on-exec, blocking).

    >>> import socket
    >>> open_socket("no-such-netsim-namespace", socket.AF_INET, socket.SOCK_DGRAM)
    Traceback (most recent call last):
    ...
    netsim.errors.KernelNotFoundError: [ENOENT] no namespace 'no-such-netsim-namespace'
    """
    with inside_namespace(ns):
        try:
            return socket.socket(family, kind, proto)
        except OSError as exc:
            raise kernel_error(exc.errno or errno.EINVAL, f"socket in namespace {ns!r}: {exc}") from exc


def namespace_inode(ns: str) -> int:
    """The namespace's identity (inode of its pinned file): detects a re-created namespace."""
    try:
        return namespace_path(ns).stat().st_ino
    except FileNotFoundError as exc:
        raise kernel_error(errno.ENOENT, f"no namespace {ns!r}") from exc


#: ICMP error rate limits, relaxed so that every probe gets its answer. Linux
#: answers only a burst of errors per peer, then one per second (icmp_ratelimit,
#: icmp_msgs_per_sec); the fake kernel models no such limit, and probes must
#: be deterministic. ``ratemask`` 0 takes every IPv4 ICMP type out of both
#: limits; IPv6 has its own per-peer limit and shares the global one.
ICMP_UNLIMITED = (
    ("net/ipv4/icmp_ratemask", "0"),
    ("net/ipv4/icmp_ratelimit", "0"),
    ("net/ipv6/icmp/ratelimit", "0"),
    ("net/ipv4/icmp_msgs_per_sec", "1000000"),
    ("net/ipv4/icmp_msgs_burst", "1000000"),
)


def relax_icmp_rate_limits(ns: str) -> None:
    """Write :data:`ICMP_UNLIMITED` inside ``ns``.

    ``/proc/sys/net`` shows the network namespace of the thread that opens a
    file, so the files are opened while the thread is inside ``ns``; a key a
    child namespace lacks is skipped (its global value is never touched).
    """
    with inside_namespace(ns):
        for key, value in ICMP_UNLIMITED:
            try:
                with open(f"/proc/sys/{key}", "w", encoding="ascii") as handle:
                    handle.write(value)
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise kernel_error(exc.errno or errno.EINVAL, f"sysctl {key} in {ns!r}: {exc}") from exc
