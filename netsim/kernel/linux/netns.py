"""Network namespaces on the real kernel: create, open once, run inside, remove.

Each namespace gets one pyroute2 netlink socket, opened inside it when the
namespace is made and kept until it is removed (pyroute2 forks once to open
the socket in the namespace; every later netlink call is a plain send/recv).

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
from netsim.safety import NETNS_DIR

CLONE_NEWNET = 0x40000000
T = TypeVar("T")


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


@dataclass(eq=False)
class NamespaceHandle:
    """One namespace this process created, with its netlink socket."""

    name: str
    ipr: Any  # pyroute2.IPRoute (untyped)
    #: netnsid of another of our namespaces as seen from this one (cache: ids are stable)
    nsids: dict[str, int] = field(default_factory=dict)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.ipr.close()


def create_namespace(name: str) -> NamespaceHandle:
    """Create ``/run/netns/<name>`` and open a netlink socket inside it.

    The caller has checked the name (prefix, syntax). EEXIST if the name is taken.
    """
    if os.path.exists(namespace_path(name)):
        raise kernel_error(errno.EEXIST, f"namespace {name!r} exists")
    with netlink_errors(f"create namespace {name!r}"):
        netns.create(name)
    try:
        with netlink_errors(f"open netlink socket in namespace {name!r}"):
            ipr = IPRoute(netns=name, flags=0)
    except BaseException:
        remove_namespace(name)
        raise
    return NamespaceHandle(name, ipr)


def remove_namespace(name: str) -> None:
    """Unmount and unlink ``/run/netns/<name>`` (exact name only)."""
    with netlink_errors(f"remove namespace {name!r}"):
        netns.remove(name)


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def run_in_namespace(name: str, func: Callable[[], T]) -> T:
    """Run ``func`` in a fresh thread that has joined namespace ``name``.

    The thread verifies (by inode) that it really is in ``name`` before it
    calls ``func``; any failure is re-raised in the caller. Cost: one thread
    start, ~0.1-1 ms.
    """
    result: list[T] = []
    failure: list[BaseException] = []
    path = namespace_path(name)

    def body() -> None:
        try:
            target = os.stat(path)
            fd = os.open(path, os.O_RDONLY)
            try:
                if _libc().setns(fd, CLONE_NEWNET) != 0:
                    code = ctypes.get_errno()
                    raise kernel_error(code, f"setns into {name!r}: {os.strerror(code)}")
            finally:
                os.close(fd)
            here = os.stat("/proc/thread-self/ns/net")
            if (here.st_dev, here.st_ino) != (target.st_dev, target.st_ino):
                raise kernel_error(errno.EIO, f"thread did not land in namespace {name!r}; refusing to continue")
            result.append(func())
        except BaseException as exc:  # handed back to the caller's thread
            failure.append(exc)

    thread = threading.Thread(target=body, name=f"netsim-ns-{name}", daemon=True)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]
