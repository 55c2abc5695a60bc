"""Network namespaces on the real kernel: create, open once, run inside, remove.

Each namespace gets two netlink sockets, opened inside it and kept until it is
removed: a raw request socket (:mod:`netsim.kernel.linux.rtnl`) for mutations,
opened when the namespace is made, and pyroute2's IPRoute for dumps, opened
at the first dump (it forks once to open its socket there).

Things that are not netlink (sysctls under ``/proc/sys/net``) run in a
short-lived thread that first joins the namespace with ``setns(2)``: Linux
keeps the network namespace per thread, so the process's other threads, and
the root namespace, are never touched. The thread checks the namespace inode
it landed in before it does anything.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pyroute2 import IPRoute, netns
from pyroute2.netlink.exceptions import NetlinkError

from netsim.errors import KernelError, kernel_error
from netsim.kernel.linux.rtnl import RtnlChannel
from netsim.safety import NETNS_DIR

CLONE_NEWNET = 0x40000000
MS_BIND, MS_REC, MS_SHARED = 0x1000, 0x4000, 0x100000
THREAD_NAMESPACE = "/proc/thread-self/ns/net"
T = TypeVar("T")

#: Written in every namespace this kernel creates, from a thread inside it (these
#: keys are per namespace; the root namespace's values are never touched).
#: accept_dad 0: IPv6 addresses, link-local included, are usable at once instead
#: of "tentative" for 1-3 s (the fake kernel has no DAD). send_redirects 0: a
#: router's ICMP redirects would spend its ICMP error budget (the fake sends none).
NAMESPACE_SYSCTLS = (
    ("net/ipv6/conf/all/accept_dad", "0"),
    ("net/ipv6/conf/default/accept_dad", "0"),
    ("net/ipv4/conf/all/send_redirects", "0"),
    ("net/ipv4/conf/default/send_redirects", "0"),
)
#: Bridged frames must not traverse the inet hooks: the rule model keeps routed
#: (layer "ip") and bridged (layer "bridge") filtering apart. These keys exist
#: only while br_netfilter is loaded, so a missing one is skipped.
OPTIONAL_NAMESPACE_SYSCTLS = (
    ("net/bridge/bridge-nf-call-iptables", "0"),
    ("net/bridge/bridge-nf-call-ip6tables", "0"),
)


def write_namespace_defaults() -> None:
    """Write the per-namespace defaults; runs on a thread already inside the new namespace."""
    for key, value in NAMESPACE_SYSCTLS + OPTIONAL_NAMESPACE_SYSCTLS:
        try:
            with open(f"/proc/sys/{key}", "w", encoding="ascii") as stream:
                stream.write(value)
        except OSError as exc:
            if (key, value) in OPTIONAL_NAMESPACE_SYSCTLS:
                continue
            raise kernel_error(exc.errno or errno.EIO, f"sysctl {key}: {exc}") from exc


@contextlib.contextmanager
def netlink_errors(what: str) -> Iterator[None]:
    """Translate pyroute2's NetlinkError (and OSError) into netsim's KernelError, errno kept."""
    try:
        yield
    except NetlinkError as exc:
        code = int(exc.code) if exc.code else errno.EIO
        raise kernel_error(code, f"{what}: {os.strerror(code)}") from exc
    except KernelError:
        raise
    except OSError as exc:
        code = exc.errno or errno.EIO
        raise kernel_error(code, f"{what}: {os.strerror(code)}") from exc


def namespace_path(name: str) -> str:
    return str(NETNS_DIR / name)


@contextlib.contextmanager
def namespace_fd(name: str) -> Iterator[int]:
    """An fd of namespace ``name`` for IFLA_NET_NS_FD, closed after (it would keep the namespace alive)."""
    with netlink_errors(f"open namespace {name!r}"):
        fd = os.open(namespace_path(name), os.O_RDONLY)
    try:
        yield fd
    finally:
        os.close(fd)


@dataclass(eq=False)
class NamespaceHandle:
    """One namespace this process created, with its netlink sockets."""

    name: str
    rtnl: RtnlChannel  # raw request socket: mutations and name lookups (the hot path)
    #: netnsid of another of our namespaces as seen from this one (cache: ids are stable)
    nsids: dict[str, int] = field(default_factory=dict)
    _ipr: Any = None
    _closed: bool = False

    @property
    def ipr(self) -> Any:
        """pyroute2's IPRoute inside the namespace (untyped), for dumps and decoding.
        Opened at first use: it starts a process to get there (~15 ms), which a
        namespace whose links are only made and deleted never needs."""
        if self._ipr is None:
            if self._closed:
                raise kernel_error(errno.EBADF, f"namespace {self.name!r} is closed")
            with netlink_errors(f"open netlink socket in namespace {self.name!r}"):
                self._ipr = IPRoute(netns=self.name, flags=0, groups=0)
        return self._ipr

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(Exception):
            self.rtnl.close()
        if self._ipr is not None:
            with contextlib.suppress(Exception):
                self._ipr.close()


def create_namespace(name: str) -> NamespaceHandle:
    """Create ``/run/netns/<name>`` as ``ip netns add`` does, write the namespace's
    defaults and open its request socket, all from one thread that made the
    namespace with ``unshare`` (pyroute2's ``netns.create`` forks a process for
    it: ~10-18 ms here, this ~1-2 ms).

    The caller has checked the name (prefix, syntax). EEXIST if the name is taken.
    """
    path = namespace_path(name)
    with netlink_errors(f"create namespace {name!r}"):
        _share_netns_dir()
        os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0))
    try:
        rtnl = _in_new_thread(name, lambda: _make_namespace_here(name))
    except BaseException:
        with contextlib.suppress(OSError):
            remove_namespace(name)
        raise
    return NamespaceHandle(name, rtnl)


def _share_netns_dir() -> None:
    """``/run/netns`` as a shared mount point (iproute2 does the same), so that a
    namespace bound there is visible from every mount namespace."""
    os.makedirs(NETNS_DIR, exist_ok=True)
    libc, where = _libc(), bytes(NETNS_DIR)
    if libc.mount(b"", where, b"none", ctypes.c_ulong(MS_SHARED | MS_REC), None) == 0:
        return
    if libc.mount(where, where, b"none", ctypes.c_ulong(MS_BIND | MS_REC), None) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"bind-mounting {NETNS_DIR} on itself: {os.strerror(code)}")
    if libc.mount(b"", where, b"none", ctypes.c_ulong(MS_SHARED | MS_REC), None) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"making {NETNS_DIR} a shared mount: {os.strerror(code)}")


def _make_namespace_here(name: str) -> RtnlChannel:
    """On a thread of its own: a new network namespace for this thread only, bound
    at ``/run/netns/<name>`` (checked by inode), its defaults, its request socket."""
    libc = _libc()
    if libc.unshare(CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        raise kernel_error(code, f"unshare for namespace {name!r}: {os.strerror(code)}")
    here = os.stat(THREAD_NAMESPACE)
    process = os.stat("/proc/self/ns/net")  # the main thread's, untouched
    if (here.st_dev, here.st_ino) == (process.st_dev, process.st_ino):
        raise kernel_error(errno.EIO, f"unshare left the thread in the process's namespace; refusing {name!r}")
    path = namespace_path(name)
    if libc.mount(THREAD_NAMESPACE.encode(), path.encode(), b"none", ctypes.c_ulong(MS_BIND), None) != 0:
        code = ctypes.get_errno()
        raise kernel_error(code, f"binding namespace {name!r}: {os.strerror(code)}")
    bound = os.stat(path)
    if (bound.st_dev, bound.st_ino) != (here.st_dev, here.st_ino):
        raise kernel_error(errno.EIO, f"{path} is not the namespace just made; refusing to continue")
    write_namespace_defaults()
    return RtnlChannel.open_here(name)


def open_namespace(name: str, *, remove_on_failure: bool = True) -> NamespaceHandle:
    """Open the sockets of an existing ``/run/netns/<name>`` (one this run
    made, possibly in another process); removes the namespace on failure
    unless told otherwise (a borrowed one is not ours to remove). A file with no
    namespace mounted on it (``ip netns add`` killed half-way) fails here: the
    thread's setns refuses it."""
    try:
        with netlink_errors(f"open request socket in namespace {name!r}"):
            rtnl = run_in_namespace(name, lambda: RtnlChannel.open_here(name))
    except BaseException:
        if remove_on_failure:
            remove_namespace(name)
        raise
    return NamespaceHandle(name, rtnl)


def remove_namespace(name: str) -> None:
    """Unmount and unlink ``/run/netns/<name>`` (exact name only)."""
    with netlink_errors(f"remove namespace {name!r}"):
        netns.remove(name)


def _libc() -> ctypes.CDLL:
    # The process's own symbols, libc's among them: ctypes.util.find_library would
    # run ``ldconfig -p`` (~7 ms) on every call.
    return ctypes.CDLL(None, use_errno=True)


def enter_namespace(name: str) -> None:
    """Move the *calling thread* into namespace ``name`` and check (by inode) that it
    landed there. Only for threads netsim started for that purpose: the process's
    other threads, and the root namespace, are never touched."""
    path = namespace_path(name)
    target = os.stat(path)
    fd = os.open(path, os.O_RDONLY)
    try:
        if _libc().setns(fd, CLONE_NEWNET) != 0:
            code = ctypes.get_errno()
            raise kernel_error(code, f"setns into {name!r}: {os.strerror(code)}")
    finally:
        os.close(fd)
    here = os.stat(THREAD_NAMESPACE)
    if (here.st_dev, here.st_ino) != (target.st_dev, target.st_ino):
        raise kernel_error(errno.EIO, f"thread did not land in namespace {name!r}; refusing to continue")


def run_in_namespace(name: str, func: Callable[[], T]) -> T:
    """Run ``func`` in a fresh thread that has joined namespace ``name``.

    The thread verifies (by inode) that it really is in ``name`` before it
    calls ``func``; any failure is re-raised in the caller. Cost: one thread
    start, ~0.1-1 ms.
    """

    def inside() -> T:
        enter_namespace(name)
        return func()

    return _in_new_thread(name, inside)


def _in_new_thread(name: str, func: Callable[[], T]) -> T:
    """Run ``func`` on a fresh thread (its namespace changes die with it); failures re-raised here."""
    result: list[T] = []
    failure: list[BaseException] = []

    def body() -> None:
        try:
            result.append(func())
        except BaseException as exc:  # handed back to the caller's thread
            failure.append(exc)

    thread = threading.Thread(target=body, name=f"netsim-ns-{name}", daemon=True)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]
