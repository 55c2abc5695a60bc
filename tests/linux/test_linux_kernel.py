"""Linux-specific behaviour of LinuxKernel: safety refusals, teardown, error
translation, nftables really installed, leftovers cleaned by exact prefix."""

from __future__ import annotations

import errno
import json
import socket
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyroute2 import netns
from pyroute2.netlink.exceptions import NetlinkError

from netsim.errors import InvalidParameterError, KernelError, error_kind
from netsim.kernel.base import Dnat, Filter, Kernel, Masquerade, Rule
from netsim.kernel.linux import LinuxKernel
from netsim.kernel.linux.clean import clean, is_netsim_namespace, leftovers
from netsim.kernel.linux.layer3 import sysctl_path
from netsim.kernel.linux.netns import netlink_errors
from netsim.safety import namespaces_with_prefix

pytestmark = pytest.mark.linux
Factory = Callable[[str], Kernel]


def nft_ruleset(ns: str) -> list[dict[str, Any]]:
    done = subprocess.run(
        ["nsenter", f"--net=/run/netns/{ns}", "nft", "-j", "list", "ruleset"],
        capture_output=True,
        text=True,
        check=True,
    )
    return [item for item in json.loads(done.stdout)["nftables"] if "metainfo" not in item]


def nft_rules(ns: str) -> list[dict[str, Any]]:
    return [item["rule"] for item in nft_ruleset(ns) if "rule" in item]


@pytest.fixture
def linux(netsim_kernel_factory: Factory) -> LinuxKernel:
    kernel = netsim_kernel_factory("linux")
    assert isinstance(kernel, LinuxKernel)
    return kernel


def test_namespace_outside_the_run_prefix_is_refused(linux: LinuxKernel) -> None:
    for name in ("foo", "netsim-otherrun-h1", linux.prefix.rstrip("-"), "/run/netns/" + linux.ns("h1")):
        with pytest.raises(InvalidParameterError, match="prefix"):
            linux.add_namespace(name)
    assert linux.namespaces() == []
    assert namespaces_with_prefix(linux.prefix) == []


def test_duplicate_and_missing_namespace_errors(linux: LinuxKernel) -> None:
    h1 = linux.ns("h1")
    linux.add_namespace(h1)
    with pytest.raises(KernelError) as exists:
        linux.add_namespace(h1)
    assert exists.value.errno == errno.EEXIST
    with pytest.raises(KernelError) as missing:
        linux.delete_namespace(linux.ns("nope"))
    assert missing.value.errno == errno.ENOENT
    assert linux.namespaces() == [h1]


def test_close_removes_everything_and_is_idempotent(netsim_kernel_factory: Factory) -> None:
    kernel = netsim_kernel_factory("linux")
    h1, c1 = kernel.ns("h1"), kernel.ns("c1")
    kernel.add_namespace(h1)
    kernel.add_namespace(c1)
    kernel.add_veth(h1, "veth0", "eth0", c1)
    kernel.add_rule(h1, Masquerade("10.0.0.0/24"))
    assert namespaces_with_prefix(kernel.prefix) == [c1, h1]
    kernel.close()
    assert namespaces_with_prefix(kernel.prefix) == []
    assert kernel.namespaces() == []
    kernel.close()  # idempotent
    assert namespaces_with_prefix(kernel.prefix) == []


def test_netlink_errors_are_translated_with_errno_and_change_nothing(linux: LinuxKernel) -> None:
    c1 = linux.ns("c1")
    linux.add_namespace(c1)
    linux.add_veth(c1, "eth0", "eth1")
    linux.add_address(c1, "eth0", "10.0.0.2/24")
    before = linux.snapshot()
    with pytest.raises(KernelError) as exists:
        linux.add_address(c1, "eth0", "10.0.0.2/24")
    assert exists.value.errno == errno.EEXIST
    assert error_kind(exists.value) == "kernel-exists:EEXIST"
    assert "10.0.0.2/24" in str(exists.value) and "eth0" in str(exists.value)
    with pytest.raises(KernelError) as unreachable:
        linux.add_route(c1, "10.9.0.0/24", via="10.8.0.1")
    assert unreachable.value.errno == errno.ENETUNREACH
    with pytest.raises(KernelError) as too_long:
        linux.add_bridge(c1, "b" * 16)
    assert too_long.value.errno == errno.EINVAL
    with pytest.raises(KernelError) as no_parent:
        linux.add_macvlan(c1, "mv0", "nope")
    assert no_parent.value.errno == errno.ENODEV
    with pytest.raises(KernelError) as no_move_target:
        linux.move_link(c1, "eth1", linux.ns("missing"))
    assert no_move_target.value.errno == errno.ENOENT
    assert linux.snapshot() == before


def test_pyroute2_netlink_error_is_translated_at_the_boundary() -> None:
    with pytest.raises(KernelError) as translated, netlink_errors("list links of namespace 'x'"):
        raise NetlinkError(errno.EBUSY, "Device or resource busy")
    assert translated.value.errno == errno.EBUSY
    assert error_kind(translated.value) == "kernel-busy:EBUSY"
    assert isinstance(translated.value.__cause__, NetlinkError)
    assert "list links of namespace 'x'" in str(translated.value)


def test_veth_peer_across_namespaces_and_moved_macvlan_parent(linux: LinuxKernel) -> None:
    h1, c1 = linux.ns("h1"), linux.ns("c1")
    linux.add_namespace(h1)
    linux.add_namespace(c1)
    linux.add_veth(h1, "veth0", "eth0", c1)
    linux.add_veth(h1, "up0", "up1")
    linux.add_macvlan(h1, "mv0", "up0", "vepa")
    linux.move_link(h1, "mv0", c1, "eth1")
    assert linux.link(h1, "veth0").peer == (c1, "eth0")
    assert linux.link(c1, "eth0").peer == (h1, "veth0")
    moved = linux.link(c1, "eth1")
    assert (moved.kind, moved.parent, dict(moved.attrs)) == ("macvlan", "up0", {"mode": "vepa"})
    linux.delete_link(c1, "eth0")
    assert [link.name for link in linux.links(h1)] == ["lo", "up0", "up1"]


def test_new_namespace_has_only_lo_down(linux: LinuxKernel) -> None:
    h1 = linux.ns("h1")
    linux.add_namespace(h1)
    (lo,) = linux.links(h1)
    assert (lo.name, lo.kind, lo.up) == ("lo", "loopback", False)


def test_nft_rules_are_installed_in_the_namespace_and_removed_by_handle(linux: LinuxKernel) -> None:
    h1 = linux.ns("h1")
    linux.add_namespace(h1)
    masquerade = Masquerade("10.0.0.0/24", not_out_iface="br0")
    dnat = Dnat("tcp", 8080, "10.0.0.2", 80)
    drop = Filter("drop", in_iface="br0", out_iface="eth0", src="10.0.0.0/24")
    for rule in (masquerade, dnat, drop):
        linux.add_rule(h1, rule)
    assert linux.rules(h1) == [masquerade, dnat, drop]
    installed = nft_rules(h1)
    chains = sorted(rule["chain"] for rule in installed)
    assert chains == ["forward", "output", "postrouting", "prerouting"]
    assert any({"masquerade": None} in rule["expr"] for rule in installed)
    with pytest.raises(KernelError) as duplicate:
        linux.add_rule(h1, dnat)
    assert duplicate.value.errno == errno.EEXIST
    linux.delete_rule(h1, dnat)
    assert sorted(rule["chain"] for rule in nft_rules(h1)) == ["forward", "postrouting"]
    with pytest.raises(KernelError) as missing:
        linux.delete_rule(h1, dnat)
    assert missing.value.errno == errno.ENOENT
    assert linux.rules(h1) == [masquerade, drop]


def test_invalid_rule_is_refused_before_nft(linux: LinuxKernel) -> None:
    h1 = linux.ns("h1")
    linux.add_namespace(h1)
    for bad in (
        Masquerade("10.0.0.1/24"),
        Dnat("tcp", 0, "10.0.0.2", 80),
        Filter("drop", src="10.0.0.0/24", dst="fd00::/64"),
    ):
        with pytest.raises(InvalidParameterError):
            linux.add_rule(h1, bad)
    assert linux.rules(h1) == []
    assert nft_ruleset(h1) == []


def test_bridge_filter_follows_bridge_membership(linux: LinuxKernel) -> None:
    h1, c1 = linux.ns("h1"), linux.ns("c1")
    linux.add_namespace(h1)
    linux.add_namespace(c1)
    linux.add_bridge(h1, "br0")
    linux.add_veth(h1, "veth0", "eth0", c1)
    linux.set_master(h1, "veth0", "br0")
    linux.add_rule(h1, Filter("drop", in_iface="br0", out_iface="br0", layer="bridge"))

    def ports() -> list[str]:
        sets = [item["set"] for item in nft_ruleset(h1) if "set" in item]
        assert len(sets) == 1
        return sorted(sets[0].get("elem", []))

    assert ports() == ["veth0"]
    linux.add_veth(h1, "veth1", "eth1", c1)
    linux.set_master(h1, "veth1", "br0")
    assert ports() == ["veth0", "veth1"]
    linux.delete_link(c1, "eth0")  # takes veth0 with it
    assert ports() == ["veth1"]


def test_sysctls_are_per_namespace_and_restricted(linux: LinuxKernel) -> None:
    h1, h2 = linux.ns("h1"), linux.ns("h2")
    linux.add_namespace(h1)
    linux.add_namespace(h2)
    root_before = Path("/proc/sys/net/ipv4/ip_forward").read_text()
    linux.set_sysctl(h1, "net.ipv4.ip_forward", "1")
    assert linux.get_sysctl(h1, "net.ipv4.ip_forward") == "1"
    assert linux.get_sysctl(h2, "net.ipv4.ip_forward") == "0"
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text() == root_before
    for key in ("kernel.hostname", "net.core.rmem_max", "net.ipv4.conf/../../x", "vm.swappiness"):
        with pytest.raises(InvalidParameterError):
            linux.set_sysctl(h1, key, "1")
    assert sysctl_path("net.ipv6.conf.eth0.10.disable_ipv6") == Path("/proc/sys/net/ipv6/conf/eth0.10/disable_ipv6")
    with pytest.raises(KernelError) as missing:
        linux.get_sysctl(h1, "net.ipv6.conf.nope0.disable_ipv6")
    assert missing.value.errno == errno.ENOENT


def test_clean_removes_only_netsim_leftovers(linux: LinuxKernel) -> None:
    crashed = linux.ns("crashed")
    not_ours = linux.prefix.rstrip("-") + "x"  # no role part: not netsim's scheme
    assert is_netsim_namespace(crashed) and not is_netsim_namespace(not_ours)
    netns.create(crashed)
    netns.create(not_ours)
    try:
        assert leftovers(linux.prefix) == [crashed]
        assert clean(linux.prefix, dry_run=True) == [crashed]
        assert namespaces_with_prefix(crashed) == [crashed]
        assert clean(linux.prefix) == [crashed]
        assert namespaces_with_prefix(linux.prefix) == []
        assert namespaces_with_prefix(not_ours) == [not_ours]
    finally:
        for name in (crashed, not_ours):
            if namespaces_with_prefix(name) == [name]:
                netns.remove(name)
    with pytest.raises(InvalidParameterError):
        clean("docker-")


IFACES = st.none() | st.sampled_from(("eth0", "br0", "veth.1"))
V4_NETS = st.sampled_from(("10.0.0.0/24", "172.18.0.0/16", "198.18.0.2/32"))
V6_NETS = st.sampled_from(("fd00::/64", "fd00::2/128"))
V4_ADDRS = st.sampled_from(("10.0.0.2", "198.18.0.2"))
PORTS = st.integers(1, 65535)


@st.composite
def nat_and_filter_rules(draw: st.DrawFn) -> Rule:
    kind = draw(st.sampled_from(("masquerade", "dnat", "filter")))
    v6 = draw(st.booleans())
    nets = V6_NETS if v6 else V4_NETS
    if kind == "masquerade":
        return Masquerade(draw(nets), out_iface=draw(IFACES), not_out_iface=draw(IFACES))
    if kind == "dnat":
        to_addr = "fd00::2" if v6 else draw(V4_ADDRS)
        dst = draw(st.none() | st.just("fd00::1" if v6 else "198.18.0.2"))
        proto: Literal["tcp", "udp"] = draw(st.sampled_from(("tcp", "udp")))
        return Dnat(proto, draw(PORTS), to_addr, draw(PORTS), dst=dst, not_in_iface=draw(IFACES))
    return Filter(
        draw(st.sampled_from(("drop", "accept"))),
        in_iface=draw(IFACES),
        out_iface=draw(IFACES),
        src=draw(st.none() | nets),
        dst=draw(st.none() | nets),
        layer=draw(st.sampled_from(("ip", "bridge"))),
    )


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rules=st.lists(nat_and_filter_rules(), min_size=1, max_size=4, unique=True))
def test_any_valid_rule_installs_and_deletes_cleanly(linux: LinuxKernel, rules: list[Rule]) -> None:
    """Every rule of the model becomes nft rules nft accepts; deleting them leaves the chains empty."""
    h1 = linux.ns("h1")
    if h1 not in linux.namespaces():
        linux.add_namespace(h1)
    for rule in rules:
        linux.add_rule(h1, rule)
    assert linux.rules(h1) == rules
    assert len(nft_rules(h1)) == sum(2 if isinstance(rule, Dnat) else 1 for rule in rules)
    for rule in reversed(rules):
        linux.delete_rule(h1, rule)
    assert linux.rules(h1) == []
    assert nft_rules(h1) == []
    assert [item for item in nft_ruleset(h1) if "set" in item] == []


def root_link_events(sock: socket.socket) -> list[int]:
    """RTM_NEWLINK/RTM_DELLINK message types the root-namespace monitor socket received."""
    events: list[int] = []
    while True:
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return events
        offset = 0
        while offset + 16 <= len(data):
            length, kind = struct.unpack_from("=IH", data, offset)
            events.append(kind)
            offset += (length + 3) & ~3


def test_nothing_appears_in_the_root_namespace_even_transiently(linux: LinuxKernel) -> None:
    """A link-event monitor in the root namespace (read-only) sees no link come or go
    while veths are made across namespaces, moved, renamed and deleted."""
    monitor = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    try:
        monitor.bind((0, 1))  # RTMGRP_LINK
        monitor.setblocking(False)
        h1, c1 = linux.ns("h1"), linux.ns("c1")
        linux.add_namespace(h1)
        linux.add_namespace(c1)
        linux.add_veth(h1, "veth0", "tmp0", c1)
        linux.rename_link(c1, "tmp0", "eth0")
        linux.add_veth(h1, "up0", "up1")
        linux.add_macvlan(h1, "mv0", "up0")
        linux.move_link(h1, "mv0", c1, "eth1")
        linux.set_link_up(c1, "eth0")
        linux.delete_link(h1, "veth0")
        linux.delete_namespace(c1)
        assert linux.links(h1)[0].name == "lo"
        assert root_link_events(monitor) == []
    finally:
        monitor.close()


def test_close_removes_a_namespace_of_its_run_it_did_not_register(netsim_kernel_factory: Factory) -> None:
    """close() goes by this run's exact prefix: a namespace made behind the kernel's
    back (half made when a signal hit, or by a dead process of the run) is the
    run's and is removed; one of another run is left alone."""
    kernel = netsim_kernel_factory("linux")
    other = netsim_kernel_factory("linux")
    stray, neighbour = kernel.ns("stray"), other.ns("neighbour")
    netns.create(stray)
    netns.create(neighbour)
    try:
        kernel.close()
        assert namespaces_with_prefix(kernel.prefix) == []
        assert namespaces_with_prefix(other.prefix) == [neighbour]
    finally:
        for name in (stray, neighbour):
            if name in namespaces_with_prefix(name):
                netns.remove(name)
    kernel.close()  # already closed: nothing to do, nothing raised


def test_move_with_a_taken_new_name_changes_nothing(linux: LinuxKernel) -> None:
    """Linux itself moves first and renames after, so `ip link set eth0 netns h1 name veth0`
    leaves eth0 moved when veth0 is taken; LinuxKernel refuses before anything moves."""
    h1, c1 = linux.ns("h1"), linux.ns("c1")
    linux.add_namespace(h1)
    linux.add_namespace(c1)
    linux.add_veth(h1, "veth0", "x0")
    linux.add_veth(c1, "eth0", "y0")
    before = linux.snapshot()
    with pytest.raises(KernelError) as taken:
        linux.move_link(c1, "eth0", h1, "veth0")
    assert taken.value.errno == errno.EEXIST
    assert linux.snapshot() == before
