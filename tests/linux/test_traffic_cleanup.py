"""Deleting a namespace closes every socket and thread traffic held in it.

An open socket keeps a network namespace alive after its name is removed, so
"the name is gone" is not enough: every socket of this process is asked for
its namespace (ioctl SIOCGSKNS) and none may still be in the deleted one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from netsim.errors import NotFoundError
from netsim.kernel.base import Kernel, Listener
from netsim.kernel.linux.traffic import TrafficManager
from netsim.kernel.linux.traffic_nssocket import namespace_inode
from netsim.probe import probe

pytestmark = pytest.mark.linux

SIOCGSKNS = 0x894C  # linux/sockios.h: get a socket's network namespace as an fd


def socket_namespace_inodes() -> list[int]:
    """The network namespace inode of every socket this process holds open."""
    inodes = []
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        with contextlib.suppress(OSError):
            if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                continue
            ns_fd = fcntl.ioctl(fd, SIOCGSKNS)
            try:
                inodes.append(os.fstat(ns_fd).st_ino)
            finally:
                os.close(ns_fd)
    return inodes


def busy_pair(factory: Callable[[str], Kernel], tmp_path: Path) -> tuple[Kernel, str, str, contextlib.ExitStack]:
    """Two namespaces with listeners, used probe sockets (v4 and v6) and a running capture in ``b``."""
    kernel = factory("linux")
    a, b = kernel.ns("a"), kernel.ns("b")
    for ns in (a, b):
        kernel.add_namespace(ns)
    kernel.add_veth(a, "eth0", "eth0", b)
    for ns, last in ((a, 1), (b, 2)):
        kernel.add_address(ns, "eth0", f"10.7.0.{last}/24")
        kernel.add_address(ns, "eth0", f"fd07::{last}/64")
        kernel.set_link_up(ns, "eth0")
    for listener in (Listener("tcp", 80), Listener("udp", 53), Listener("tcp", 80, "::")):
        kernel.add_listener(b, listener)
    for ns, dst in ((a, "10.7.0.2"), (b, "10.7.0.1"), (b, "fd07::1")):
        probe(kernel, ns, dst, timeout=0.2)
    stack = contextlib.ExitStack()
    stack.enter_context(kernel.capture(b, ["eth0"], str(tmp_path / "b.pcap")))
    return kernel, a, b, stack


def test_deleting_a_namespace_leaves_no_socket_in_it(
    netsim_kernel_factory: Callable[[str], Kernel], tmp_path: Path
) -> None:
    kernel, a, b, capture = busy_pair(netsim_kernel_factory, tmp_path)
    inode = namespace_inode(b)
    assert socket_namespace_inodes().count(inode) >= 5  # the test sees what it looks for
    with capture:
        kernel.delete_namespace(b)
        assert inode not in socket_namespace_inodes()
    assert not any(b in thread.name for thread in threading.enumerate())
    assert namespace_inode(a) in socket_namespace_inodes()  # the other namespace keeps its own
    with pytest.raises(NotFoundError):
        probe(kernel, b, "10.7.0.1")


def test_closing_the_kernel_closes_every_traffic_socket(
    netsim_kernel_factory: Callable[[str], Kernel], tmp_path: Path
) -> None:
    kernel, a, b, capture = busy_pair(netsim_kernel_factory, tmp_path)
    inodes = {namespace_inode(a), namespace_inode(b)}
    with capture:
        kernel.close()
    assert inodes.isdisjoint(socket_namespace_inodes())
    assert not any(kernel.prefix in thread.name for thread in threading.enumerate())


def test_recreated_namespace_gets_fresh_sockets(netsim_kernel_factory: Callable[[str], Kernel], tmp_path: Path) -> None:
    kernel, a, b, capture = busy_pair(netsim_kernel_factory, tmp_path)
    capture.close()
    kernel.delete_namespace(a)
    kernel.add_namespace(a)
    kernel.add_veth(a, "eth0", "eth1", b)
    kernel.add_address(a, "eth0", "10.8.0.1/24")
    kernel.add_address(b, "eth1", "10.8.0.2/24")
    kernel.set_link_up(a, "eth0")
    kernel.set_link_up(b, "eth1")
    assert probe(kernel, a, "10.8.0.2", "tcp", 80, timeout=3.0).outcome == "syn-ack"


def test_manager_reports_what_it_still_holds(netsim_kernel_factory: Callable[[str], Kernel], tmp_path: Path) -> None:
    kernel, a, b, capture = busy_pair(netsim_kernel_factory, tmp_path)
    capture.close()
    manager = TrafficManager(kernel)  # a second manager on the same namespaces
    assert manager.open_namespaces() == []
    manager.add_listener(a, Listener("udp", 9999))
    assert manager.probe(b, "10.7.0.1", "udp", 9999).outcome == "udp-reply"
    with manager.capture(a, ["eth0"], str(tmp_path / "m.pcap")):
        assert manager.open_namespaces() == sorted([a, b])
    manager.close_namespace(a)
    assert manager.open_namespaces() == [b]
    manager.close()
    manager.close()  # idempotent
    assert manager.open_namespaces() == []
    assert kernel.listeners(a) == []  # the kernel's own manager never held that listener
