"""Filter rules (``netsim.kernel.base.Filter``): first match wins, default accept.

``layer="ip"`` rules judge routed packets in the forward hook by ingress and
egress link names and addresses, after the isolation groups (``Isolated``
memberships: routed from one member out of another is dropped). ``layer="bridge"`` rules judge frames
bridged between two ports; their ``in_iface``/``out_iface`` name the bridge.
A rule that names addresses matches IP packets only (like ``ip saddr`` in
nftables, which never matches ARP).
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from scapy.layers.inet import IP
from scapy.layers.inet6 import IPv6
from scapy.packet import Packet

from netsim.kernel.base import Filter, Isolated

if TYPE_CHECKING:
    from netsim.kernel.fake.state import FakeNamespace


def _addr_matches(network: str | None, addr: str) -> bool:
    if network is None:
        return True
    try:
        return ipaddress.ip_address(addr) in ipaddress.ip_network(network, strict=False)
    except (ValueError, TypeError):
        return False


def _ip_matches(rule: Filter, ip: Packet | None) -> bool:
    if rule.src is None and rule.dst is None:
        return True
    if ip is None:
        return False
    return _addr_matches(rule.src, ip.src) and _addr_matches(rule.dst, ip.dst)


def isolation_verdict(ns: FakeNamespace, in_iface: str, out_iface: str) -> Isolated | None:
    """The membership that drops a packet routed between two members of one
    isolation group (O(groups), not O(members)); None when none does."""
    if in_iface == out_iface:
        return None
    for group, members in ns.isolation.items():
        if in_iface in members and out_iface in members:
            return Isolated(in_iface, group)
    return None


def forward_verdict(ns: FakeNamespace, in_iface: str, out_iface: str, ip: Packet) -> Filter | Isolated | None:
    """The rule that drops a routed packet: an isolation group's first, then
    the first ip-layer Filter matching it, when it drops; else None."""
    if ns.isolation:
        isolated = isolation_verdict(ns, in_iface, out_iface)
        if isolated is not None:
            return isolated
    for rule in ns.rules:
        if not isinstance(rule, Filter) or rule.layer != "ip":
            continue
        if rule.in_iface is not None and rule.in_iface != in_iface:
            continue
        if rule.out_iface is not None and rule.out_iface != out_iface:
            continue
        if not _ip_matches(rule, ip):
            continue
        return rule if rule.action == "drop" else None
    return None


def has_bridge_rules(ns: FakeNamespace) -> bool:
    """O(1): a count kept by add_rule/delete_rule, not a scan of every rule per frame."""
    return ns.bridge_filters > 0


def bridge_verdict(ns: FakeNamespace, bridge_name: str, frame: Packet) -> Filter | None:
    """The first bridge-layer rule matching a frame bridged port to port, when it drops."""
    ip = frame.payload if isinstance(frame.payload, IP | IPv6) else None
    for rule in ns.rules:
        if not isinstance(rule, Filter) or rule.layer != "bridge":
            continue
        if rule.in_iface is not None and rule.in_iface != bridge_name:
            continue
        if rule.out_iface is not None and rule.out_iface != bridge_name:
            continue
        if not _ip_matches(rule, ip):
            continue
        return rule if rule.action == "drop" else None
    return None
