"""Route lookup and source address selection in one namespace.

The FIB is the namespace's main table as the control plane keeps it
(connected routes included). Lookup: longest prefix, then lowest metric,
among routes whose device is up. O(routes) per lookup.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from netsim.kernel.fake.state import FakeLink, FakeNamespace, FakeRoute, IPAddr, IPIface


@dataclass(frozen=True)
class NextHop:
    """Where a packet goes: out of ``link``, to ``gateway`` (None = on-link)."""

    link: FakeLink
    gateway: IPAddr | None
    local: bool = False


def forwarding(ns: FakeNamespace, version: int) -> bool:
    key = "net.ipv4.ip_forward" if version == 4 else "net.ipv6.conf.all.forwarding"
    return ns.sysctls.get(key, "0").strip() == "1"


def addresses(ns: FakeNamespace, version: int) -> list[tuple[FakeLink, IPIface]]:
    return [
        (link, iface) for link in ns.links.values() if link.up for iface in link.addresses if iface.version == version
    ]


def is_local(ns: FakeNamespace, addr: IPAddr) -> bool:
    """Any address of any link that is up (Linux's weak host model); 127/8 on lo."""
    for link in ns.links.values():
        if not link.up:
            continue
        if link.kind == "loopback" and addr.version == 4 and addr in _LOOPBACK_NET:
            return True
        for iface in link.addresses:
            if iface.ip == addr:
                return True
    return False


_LOOPBACK_NET = ipaddress.ip_network("127.0.0.0/8")


def _candidates(ns: FakeNamespace, version: int) -> list[FakeRoute]:
    """The namespace's main table for one family (the control plane keeps the
    connected routes there, and drops a link's routes when it goes down)."""
    return [route for route in ns.routes if route.dst.version == version and route.scope != "host"]


def lookup(ns: FakeNamespace, dst: IPAddr, depth: int = 0) -> NextHop | None:
    """The next hop for ``dst``, or None (no route: ENETUNREACH)."""
    best: tuple[int, int] | None = None
    chosen: NextHop | None = None
    for route in _candidates(ns, dst.version):
        if dst not in route.dst:
            continue
        rank = (-route.dst.prefixlen, route.metric)
        if best is not None and rank >= best:
            continue
        hop = _resolve(ns, route.dev, route.via, depth)
        if hop is None:
            continue
        best, chosen = rank, hop
    return chosen


def _resolve(ns: FakeNamespace, dev: str | None, via: IPAddr | None, depth: int) -> NextHop | None:
    if dev is not None:
        link = ns.links.get(dev)
        if link is None or not link.up:
            return None
        return NextHop(link, via)
    if via is None or depth > 2:
        return None
    # a gateway given without a device: the device is the one that reaches it
    onward = lookup(ns, via, depth + 1)
    return None if onward is None else NextHop(onward.link, via)


def source_for(ns: FakeNamespace, link: FakeLink, version: int) -> IPAddr | None:
    """Linux's preferred source: the egress link's first address of that family
    (global before IPv6 link-local), else any address in the namespace."""
    own = [iface.ip for iface in link.addresses if iface.version == version]
    preferred = [ip for ip in own if not ip.is_link_local] or own
    if preferred:
        return preferred[0]
    others = [iface.ip for _, iface in addresses(ns, version) if not iface.ip.is_loopback]
    return others[0] if others else None


def route_to(ns: FakeNamespace, dst: IPAddr, local: bool | None = None) -> NextHop | None:
    """Like :func:`lookup`, but local destinations resolve to the loopback link
    (``local``: whether ``dst`` is local, when the caller knows already)."""
    if is_local(ns, dst) if local is None else local:
        loopback = next((link for link in ns.links.values() if link.kind == "loopback"), None)
        if loopback is None:
            return None
        return NextHop(loopback, None, local=True)
    return lookup(ns, dst)
