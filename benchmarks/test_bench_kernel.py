"""Cost of one container endpoint: setup (veth pair with one end created in
the container namespace, rename, address, up, default route) and teardown.

Three ways in the same run, so the figures read as ratios:

* ``linux``: LinuxKernel, netlink sockets kept open per namespace;
* ``fake``: the in-memory FakeKernel;
* ``ip-per-command``: the reference, one ``ip`` process per command (what
  Mininet does), in the same namespaces.

The ``nft-rule-add-delete`` group adds and deletes one Dnat (two nft rules)
through libnftables in-process (``library``) and through an ``nsenter nft``
process per batch (``process``, the reference) in the same namespace.

Run: ``python -m pytest benchmarks/test_bench_kernel.py --benchmark-only``.
Targets (issue 4): linux <= 3 ms per setup and <= 1 ms per teardown; fake <= 50 µs per setup.
"""

from __future__ import annotations

import itertools
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from netsim.kernel import make_kernel
from netsim.kernel.base import Kernel
from netsim.safety import linux_unavailable_reason

ROUNDS = 200


@dataclass
class Endpoint:
    """Builds and removes endpoint number ``n`` between a host and a container namespace."""

    host: str
    container: str
    counter: Iterator[int] = field(default_factory=itertools.count)
    last: int = -1

    def names(self, n: int) -> tuple[str, str]:
        return f"veth{n:x}", f"tmp{n:x}"


def kernel_setup(kernel: Kernel, ep: Endpoint) -> None:
    n = next(ep.counter)
    ep.last = n
    host_end, container_end = ep.names(n)
    kernel.add_veth(ep.host, host_end, container_end, ep.container)
    kernel.rename_link(ep.container, container_end, "eth0")
    kernel.add_address(ep.container, "eth0", "172.18.0.2/16")
    kernel.set_link_up(ep.container, "eth0")
    kernel.set_link_up(ep.host, host_end)
    kernel.add_route(ep.container, "default", via="172.18.0.1")


def kernel_teardown(kernel: Kernel, ep: Endpoint) -> None:
    kernel.delete_link(ep.host, ep.names(ep.last)[0])


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def ip_setup(ep: Endpoint) -> None:
    n = next(ep.counter)
    ep.last = n
    host_end, container_end = ep.names(n)
    ip("-n", ep.host, "link", "add", host_end, "type", "veth", "peer", "name", container_end, "netns", ep.container)
    ip("-n", ep.container, "link", "set", container_end, "name", "eth0")
    ip("-n", ep.container, "addr", "add", "172.18.0.2/16", "dev", "eth0")
    ip("-n", ep.container, "link", "set", "eth0", "up")
    ip("-n", ep.host, "link", "set", host_end, "up")
    ip("-n", ep.container, "route", "add", "default", "via", "172.18.0.1")


def ip_teardown(ep: Endpoint) -> None:
    ip("-n", ep.host, "link", "del", ep.names(ep.last)[0])


@pytest.fixture(params=[pytest.param("linux", marks=pytest.mark.linux), "fake"])
def bench_kernel(request: pytest.FixtureRequest) -> Iterator[tuple[Kernel, Endpoint]]:
    kind = str(request.param)
    if kind == "linux" and linux_unavailable_reason() is not None:
        pytest.skip(f"real kernel unavailable: {linux_unavailable_reason()}")
    try:
        kernel = make_kernel(kind)
    except ImportError as exc:
        pytest.skip(f"{kind} kernel not available: {exc}")
    try:
        host, container = kernel.ns("bh"), kernel.ns("bc")
        kernel.add_namespace(host)
        kernel.add_namespace(container)
        yield kernel, Endpoint(host, container)
    finally:
        kernel.close()


@pytest.fixture
def reference_namespaces() -> Iterator[Endpoint]:
    if linux_unavailable_reason() is not None:
        pytest.skip(f"real kernel unavailable: {linux_unavailable_reason()}")
    kernel = make_kernel("linux")  # only to own (and surely remove) the namespaces
    try:
        host, container = kernel.ns("rh"), kernel.ns("rc")
        kernel.add_namespace(host)
        kernel.add_namespace(container)
        yield Endpoint(host, container)
    finally:
        kernel.close()


def _pedantic(benchmark: Any, target: Callable[[], None], setup: Callable[[], None]) -> None:
    benchmark.pedantic(target, setup=setup, rounds=ROUNDS, warmup_rounds=5, iterations=1)


@pytest.mark.benchmark(group="endpoint-setup")
def test_endpoint_setup(benchmark: Any, bench_kernel: tuple[Kernel, Endpoint]) -> None:
    kernel, ep = bench_kernel
    benchmark.extra_info["kernel"] = kernel.kind

    def remove_previous() -> None:
        if ep.last >= 0:
            kernel_teardown(kernel, ep)
            ep.last = -1

    _pedantic(benchmark, lambda: kernel_setup(kernel, ep), remove_previous)
    assert kernel.link(ep.container, "eth0").up


@pytest.mark.benchmark(group="endpoint-teardown")
def test_endpoint_teardown(benchmark: Any, bench_kernel: tuple[Kernel, Endpoint]) -> None:
    kernel, ep = bench_kernel
    benchmark.extra_info["kernel"] = kernel.kind
    _pedantic(benchmark, lambda: kernel_teardown(kernel, ep), lambda: kernel_setup(kernel, ep))
    assert [link.name for link in kernel.links(ep.container)] == ["lo"]


@pytest.mark.linux
@pytest.mark.benchmark(group="endpoint-setup")
def test_endpoint_setup_reference_ip_per_command(benchmark: Any, reference_namespaces: Endpoint) -> None:
    ep = reference_namespaces
    benchmark.extra_info["kernel"] = "ip-per-command"

    def remove_previous() -> None:
        if ep.last >= 0:
            ip_teardown(ep)
            ep.last = -1

    benchmark.pedantic(lambda: ip_setup(ep), setup=remove_previous, rounds=ROUNDS // 4, warmup_rounds=2)
    remove_previous()


@pytest.mark.linux
@pytest.mark.benchmark(group="endpoint-teardown")
def test_endpoint_teardown_reference_ip_per_command(benchmark: Any, reference_namespaces: Endpoint) -> None:
    ep = reference_namespaces
    benchmark.extra_info["kernel"] = "ip-per-command"
    benchmark.pedantic(lambda: ip_teardown(ep), setup=lambda: ip_setup(ep), rounds=ROUNDS // 4, warmup_rounds=2)


@pytest.fixture
def rule_namespace() -> Iterator[str]:
    if linux_unavailable_reason() is not None:
        pytest.skip(f"real kernel unavailable: {linux_unavailable_reason()}")
    kernel = make_kernel("linux")  # owns (and surely removes) the namespace
    try:
        name = kernel.ns("br")
        kernel.add_namespace(name)
        yield name
    finally:
        kernel.close()


@pytest.mark.linux
@pytest.mark.benchmark(group="nft-rule-add-delete")
@pytest.mark.parametrize("backend", ["library", pytest.param("process", marks=pytest.mark.reference)])
def test_rule_add_delete(benchmark: Any, rule_namespace: str, backend: str) -> None:
    """One Dnat (two nft rules) added then deleted by handle: ``library`` is libnftables
    in-process, ``process`` the ``nsenter nft`` reference, in the same namespace."""
    from netsim.kernel.base import Dnat
    from netsim.kernel.linux.libnft import load_libnft
    from netsim.kernel.linux.nft import NftNamespace

    if backend == "library" and load_libnft() is None:
        pytest.skip("libnftables.so.1 is not installed")
    benchmark.extra_info["backend"] = backend
    tables = NftNamespace(rule_namespace, backend="library" if backend == "library" else "process")
    rule = Dnat("tcp", 8080, "10.0.0.2", 80)

    def add_delete() -> None:
        tables.add(rule, {})
        tables.delete(rule)

    try:
        rounds = ROUNDS if backend == "library" else ROUNDS // 8
        benchmark.pedantic(add_delete, rounds=rounds, warmup_rounds=2, iterations=1)
        assert tables.rules() == []
    finally:
        tables.close()
