"""Cost of a bridge network as the number of networks grows: the bridge
driver's isolation between its networks must cost the same per network at
10 networks as at 200 (issue 15).

Each round creates N bridge networks through the bridge driver on one
simulated host, then deletes them all; ``extra_info["us_per_network"]`` is
the round's time divided by N (one create plus one delete). The fake kernel
runs N = 10, 50, 200; the real kernel N = 10, 50.

Same-run reference (``reference-bare-bridge``): the bare kernel calls for
one bridge with its address and no rules (add, set MAC, add address, up,
delete), N times: what a network costs before any firewall work. A flat
``us_per_network`` across N, at a steady multiple of the reference, is the
target; a per-network cost that grows with N is the quadratic isolation this
file exists to catch.

Run: ``python -m pytest benchmarks/test_bench_networks.py --benchmark-only -s``
(``--fake-only`` leaves out the real kernel).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import Any

import pytest

from drivers.bridge.driver import BridgeDriver
from netsim.controller.hostsetup import build_host
from netsim.driverapi import IPAMData, NetworkInfo
from netsim.host import Host
from netsim.kernel import make_kernel
from netsim.kernel.base import Kernel
from netsim.safety import linux_unavailable_reason

FAKE_SIZES = (10, 50, 200)
LINUX_SIZES = (10, 50)


def subnet_of(index: int) -> ipaddress.IPv4Network:
    """Network ``index``'s /24: 10.100.0.0/24, 10.100.1.0/24, ... (250 per /16)."""
    return ipaddress.IPv4Network(f"10.{100 + index // 250}.{index % 250}.0/24")


def ipam_data(index: int) -> IPAMData:
    subnet = subnet_of(index)
    return IPAMData("LocalDefault", subnet, gateway=ipaddress.IPv4Interface(f"{subnet[1]}/{subnet.prefixlen}"))


def nid_of(index: int) -> str:
    return f"{index:012x}" + "0" * 52


#: (kernel, networks) measured: every size on the fake kernel, the smaller ones on the real one
CASES = [pytest.param(("fake", n), id=f"fake-{n}") for n in FAKE_SIZES] + [
    pytest.param(("linux", n), id=f"linux-{n}", marks=pytest.mark.linux) for n in LINUX_SIZES
]


@pytest.fixture
def host(case: tuple[str, int]) -> Iterator[Host]:
    kind = case[0]
    if kind == "linux" and linux_unavailable_reason() is not None:
        pytest.skip(f"real kernel unavailable: {linux_unavailable_reason()}")
    kernel = make_kernel(kind)
    try:
        built, teardown, _ = build_host(kernel, "bn", 1)
        try:
            yield built
        finally:
            teardown.run()
    finally:
        kernel.close()


def create_and_delete(driver: BridgeDriver, count: int) -> None:
    """N networks up, then all down again: the driver ends as it started."""
    for index in range(count):
        driver.create_network(nid_of(index), {}, NetworkInfo(), [ipam_data(index)], [])
    for index in range(count):
        driver.delete_network(nid_of(index))


def bare_bridges(kernel: Kernel, ns: str, count: int) -> None:
    """The reference: each network's bridge with its gateway address, no rules."""
    for index in range(count):
        name = f"br-ref{index}"
        kernel.add_bridge(ns, name)
        kernel.set_mac(ns, name, "02:42:0a:64:00:01")
        kernel.add_address(ns, name, f"{subnet_of(index)[1]}/24")
        kernel.set_link_up(ns, name)
    for index in range(count):
        kernel.delete_link(ns, f"br-ref{index}")


def _rounds(kind: str, count: int) -> int:
    if kind == "linux":
        return 3 if count <= 10 else 2
    return 20 if count <= 10 else (6 if count <= 50 else 3)


def _report(benchmark: Any, kind: str, count: int, what: str) -> None:
    stats = benchmark.stats.stats
    per = stats.median / count * 1e6
    benchmark.extra_info.update({"kernel": kind, "networks": count, "us_per_network": round(per, 1)})
    print(f"\n{what} {kind} N={count}: {per:.1f} µs per network (median of {stats.rounds})")


@pytest.mark.parametrize("case", CASES)
@pytest.mark.benchmark(group="bridge-networks")
def test_networks_create_delete(benchmark: Any, host: Host, case: tuple[str, int]) -> None:
    kind, count = case
    driver = BridgeDriver(host.kernel, host)
    create_and_delete(driver, 2)  # first use (imports, nft tables) is no network's cost
    benchmark.pedantic(create_and_delete, args=(driver, count), rounds=_rounds(kind, count), iterations=1)
    assert not driver.networks
    _report(benchmark, kind, count, "bridge driver")


@pytest.mark.reference
@pytest.mark.parametrize("case", CASES)
@pytest.mark.benchmark(group="bridge-networks")
def test_reference_bare_bridge(benchmark: Any, host: Host, case: tuple[str, int]) -> None:
    kind, count = case
    kernel, ns = host.kernel, host.namespace
    bare_bridges(kernel, ns, 2)
    benchmark.pedantic(bare_bridges, args=(kernel, ns, count), rounds=_rounds(kind, count), iterations=1)
    _report(benchmark, kind, count, "reference bare bridge")
