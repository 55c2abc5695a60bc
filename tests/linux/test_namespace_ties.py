"""delete_namespace removes, before it returns, the links elsewhere that Linux destroys
with the namespace (veth peers, macvlans and vxlans made on its devices and moved
out), found from the ties the kernel recorded as it made and moved them
(netsim.kernel.linux.ties), without asking every other namespace; and for
namespaces a previous process made (adopted), by a scan of the adopted ones."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from netsim.kernel.base import Kernel
from netsim.kernel.linux.kernel import LinuxKernel
from netsim.kernel.linux.rtnl import RtnlChannel

pytestmark = pytest.mark.linux

OTHERS = 12
Counts = dict[str, int]


@pytest.fixture
def linux(netsim_kernel_factory: Callable[[str], Kernel]) -> LinuxKernel:
    kernel = netsim_kernel_factory("linux")
    assert isinstance(kernel, LinuxKernel)
    return kernel


@pytest.fixture
def deleting(linux: LinuxKernel, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Callable[[str], None], Counts]]:
    """delete_namespace, counting the link dumps and namespace-id lookups made by the
    kernel's request sockets while it runs (link_names, used to check, dumps too)."""
    calls: Counts = {"dump_links": 0, "nsid": 0}
    counting = [False]
    for method in calls:
        original = getattr(RtnlChannel, method)

        def counted(self: RtnlChannel, *args: Any, _method: str = method, _original: Any = original) -> Any:
            calls[_method] += counting[0]
            return _original(self, *args)

        monkeypatch.setattr(RtnlChannel, method, counted)

    def delete(ns: str) -> None:
        counting[0] = True
        try:
            linux.delete_namespace(ns)
        finally:
            counting[0] = False

    yield delete, calls


def test_recorded_peers_go_with_their_namespace_without_a_scan(
    linux: LinuxKernel, deleting: tuple[Callable[[str], None], Counts]
) -> None:
    delete, calls = deleting
    host, outside = linux.ns("h"), linux.ns("o")
    containers = [linux.ns(f"c{n}") for n in range(OTHERS)]
    for ns in (host, outside, *containers):
        linux.add_namespace(ns)
    linux.add_veth(host, "up0", "up1", peer_ns=outside)
    for n, container in enumerate(containers):
        linux.add_veth(host, f"vh{n}", "eth0", peer_ns=container)
    # A plugin's way: both ends made in the host, one moved into the container.
    linux.add_veth(host, "pl0", "pl1")
    linux.move_link(host, "pl1", containers[0], "eth1")
    # Made in the host on its devices and moved out: they die with the host.
    linux.add_macvlan(host, "mv0", "up0")
    linux.move_link(host, "mv0", containers[1], "mv0")
    linux.add_vxlan(host, "vx0", 42, dstport=4789)
    linux.move_link(host, "vx0", containers[2], "vx0")
    # Moved there and back: no tie left to the container.
    linux.add_veth(host, "rt0", "rt1")
    linux.move_link(host, "rt1", containers[3])
    linux.move_link(containers[3], "rt1", host)

    delete(containers[0])
    assert {"vh0", "pl0"}.isdisjoint(linux.link_names(host))  # gone on return, not 10-50 ms later
    delete(containers[3])
    assert {"rt0", "rt1"} <= set(linux.link_names(host)) and "vh3" not in linux.link_names(host)
    delete(outside)
    assert "up0" not in linux.link_names(host)
    assert linux.link_names(containers[1]) == ["eth0", "lo"]  # mv0 went with its parent up0
    delete(host)
    for container in containers[1:3] + containers[4:]:
        assert linux.link_names(container) == ["lo"]  # the veth ends and vx0 went with the host
    # Per deletion: one namespace-id lookup per recorded tie (cached), and no dump of anyone's links.
    assert calls["dump_links"] == 0
    assert calls["nsid"] <= OTHERS + 4


PREVIOUS_PROCESS = """
import os, subprocess, sys
from netsim.kernel.linux.kernel import LinuxKernel
kernel = LinuxKernel(sys.argv[1])
host, container = kernel.ns("h"), kernel.ns("c")
kernel.add_namespace(host)
kernel.add_namespace(container)
kernel.add_veth(host, "vh0", "eth0", peer_ns=container)
kernel.add_veth(host, "pl0", "pl1")
kernel.move_link(host, "pl1", container, "eth1")
kernel.add_namespace(kernel.ns("c2"))
kernel.add_veth(host, "vh2", "eth0", peer_ns=kernel.ns("c2"))
kernel.add_namespace(kernel.ns("c3"))
# Made as a plugin or an older netsim would: nothing has looked it up since.
add = ["ip", "-n", host, "link", "add", "vh3", "type", "veth", "peer", "eth0", "netns", kernel.ns("c3")]
subprocess.run(add, check=True)
os._exit(0)  # dies without closing: the namespaces stay, as after a crash
"""


def test_an_adopted_namespace_takes_its_peers_from_before_the_restart(
    linux: LinuxKernel, deleting: tuple[Callable[[str], None], Counts]
) -> None:
    delete, calls = deleting
    subprocess.run([sys.executable, "-c", textwrap.dedent(PREVIOUS_PROCESS), linux.run_id], check=True, timeout=60)
    host, container, second, third = linux.ns("h"), linux.ns("c"), linux.ns("c2"), linux.ns("c3")
    assert sorted(linux.adopt_namespaces(lambda name: True)) == sorted([host, container, second, third])
    # A tie from before the restart moved by this process is recorded from then on.
    linux.move_link(second, "eth0", host, "back0")
    assert linux.link_names(second) == ["lo"]
    linux.move_link(host, "back0", second, "eth0")
    linux.add_namespace(linux.ns("new"))
    linux.add_veth(host, "vn0", "eth0", peer_ns=linux.ns("new"))

    delete(container)  # adopted: its ties predate the record, so the adopted ones are scanned
    assert {"vh0", "pl0"}.isdisjoint(linux.link_names(host))
    assert calls["dump_links"] == 3  # each other adopted namespace's links, once
    calls["dump_links"] = 0
    delete(linux.ns("new"))  # made here: recorded
    assert "vn0" not in linux.link_names(host)
    assert calls["dump_links"] == 0
    delete(host)
    # c2's end by the record, c3's by the scan (c3 had no id for the host until it was dumped)
    assert linux.link_names(second) == ["lo"] and linux.link_names(third) == ["lo"]
    assert linux.namespaces() == [second, third]
