"""The runner's probe source selection: longest prefix, then metric, then the
device's first global address of the destination's family."""

from __future__ import annotations

from typing import Any

import pytest

from netsim.kernel.base import RouteInfo
from netsim.scenario.source import source_address


class RoutesOnly:
    def __init__(self, routes: list[RouteInfo], addresses: list[tuple[str, str]]) -> None:
        self._routes, self._addresses = routes, addresses

    def routes(self, ns: str) -> list[RouteInfo]:
        return self._routes

    def addresses(self, ns: str) -> list[tuple[str, str]]:
        return self._addresses


TWO_NETWORKS = RoutesOnly(
    [
        RouteInfo("default", dev="eth0", via="10.30.1.1"),
        RouteInfo("10.30.1.0/24", dev="eth0", scope="link", proto="kernel"),
        RouteInfo("10.30.2.0/24", dev="eth1", scope="link", proto="kernel"),
        RouteInfo("10.30.2.128/25", dev="eth2", metric=10),
        RouteInfo("10.30.2.128/25", dev="eth1", metric=5),
        RouteInfo("fd00:1::/64", dev="eth1", family=6, proto="kernel"),
    ],
    [
        ("eth0", "10.30.1.3/24"),
        ("eth1", "fe80::1/64"),
        ("eth1", "10.30.2.2/24"),
        ("eth1", "fd00:1::2/64"),
        ("eth2", "10.30.3.2/24"),
        ("lo", "127.0.0.1/8"),
    ],
)


@pytest.mark.parametrize(
    ("dst", "src"),
    [
        ("10.30.2.20", "10.30.2.2"),  # connected route beats the default
        ("10.30.1.9", "10.30.1.3"),
        ("198.18.0.1", "10.30.1.3"),  # default route
        ("10.30.2.200", "10.30.2.2"),  # longer prefix; lower metric wins the tie
        ("fd00:1::9", "fd00:1::2"),  # IPv6: never the link-local address
        ("fd00:2::9", None),  # no IPv6 route
        ("127.0.0.1", None),  # loopback: the kernel decides
        ("10.30.2.2", None),  # own address: local delivery
    ],
)
def test_source_address(dst: str, src: str | None) -> None:
    kernel: Any = TWO_NETWORKS
    assert source_address(kernel, "ns", dst) == src


def test_no_routes_no_source() -> None:
    kernel: Any = RoutesOnly([], [("lo", "127.0.0.1/8")])
    assert source_address(kernel, "ns", "10.0.0.1") is None
