"""The Kernel contract, example by example, on the fake AND the real kernel.

Every test runs once per kernel (the ``kernel`` fixture) with the same
assertions: equal snapshots and equal error kinds (errno included) are what
"the fake behaves like Linux" means. Refused calls must change nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest

from netsim.errors import InvalidParameterError, NetsimError, error_kind
from netsim.kernel.base import Dnat, Filter, Kernel, Listener, Masquerade, Rule


def refused(kernel: Kernel, call: Callable[[], Any], kind: str) -> None:
    """``call`` fails with ``kind`` and leaves the snapshot as it was."""
    before = kernel.snapshot()
    with pytest.raises(NetsimError) as caught:
        call()
    assert error_kind(caught.value) == kind, caught.value
    assert kernel.snapshot() == before


def links_after_teardown(kernel: Kernel, ns: str) -> list[str]:
    """Link names of ``ns`` once a namespace deletion elsewhere has settled.

    Linux destroys a namespace's devices in a workqueue (cleanup_net), so a
    veth whose peer was in the deleted namespace lingers, peerless, for some
    milliseconds; the fake is synchronous. Waits (at most 3 s) for that.
    """
    deadline = time.monotonic() + 3.0
    links = kernel.links(ns)
    while any(link.kind == "veth" and link.peer is None for link in links) and time.monotonic() < deadline:
        time.sleep(0.01)
        links = kernel.links(ns)
    return [link.name for link in links]


def host(kernel: Kernel, role: str = "h1") -> str:
    ns = kernel.ns(role)
    kernel.add_namespace(ns)
    return ns


def v4_routes(kernel: Kernel, ns: str) -> list[tuple[str, str | None, str | None, int, str, str]]:
    return [(r.dst, r.dev, r.via, r.metric, r.scope, r.proto) for r in kernel.routes(ns) if r.family == 4]


def v6_routes(kernel: Kernel, ns: str) -> list[tuple[str, str | None, str | None, int, str]]:
    return [
        (r.dst, r.dev, r.via, r.metric, r.proto)
        for r in kernel.routes(ns)
        if r.family == 6 and not r.dst.startswith("fe80")
    ]


def global_addresses(kernel: Kernel, ns: str) -> list[tuple[str, str]]:
    return [(d, c) for d, c in kernel.addresses(ns) if not c.startswith("fe80")]


# --- namespaces -----------------------------------------------------------------------
def test_new_namespace_has_lo_down_without_addresses(kernel: Kernel) -> None:
    ns = host(kernel)
    [lo] = kernel.links(ns)
    assert (lo.name, lo.kind, lo.up, lo.mtu) == ("lo", "loopback", False, 65536)
    assert kernel.addresses(ns) == []
    assert kernel.routes(ns) == []
    assert kernel.namespaces() == [ns]


def test_lo_up_gains_loopback_addresses_and_keeps_ipv4_on_down(kernel: Kernel) -> None:
    ns = host(kernel)
    kernel.set_link_up(ns, "lo")
    assert kernel.addresses(ns) == [("lo", "127.0.0.1/8"), ("lo", "::1/128")]
    assert kernel.routes(ns) == []  # loopback routes live in the local table
    kernel.set_link_up(ns, "lo", False)
    assert kernel.addresses(ns) == [("lo", "127.0.0.1/8")]


def test_namespace_errors(kernel: Kernel) -> None:
    ns = host(kernel)
    refused(kernel, lambda: kernel.add_namespace(ns), "kernel-exists:EEXIST")
    refused(kernel, lambda: kernel.delete_namespace(kernel.ns("missing")), "kernel-not-found:ENOENT")
    refused(kernel, lambda: kernel.add_bridge(kernel.ns("missing"), "br0"), "kernel-not-found:ENOENT")
    with pytest.raises(InvalidParameterError):
        kernel.add_namespace("not-netsim-prefixed")
    assert kernel.namespaces() == [ns]


def test_close_removes_everything_and_is_idempotent(kernel: Kernel) -> None:
    a, b = host(kernel, "a"), host(kernel, "b")
    kernel.add_veth(a, "x", "y", b)
    kernel.close()
    kernel.close()
    assert kernel.namespaces() == []


# --- links ----------------------------------------------------------------------------
def test_veth_pair_across_namespaces(kernel: Kernel) -> None:
    a, b = host(kernel, "a"), host(kernel, "b")
    kernel.add_veth(a, "v0", "v1", b)
    left, right = kernel.link(a, "v0"), kernel.link(b, "v1")
    assert (left.kind, left.up, left.mtu, left.peer) == ("veth", False, 1500, (b, "v1"))
    assert right.peer == (a, "v0")
    assert left.mac != right.mac and int(left.mac[:2], 16) & 0x02  # random, locally administered


def test_link_name_rules(kernel: Kernel) -> None:
    ns = host(kernel)
    kernel.add_bridge(ns, "br0")
    refused(kernel, lambda: kernel.add_bridge(ns, "br0"), "kernel-exists:EEXIST")
    refused(kernel, lambda: kernel.add_veth(ns, "x" * 16, "y"), "kernel-invalid:EINVAL")
    refused(kernel, lambda: kernel.add_veth(ns, "a/b", "y"), "kernel-invalid:EINVAL")
    refused(kernel, lambda: kernel.add_veth(ns, "a b", "y"), "kernel-invalid:EINVAL")
    refused(kernel, lambda: kernel.add_veth(ns, "v0", "br0"), "kernel-exists:EEXIST")
    kernel.add_bridge(ns, "x" * 15)  # 15 bytes is the limit, inclusive
    assert kernel.link(ns, "x" * 15).kind == "bridge"


def test_missing_links_are_enodev(kernel: Kernel) -> None:
    ns = host(kernel)
    refused(kernel, lambda: kernel.delete_link(ns, "nope"), "kernel-not-found:ENODEV")
    refused(kernel, lambda: kernel.set_link_up(ns, "nope"), "kernel-not-found:ENODEV")
    refused(kernel, lambda: kernel.add_address(ns, "nope", "10.0.0.1/24"), "kernel-not-found:ENODEV")
    refused(kernel, lambda: kernel.add_macvlan(ns, "m0", "nope"), "kernel-not-found:ENODEV")
    refused(kernel, lambda: kernel.add_vxlan(ns, "vx0", 42, dev="nope"), "kernel-not-found:ENODEV")
    with pytest.raises(NetsimError) as caught:
        kernel.link(ns, "nope")
    assert error_kind(caught.value) == "kernel-not-found:ENODEV"


def test_deleting_one_veth_end_deletes_its_peer(kernel: Kernel) -> None:
    a, b = host(kernel, "a"), host(kernel, "b")
    kernel.add_veth(a, "v0", "v1", b)
    kernel.delete_link(b, "v1")
    assert [link.name for link in kernel.links(a)] == ["lo"]
    assert [link.name for link in kernel.links(b)] == ["lo"]


def test_deleting_a_namespace_takes_peers_and_uppers_elsewhere(kernel: Kernel) -> None:
    a, b = host(kernel, "a"), host(kernel, "b")
    kernel.add_veth(a, "v0", "v1", b)
    kernel.add_veth(a, "keep0", "keep1")
    kernel.delete_namespace(b)
    assert kernel.namespaces() == [a]
    assert links_after_teardown(kernel, a) == ["keep0", "keep1", "lo"]


def test_lo_cannot_be_deleted_or_moved(kernel: Kernel) -> None:
    a, b = host(kernel, "a"), host(kernel, "b")
    refused(kernel, lambda: kernel.delete_link(a, "lo"), "kernel-invalid:ENOTSUP")
    refused(kernel, lambda: kernel.move_link(a, "lo", b, "lo2"), "kernel-invalid:EINVAL")


def test_bridge_ports_and_release_on_bridge_delete(kernel: Kernel) -> None:
    ns = host(kernel)
    kernel.add_bridge(ns, "br0")
    kernel.add_veth(ns, "p0", "p1")
    kernel.set_master(ns, "p0", "br0")
    assert kernel.link(ns, "p0").master == "br0"
    refused(kernel, lambda: kernel.set_master(ns, "p1", "p0"), "kernel-invalid:ENOTSUP")
    refused(kernel, lambda: kernel.set_master(ns, "p1", "nope"), "kernel-not-found:ENODEV")
    kernel.add_bridge(ns, "br1")
    refused(kernel, lambda: kernel.set_master(ns, "br1", "br0"), "kernel:ELOOP")
    kernel.delete_link(ns, "br0")
    assert kernel.link(ns, "p0").master is None
    kernel.set_master(ns, "p0", None)  # releasing a free link is fine
    assert kernel.link(ns, "p0").master is None


def test_bridge_mtu_follows_its_smallest_port(kernel: Kernel) -> None:
    ns = host(kernel)
    kernel.add_bridge(ns, "br0")
    kernel.add_veth(ns, "p0", "p1")
    kernel.set_mtu(ns, "p0", 1400)
    kernel.set_master(ns, "p0", "br0")
    assert kernel.link(ns, "br0").mtu == 1400


def test_mtu_limits(kernel: Kernel) -> None:
    ns = host(kernel)
    kernel.add_veth(ns, "v0", "v1")
    kernel.add_bridge(ns, "br0")
    refused(kernel, lambda: kernel.set_mtu(ns, "v0", 67), "kernel-invalid:EINVAL")
    refused(kernel, lambda: kernel.set_mtu(ns, "v0", 65536), "kernel-invalid:EINVAL")
    refused(kernel, lambda: kernel.set_mtu(ns, "br0", 65536), "kernel-invalid:EINVAL")
    refused(kernel, lambda: kernel.set_mtu(ns, "v0", 0), "invalid-parameter")
    kernel.set_mtu(ns, "v0", 68)
    kernel.set_mtu(ns, "v1", 65535)
    assert (kernel.link(ns, "v0").mtu, kernel.link(ns, "v1").mtu) == (68, 65535)


def test_macvlan_keeps_its_parent_across_a_move(kernel: Kernel) -> None:
    h, c = host(kernel, "h"), host(kernel, "c")
    kernel.add_veth(h, "eth0", "out0")
    kernel.set_mtu(h, "eth0", 1400)
    kernel.add_macvlan(h, "mv0", "eth0", "private")
    info = kernel.link(h, "mv0")
    assert (info.kind, info.parent, info.attrs, info.mtu) == ("macvlan", "eth0", {"mode": "private"}, 1400)
    refused(kernel, lambda: kernel.set_mtu(h, "mv0", 1401), "kernel-invalid:EINVAL")
    refused(kernel, lambda: kernel.add_macvlan(h, "mv1", "eth0", "passthru"), "kernel-invalid:EINVAL")
    refused(kernel, lambda: kernel.add_macvlan(h, "mv1", "lo"), "kernel-invalid:EINVAL")
    kernel.move_link(h, "mv0", c, "eth0")
    assert kernel.link(c, "eth0").parent == "eth0"
    kernel.delete_link(h, "eth0")  # the parent goes: its macvlan in the container goes too
    assert [link.name for link in kernel.links(c)] == ["lo"]


def test_vxlan_attributes_and_errors(kernel: Kernel) -> None:
    ns = host(kernel)
    kernel.add_veth(ns, "u0", "u1")
    kernel.add_vxlan(ns, "vx0", 42, local="10.0.0.1", remote="10.0.0.2", dstport=4789, dev="u0")
    info = kernel.link(ns, "vx0")
    assert info.kind == "vxlan" and info.parent == "u0" and info.mtu == 1450
    assert info.attrs == {
        "vni": 42,
        "local": "10.0.0.1",
        "remote": "10.0.0.2",
        "group": None,
        "dstport": 4789,
        "learning": True,
        "proxy": False,
        "l2miss": False,
        "l3miss": False,
    }
    refused(kernel, lambda: kernel.add_vxlan(ns, "vx1", 42, dstport=4789), "kernel-exists:EEXIST")
    refused(kernel, lambda: kernel.add_vxlan(ns, "vx1", 43, group="239.1.1.1"), "kernel-invalid:EINVAL")
    refused(
        kernel, lambda: kernel.add_vxlan(ns, "vx1", 43, local="10.0.0.1", remote="fd00::2"), "kernel-invalid:EINVAL"
    )
    refused(kernel, lambda: kernel.add_vxlan(ns, "vx1", 43, remote="10.0.0.2", group="239.1.1.1"), "invalid-parameter")
    kernel.add_vxlan(ns, "vx1", 43, group="239.1.1.1", dev="u0", learning=False)
    kernel.add_vxlan(ns, "vx2", 44, dev="u0", proxy=True, l2miss=True, l3miss=True)  # libnetwork's overlay flags
    flags = kernel.link(ns, "vx2").attrs
    assert (flags["proxy"], flags["l2miss"], flags["l3miss"]) == (True, True, True)
    assert kernel.link(ns, "vx1").attrs["group"] == "239.1.1.1"
    assert kernel.link(ns, "vx1").attrs["learning"] is False


def test_move_brings_link_down_and_drops_its_layer3(kernel: Kernel) -> None:
    h, c = host(kernel, "h"), host(kernel, "c")
    kernel.add_veth(h, "v0", "v1")
    kernel.set_link_up(h, "v0")
    kernel.add_address(h, "v0", "10.0.0.1/24")
    kernel.add_route(h, "10.9.0.0/16", via="10.0.0.9")
    kernel.set_mac(h, "v0", "02:00:00:00:00:01")
    kernel.move_link(h, "v0", c, "eth0")
    moved = kernel.link(c, "eth0")
    assert (moved.up, moved.mac, moved.peer) == (False, "02:00:00:00:00:01", (h, "v1"))
    assert kernel.addresses(c) == [] and kernel.routes(h) == []
    assert kernel.explicit_macs() == {(c, "eth0"): "02:00:00:00:00:01"}


def test_move_errors(kernel: Kernel) -> None:
    h, c = host(kernel, "h"), host(kernel, "c")
    kernel.add_veth(h, "v0", "v1")
    kernel.add_veth(c, "v0", "w1")
    kernel.add_bridge(h, "br0")
    refused(kernel, lambda: kernel.move_link(h, "v0", kernel.ns("missing")), "kernel-not-found:ENOENT")
    refused(kernel, lambda: kernel.move_link(h, "v0", c), "kernel-exists:EEXIST")
    refused(kernel, lambda: kernel.move_link(h, "br0", c), "kernel-invalid:EINVAL")
    refused(kernel, lambda: kernel.move_link(h, "v0", c, "x" * 16), "kernel-invalid:EINVAL")


def test_rename(kernel: Kernel) -> None:
    ns = host(kernel)
    kernel.add_veth(ns, "v0", "v1")
    refused(kernel, lambda: kernel.rename_link(ns, "v0", "v1"), "kernel-exists:EEXIST")
    refused(kernel, lambda: kernel.rename_link(ns, "v0", "a/b"), "kernel-invalid:EINVAL")
    kernel.set_link_up(ns, "v0")
    kernel.add_address(ns, "v0", "10.0.0.1/24")
    kernel.rename_link(ns, "v0", "eth0")  # Linux >= 6.2 renames live links
    assert kernel.link(ns, "eth0").up
    assert v4_routes(kernel, ns) == [("10.0.0.0/24", "eth0", None, 0, "link", "kernel")]


def test_set_mac(kernel: Kernel) -> None:
    ns = host(kernel)
    kernel.add_veth(ns, "v0", "v1")
    kernel.set_mac(ns, "v0", "02:AA:BB:CC:DD:EE")
    assert kernel.link(ns, "v0").mac == "02:aa:bb:cc:dd:ee"
    assert kernel.explicit_macs() == {(ns, "v0"): "02:aa:bb:cc:dd:ee"}
    refused(kernel, lambda: kernel.set_mac(ns, "v0", "01:00:00:00:00:01"), "invalid-parameter")
    refused(kernel, lambda: kernel.set_mac(ns, "v0", "zz"), "invalid-parameter")
    kernel.delete_link(ns, "v0")
    assert kernel.explicit_macs() == {}


# --- addresses and routes -----------------------------------------------------------------
def test_connected_routes_follow_link_state(kernel: Kernel) -> None:
    ns = host(kernel)
    kernel.add_veth(ns, "v0", "v1")
    kernel.add_address(ns, "v0", "10.0.0.1/24")
    assert v4_routes(kernel, ns) == []  # down: address kept, no route
    kernel.set_link_up(ns, "v0")
    assert v4_routes(kernel, ns) == [("10.0.0.0/24", "v0", None, 0, "link", "kernel")]
    kernel.add_route(ns, "default", via="10.0.0.254")
    kernel.set_link_up(ns, "v0", False)
    assert v4_routes(kernel, ns) == []
    assert global_addresses(kernel, ns) == [("v0", "10.0.0.1/24")]
    kernel.set_link_up(ns, "v0")
    assert v4_routes(kernel, ns) == [("10.0.0.0/24", "v0", None, 0, "link", "kernel")]


def test_ipv4_address_identity_and_secondaries(kernel: Kernel) -> None:
    ns = host(kernel)
    kernel.add_veth(ns, "v0", "v1")
    kernel.set_link_up(ns, "v0")
    kernel.add_address(ns, "v0", "10.0.0.1/24")
    refused(kernel, lambda: kernel.add_address(ns, "v0", "10.0.0.1/24"), "kernel-exists:EEXIST")
    kernel.add_address(ns, "v0", "10.0.0.1/16")  # same IP, other prefix: a separate address
    kernel.add_address(ns, "v0", "10.0.0.2/24")  # secondary: no second route
    kernel.add_address(ns, "v0", "10.0.0.3/32")  # /32: no route
    assert [r[0] for r in v4_routes(kernel, ns)] == ["10.0.0.0/16", "10.0.0.0/24"]
    refused(kernel, lambda: kernel.delete_address(ns, "v0", "10.0.0.9/24"), "kernel-not-found:EADDRNOTAVAIL")
    refused(kernel, lambda: kernel.delete_address(ns, "v0", "10.0.0.1/25"), "kernel-not-found:EADDRNOTAVAIL")
    kernel.delete_address(ns, "v0", "10.0.0.1/24")  # the primary takes its secondary along
    assert global_addresses(kernel, ns) == [("v0", "10.0.0.1/16"), ("v0", "10.0.0.3/32")]
    refused(kernel, lambda: kernel.add_address(ns, "v0", "10.0.0.1"), "invalid-parameter")


def test_deleting_last_ipv4_address_flushes_routes(kernel: Kernel) -> None:
    ns = host(kernel)
    kernel.add_veth(ns, "v0", "v1")
    kernel.set_link_up(ns, "v0")
    kernel.add_address(ns, "v0", "10.0.0.1/24")
    kernel.add_address(ns, "v0", "10.1.0.1/24")
    kernel.add_route(ns, "10.9.0.0/16", via="10.0.0.9")
    kernel.delete_address(ns, "v0", "10.0.0.1/24")
    assert [r[0] for r in v4_routes(kernel, ns)] == ["10.1.0.0/24", "10.9.0.0/16"]
    kernel.delete_address(ns, "v0", "10.1.0.1/24")
    assert v4_routes(kernel, ns) == []


def test_ipv6_addresses_routes_and_down(kernel: Kernel) -> None:
    ns = host(kernel)
    kernel.add_veth(ns, "v0", "v1")
    kernel.set_link_up(ns, "v0")
    kernel.add_address(ns, "v0", "fd00::1/64")
    refused(kernel, lambda: kernel.add_address(ns, "v0", "fd00::1/48"), "kernel-exists:EEXIST")
    kernel.add_route(ns, "default6", via="fd00::fe")
    assert v6_routes(kernel, ns) == [
        ("default", "v0", "fd00::fe", 1024, "static"),
        ("fd00::/64", "v0", None, 256, "kernel"),
    ]
    refused(kernel, lambda: kernel.add_route(ns, "fd05::/64", via="fd01::1"), "kernel-unreachable:EHOSTUNREACH")
    kernel.set_link_up(ns, "v0", False)  # IPv6 addresses do not survive a down link
    assert [a for a in kernel.addresses(ns) if a[0] == "v0"] == []
    assert [r for r in kernel.routes(ns) if r.dev == "v0"] == []


def test_disable_ipv6(kernel: Kernel) -> None:
    ns = host(kernel)
    kernel.add_veth(ns, "v0", "v1")
    assert kernel.get_sysctl(ns, "net.ipv6.conf.v0.disable_ipv6") == "0"
    kernel.set_link_up(ns, "v0")
    kernel.add_address(ns, "v0", "fd00::1/64")
    kernel.set_sysctl(ns, "net.ipv6.conf.v0.disable_ipv6", "1")
    assert kernel.addresses(ns) == []
    refused(kernel, lambda: kernel.add_address(ns, "v0", "fd00::2/64"), "kernel-permission:EACCES")
    refused(kernel, lambda: kernel.get_sysctl(ns, "net.ipv6.conf.nope.disable_ipv6"), "kernel-not-found:ENOENT")


def test_sysctls(kernel: Kernel) -> None:
    ns = host(kernel)
    assert kernel.get_sysctl(ns, "net.ipv4.ip_forward") == "0"
    kernel.set_sysctl(ns, "net.ipv4.ip_forward", "1")
    kernel.set_sysctl(ns, "net.ipv6.conf.all.forwarding", "1")
    assert kernel.snapshot()[ns]["sysctls"] == {"net.ipv4.ip_forward": "1", "net.ipv6.conf.all.forwarding": "1"}
    refused(kernel, lambda: kernel.set_sysctl(ns, "kernel.hostname", "x"), "invalid-parameter")


def test_route_errors(kernel: Kernel) -> None:
    ns = host(kernel)
    kernel.add_veth(ns, "v0", "v1")
    refused(kernel, lambda: kernel.add_route(ns, "10.5.0.0/16", dev="v0"), "kernel:ENETDOWN")
    kernel.set_link_up(ns, "v0")
    kernel.add_address(ns, "v0", "10.0.0.1/24")
    refused(kernel, lambda: kernel.add_route(ns, "default", via="192.168.1.1"), "kernel-unreachable:ENETUNREACH")
    refused(kernel, lambda: kernel.add_route(ns, "10.7.0.1/16", dev="v0"), "invalid-parameter")
    refused(kernel, lambda: kernel.add_route(ns, "10.7.0.0/16"), "invalid-parameter")
    refused(kernel, lambda: kernel.add_route(ns, "10.7.0.0/16", dev="nope"), "kernel-not-found:ENODEV")
    kernel.add_route(ns, "default", via="10.0.0.254")
    refused(kernel, lambda: kernel.add_route(ns, "default", via="10.0.0.253"), "kernel-exists:EEXIST")
    kernel.add_route(ns, "default", via="10.0.0.253", metric=10)
    refused(kernel, lambda: kernel.delete_route(ns, "10.9.0.0/24"), "kernel-not-found:ESRCH")
    refused(kernel, lambda: kernel.delete_route(ns, "default", via="10.0.0.200"), "kernel-not-found:ESRCH")
    kernel.delete_route(ns, "default")  # the lowest metric goes first
    assert [(r[0], r[2], r[3]) for r in v4_routes(kernel, ns) if r[0] == "default"] == [("default", "10.0.0.253", 10)]


def test_routes_via_dev_and_scope(kernel: Kernel) -> None:
    ns = host(kernel)
    kernel.add_veth(ns, "v0", "v1")
    kernel.set_link_up(ns, "v0")
    kernel.add_address(ns, "v0", "10.0.0.1/24")
    kernel.add_route(ns, "10.5.0.0/16", dev="v0")
    kernel.add_route(ns, "10.6.0.0/16", via="10.5.0.1")  # a scope-link dev route makes a gateway reachable
    kernel.add_route(ns, "10.7.0.0/16", dev="v0", scope="universe")
    refused(kernel, lambda: kernel.add_route(ns, "10.8.0.0/16", via="10.7.0.1"), "kernel-unreachable:ENETUNREACH")
    assert v4_routes(kernel, ns) == [
        ("10.0.0.0/24", "v0", None, 0, "link", "kernel"),
        ("10.5.0.0/16", "v0", None, 0, "link", "static"),
        ("10.6.0.0/16", "v0", "10.5.0.1", 0, "universe", "static"),
        ("10.7.0.0/16", "v0", None, 0, "universe", "static"),
    ]


# --- neighbours, fdb ---------------------------------------------------------------------
def test_neighbours(kernel: Kernel) -> None:
    ns = host(kernel)
    kernel.add_veth(ns, "v0", "v1")
    kernel.set_link_up(ns, "v0")
    kernel.add_neighbour(ns, "v0", "10.0.0.5", "02:00:00:00:00:05")
    kernel.add_neighbour(ns, "v0", "fd00::5", "02:00:00:00:00:05")
    refused(kernel, lambda: kernel.add_neighbour(ns, "v0", "10.0.0.5", "02:00:00:00:00:06"), "kernel-exists:EEXIST")
    refused(kernel, lambda: kernel.delete_neighbour(ns, "v0", "10.0.0.6"), "kernel-not-found:ENOENT")
    refused(
        kernel, lambda: kernel.add_neighbour(ns, "nope", "10.0.0.6", "02:00:00:00:00:06"), "kernel-not-found:ENODEV"
    )
    assert [(n.dev, n.ip, n.mac, n.permanent) for n in kernel.neighbours(ns)] == [
        ("v0", "10.0.0.5", "02:00:00:00:00:05", True),
        ("v0", "fd00::5", "02:00:00:00:00:05", True),
    ]
    kernel.delete_neighbour(ns, "v0", "fd00::5")
    kernel.set_link_up(ns, "v0", False)  # admin down flushes the link's neighbours
    assert kernel.neighbours(ns) == []


def test_a_mac_change_flushes_the_links_neighbours(kernel: Kernel) -> None:
    """NETDEV_CHANGEADDR: Linux drops every neighbour entry of the device,
    permanent ones too, even when the MAC set is the one it had; a bridge
    that follows its smallest port's MAC drops its own when that moves."""
    ns = host(kernel)
    kernel.add_veth(ns, "v0", "v1")
    kernel.add_bridge(ns, "br0")
    kernel.set_master(ns, "v1", "br0")
    kernel.set_mac(ns, "v0", "02:00:00:00:00:10")
    for dev in ("v0", "br0", "lo"):
        kernel.add_neighbour(ns, dev, "fd00::5", "02:00:00:00:00:05")
    kernel.add_neighbour(ns, "v0", "10.0.0.5", "02:00:00:00:00:05")
    kernel.set_mac(ns, "v0", "02:00:00:00:00:10")
    assert sorted(n.dev for n in kernel.neighbours(ns)) == ["br0", "lo"]
    kernel.set_mac(ns, "v1", "02:00:00:00:00:01")  # the bridge's smallest port MAC, so its MAC
    assert kernel.link(ns, "br0").mac == "02:00:00:00:00:01"
    assert [n.dev for n in kernel.neighbours(ns)] == ["lo"]
    kernel.set_mac(ns, "lo", "02:00:00:00:00:02")
    assert kernel.neighbours(ns) == []


def test_bridge_fdb(kernel: Kernel) -> None:
    ns = host(kernel)
    kernel.add_bridge(ns, "br0")
    kernel.add_veth(ns, "p0", "p1")
    kernel.set_master(ns, "p0", "br0")
    kernel.add_fdb(ns, "p0", "02:00:00:00:00:aa")
    refused(kernel, lambda: kernel.add_fdb(ns, "p0", "02:00:00:00:00:aa"), "kernel-exists:EEXIST")
    refused(kernel, lambda: kernel.delete_fdb(ns, "p0", "02:00:00:00:00:bb"), "kernel-not-found:ENOENT")
    assert [(f.dev, f.mac, f.master) for f in kernel.fdb(ns)] == [("p0", "02:00:00:00:00:aa", "br0")]
    kernel.set_master(ns, "p0", None)  # a port leaving takes its static entries along
    assert kernel.fdb(ns) == []


def test_vxlan_fdb_flood_list(kernel: Kernel) -> None:
    ns = host(kernel)
    kernel.add_vxlan(ns, "vx0", 42)
    kernel.add_fdb(ns, "vx0", "00:00:00:00:00:00", dst="10.0.0.7")
    kernel.add_fdb(ns, "vx0", "00:00:00:00:00:00", dst="10.0.0.8")
    assert [(f.dev, f.mac, f.dst) for f in kernel.fdb(ns)] == [
        ("vx0", "00:00:00:00:00:00", "10.0.0.7"),
        ("vx0", "00:00:00:00:00:00", "10.0.0.8"),
    ]
    kernel.delete_fdb(ns, "vx0", "00:00:00:00:00:00", dst="10.0.0.7")
    assert [f.dst for f in kernel.fdb(ns)] == ["10.0.0.8"]
    kernel.delete_fdb(ns, "vx0", "00:00:00:00:00:00", dst="10.0.0.7")  # Linux: the MAC is there, so no error
    assert [f.dst for f in kernel.fdb(ns)] == ["10.0.0.8"]
    kernel.delete_fdb(ns, "vx0", "00:00:00:00:00:00", dst="10.0.0.8")
    refused(
        kernel, lambda: kernel.delete_fdb(ns, "vx0", "00:00:00:00:00:00", dst="10.0.0.8"), "kernel-not-found:ENOENT"
    )


# --- rules and listeners --------------------------------------------------------------------
def test_rules_are_kept_in_order(kernel: Kernel) -> None:
    ns = host(kernel)
    rules: list[Rule] = [
        Masquerade(src="172.17.0.0/16", not_out_iface="docker0"),
        Dnat(proto="tcp", dport=8080, to_addr="172.17.0.2", to_port=80, not_in_iface="docker0"),
        Filter(action="drop", in_iface="docker0", out_iface="docker0", layer="bridge"),
    ]
    for rule in rules:
        kernel.add_rule(ns, rule)
    assert kernel.rules(ns) == rules
    refused(kernel, lambda: kernel.add_rule(ns, rules[0]), "kernel-exists:EEXIST")
    kernel.delete_rule(ns, rules[1])
    refused(kernel, lambda: kernel.delete_rule(ns, rules[1]), "kernel-not-found:ENOENT")
    refused(kernel, lambda: kernel.add_rule(ns, Masquerade(src="nonsense")), "invalid-parameter")
    assert kernel.rules(ns) == [rules[0], rules[2]]


def test_listeners(kernel: Kernel) -> None:
    ns = host(kernel)
    kernel.set_link_up(ns, "lo")
    kernel.add_listener(ns, Listener("tcp", 8080))
    kernel.add_listener(ns, Listener("udp", 8080))
    kernel.add_listener(ns, Listener("tcp", 8080, "::"))
    refused(kernel, lambda: kernel.add_listener(ns, Listener("tcp", 8080)), "kernel-exists:EADDRINUSE")
    refused(kernel, lambda: kernel.add_listener(ns, Listener("tcp", 0)), "kernel-invalid:EINVAL")
    refused(kernel, lambda: kernel.delete_listener(ns, Listener("tcp", 9)), "kernel-not-found:ENOENT")
    kernel.delete_listener(ns, Listener("udp", 8080))
    assert kernel.listeners(ns) == [Listener("tcp", 8080, "0.0.0.0"), Listener("tcp", 8080, "::")]


# --- a whole container endpoint ---------------------------------------------------------------
def test_container_endpoint_setup_and_teardown(kernel: Kernel) -> None:
    h, c = host(kernel, "h"), host(kernel, "c")
    kernel.add_bridge(h, "br0")
    kernel.set_link_up(h, "br0")
    kernel.add_address(h, "br0", "172.18.0.1/16")
    kernel.add_veth(h, "vethab12", "tmp0")
    kernel.set_master(h, "vethab12", "br0")
    kernel.set_link_up(h, "vethab12")
    kernel.move_link(h, "tmp0", c)
    kernel.rename_link(c, "tmp0", "eth0")
    kernel.add_address(c, "eth0", "172.18.0.2/16")
    kernel.set_link_up(c, "eth0")
    kernel.add_route(c, "default", via="172.18.0.1")
    snap = kernel.snapshot()
    assert [(r["dst"], r["via"], r["dev"]) for r in snap[c]["routes"] if r["proto"] == "static"] == [
        ("default", "172.18.0.1", "eth0")
    ]
    assert [link["name"] for link in snap[c]["links"]] == ["eth0", "lo"]
    assert snap[c]["links"][0]["peer"] == [h, "vethab12"]
    kernel.delete_namespace(c)
    assert links_after_teardown(kernel, h) == ["br0", "lo"]


# --- corner cases verified against Linux 6.x ------------------------------------------------
def test_macvlan_stacking_and_bridge_ports(kernel: Kernel) -> None:
    ns = host(kernel)
    kernel.add_bridge(ns, "br0")
    kernel.add_veth(ns, "p0", "p1")
    kernel.set_master(ns, "p0", "br0")
    refused(kernel, lambda: kernel.add_macvlan(ns, "m0", "p0"), "kernel-busy:EBUSY")  # a port cannot carry one
    kernel.add_macvlan(ns, "m1", "p1")
    refused(kernel, lambda: kernel.set_master(ns, "p1", "br0"), "kernel-busy:EBUSY")  # nor can a parent be a port
    kernel.add_macvlan(ns, "m2", "br0")  # a bridge can
    kernel.set_master(ns, "m1", "br0")  # and a macvlan can be a port
    kernel.add_macvlan(ns, "m3", "m1")  # a macvlan on a macvlan sits on the lower device
    assert kernel.link(ns, "m3").parent == "p1"


def test_vlan_sub_interface(kernel: Kernel) -> None:
    ns = host(kernel)
    kernel.add_veth(ns, "p0", "p1")
    kernel.set_mtu(ns, "p0", 1400)
    try:
        kernel.add_vlan(ns, "p0.10", "p0", 10)
    except NetsimError as exc:
        if kernel.kind == "linux" and error_kind(exc) == "kernel-invalid:ENOTSUP":
            # This machine's kernel has no 802.1q module: the refusal must change nothing
            # (a divergence from the fake, listed in netsim/kernel/divergences.py).
            assert [link.name for link in kernel.links(ns)] == ["lo", "p0", "p1"]
            return
        raise
    info = kernel.link(ns, "p0.10")
    assert (info.kind, info.parent, info.attrs, info.mtu) == ("vlan", "p0", {"vlan_id": 10}, 1400)
    assert info.mac == kernel.link(ns, "p0").mac
    refused(kernel, lambda: kernel.add_vlan(ns, "p0.11", "p0", 10), "kernel-exists:EEXIST")
    refused(kernel, lambda: kernel.add_vlan(ns, "p0.12", "p0", 4095), "kernel-invalid:ERANGE")
    kernel.add_macvlan(ns, "mv0", "p0.10")  # macvlan over an 802.1q parent
    kernel.delete_link(ns, "p1")  # the veth goes, and everything stacked on it
    assert [link.name for link in kernel.links(ns)] == ["lo"]


def test_small_mtu_removes_ipv6(kernel: Kernel) -> None:
    ns = host(kernel)
    kernel.add_veth(ns, "v0", "v1")
    kernel.set_link_up(ns, "v0")
    kernel.add_address(ns, "v0", "fd00::1/64")
    kernel.set_mtu(ns, "v0", 1200)
    assert [a for a in kernel.addresses(ns) if a[0] == "v0"] == []
    refused(kernel, lambda: kernel.get_sysctl(ns, "net.ipv6.conf.v0.disable_ipv6"), "kernel-not-found:ENOENT")
    refused(kernel, lambda: kernel.add_address(ns, "v0", "fd00::2/64"), "kernel-invalid:EINVAL")
    kernel.set_mtu(ns, "v0", 1500)
    assert kernel.get_sysctl(ns, "net.ipv6.conf.v0.disable_ipv6") == "0"
    kernel.add_address(ns, "v0", "fd00::2/64")
    assert ("v0", "fd00::2/64") in kernel.addresses(ns)


def test_listener_addresses(kernel: Kernel) -> None:
    ns = host(kernel)
    kernel.add_veth(ns, "v0", "v1")
    kernel.add_address(ns, "v0", "10.0.0.1/24")
    refused(kernel, lambda: kernel.add_listener(ns, Listener("tcp", 80, "10.0.0.9")), "kernel-not-found:EADDRNOTAVAIL")
    refused(kernel, lambda: kernel.add_listener(ns, Listener("tcp", 81, "127.0.0.1")), "kernel-not-found:EADDRNOTAVAIL")
    refused(kernel, lambda: kernel.add_listener(ns, Listener("tcp", 83, "nonsense")), "kernel-invalid:EINVAL")
    kernel.add_listener(ns, Listener("tcp", 80, "10.0.0.1"))
    refused(kernel, lambda: kernel.add_listener(ns, Listener("tcp", 80)), "kernel-exists:EADDRINUSE")
    kernel.add_listener(ns, Listener("udp", 53))
    refused(kernel, lambda: kernel.add_listener(ns, Listener("udp", 53, "10.0.0.1")), "kernel-exists:EADDRINUSE")
    kernel.set_link_up(ns, "lo")
    kernel.add_listener(ns, Listener("tcp", 81, "127.0.0.1"))
    kernel.add_listener(ns, Listener("tcp", 82, "::1"))
    assert len(kernel.listeners(ns)) == 4


def test_rename_carries_neighbours_routes_and_sysctls(kernel: Kernel) -> None:
    ns = host(kernel)
    kernel.add_veth(ns, "v0", "v1")
    kernel.set_link_up(ns, "v0")
    kernel.add_neighbour(ns, "v0", "10.0.0.5", "02:00:00:00:00:05")
    kernel.set_sysctl(ns, "net.ipv6.conf.v0.disable_ipv6", "1")
    kernel.add_address(ns, "v0", "10.0.0.1/24")
    kernel.add_route(ns, "10.9.0.0/16", via="10.0.0.9")
    kernel.rename_link(ns, "v0", "eth0")
    assert kernel.get_sysctl(ns, "net.ipv6.conf.eth0.disable_ipv6") == "1"
    refused(kernel, lambda: kernel.get_sysctl(ns, "net.ipv6.conf.v0.disable_ipv6"), "kernel-not-found:ENOENT")
    assert [n.dev for n in kernel.neighbours(ns)] == ["eth0"]
    assert {r[1] for r in v4_routes(kernel, ns)} == {"eth0"}


def test_ipv6_routes_metrics_and_link_local_gateways(kernel: Kernel) -> None:
    ns = host(kernel)
    kernel.add_veth(ns, "v0", "v1")
    kernel.set_link_up(ns, "v0")
    kernel.add_route(ns, "fd09::/64", via="fe80::1", dev="v0")
    refused(kernel, lambda: kernel.add_route(ns, "fd0a::/64", via="fe80::1"), "kernel-invalid:EINVAL")
    refused(kernel, lambda: kernel.add_route(ns, "default6", via="fe80::1", dev="v1"), "kernel:ENETDOWN")
    kernel.add_route(ns, "fd0b::/64", dev="v0")
    kernel.add_route(ns, "fd0c::/64", dev="v0", metric=5)
    assert v6_routes(kernel, ns) == [
        ("fd09::/64", "v0", "fe80::1", 1024, "static"),
        ("fd0b::/64", "v0", None, 1024, "static"),
        ("fd0c::/64", "v0", None, 5, "static"),
    ]
    kernel.delete_route(ns, "fd0b::/64")
    refused(kernel, lambda: kernel.delete_route(ns, "fd0c::/64", metric=7), "kernel-not-found:ESRCH")


def test_bridge_mtu_tracks_ports_until_set(kernel: Kernel) -> None:
    ns = host(kernel)
    kernel.add_bridge(ns, "br0")
    kernel.add_veth(ns, "p0", "p1")
    kernel.add_veth(ns, "q0", "q1")
    kernel.set_master(ns, "p0", "br0")
    kernel.set_master(ns, "q0", "br0")
    kernel.set_mtu(ns, "p0", 9000)
    assert kernel.link(ns, "br0").mtu == 1500
    kernel.delete_link(ns, "q0")
    assert kernel.link(ns, "br0").mtu == 9000
    kernel.delete_link(ns, "p0")
    assert kernel.link(ns, "br0").mtu == 1500
    refused(kernel, lambda: kernel.set_master(ns, "lo", "br0"), "kernel-invalid:EINVAL")
    kernel.set_mtu(ns, "br0", 9000)  # set explicitly: ports no longer pull it down
    kernel.add_veth(ns, "r0", "r1")
    kernel.set_master(ns, "r0", "br0")
    assert kernel.link(ns, "br0").mtu == 9000


def test_fdb_needs_a_port_or_a_vxlan(kernel: Kernel) -> None:
    ns = host(kernel)
    kernel.add_veth(ns, "p0", "p1")
    kernel.add_bridge(ns, "br0")
    kernel.add_vxlan(ns, "vx0", 5)
    mac = "02:00:00:00:00:01"
    refused(kernel, lambda: kernel.add_fdb(ns, "p0", mac), "kernel-invalid:ENOTSUP")
    refused(kernel, lambda: kernel.add_fdb(ns, "br0", mac), "kernel-invalid:ENOTSUP")
    refused(kernel, lambda: kernel.add_fdb(ns, "vx0", mac), "kernel-invalid:EINVAL")
    refused(kernel, lambda: kernel.add_fdb(ns, "p0", mac, dst="10.0.0.1"), "invalid-parameter")
    kernel.add_fdb(ns, "vx0", mac, dst="10.0.0.1")
    kernel.add_fdb(ns, "vx0", mac, dst="10.0.0.1")  # appending a present remote is quietly accepted
    refused(kernel, lambda: kernel.delete_fdb(ns, "vx0", "02:00:00:00:00:09"), "kernel-not-found:ENOENT")
    kernel.delete_fdb(ns, "vx0", mac)  # without a remote: the MAC with all its remotes
    assert kernel.fdb(ns) == []


def test_sysctl_values(kernel: Kernel) -> None:
    ns = host(kernel)
    refused(kernel, lambda: kernel.set_sysctl(ns, "net.ipv4.ip_forward", "abc"), "kernel-invalid:EINVAL")
    kernel.set_sysctl(ns, "net.ipv4.conf.all.forwarding", "1")  # the same switch under its other name
    assert kernel.get_sysctl(ns, "net.ipv4.ip_forward") == "1"
    assert kernel.get_sysctl(ns, "net.ipv6.conf.all.disable_ipv6") == "0"


def test_upper_devices_survive_moves_and_die_with_their_lower(kernel: Kernel) -> None:
    h, c = host(kernel, "h"), host(kernel, "c")
    kernel.add_veth(h, "v0", "v1")
    kernel.add_macvlan(h, "m0", "v0")
    kernel.add_vxlan(h, "vx0", 5, dev="v1")
    kernel.move_link(h, "m0", c)
    kernel.move_link(h, "vx0", c)
    assert [(link.name, link.parent) for link in kernel.links(c)] == [("lo", None), ("m0", "v0"), ("vx0", "v1")]
    kernel.delete_link(h, "v0")
    assert [link.name for link in kernel.links(c)] == ["lo"]


def test_same_namespace_move_and_duplicate_names(kernel: Kernel) -> None:
    h, c = host(kernel, "h"), host(kernel, "c")
    kernel.add_veth(h, "v0", "v1", c)
    refused(kernel, lambda: kernel.add_veth(h, "v2", "v1", c), "kernel-exists:EEXIST")
    refused(kernel, lambda: kernel.add_veth(h, "v3", "v3"), "kernel-exists:EEXIST")
    kernel.move_link(h, "v0", h)  # into its own namespace: nothing happens
    kernel.move_link(h, "v0", h, "v9")  # ... except the rename
    assert [link.name for link in kernel.links(h)] == ["lo", "v9"]
    assert kernel.link(c, "v1").peer == (h, "v9")


def test_ipv4_listener_binds_anything_before_the_first_ipv4_address(kernel: Kernel) -> None:
    ns = host(kernel)
    kernel.add_listener(ns, Listener("udp", 53, "10.9.9.9"))  # no local table yet: Linux lets it bind
    refused(kernel, lambda: kernel.add_listener(ns, Listener("udp", 54, "fd00::9")), "kernel-not-found:EADDRNOTAVAIL")
    kernel.set_link_up(ns, "lo")  # 127.0.0.1/8 creates the local table
    refused(kernel, lambda: kernel.add_listener(ns, Listener("udp", 55, "10.9.9.9")), "kernel-not-found:EADDRNOTAVAIL")
    kernel.add_listener(ns, Listener("tcp", 56, "127.0.0.53"))  # all of lo's prefix is local
    assert [lst.port for lst in kernel.listeners(ns)] == [56, 53]


def test_check_order_of_linux(kernel: Kernel) -> None:
    """Which error wins when several apply, as Linux orders its checks."""
    ns = host(kernel)
    kernel.add_veth(ns, "v0", "v1")
    kernel.add_bridge(ns, "br0")
    kernel.set_link_up(ns, "v0")
    kernel.add_address(ns, "v0", "fd00::1/64")
    kernel.add_address(ns, "v0", "10.0.0.1/24")
    # validate() before the name check
    refused(kernel, lambda: kernel.add_vxlan(ns, "v0", 1 << 24), "kernel-invalid:ERANGE")
    # the gateway before the device state
    refused(
        kernel, lambda: kernel.add_route(ns, "10.5.0.0/16", via="10.0.0.9", dev="v1"), "kernel-unreachable:ENETUNREACH"
    )
    refused(
        kernel, lambda: kernel.add_route(ns, "fd05::/64", via="fd00::fe", dev="v1"), "kernel-unreachable:EHOSTUNREACH"
    )
    refused(kernel, lambda: kernel.add_route(ns, "fd05::/64", dev="v1"), "kernel:ENETDOWN")
    # the master before the port
    refused(kernel, lambda: kernel.set_master(ns, "br0", "v0"), "kernel-invalid:ENOTSUP")
    refused(kernel, lambda: kernel.set_master(ns, "lo", "br0"), "kernel-invalid:EINVAL")
    # FDB entries need an Ethernet device
    refused(kernel, lambda: kernel.add_fdb(ns, "lo", "02:00:00:00:00:01"), "kernel-invalid:EINVAL")
    # rules are validated before they are looked up
    refused(kernel, lambda: kernel.delete_rule(ns, Masquerade(src="nonsense")), "invalid-parameter")


def test_missing_ipv6_default_is_enoent(kernel: Kernel) -> None:
    ns = host(kernel)
    refused(kernel, lambda: kernel.delete_route(ns, "default6"), "kernel-not-found:ENOENT")
    refused(kernel, lambda: kernel.delete_route(ns, "default6", dev="lo"), "kernel-not-found:ENOENT")
    refused(kernel, lambda: kernel.delete_route(ns, "default6", via="fe80::1"), "kernel-not-found:ESRCH")
    refused(kernel, lambda: kernel.delete_route(ns, "default"), "kernel-not-found:ESRCH")
    kernel.add_veth(ns, "v0", "v1")
    kernel.set_link_up(ns, "v0")
    kernel.add_address(ns, "v0", "fd00::1/64")
    kernel.add_route(ns, "default6", via="fd00::fe")
    refused(kernel, lambda: kernel.delete_route(ns, "default6", via="fd00::fd"), "kernel-not-found:ESRCH")


def test_vxlan_remote_seeds_the_flood_list(kernel: Kernel) -> None:
    ns = host(kernel)
    kernel.add_vxlan(ns, "vx0", 7, remote="10.0.0.9")
    assert [(f.dev, f.mac, f.dst) for f in kernel.fdb(ns)] == [("vx0", "00:00:00:00:00:00", "10.0.0.9")]
    kernel.delete_fdb(ns, "vx0", "00:00:00:00:00:00", dst="10.0.0.9")
    assert kernel.fdb(ns) == []


def test_ipv4_neighbours_on_lo_are_keyed_zero(kernel: Kernel) -> None:
    ns = host(kernel)
    kernel.add_neighbour(ns, "lo", "10.0.0.5", "02:00:00:00:00:05")
    assert [(n.dev, n.ip) for n in kernel.neighbours(ns)] == [("lo", "0.0.0.0")]
    kernel.add_neighbour(ns, "lo", "10.0.0.6", "02:00:00:00:00:06")  # updates the one entry
    assert [(n.ip, n.mac) for n in kernel.neighbours(ns)] == [("0.0.0.0", "02:00:00:00:00:06")]
    refused(kernel, lambda: kernel.add_neighbour(ns, "lo", "0.0.0.0", "02:00:00:00:00:07"), "kernel-exists:EEXIST")
    refused(kernel, lambda: kernel.delete_neighbour(ns, "lo", "10.0.0.6"), "kernel-not-found:ENOENT")
    kernel.delete_neighbour(ns, "lo", "0.0.0.0")
    assert kernel.neighbours(ns) == []


def test_bridge_fdb_has_one_entry_per_mac(kernel: Kernel) -> None:
    ns = host(kernel)
    kernel.add_bridge(ns, "br0")
    kernel.add_veth(ns, "p0", "p1")
    kernel.add_veth(ns, "q0", "q1")
    kernel.set_master(ns, "p0", "br0")
    kernel.set_master(ns, "q0", "br0")
    mac = "02:00:00:00:00:aa"
    kernel.add_fdb(ns, "p0", mac)
    refused(kernel, lambda: kernel.add_fdb(ns, "q0", mac), "kernel-exists:EEXIST")
    refused(kernel, lambda: kernel.delete_fdb(ns, "q0", mac), "kernel-not-found:ENOENT")
    own = kernel.link(ns, "q0").mac
    refused(kernel, lambda: kernel.add_fdb(ns, "q0", own), "kernel-exists:EEXIST")  # its "local" entry
    assert [(f.dev, f.mac, f.master) for f in kernel.fdb(ns)] == [("p0", mac, "br0")]


def test_ipv6_gateway_that_is_an_own_address_is_einval(kernel: Kernel) -> None:
    """Linux refuses any address of the namespace as an IPv6 gateway, before the
    route lookup and the device state; a link-local one only when it is ``dev``'s."""
    ns = host(kernel)
    kernel.add_veth(ns, "v0", "v1")
    kernel.add_veth(ns, "w0", "w1")
    kernel.add_address(ns, "v0", "fd00::1/64")  # v0 never went up: the address stays
    kernel.add_address(ns, "w0", "fe80::1/64")
    for dev in (None, "v0", "v1", "lo"):
        refused(kernel, partial(kernel.add_route, ns, "fd09::/64", via="fd00::1", dev=dev), "kernel-invalid:EINVAL")
    refused(kernel, lambda: kernel.add_route(ns, "fd09::/64", via="fe80::1", dev="w0"), "kernel-invalid:EINVAL")
    refused(kernel, lambda: kernel.add_route(ns, "fd09::/64", via="fe80::1", dev="v0"), "kernel:ENETDOWN")
    kernel.set_link_up(ns, "v0")
    kernel.set_link_up(ns, "v1")
    kernel.add_address(ns, "v0", "fd00::2/64")
    refused(kernel, lambda: kernel.add_route(ns, "default6", via="fd00::2"), "kernel-invalid:EINVAL")
    refused(kernel, lambda: kernel.add_route(ns, "default6", via="fd00::2", dev="v0"), "kernel-invalid:EINVAL")
    kernel.set_link_up(ns, "lo")
    refused(kernel, lambda: kernel.add_route(ns, "fd09::/64", via="::1"), "kernel-invalid:EINVAL")
    # an address of another link of the namespace counts too, whatever device is given
    kernel.add_address(ns, "v1", "fd00::3/64")
    refused(kernel, lambda: kernel.add_route(ns, "fd09::/64", via="fd00::3", dev="v0"), "kernel-invalid:EINVAL")
    kernel.add_route(ns, "fd09::/64", via="fd00::4")  # not an own address: accepted
    assert ("fd09::/64", "v0", "fd00::4", 1024, "static") in v6_routes(kernel, ns)


def test_ipv4_gateway_that_is_an_own_address_follows_its_link(kernel: Kernel) -> None:
    """Linux finds an own IPv4 address in the local table first: the route goes
    through that address's link, ENETDOWN while it is down (even when a connected
    route on an up link covers the gateway); a subnet broadcast is EINVAL."""
    ns = host(kernel)
    kernel.add_veth(ns, "v0", "v1")
    kernel.add_veth(ns, "w0", "w1")
    kernel.add_address(ns, "v0", "10.0.0.1/24")
    kernel.set_link_up(ns, "w0")
    kernel.set_link_up(ns, "w1")
    kernel.add_address(ns, "w0", "10.0.0.7/16")
    refused(kernel, lambda: kernel.add_route(ns, "10.9.0.0/24", via="10.0.0.1"), "kernel:ENETDOWN")
    refused(kernel, lambda: kernel.add_route(ns, "10.9.0.0/24", via="10.0.0.1", dev="v0"), "kernel:ENETDOWN")
    # restricted to another device, the local entry is not seen: the connected route on w0 is
    kernel.add_route(ns, "10.9.0.0/24", via="10.0.0.1", dev="w0")
    kernel.set_link_up(ns, "v0")
    kernel.set_link_up(ns, "v1")
    kernel.add_route(ns, "10.9.1.0/24", via="10.0.0.1")
    kernel.add_route(ns, "10.9.2.0/24", via="10.0.0.1", scope="link")
    refused(kernel, lambda: kernel.add_route(ns, "10.9.3.0/24", via="10.0.0.255"), "kernel-invalid:EINVAL")
    refused(
        kernel, lambda: kernel.add_route(ns, "10.9.3.0/24", via="10.0.0.1", dev="v1"), "kernel-unreachable:ENETUNREACH"
    )
    kernel.add_route(ns, "10.9.4.0/24", via="10.0.0.0")  # the network address is no broadcast route
    assert [r for r in v4_routes(kernel, ns) if r[0].startswith("10.9.")] == [
        ("10.9.0.0/24", "w0", "10.0.0.1", 0, "universe", "static"),
        ("10.9.1.0/24", "v0", "10.0.0.1", 0, "universe", "static"),
        ("10.9.2.0/24", "v0", "10.0.0.1", 0, "link", "static"),
        ("10.9.4.0/24", "v0", "10.0.0.0", 0, "universe", "static"),
    ]
    # lo's local routes cover its whole prefixes, and outlive lo's state
    kernel.set_link_up(ns, "lo")
    kernel.add_route(ns, "10.8.0.0/24", via="127.0.0.5")
    refused(kernel, lambda: kernel.add_route(ns, "10.8.1.0/24", via="127.255.255.255"), "kernel-invalid:EINVAL")
    kernel.set_link_up(ns, "lo", False)
    refused(kernel, lambda: kernel.add_route(ns, "10.8.1.0/24", via="127.0.0.6"), "kernel:ENETDOWN")
    # the gateway check comes before the duplicate check
    kernel.set_link_up(ns, "v0", False)
    refused(kernel, lambda: kernel.add_route(ns, "10.9.0.0/24", via="10.0.0.1"), "kernel:ENETDOWN")


def test_deleting_ipv6_from_a_link_below_mtu_1280_is_enxio(kernel: Kernel) -> None:
    """Below MTU 1280 a link has no IPv6 state, so Linux cannot even look the address up."""
    ns = host(kernel)
    kernel.add_veth(ns, "v0", "v1")
    kernel.set_link_up(ns, "v0")
    kernel.add_address(ns, "v0", "fd00::1/64")
    kernel.add_address(ns, "v0", "10.0.0.1/24")
    kernel.set_sysctl(ns, "net.ipv6.conf.v1.disable_ipv6", "1")
    kernel.set_mtu(ns, "v0", 1200)
    kernel.set_mtu(ns, "v1", 1000)
    for dev, cidr in (("v0", "fd00::1/64"), ("v0", "fd00::5/64"), ("v1", "fd00::1/64")):
        refused(kernel, partial(kernel.delete_address, ns, dev, cidr), "kernel:ENXIO")
    refused(kernel, lambda: kernel.delete_address(ns, "v0", "fd00::1/129"), "invalid-parameter")
    refused(kernel, lambda: kernel.delete_address(ns, "v9", "fd00::1/64"), "kernel-not-found:ENODEV")
    kernel.delete_address(ns, "v0", "10.0.0.1/24")  # IPv4 is unaffected
    # lo keeps its IPv6 state whatever its MTU: a missing address is just missing
    kernel.set_link_up(ns, "lo")
    kernel.set_mtu(ns, "lo", 1000)
    refused(kernel, lambda: kernel.delete_address(ns, "lo", "::1/128"), "kernel-not-found:EADDRNOTAVAIL")
    # back above 1280 the state returns (disable_ipv6 is reset to 0)
    kernel.set_mtu(ns, "v1", 1500)
    refused(kernel, lambda: kernel.delete_address(ns, "v1", "fd00::1/64"), "kernel-not-found:EADDRNOTAVAIL")


def test_move_to_a_taken_new_name_is_eexist_before_anything_else(kernel: Kernel) -> None:
    """A new name taken in the target is refused up front, even for ``lo`` (which
    cannot move at all: EINVAL when no new name is asked for)."""
    ns, other = host(kernel), host(kernel, "h2")
    kernel.add_veth(other, "v0", "v1")
    refused(kernel, lambda: kernel.move_link(ns, "lo", other, "v0"), "kernel-exists:EEXIST")
    refused(kernel, lambda: kernel.move_link(ns, "lo", other, "v9"), "kernel-invalid:EINVAL")
    refused(kernel, lambda: kernel.move_link(ns, "lo", other), "kernel-invalid:EINVAL")


def test_lo_keeps_its_ipv6_state_below_mtu_1280(kernel: Kernel) -> None:
    """``lo`` loses its IPv6 addresses below MTU 1280 but not its IPv6 state:
    the sysctl stays and new addresses may be added; ::1 returns only with an up."""
    ns = host(kernel)
    kernel.set_link_up(ns, "lo")
    kernel.set_mtu(ns, "lo", 1000)
    assert kernel.addresses(ns) == [("lo", "127.0.0.1/8")]
    assert kernel.get_sysctl(ns, "net.ipv6.conf.lo.disable_ipv6") == "0"
    refused(kernel, lambda: kernel.delete_address(ns, "lo", "::1/128"), "kernel-not-found:EADDRNOTAVAIL")
    kernel.add_address(ns, "lo", "fd01::1/64")
    assert ("fd01::/64", "lo", None, 256, "kernel") in v6_routes(kernel, ns)
    kernel.set_link_up(ns, "lo", False)
    kernel.set_link_up(ns, "lo")
    assert kernel.addresses(ns) == [("lo", "127.0.0.1/8")]  # no ::1 while the MTU is small
    kernel.add_address(ns, "lo", "fd01::1/64")
    kernel.set_mtu(ns, "lo", 1500)
    assert kernel.addresses(ns) == [("lo", "127.0.0.1/8"), ("lo", "fd01::1/64")]
    kernel.set_link_up(ns, "lo", False)
    kernel.set_link_up(ns, "lo")
    assert kernel.addresses(ns) == [("lo", "127.0.0.1/8"), ("lo", "::1/128")]


def test_ipv6_host_addresses_get_a_host_route(kernel: Kernel) -> None:
    """Every IPv6 /128 but ::1 gives a kernel route of its own on an up link."""
    ns = host(kernel)
    kernel.set_link_up(ns, "lo")
    kernel.add_veth(ns, "v0", "v1")
    kernel.set_link_up(ns, "v0")
    kernel.add_address(ns, "v0", "fd00::1/128")
    kernel.add_address(ns, "lo", "fd05::1/128")
    assert v6_routes(kernel, ns) == [
        ("fd00::1/128", "v0", None, 256, "kernel"),
        ("fd05::1/128", "lo", None, 256, "kernel"),
    ]
    kernel.delete_address(ns, "v0", "fd00::1/128")
    assert v6_routes(kernel, ns) == [("fd05::1/128", "lo", None, 256, "kernel")]


def test_a_device_stacked_on_a_bridge_cannot_be_its_port(kernel: Kernel) -> None:
    """Enslaving a macvlan of a bridge to that bridge would make a loop: EBUSY."""
    ns = host(kernel)
    kernel.add_bridge(ns, "br0")
    kernel.add_bridge(ns, "br1")
    kernel.add_macvlan(ns, "mv0", "br0", "bridge")
    kernel.add_macvlan(ns, "mv1", "mv0", "bridge")
    refused(kernel, lambda: kernel.set_master(ns, "mv0", "br0"), "kernel-busy:EBUSY")
    refused(kernel, lambda: kernel.set_master(ns, "mv1", "br0"), "kernel-busy:EBUSY")
    kernel.set_master(ns, "mv0", "br1")  # another bridge is fine
    assert [(link.name, link.master) for link in kernel.links(ns) if link.name == "mv0"] == [("mv0", "br1")]
