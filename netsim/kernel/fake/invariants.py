"""Consistency checks and a full dump of the fake kernel's state, for tests.

:func:`check_kernel` asserts every relation the control plane maintains
(names, peers, masters, parents, the kernel's indexes, connected routes,
per-device sysctls). :func:`dump_world` renders *everything*, ifindexes and
random MACs included, so a test can prove a refused call changed nothing at
all, which is stricter than comparing normalized snapshots. Both are O(state).
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from netsim.kernel.base import DnatExempt, Filter, Isolated
from netsim.kernel.fake import l3sync
from netsim.kernel.fake.common import DEFAULT_MTU, IPV6_MIN_MTU, disable_ipv6_key
from netsim.kernel.fake.state import FakeLink, FakeWorld

if TYPE_CHECKING:
    from netsim.kernel.fake.kernel import FakeKernel


def _ref(link: FakeLink | None) -> tuple[str, str] | None:
    return None if link is None else (link.ns.name, link.name)


def dump_world(world: FakeWorld) -> dict[str, Any]:
    """Every field of every object, as plain comparable values."""
    out: dict[str, Any] = {"next_ifindex": world.next_ifindex, "explicit_macs": dict(world.explicit_macs)}
    for name, space in sorted(world.namespaces.items()):
        out[name] = {
            "links": {
                link.name: (
                    link.kind,
                    link.ifindex,
                    link.mac,
                    link.up,
                    link.mtu,
                    _ref(link.master),
                    _ref(link.peer),
                    _ref(link.parent),
                    sorted(link.attrs.items()),
                    [a.with_prefixlen for a in link.addresses],
                    sorted((str(k), e.mac, _ref(e.port), str(e.dst), e.permanent) for k, e in link.fdb.items()),
                )
                for link in space.links.values()
            },
            "routes": [(str(r.dst), r.dev, str(r.via), r.metric, r.scope, r.proto) for r in space.routes],
            "neighbours": sorted((n.dev, str(n.ip), str(n.mac), n.permanent) for n in space.neighbours.values()),
            "sysctls": dict(space.sysctls),
            "rules": list(space.rules),
            "listeners": list(space.listeners),
        }
    return out


def check_kernel(kernel: FakeKernel) -> None:
    """Raise AssertionError naming the first broken invariant."""
    world = kernel.world
    ifindexes: Counter[int] = Counter()
    for name, space in world.namespaces.items():
        assert space.name == name, f"namespace keyed {name!r} is named {space.name!r}"
        assert "lo" in space.links or any(link.kind == "loopback" for link in space.links.values()), name
        for link_name, link in space.links.items():
            where = f"{name}/{link_name}"
            assert link.name == link_name and link.ns is space, f"{where}: name or namespace out of step"
            if link.kind != "loopback":
                ifindexes[link.ifindex] += 1
            _check_relations(kernel, link, where)
            has_v6 = disable_ipv6_key(link.name) in space.sysctls
            wants_v6 = link.kind == "loopback" or link.mtu >= IPV6_MIN_MTU  # lo keeps IPv6 state at any MTU
            assert has_v6 == wants_v6, f"{where}: disable_ipv6 key vs MTU {link.mtu}"
            kernel_routes = [r for r in space.routes if r.proto == "kernel" and r.dev == link.name]
            expected = l3sync.connected_routes(link) if link.up else []
            # a subset: connected routes may have been deleted by hand, as on Linux
            extra = Counter(kernel_routes) - Counter(expected)
            assert not extra, f"{where}: connected routes without an address: {list(extra)}"
        for route in space.routes:
            assert route.dev is None or route.dev in space.links, f"{name}: route via missing {route.dev!r}"
        for key, neighbour in space.neighbours.items():
            assert key == (neighbour.dev, neighbour.ip) and neighbour.dev in space.links, f"{name}: {key}"
        assert len(set(space.listeners)) == len(space.listeners), f"{name}: duplicate listener"
        groups: dict[str, set[str]] = {}
        for rule in space.rules:
            if isinstance(rule, Isolated):
                groups.setdefault(rule.group, set()).add(rule.iface)
        assert space.isolation == groups, f"{name}: isolation index {space.isolation} vs rules {groups}"
        exempt = {r.in_iface for r in space.rules if isinstance(r, DnatExempt)}
        assert space.dnat_exempt == exempt, f"{name}: DNAT exemptions {space.dnat_exempt} vs rules {exempt}"
        bridge_filters = sum(isinstance(r, Filter) and r.layer == "bridge" for r in space.rules)
        assert space.bridge_filters == bridge_filters, f"{name}: bridge filter count {space.bridge_filters}"
    duplicated = [index for index, count in ifindexes.items() if count > 1]
    assert not duplicated, f"ifindexes used twice: {duplicated}"
    for ns, link_name in world.explicit_macs:
        assert link_name in world.namespaces[ns].links, f"explicit MAC for missing {ns}/{link_name}"
    _check_indexes(kernel)


def _alive(kernel: FakeKernel, link: FakeLink) -> bool:
    space = kernel.world.namespaces.get(link.ns.name)
    return space is link.ns and space.links.get(link.name) is link


def _check_relations(kernel: FakeKernel, link: FakeLink, where: str) -> None:
    if link.kind == "veth":
        assert link.peer is not None and link.peer.peer is link, f"{where}: veth peer not mutual"
        assert _alive(kernel, link.peer), f"{where}: veth peer is gone"
    else:
        assert link.peer is None, f"{where}: only veths have peers"
    if link.master is not None:
        bridge = link.master
        assert bridge.kind == "bridge" and bridge.ns is link.ns, f"{where}: master is not a bridge here"
        assert link in kernel._ports[bridge], f"{where}: missing from its bridge's port index"
    if link.parent is not None:
        assert _alive(kernel, link.parent), f"{where}: parent is gone"
        assert link in kernel._uppers.get(link.parent, []), f"{where}: missing from its parent's upper index"


def _check_indexes(kernel: FakeKernel) -> None:
    for bridge, ports in kernel._ports.items():
        assert _alive(kernel, bridge), f"port index for deleted bridge {bridge.name!r}"
        ports._check()
        assert all(port.master is bridge for port in ports.members()), f"{bridge.name}: stale port"
        if bridge not in kernel._mtu_pinned:
            assert bridge.mtu == (ports.min_mtu() or DEFAULT_MTU), f"{bridge.name}: MTU not following ports"
    for lower, uppers in kernel._uppers.items():
        assert _alive(kernel, lower), f"upper index for deleted {lower.name!r}"
        assert all(upper.parent is lower and _alive(kernel, upper) for upper in uppers), f"{lower.name}: stale upper"
