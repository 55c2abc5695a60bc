"""Real-kernel endpoint cost (issue 15, sections 1 and 6), each beside same-run references.

``linux-endpoint-setup``: one container endpoint made from nothing: a veth whose
container end is created directly in the container's namespace, its MAC, the
host end on the bridge and up, the container end renamed ``eth0``, up,
addressed, with a default route. Through LinuxKernel (hand-packed netlink on
sockets kept per namespace), against the same requests through pyroute2's own
API (``reference-pyroute2``) and one ``ip`` process per command
(``reference-ip-per-command``). Untimed between rounds: the veth's deletion.

``linux-lifecycle``: a whole endpoint lifecycle through the controller and the
bridge driver: create the endpoint for a container, join it, then remove the
container (libnetwork's Sandbox.Delete: leave, delete the endpoint, remove the
namespace), as ``docker rm -f`` does. The container's namespace is made
untimed before each round. ``disconnect``: connect (create + join), disconnect
(leave + delete: the interface is unplugged where it is, as it goes next), then
remove the container. ``run-rm`` (``docker run --rm``) times the container's
creation as well: namespace, connect, removal. ``explicit-leave`` calls leave, delete_endpoint and
delete_sandbox one by one; a leave on its own moves the interface back to the
host as libnetwork's RemoveInterface does (one RCU barrier, 10-30 ms). The
references do the kernel steps of the container-removal variant (no IPAM, no
store, no driver): a plain pyroute2 script (its veth deletion waits for the
kernel's grace period, as any synchronous caller does) and ``ip`` per command.

``netlink-request-path`` (section 6): why mutations bypass pyroute2. Eight
round trips (four name lookups, link up, address add, address delete, link
down) through netsim's hand-packed channel and through pyroute2's IPRoute in
the same namespace; and pyroute2 with the index known (its four requests only).

Run: ``python -m pytest benchmarks/test_bench_linux_lifecycle.py --benchmark-only``
(root; skipped without a usable real kernel). Targets (issue 15): endpoint setup
<= 1 ms, lifecycle <= 10 ms median.
"""

from __future__ import annotations

import itertools
import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from netsim.controller import Controller, ControllerConfig, IpamConfig, PoolConfig
from netsim.controller.hostsetup import UPLINK
from netsim.controller.testing import ensure_default_ipam
from netsim.kernel import make_kernel
from netsim.kernel.base import Kernel
from netsim.safety import linux_unavailable_reason

pytestmark = pytest.mark.linux

SETUP_ROUNDS = 150
LIFECYCLE_ROUNDS = 40
PROCESS_ROUNDS = 25  # one process per command: slow, and its spread is the machine's
MAC = "02:42:0a:80:00:02"
ADDRESS, PREFIX, GATEWAY = "10.128.0.2", 16, "10.128.0.1"


def _require_linux() -> None:
    reason = linux_unavailable_reason()
    if reason is not None:
        pytest.skip(f"real kernel unavailable: {reason}")


@pytest.fixture
def kernel() -> Iterator[Kernel]:
    """Owns every namespace of the test (references included): close() removes all
    names with this run's prefix, registered or not."""
    _require_linux()
    kernel = make_kernel("linux")
    try:
        yield kernel
    finally:
        kernel.close()


@dataclass
class Host:
    """A host namespace with a bridge and a container namespace beside it."""

    kernel: Kernel
    host: str
    container: str

    @classmethod
    def make(cls, kernel: Kernel, role: str) -> Host:
        host, container = kernel.ns(f"{role}h"), kernel.ns(f"{role}c")
        kernel.add_namespace(host)
        kernel.add_namespace(container)
        kernel.add_bridge(host, "br0")
        kernel.add_address(host, "br0", f"{GATEWAY}/{PREFIX}")
        kernel.set_link_up(host, "br0")
        return cls(kernel, host, container)


def _pedantic(benchmark: Any, target: Callable[[], None], setup: Callable[[], None], rounds: int) -> None:
    benchmark.pedantic(target, setup=setup, rounds=rounds, warmup_rounds=3, iterations=1)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


# --- linux-endpoint-setup --------------------------------------------------------------------


@pytest.mark.benchmark(group="linux-endpoint-setup")
def pyroute2_endpoint(iph: Any, ipc: Any, container_fd: int, bridge: int) -> int:
    """The reference's endpoint setup through pyroute2's own API: the veth made
    with its peer in the container, plugged into the bridge, addressed and
    routed, as the bridge driver and the controller do. Returns the host end's index."""
    iph.link("add", ifname="vh", kind="veth", peer={"ifname": "tmp0", "net_ns_fd": container_fd})
    index = ipc.link_lookup(ifname="tmp0")[0]
    ipc.link("set", index=index, address=MAC)
    host_index: int = iph.link_lookup(ifname="vh")[0]
    iph.link("set", index=host_index, master=bridge)
    iph.link("set", index=host_index, state="up")
    ipc.link("set", index=index, ifname="eth0")
    ipc.link("set", index=index, state="up")
    ipc.addr("add", index=index, address=ADDRESS, prefixlen=PREFIX)
    ipc.route("add", dst="0.0.0.0/0", gateway=GATEWAY)
    return host_index


def test_endpoint_setup(benchmark: Any, kernel: Kernel) -> None:
    lab = Host.make(kernel, "s")
    h, c = lab.host, lab.container
    benchmark.extra_info["path"] = "netsim LinuxKernel"

    def setup_endpoint() -> None:
        kernel.add_veth(h, "vh", "tmp0", peer_ns=c)
        kernel.set_mac(c, "tmp0", MAC)
        kernel.set_master(h, "vh", "br0")
        kernel.set_link_up(h, "vh")
        kernel.rename_link(c, "tmp0", "eth0")
        kernel.set_link_up(c, "eth0")
        kernel.add_address(c, "eth0", f"{ADDRESS}/{PREFIX}")
        kernel.add_route(c, "default", via=GATEWAY)

    def remove_previous() -> None:
        if [link.name for link in kernel.links(c)] != ["lo"]:
            kernel.delete_link(h, "vh")

    _pedantic(benchmark, setup_endpoint, remove_previous, SETUP_ROUNDS)
    assert kernel.link(c, "eth0").up and kernel.link(c, "eth0").mac == MAC


@pytest.mark.reference
@pytest.mark.benchmark(group="linux-endpoint-setup")
def test_endpoint_setup_reference_pyroute2(benchmark: Any, kernel: Kernel) -> None:
    from pyroute2 import IPRoute

    lab = Host.make(kernel, "p")
    benchmark.extra_info["path"] = "pyroute2 IPRoute API"
    iph, ipc = IPRoute(netns=lab.host), IPRoute(netns=lab.container)
    container_fd = os.open(f"/run/netns/{lab.container}", os.O_RDONLY)
    bridge = iph.link_lookup(ifname="br0")[0]
    try:

        def setup_endpoint() -> None:
            pyroute2_endpoint(iph, ipc, container_fd, bridge)

        def remove_previous() -> None:
            for index in iph.link_lookup(ifname="vh"):
                iph.link("del", index=index)

        _pedantic(benchmark, setup_endpoint, remove_previous, SETUP_ROUNDS)
        assert kernel.link(lab.container, "eth0").up
    finally:
        os.close(container_fd)
        iph.close()
        ipc.close()


@pytest.mark.reference
@pytest.mark.benchmark(group="linux-endpoint-setup")
def test_endpoint_setup_reference_ip_per_command(benchmark: Any, kernel: Kernel) -> None:
    lab = Host.make(kernel, "i")
    h, c = lab.host, lab.container
    benchmark.extra_info["path"] = "one ip process per command"

    def setup_endpoint() -> None:
        _ip("-n", h, "link", "add", "vh", "type", "veth", "peer", "name", "tmp0", "netns", c)
        _ip("-n", c, "link", "set", "tmp0", "address", MAC)
        _ip("-n", h, "link", "set", "vh", "master", "br0")
        _ip("-n", h, "link", "set", "vh", "up")
        _ip("-n", c, "link", "set", "tmp0", "name", "eth0")
        _ip("-n", c, "link", "set", "eth0", "up")
        _ip("-n", c, "addr", "add", f"{ADDRESS}/{PREFIX}", "dev", "eth0")
        _ip("-n", c, "route", "add", "default", "via", GATEWAY)

    def remove_previous() -> None:
        if [link.name for link in kernel.links(c)] != ["lo"]:
            _ip("-n", h, "link", "del", "vh")

    _pedantic(benchmark, setup_endpoint, remove_previous, PROCESS_ROUNDS)
    assert kernel.link(c, "eth0").up


# --- linux-lifecycle ----------------------------------------------------------------------------


@pytest.fixture
def controller(kernel: Kernel) -> Iterator[Controller]:
    ctrl = Controller(kernel, ControllerConfig(host="lh"))
    try:
        ensure_default_ipam(ctrl)
        ctrl.create_network("bench", "bridge", ipam=IpamConfig(pools=[PoolConfig(subnet="10.128.0.0/16")]))
        yield ctrl
    finally:
        ctrl.close()


@pytest.mark.benchmark(group="linux-lifecycle")
@pytest.mark.parametrize("variant", ["container-removal", "disconnect", "explicit-leave", "run-rm"])
def test_lifecycle(benchmark: Any, controller: Controller, variant: str) -> None:
    ctrl = controller
    benchmark.extra_info["path"] = f"netsim controller + bridge driver ({variant})"
    numbers = itertools.count()
    current: list[str] = []

    def make_container() -> None:
        name = f"c{next(numbers)}"
        if variant != "run-rm":
            ctrl.create_sandbox(name)
        current[:] = [name]

    def lifecycle() -> None:
        container = current[0]
        if variant == "run-rm":
            ctrl.create_sandbox(container)  # its namespace too, timed
            ctrl.connect(container, "bench")
        elif variant == "disconnect":
            ctrl.connect(container, "bench")  # create endpoint + join
            ctrl.disconnect(container, "bench")  # leave + delete endpoint
        else:
            ep = ctrl.create_endpoint("bench", f"ep-{container}", sandbox=container)
            ctrl.join(ep, container)
            if variant == "explicit-leave":
                ctrl.leave(ep, container)
                ctrl.delete_endpoint(ep)
        ctrl.delete_sandbox(container)

    _pedantic(benchmark, lifecycle, make_container, LIFECYCLE_ROUNDS)
    assert ctrl.network("bench").endpoints() == [] and ctrl.sandboxes() == []
    host_veths = [link.name for link in ctrl.kernel.links(ctrl.host.namespace) if link.kind == "veth"]
    assert host_veths == [UPLINK], host_veths


@pytest.mark.reference
@pytest.mark.benchmark(group="linux-lifecycle")
def test_lifecycle_reference_pyroute2(benchmark: Any, kernel: Kernel) -> None:
    from pyroute2 import IPRoute, netns

    lab = Host.make(kernel, "q")
    benchmark.extra_info["path"] = "pyroute2 script (container removal)"
    iph = IPRoute(netns=lab.host)
    bridge = iph.link_lookup(ifname="br0")[0]
    numbers = itertools.count()
    current: list[Any] = []
    try:

        def make_container() -> None:
            name = kernel.ns(f"q{next(numbers)}")
            netns.create(name)
            current[:] = [name, IPRoute(netns=name), os.open(f"/run/netns/{name}", os.O_RDONLY)]

        def lifecycle() -> None:
            name, ipc, fd = current
            host_index = pyroute2_endpoint(iph, ipc, fd, bridge)
            # container removal: the endpoint's veth, then the namespace
            iph.link("del", index=host_index)
            ipc.close()
            os.close(fd)
            netns.remove(name)

        _pedantic(benchmark, lifecycle, make_container, LIFECYCLE_ROUNDS)
        assert [link.name for link in kernel.links(lab.host) if link.kind == "veth"] == []
    finally:
        iph.close()


@pytest.mark.reference
@pytest.mark.benchmark(group="linux-lifecycle")
def test_lifecycle_reference_ip_per_command(benchmark: Any, kernel: Kernel) -> None:
    lab = Host.make(kernel, "r")
    h = lab.host
    benchmark.extra_info["path"] = "one ip process per command (container removal)"
    numbers = itertools.count()
    current: list[str] = []

    def make_container() -> None:
        name = kernel.ns(f"r{next(numbers)}")
        _ip("netns", "add", name)
        current[:] = [name]

    def lifecycle() -> None:
        c = current[0]
        _ip("-n", h, "link", "add", "vh", "type", "veth", "peer", "name", "tmp0", "netns", c)
        _ip("-n", c, "link", "set", "tmp0", "address", MAC)
        _ip("-n", h, "link", "set", "vh", "master", "br0")
        _ip("-n", h, "link", "set", "vh", "up")
        _ip("-n", c, "link", "set", "tmp0", "name", "eth0")
        _ip("-n", c, "link", "set", "eth0", "up")
        _ip("-n", c, "addr", "add", f"{ADDRESS}/{PREFIX}", "dev", "eth0")
        _ip("-n", c, "route", "add", "default", "via", GATEWAY)
        _ip("-n", h, "link", "del", "vh")
        _ip("netns", "del", c)

    _pedantic(benchmark, lifecycle, make_container, PROCESS_ROUNDS)
    assert [link.name for link in kernel.links(h) if link.kind == "veth"] == []


# --- netlink-request-path (section 6) -------------------------------------------------------------


@pytest.fixture
def one_link(kernel: Kernel) -> tuple[Kernel, str]:
    ns = kernel.ns("n")
    kernel.add_namespace(ns)
    kernel.add_veth(ns, "va", "vb")
    return kernel, ns


@pytest.mark.benchmark(group="netlink-request-path")
def test_requests_hand_packed(benchmark: Any, one_link: tuple[Kernel, str]) -> None:
    kernel, ns = one_link
    benchmark.extra_info["path"] = "hand-packed (netsim.kernel.linux.rtnl)"
    cidr = f"{ADDRESS}/{PREFIX}"

    def requests() -> None:
        kernel.set_link_up(ns, "va")
        kernel.add_address(ns, "va", cidr)
        kernel.delete_address(ns, "va", cidr)
        kernel.set_link_up(ns, "va", False)

    benchmark.pedantic(requests, rounds=SETUP_ROUNDS * 2, warmup_rounds=5, iterations=1)
    assert kernel.addresses(ns) == []


@pytest.mark.reference
@pytest.mark.benchmark(group="netlink-request-path")
@pytest.mark.parametrize("lookups", ["by-name", "index-known"])
def test_requests_reference_pyroute2(benchmark: Any, one_link: tuple[Kernel, str], lookups: str) -> None:
    """``by-name``: the same eight round trips (pyroute2's link_lookup for each name);
    ``index-known``: the index looked up once, untimed, so only the four requests remain."""
    from pyroute2 import IPRoute

    kernel, ns = one_link
    benchmark.extra_info["path"] = f"pyroute2 IPRoute API ({lookups})"
    ipr = IPRoute(netns=ns)
    known = ipr.link_lookup(ifname="va")[0]
    try:

        def index() -> int:
            return known if lookups == "index-known" else int(ipr.link_lookup(ifname="va")[0])

        def requests() -> None:
            ipr.link("set", index=index(), state="up")
            ipr.addr("add", index=index(), address=ADDRESS, prefixlen=PREFIX)
            ipr.addr("del", index=index(), address=ADDRESS, prefixlen=PREFIX)
            ipr.link("set", index=index(), state="down")

        benchmark.pedantic(requests, rounds=SETUP_ROUNDS * 2, warmup_rounds=5, iterations=1)
        assert kernel.addresses(ns) == []
    finally:
        ipr.close()
