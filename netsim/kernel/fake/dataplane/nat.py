"""NAT with connection tracking, in Linux's hook order.

Destinations are rewritten before routing (prerouting for arriving packets,
output for local ones), sources after it (postrouting), in both directions
of a flow. The first packet of a flow runs the rules (Dnat first, Masquerade
after routing) and, if anything was translated, leaves a ConntrackEntry;
later packets and replies follow the entry, and ICMP errors about a tracked
flow are translated back with it. Flows nothing translated are not stored:
they would only ever map to themselves. Lookups are O(entries).
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from scapy.layers.inet import IP
from scapy.packet import Packet

from netsim.kernel.base import Dnat, DnatExempt, Masquerade
from netsim.kernel.fake.dataplane import routing
from netsim.kernel.fake.dataplane.packets import embedded, flow_key, rewrite
from netsim.kernel.fake.state import ConntrackEntry

if TYPE_CHECKING:
    from netsim.kernel.fake.dataplane.walk import Walk
    from netsim.kernel.fake.state import FakeLink, FakeNamespace

Endpoint = tuple[str, int]


def _has_nat(ns: FakeNamespace) -> bool:
    return bool(ns.conntrack) or any(isinstance(rule, Dnat | Masquerade) for rule in ns.rules)


def destination_hook(walk: Walk, ns: FakeNamespace, in_link: FakeLink | None, ip: Packet) -> None:
    """Prerouting (``in_link`` set) or output (``in_link`` None): rewrite the destination."""
    if not _has_nat(ns):
        return
    if _translate_error(walk, ns, ip):
        return
    key = flow_key(ip)
    if key is None:
        return
    proto, src, dst = key
    if proto == "tcp" and _is_syn(ip):
        _forget_flow(ns, src, dst)
    for entry in ns.conntrack:
        if entry.proto != proto:
            continue
        if src == entry.orig_src and dst == entry.orig_dst:
            if entry.reply_src != entry.orig_dst:
                _rewrite(walk, ns, in_link, ip, "dnat", dst=entry.reply_src)
            return
        if src == entry.reply_src and dst == entry.reply_dst:
            if entry.orig_src != entry.reply_dst:
                _rewrite(walk, ns, in_link, ip, "un-snat", dst=entry.orig_src)
            return
    for rule in ns.rules:
        if isinstance(rule, Dnat) and _dnat_matches(ns, rule, proto, dst, in_link):
            if in_link is not None and in_link.name in ns.dnat_exempt:
                # Docker <= 28's `-i BRIDGE -j RETURN` ahead of its DNATs: the host answers
                walk.hop(ns, in_link, "nat", f"not translated: {DnatExempt(in_link.name)} precedes {rule}", ip)
                return
            target = (rule.to_addr, rule.to_port)
            entry = ConntrackEntry(proto, src, dst, reply_src=target, reply_dst=src)
            _supersede(ns, entry)
            ns.conntrack.append(entry)
            walk.fresh.add(id(entry))
            _rewrite(walk, ns, in_link, ip, "dnat", dst=target, why=f" by {rule}")
            return


def _is_syn(ip: Packet) -> bool:
    flags = int(ip.payload.flags) if ip.payload is not None and hasattr(ip.payload, "flags") else 0
    return bool(flags & 0x02) and not flags & 0x10


def _forget_flow(ns: FakeNamespace, src: Endpoint, dst: Endpoint) -> None:
    """A bare SYN opens a new connection: Linux's TCP conntrack drops an entry
    whose connection was closed (RST/FIN) and runs the NAT rules afresh, so a
    rule deleted since the last connection no longer applies. The fake keeps no
    TCP state, so any earlier entry for the same tuple is treated as closed."""
    ns.conntrack[:] = [
        entry
        for entry in ns.conntrack
        if not (entry.proto == "tcp" and entry.orig_src == src and entry.orig_dst == dst)
    ]


def _supersede(ns: FakeNamespace, entry: ConntrackEntry) -> None:
    """Drop the older entries whose reply tuple ``entry`` takes. Two probes from one
    source port to two addresses DNATed to the same target (a published port
    reached at two host addresses) would otherwise leave two entries the
    target's replies both match, and the first would un-NAT them with the
    wrong address. Linux keeps reply tuples unique by giving the newer flow
    another source port; the fake keeps no connection state and its probes'
    flows are over once answered, so the older entry goes, as in _forget_flow."""
    reply = (entry.proto, entry.reply_src, entry.reply_dst)
    ns.conntrack[:] = [old for old in ns.conntrack if (old.proto, old.reply_src, old.reply_dst) != reply]


def _dnat_matches(ns: FakeNamespace, rule: Dnat, proto: str, dst: Endpoint, in_link: FakeLink | None) -> bool:
    if rule.proto != proto or rule.dport != dst[1]:
        return False
    if in_link is not None and rule.not_in_iface is not None and rule.not_in_iface == in_link.name:
        return False
    address = ipaddress.ip_address(dst[0])
    if ipaddress.ip_address(rule.to_addr).version != address.version:
        return False  # an nft rule is of one family (ip or ip6): it never rewrites the other's packets
    if rule.dst is None:
        # Docker: -m addrtype --dst-type LOCAL, never loopback
        return not address.is_loopback and routing.is_local(ns, address)
    return address == ipaddress.ip_address(rule.dst)


def source_hook(walk: Walk, ns: FakeNamespace, out_link: FakeLink, ip: Packet, *, new_flows: bool = True) -> bool:
    """Postrouting (and, with ``new_flows=False``, local input): rewrite the
    source. False when the packet must be dropped (masquerade with no address
    on the egress link)."""
    if not _has_nat(ns):
        return True
    key = flow_key(ip)
    if key is None:
        return True
    proto, src, dst = key
    fresh = None
    for entry in ns.conntrack:
        if entry.proto != proto:
            continue
        if src == entry.orig_src and dst == entry.reply_src:
            if id(entry) in walk.fresh:
                fresh = entry
                break
            if entry.reply_dst != entry.orig_src:
                _rewrite(walk, ns, out_link, ip, "snat", src=entry.reply_dst)
            return True
        if src == entry.reply_src and dst == entry.orig_src:
            if entry.orig_dst != entry.reply_src:
                _rewrite(walk, ns, out_link, ip, "un-dnat", src=entry.orig_dst)
            return True
    for rule in ns.rules if new_flows else ():
        if not isinstance(rule, Masquerade) or not _masquerade_matches(rule, src[0], out_link):
            continue
        version = ipaddress.ip_address(src[0]).version
        # the egress link's first address; for IPv6 a global one before link-local
        own = sorted(
            (iface.ip for iface in out_link.addresses if iface.version == version),
            key=lambda address: address.is_link_local,
        )
        if not own:
            walk.hop(ns, out_link, "drop", f"masquerade: {out_link.name} has no IPv{version} address", ip)
            return False
        new_src = _unique_source(ns, proto, (str(own[0]), src[1]), dst)
        if fresh is None:
            fresh = ConntrackEntry(proto, src, dst, reply_src=dst, reply_dst=new_src)
            ns.conntrack.append(fresh)
        else:
            fresh.reply_dst = new_src
        _rewrite(walk, ns, out_link, ip, "snat", src=new_src, why=f" by {rule}")
        break
    if fresh is not None:
        walk.fresh.discard(id(fresh))
    return True


def _unique_source(ns: FakeNamespace, proto: str, wanted: Endpoint, dst: Endpoint) -> Endpoint:
    """Linux keeps translated tuples unique: when another flow already owns
    ``wanted -> dst``, the next free port (or echo id) is taken instead."""
    taken = {entry.reply_dst for entry in ns.conntrack if entry.proto == proto and entry.reply_src == dst}
    address, port = wanted
    low = 1024 if proto in ("tcp", "udp") and port >= 1024 else 1
    for step in range(65536):
        candidate = (address, low + (port - low + step) % (65536 - low))
        if candidate not in taken:
            return candidate
    return wanted


def _masquerade_matches(rule: Masquerade, src: str, out_link: FakeLink) -> bool:
    if rule.out_iface is not None and rule.out_iface != out_link.name:
        return False
    if rule.not_out_iface is not None and rule.not_out_iface == out_link.name:
        return False
    try:
        return ipaddress.ip_address(src) in ipaddress.ip_network(rule.src, strict=False)
    except ValueError:
        return False


def _rewrite(
    walk: Walk,
    ns: FakeNamespace,
    link: FakeLink | None,
    ip: Packet,
    action: str,
    *,
    src: Endpoint | None = None,
    dst: Endpoint | None = None,
    why: str = "",
) -> None:
    before = walk.summary(ip)
    rewrite(ip, src=src, dst=dst)
    walk.changed(ip)
    walk.hop(ns, link, action, f"{before} rewritten{why}", ip)


def _translate_error(walk: Walk, ns: FakeNamespace, ip: Packet) -> bool:
    """An ICMP error about a tracked flow: put back what NAT changed, in the
    quoted header and in the outer destination (and source, when the error
    comes from the DNAT target itself). True if it was such an error."""
    quoted = embedded(ip)
    if quoted is None:
        return False
    inner = _quoted_key(quoted)
    if inner is None:
        return True
    proto, src, dst = inner
    for entry in ns.conntrack:
        if entry.proto == proto and src == entry.reply_dst and dst == entry.reply_src:
            _set_quoted(quoted, entry.orig_src, entry.orig_dst)
            outer_src = entry.orig_dst[0] if ip.src == entry.reply_src[0] else None
            ip.dst = entry.orig_src[0]
            if outer_src is not None:
                ip.src = outer_src
            if isinstance(ip, IP):
                ip.chksum = None
            ip.payload.chksum = None
            walk.changed(ip)
            walk.hop(ns, None, "un-nat", "ICMP error about a tracked flow translated back", ip)
            return True
    return True


def _quoted_key(quoted: Packet) -> tuple[str, Endpoint, Endpoint] | None:
    l4 = quoted.payload
    name = type(l4).__name__
    if name in ("TCPerror", "UDPerror"):
        proto = "tcp" if name == "TCPerror" else "udp"
        return proto, (quoted.src, int(l4.sport)), (quoted.dst, int(l4.dport))
    if name in ("ICMPerror", "ICMPv6EchoRequest") and hasattr(l4, "id"):
        return "icmp", (quoted.src, int(l4.id)), (quoted.dst, 0)  # errors quote requests only
    return None


def _set_quoted(quoted: Packet, src: Endpoint, dst: Endpoint) -> None:
    quoted.src, quoted.dst = src[0], dst[0]
    l4 = quoted.payload
    if type(l4).__name__ in ("TCPerror", "UDPerror"):
        l4.sport, l4.dport = src[1], dst[1]
    elif hasattr(l4, "id"):
        l4.id = src[1]
