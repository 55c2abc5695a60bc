"""How Linux's layer 3 follows link events, as plain functions over fake state.

Connected ("proto kernel") routes are derived from a link's addresses and
recomputed whenever they or the link's state change, instead of being
reference-counted: a link has a handful of addresses, so a recompute is
O(routes of the namespace) and cannot drift out of step.

Observed on Linux 6.x (see tests/linux/test_kernel_contract.py):

* IPv4: a primary address of an *up* link adds ``prefix dev scope link``
  (not for /32, not for secondaries, not on ``lo`` whose routes go to the
  local table). Admin down flushes every route through the link but keeps
  the addresses; deleting the link's last IPv4 address flushes its routes.
* IPv6: addresses are removed when the link goes down
  (``keep_addr_on_down=0``); an up link has a route per prefix (metric 256).
  A link below MTU 1280 has no IPv6 at all (``lo`` keeps its IPv6 state). Link-local addresses are not
  stored: :func:`link_local_view` derives them for the ``addresses`` view
  (see netsim.kernel.fake.modelling).
* ``lo`` gains 127.0.0.1/8 and ::1/128 when it goes up; ::1 leaves on down.
"""

from __future__ import annotations

import functools
import ipaddress

from netsim.kernel.fake.common import IPV4_MIN_MTU, IPV6_MIN_MTU, disable_ipv6_key
from netsim.kernel.fake.state import FakeLink, FakeNamespace, FakeRoute, IPIface

IPV6_KERNEL_METRIC = 256
LOOPBACK_V4 = ipaddress.IPv4Interface("127.0.0.1/8")
LOOPBACK_V6 = ipaddress.IPv6Interface("::1/128")
LINK_LOCAL_NET = ipaddress.IPv6Network("fe80::/64")
LINK_LOCAL_BASE = int(LINK_LOCAL_NET.network_address)


def ipv6_enabled(ns: FakeNamespace, link: FakeLink) -> bool:
    """IPv6 state present (see :func:`has_ipv6_state`) and not disabled by sysctl."""
    return ns.sysctls.get(disable_ipv6_key(link.name), "1") == "0"


def has_ipv6_state(ns: FakeNamespace, link: FakeLink) -> bool:
    """Whether Linux keeps IPv6 state (inet6_dev) for ``link``: the fake marks
    it by the presence of the link's disable_ipv6 sysctl, which goes with it.
    ``lo`` keeps its IPv6 state whatever its MTU (see :func:`mtu_changed`)."""
    return disable_ipv6_key(link.name) in ns.sysctls


@functools.lru_cache(maxsize=8192)
def link_local(mac: str) -> ipaddress.IPv6Interface:
    """The EUI-64 fe80:: address Linux derives from a MAC (addrgenmode eui64).

    >>> link_local("02:00:00:00:00:01")
    IPv6Interface('fe80::ff:fe00:1/64')
    """
    raw = int(mac.replace(":", ""), 16) ^ (0x02 << 40)  # flip the universal/local bit
    eui = ((raw >> 24) << 40) | (0xFFFE << 24) | (raw & 0xFFFFFF)
    return ipaddress.IPv6Interface((LINK_LOCAL_BASE | eui, 64))


@functools.lru_cache(maxsize=8192)
def link_local_text(mac: str) -> str:
    """``link_local(mac)`` as ``fe80::.../64``, written directly: hextets 1-3
    are zero (and 4 may be), 5 and 6 never are (``..ff:fe..``), so the
    compressed form is always ``fe80::`` and the last three or four hextets.
    Cached, though a miss costs little: a host with 20,000 links walks
    through more MACs than the cache holds.

    >>> link_local_text("02:00:00:00:00:01"), link_local_text("52:54:00:12:34:56")
    ('fe80::ff:fe00:1/64', 'fe80::5054:ff:fe12:3456/64')
    >>> all(link_local_text(m) == link_local(m).with_prefixlen for m in ("02:42:ac:11:00:02", "00:00:00:00:00:00"))
    True
    """
    raw = int(mac.replace(":", ""), 16) ^ (0x02 << 40)  # bytes b0..b5, universal/local bit flipped
    first = raw >> 32  # b0 b1
    tail = f"{((raw >> 16) & 0xFF00) | 0xFF:x}:{0xFE00 | ((raw >> 16) & 0xFF):x}:{raw & 0xFFFF:x}/64"
    return f"fe80::{first:x}:{tail}" if first else f"fe80::{tail}"


def link_local_view(ns: FakeNamespace, link: FakeLink) -> ipaddress.IPv6Interface | None:
    """The fe80:: address Linux would show on ``link``: once it has carrier,
    IPv6 enabled, and no link-local address of its own."""
    return link_local(link.mac) if shows_link_local(ns, link) else None


def shows_link_local(ns: FakeNamespace, link: FakeLink) -> bool:
    """Whether :func:`link_local_view` has an address for ``link`` (without building it)."""
    if link.kind == "loopback" or not link.oper_up or not ipv6_enabled(ns, link):
        return False
    return not any(a.version == 6 and a.ip.is_link_local for a in link.addresses)


def is_v4_secondary(link: FakeLink, addr: IPIface) -> bool:
    """True when an earlier IPv4 address of the link has the same subnet."""
    for other in link.addresses:
        if other == addr:  # IPv4 addresses are unique per link by (ip, prefix)
            return False
        if other.version == 4 and other.network == addr.network:
            return True
    return False


def connected_routes(link: FakeLink) -> list[FakeRoute]:
    """The kernel routes an up link's addresses give (see module docstring).

    O(addresses^2) in the worst case, O(1) for the usual one or two addresses.
    """
    found: list[FakeRoute] = []
    addresses = link.addresses
    for index, addr in enumerate(addresses):
        net = addr.network
        if addr.version == 4:
            if link.kind == "loopback" or net.prefixlen == 32:
                continue
            route = FakeRoute(net, link.name, None, 0, "link", "kernel")
        else:
            # fe80::/64 routes are left out (see netsim.kernel.fake.modelling): one
            # per up link would make every route update O(links) in a host namespace
            # ::1 is the one /128 without a route of its own (Linux 6.x lists every other)
            if addr == LOOPBACK_V6 or int(net.network_address) == LINK_LOCAL_BASE:
                continue
            route = FakeRoute(net, link.name, None, IPV6_KERNEL_METRIC, "universe", "kernel")
        # a secondary (or a second address in the same prefix) adds no route
        if index == 0 or not any(o.network == net for o in addresses[:index] if o.version == addr.version):
            found.append(route)
    return found


def sync_connected(ns: FakeNamespace, link: FakeLink) -> None:
    """Recompute ``link``'s kernel routes: O(routes of ns)."""
    name = link.name
    current = [r for r in ns.routes if r.dev == name and r.proto == "kernel"]
    wanted = connected_routes(link) if link.up and link.addresses else []
    if current == wanted:
        return  # the common case (a link without addresses going up) rebuilds nothing
    kept = [r for r in ns.routes if not (r.dev == name and r.proto == "kernel")]
    kept.extend(wanted)
    ns.routes = kept


def flush_routes(ns: FakeNamespace, dev: str, version: int | None = None) -> None:
    for route in ns.routes:  # a plain loop: any(generator) costs twice as much per route
        if route.dev == dev:
            ns.routes = [r for r in ns.routes if not (r.dev == dev and (version is None or r.dst.version == version))]
            return


def flush_neighbours(ns: FakeNamespace, dev: str) -> None:
    if ns.neighbours and any(n.dev == dev for n in ns.neighbours.values()):
        ns.neighbours = {key: n for key, n in ns.neighbours.items() if n.dev != dev}


def drop_ipv6(ns: FakeNamespace, link: FakeLink) -> None:
    link.addresses = [a for a in link.addresses if a.version == 4]
    flush_routes(ns, link.name, 6)


def link_down(ns: FakeNamespace, link: FakeLink) -> None:
    drop_ipv6(ns, link)
    flush_routes(ns, link.name)
    flush_neighbours(ns, link.name)


def link_up(ns: FakeNamespace, link: FakeLink) -> None:
    if link.kind == "loopback":
        if link.mtu >= IPV4_MIN_MTU and LOOPBACK_V4 not in link.addresses:
            link.addresses.insert(0, LOOPBACK_V4)
        # ::1 only comes with an up at MTU 1280 or more
        if link.mtu >= IPV6_MIN_MTU and ipv6_enabled(ns, link) and LOOPBACK_V6 not in link.addresses:
            link.addresses.append(LOOPBACK_V6)
    sync_connected(ns, link)


def forget_link(ns: FakeNamespace, link: FakeLink) -> None:
    """What a namespace drops when a link leaves it (deleted or moved away)."""
    flush_routes(ns, link.name)
    flush_neighbours(ns, link.name)
    ns.sysctls.pop(disable_ipv6_key(link.name), None)


def arrive_link(ns: FakeNamespace, link: FakeLink) -> None:
    """A link appearing in ``ns`` (created or moved in): down, no addresses."""
    link.up = False
    link.addresses = []
    if link.mtu >= IPV6_MIN_MTU:
        ns.sysctls[disable_ipv6_key(link.name)] = ns.sysctls.get("net.ipv6.conf.default.disable_ipv6", "0")


def rename_refs(ns: FakeNamespace, old: str, new: str) -> None:
    """Routes, neighbours and per-device sysctls name the device: follow it."""
    ns.routes = [FakeRoute(r.dst, new, r.via, r.metric, r.scope, r.proto) if r.dev == old else r for r in ns.routes]
    moved = {}
    for key, neighbour in list(ns.neighbours.items()):
        if neighbour.dev == old:
            del ns.neighbours[key]
            neighbour.dev = new
            moved[(new, key[1])] = neighbour
    ns.neighbours.update(moved)
    value = ns.sysctls.pop(disable_ipv6_key(old), None)
    if value is not None:
        ns.sysctls[disable_ipv6_key(new)] = value


def mtu_changed(ns: FakeNamespace, link: FakeLink, old_mtu: int) -> None:
    """Crossing 1280 destroys or recreates the device's IPv6 state (and 68 its IPv4).

    ``lo`` keeps its IPv6 state and only loses its addresses going below 1280
    (new ones may be added there); going back up does not bring ::1 back
    until its next up, as on Linux.
    """
    if link.kind == "loopback":
        if link.mtu < IPV6_MIN_MTU <= old_mtu:
            drop_ipv6(ns, link)
    elif link.mtu < IPV6_MIN_MTU <= old_mtu:
        drop_ipv6(ns, link)
        ns.sysctls.pop(disable_ipv6_key(link.name), None)
    elif old_mtu < IPV6_MIN_MTU <= link.mtu:
        ns.sysctls[disable_ipv6_key(link.name)] = "0"
        if link.up:
            link_up(ns, link)
    if link.mtu < IPV4_MIN_MTU <= old_mtu:
        link.addresses = [a for a in link.addresses if a.version == 6]
        flush_routes(ns, link.name, 4)
