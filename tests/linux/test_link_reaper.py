"""Link deletion on the real kernel returns once the link is unlisted and
leaves the kernel's grace period to a thread (netsim.kernel.linux.reaper);
close() waits for those threads. The contract is unchanged: when
delete_link or delete_namespace returns, what they removed is gone."""

from __future__ import annotations

import errno
from collections.abc import Callable

import pytest

from netsim.errors import KernelError
from netsim.kernel.base import Kernel
from netsim.kernel.linux.kernel import LinuxKernel

pytestmark = pytest.mark.linux


@pytest.fixture
def linux(netsim_kernel_factory: Callable[[str], Kernel]) -> LinuxKernel:
    kernel = netsim_kernel_factory("linux")
    assert isinstance(kernel, LinuxKernel)
    return kernel


def test_a_deleted_veth_and_its_peer_are_gone_on_return(linux: LinuxKernel) -> None:
    host, container = linux.ns("h"), linux.ns("c")
    linux.add_namespace(host)
    linux.add_namespace(container)
    for n in range(5):
        linux.add_veth(host, f"vh{n}", f"vc{n}", peer_ns=container)
    for n in range(5):
        linux.delete_link(host, f"vh{n}")
        assert f"vh{n}" not in linux.link_names(host) and f"vc{n}" not in linux.link_names(container)
        linux.add_veth(host, f"vh{n}", f"vc{n}", peer_ns=container)  # the names are free at once
        linux.delete_link(container, f"vc{n}")
    assert linux.link_names(host) == ["lo"] and linux.link_names(container) == ["lo"]
    linux.close()  # waits for the grace periods; raises if a deletion failed after all
    assert linux.namespaces() == []


def test_a_refused_deletion_raises_at_once_and_changes_nothing(linux: LinuxKernel) -> None:
    ns = linux.ns("r")
    linux.add_namespace(ns)
    with pytest.raises(KernelError):
        linux.delete_link(ns, "lo")
    assert linux.link_names(ns) == ["lo"]
    with pytest.raises(KernelError) as missing:
        linux.delete_link(ns, "nosuch0")
    assert missing.value.errno == errno.ENODEV  # looked up before any thread starts


def test_a_deleted_namespace_takes_its_peers_elsewhere_at_once(linux: LinuxKernel) -> None:
    host = linux.ns("h")
    linux.add_namespace(host)
    containers = [linux.ns(f"c{n}") for n in range(3)]
    for n, container in enumerate(containers):
        linux.add_namespace(container)
        linux.add_veth(host, f"vh{n}", "eth0", peer_ns=container)
        linux.add_macvlan(container, "mv0", "eth0")
    linux.add_macvlan(host, "mvh", "vh0")
    linux.add_veth(host, "keep0", "keep1")
    for container in containers:
        linux.delete_namespace(container)
    assert linux.link_names(host) == ["keep0", "keep1", "lo"]  # mvh went with its parent vh0
    linux.add_veth(host, "vh1", "vc1")  # a peer's name is free again at once
    assert linux.namespaces() == [host]
