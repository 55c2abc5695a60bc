"""Addresses and routes of the fake kernel (the main routing table).

Errnos are the ones Linux 6.x answers (verified in throwaway namespaces):
duplicate address or route EEXIST, missing address EADDRNOTAVAIL, missing
route ESRCH, a gateway without a connected route ENETUNREACH (IPv4) or
EHOSTUNREACH (IPv6), a device that is down ENETDOWN, IPv6 on a device with
IPv6 disabled EACCES, deleting IPv6 from a device without IPv6 state (MTU
below 1280) ENXIO. A gateway that is an own address is looked up in the
local table first: IPv6 refuses it (EINVAL), IPv4 routes through the
address's link (ENETDOWN while it is down) and refuses a subnet broadcast
(EINVAL). Routes are unique per (family, destination, metric)
whatever their gateway, as in Linux's FIB. Costs: O(addresses of the link)
per address call, O(routes of the namespace) per route call.
"""

from __future__ import annotations

import errno
import functools
import ipaddress
import re
import socket
from typing import Literal

from netsim.errors import InvalidParameterError, kernel_error
from netsim.kernel.base import RouteInfo
from netsim.kernel.fake import l3sync
from netsim.kernel.fake.common import FakeBase
from netsim.kernel.fake.state import FakeLink, FakeNamespace, FakeRoute, IPAddr, IPIface, IPNet
from netsim.validate import parse_ip, parse_network

IPV6_STATIC_METRIC = 1024  # what Linux substitutes for metric 0 on IPv6 routes
SCOPE_ORDER = {"universe": 0, "link": 253, "host": 254}


_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_PLAIN_V4 = re.compile(rf"({_OCTET}(?:\.{_OCTET}){{3}})(?:/(3[0-2]|[12]?\d))?")


# Parsed addresses are immutable, and a host's calls name the same few addresses
# over and over: ipaddress's parser costs more than the rest of an endpoint
# setup, so results are memoized (bounded; refusals raise and are not kept).
PARSE_CACHE_SIZE = 4096


def fast_ip(text: str, *, what: str) -> IPAddr:
    """parse_ip, memoized for strings (see PARSE_CACHE_SIZE)."""
    if isinstance(text, str):
        return _cached_ip(text, what)
    return parse_ip(text, what=what)


@functools.lru_cache(maxsize=PARSE_CACHE_SIZE)
def _cached_ip(text: str, what: str) -> IPAddr:
    match = _PLAIN_V4.fullmatch(text)
    if match is not None and match[2] is None:
        return ipaddress.IPv4Address(int.from_bytes(socket.inet_aton(match[1]), "big"))
    return parse_ip(text, what=what)


#: ipaddress.ip_address for strings, memoized (the same ValueError on bad input)
cached_ip_address = functools.lru_cache(maxsize=PARSE_CACHE_SIZE)(ipaddress.ip_address)


def parse_cidr(cidr: str) -> IPIface:
    if not isinstance(cidr, str) or "/" not in cidr:
        raise InvalidParameterError(f"invalid address {cidr!r}: expected CIDR form such as 10.0.0.2/24")
    return _cached_cidr(cidr)


@functools.lru_cache(maxsize=PARSE_CACHE_SIZE)
def _cached_cidr(cidr: str) -> IPIface:
    match = _PLAIN_V4.fullmatch(cidr)
    if match is not None:
        return ipaddress.IPv4Interface((int.from_bytes(socket.inet_aton(match[1]), "big"), int(match[2])))
    try:
        return ipaddress.ip_interface(cidr)
    except ValueError as exc:
        raise InvalidParameterError(f"invalid address {cidr!r}: {exc}") from exc


DEFAULT_V4 = ipaddress.IPv4Network("0.0.0.0/0")
DEFAULT_V6 = ipaddress.IPv6Network("::/0")


def parse_route_dst(dst: str) -> IPNet:
    if dst == "default":
        return DEFAULT_V4
    if dst == "default6":
        return DEFAULT_V6
    return _cached_route_dst(dst) if isinstance(dst, str) else parse_network(dst, what="route destination")


@functools.lru_cache(maxsize=PARSE_CACHE_SIZE)
def _cached_route_dst(dst: str) -> IPNet:
    return parse_network(dst, what="route destination")


def _effective_metric(net: IPNet, metric: int) -> int:
    return IPV6_STATIC_METRIC if net.version == 6 and metric == 0 else metric


def _is_subnet_broadcast(link: FakeLink, own: IPIface, gw: IPAddr) -> bool:
    """Linux adds a broadcast route for a primary address's subnet below /31."""
    net = own.network
    return net.prefixlen < 31 and gw == net.broadcast_address and not l3sync.is_v4_secondary(link, own)


class Layer3Mixin(FakeBase):
    """Addresses and routes. See the module docstring."""

    # --- addresses ------------------------------------------------------------
    def add_address(self, ns: str, dev: str, cidr: str) -> None:
        addr = parse_cidr(cidr)
        space, link = self._link(ns, dev)
        if addr.version == 6:
            if not l3sync.has_ipv6_state(space, link):
                raise kernel_error(errno.EINVAL, f"{dev!r} has no IPv6 (MTU {link.mtu} < 1280)")
            if not l3sync.ipv6_enabled(space, link):
                raise kernel_error(errno.EACCES, f"IPv6 is disabled on {dev!r}")
            taken = any(a.version == 6 and a.ip == addr.ip for a in link.addresses)
        else:
            taken = addr in link.addresses  # IPv4 identity is address *and* prefix length
        if taken:
            raise kernel_error(errno.EEXIST, f"{cidr} exists on {dev!r}")
        link.addresses.append(addr)
        if addr.version == 4:
            self._local_tables.add(space.name)
        l3sync.sync_connected(space, link)

    def delete_address(self, ns: str, dev: str, cidr: str) -> None:
        addr = parse_cidr(cidr)
        space, link = self._link(ns, dev)
        if addr.version == 6 and not l3sync.has_ipv6_state(space, link):
            # Linux looks up the device's IPv6 state first; below MTU 1280 it is gone
            raise kernel_error(errno.ENXIO, f"{dev!r} has no IPv6 state (MTU {link.mtu} < 1280)")
        if addr not in link.addresses:
            raise kernel_error(errno.EADDRNOTAVAIL, f"{cidr} is not on {dev!r}")
        doomed = [addr]
        if addr.version == 4 and not l3sync.is_v4_secondary(link, addr):
            # without promote_secondaries, a primary takes its subnet's secondaries along
            doomed += [a for a in link.addresses if a.version == 4 and a.network == addr.network and a != addr]
        link.addresses = [a for a in link.addresses if a not in doomed]
        if addr.version == 4 and not any(a.version == 4 for a in link.addresses):
            l3sync.flush_routes(space, link.name, 4)  # IPv4 is off on a link without addresses
        l3sync.sync_connected(space, link)

    def addresses(self, ns: str) -> list[tuple[str, str]]:
        space = self._ns(ns)
        found = [(link.name, a.with_prefixlen) for link in space.links.values() for a in link.addresses]
        for link in space.links.values():
            if l3sync.shows_link_local(space, link):
                found.append((link.name, l3sync.link_local_text(link.mac)))
        return sorted(found)

    # --- routes -------------------------------------------------------------------
    def _gateway_dev(self, space: FakeNamespace, gw: IPAddr, dev: FakeLink | None, scope: str) -> str:
        """The device Linux resolves a gateway to, or the errno it refuses with.

        A gateway that is one of the namespace's own addresses is settled by
        the local table, which Linux consults first (:meth:`_local_gateway`).
        Otherwise IPv4 wants a link-scope route (connected or ``scope link``)
        covering the gateway; IPv6 wants a route without a gateway of its
        own, or a link-local gateway with an explicit device.
        """
        local = self._local_gateway(space, gw, dev, scope)
        if local is not None:
            return local
        if gw.version == 6 and gw.is_link_local:
            if dev is None:
                raise kernel_error(errno.EINVAL, f"link-local gateway {gw} needs a device")
            return dev.name
        best: FakeRoute | None = None
        for route in space.routes:
            if route.dst.version != gw.version or gw not in route.dst or route.dev is None:
                continue
            usable = route.scope in ("link", "host") if gw.version == 4 else route.via is None
            if not usable or (dev is not None and route.dev != dev.name):
                continue
            key = (route.dst.prefixlen, -route.metric)
            if best is None or key > (best.dst.prefixlen, -best.metric):
                best = route
        if best is None or best.dev is None:
            code = errno.ENETUNREACH if gw.version == 4 else errno.EHOSTUNREACH
            raise kernel_error(code, f"gateway {gw} is not reachable through a connected route")
        return best.dev

    @staticmethod
    def _local_gateway(space: FakeNamespace, gw: IPAddr, dev: FakeLink | None, scope: str) -> str | None:
        """The device of the local-table entry covering ``gw``, or None if none does.

        IPv6 refuses an own address as gateway (EINVAL): any address of the
        namespace, or for a link-local gateway one of ``dev``'s. IPv4 looks
        ``gw`` up in the local table restricted to ``dev`` if given: an own
        address (a prefix on ``lo``) yields its link, even a down one (its
        local route outlives the link's state), a subnet broadcast of an up
        link's primary address is refused (EINVAL; broadcast routes have link
        scope, so a ``scope link`` route does not see them). O(addresses).
        """
        if gw.version == 6:
            links = [dev] if gw.is_link_local and dev is not None else list(space.links.values())
            for link in links:
                view = l3sync.link_local_view(space, link)
                if any(own.ip == gw for own in link.addresses) or (view is not None and view.ip == gw):
                    raise kernel_error(errno.EINVAL, f"gateway {gw} is a local address")
            return None
        found: tuple[int, str] | None = None  # (prefix length, device): the longest match wins
        for link in [dev] if dev is not None else space.links.values():
            for own in link.addresses:
                if own.version != 4:
                    continue
                if scope != "link" and link.up and _is_subnet_broadcast(link, own, gw):
                    raise kernel_error(errno.EINVAL, f"gateway {gw} is a broadcast address")
                if own.ip == gw:
                    found = (32, link.name)
                elif link.kind == "loopback" and gw in own.network and (found or (-1, ""))[0] < own.network.prefixlen:
                    found = (own.network.prefixlen, link.name)  # lo's local routes cover whole prefixes
        return found[1] if found is not None else None

    def add_route(
        self,
        ns: str,
        dst: str,
        *,
        via: str | None = None,
        dev: str | None = None,
        metric: int = 0,
        scope: Literal["universe", "link"] | None = None,
    ) -> None:
        space = self._ns(ns)
        net, gw, link = self._route_args(space, dst, via, dev, metric)
        if scope is None:
            scope = "universe" if via is not None else "link"  # what `ip route add` picks
        if scope not in ("universe", "link"):
            raise InvalidParameterError(f"invalid route scope {scope!r}: expected universe or link")
        if gw is None and link is None:
            raise InvalidParameterError(f"route to {dst!r} needs a gateway or a device")
        # like fib_check_nh: the gateway is looked up before the device's state
        out = self._gateway_dev(space, gw, link, scope) if gw is not None else link.name if link is not None else None
        if out is not None and not space.links[out].up:
            raise kernel_error(errno.ENETDOWN, f"{out!r} is down")
        effective = _effective_metric(net, metric)
        for route in space.routes:
            if route.dst == net and route.metric == effective:
                raise kernel_error(errno.EEXIST, f"a route to {net} with metric {effective} exists")
        if net.version == 6:
            scope = "universe"  # IPv6 routes carry no scope
        space.routes.append(FakeRoute(net, out, gw, effective, scope, "static"))

    def _route_args(
        self, space: FakeNamespace, dst: str, via: str | None, dev: str | None, metric: int | None
    ) -> tuple[IPNet, IPAddr | None, FakeLink | None]:
        net = parse_route_dst(dst)
        gw = None
        if via is not None:
            gw = fast_ip(via, what="gateway")
            if gw.version != net.version:
                raise InvalidParameterError(f"gateway {via!r} is not of the same family as {dst!r}")
        if metric is not None and (not isinstance(metric, int) or isinstance(metric, bool) or not 0 <= metric < 2**32):
            raise InvalidParameterError(f"invalid metric {metric!r}: expected 0..2^32-1")
        link = self._link_in(space, dev) if dev is not None else None
        return net, gw, link

    def delete_route(
        self, ns: str, dst: str, *, via: str | None = None, dev: str | None = None, metric: int | None = None
    ) -> None:
        space = self._ns(ns)
        net, gw, link = self._route_args(space, dst, via, dev, metric)
        # like the FIB: the lowest metric matching wins; metric 0 means "any"
        candidates = sorted(
            (
                r
                for r in space.routes
                if r.dst == net
                and (gw is None or r.via == gw)
                and (link is None or r.dev == link.name)
                and (not metric or r.metric == metric)
            ),
            key=lambda r: r.metric,
        )
        if not candidates:
            # without an IPv6 default, the table root holds Linux's null entry (dev lo): a
            # delete that matches it fails in fib6_del with ENOENT, any other miss is ESRCH
            null_entry_matches = gw is None and not metric and (link is None or link.kind == "loopback")
            if net == DEFAULT_V6 and null_entry_matches and not any(r.dst == net for r in space.routes):
                raise kernel_error(errno.ENOENT, f"no IPv6 default route in namespace {ns!r}")
            raise kernel_error(errno.ESRCH, f"no route to {dst} matches")
        space.routes.remove(candidates[0])

    def routes(self, ns: str) -> list[RouteInfo]:
        space = self._ns(ns)
        found = [
            RouteInfo(
                dst="default" if r.dst.prefixlen == 0 else r.dst.with_prefixlen,
                dev=r.dev,
                via=str(r.via) if r.via is not None else None,
                metric=r.metric,
                scope=r.scope,  # type: ignore[arg-type]
                proto=r.proto,  # type: ignore[arg-type]
                family=r.dst.version,
            )
            for r in space.routes
        ]
        return sorted(found, key=lambda r: (r.family, r.dst, r.metric, str(r.dev), str(r.via)))
