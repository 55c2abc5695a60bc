"""Which address a probe leaves from: a route lookup through the Kernel contract.

The runner names the source address of every probe itself instead of
leaving it to the kernel, so both kernels send exactly the same packet (and
a socket reused inside a kernel cannot carry a stale source address over from
an earlier probe). The rule is Linux's for the main table: the longest
matching prefix (lowest metric on a tie) gives the device, and the device's
first global address of the destination's family is the source.
"""

from __future__ import annotations

import ipaddress

from netsim.kernel.base import Kernel

_ANY = {4: ipaddress.ip_network("0.0.0.0/0"), 6: ipaddress.ip_network("::/0")}


def source_address(kernel: Kernel, ns: str, dst: str) -> str | None:
    """The source for a packet from ``ns`` to ``dst``; None leaves the choice to
    the kernel (a local or loopback destination, no route, no address).

    O(routes + addresses) per call: a namespace holds a handful of each.
    """
    target = ipaddress.ip_address(dst)
    own = [(dev, ipaddress.ip_interface(cidr)) for dev, cidr in kernel.addresses(ns)]
    if target.is_loopback or any(iface.ip == target for _, iface in own):
        return None
    best: tuple[int, int, str] | None = None  # (-prefixlen, metric, dev): smallest wins
    for route in kernel.routes(ns):
        if route.family != target.version or route.dev is None:
            continue
        net = _ANY[target.version] if route.dst.startswith("default") else ipaddress.ip_network(route.dst, strict=False)
        if target in net:
            candidate = (-net.prefixlen, route.metric, route.dev)
            best = candidate if best is None or candidate < best else best
    if best is None:
        return None
    for dev, iface in own:
        if dev == best[2] and iface.version == target.version and not iface.ip.is_link_local:
            return str(iface.ip)
    return None
