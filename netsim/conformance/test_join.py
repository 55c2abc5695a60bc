"""Join and leave: what the driver tells the sandbox, and that leave undoes it."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from netsim.conformance.harness import DriverUnderTest, assert_unchanged, new_id
from netsim.driverapi import CONNECTED, NEXTHOP, InterfaceInfo, IPAMData, JoinInfo

MAX_PREFIX = 13  # room for a two-digit index within IFNAMSIZ-1


@contextmanager
def joined(dut: DriverUnderTest) -> Iterator[tuple[JoinInfo, list[IPAMData], str]]:
    """A network, an endpoint and a sandbox joined directly through the driver."""
    nid, data = dut.create_network_direct()
    eid = new_id()
    address = ipaddress.ip_interface(f"{data[0].pool[20]}/{data[0].pool.prefixlen}")
    sandbox = dut.ctrl.create_sandbox("conf-join")
    try:
        dut.driver.create_endpoint(nid, eid, InterfaceInfo(address=address), {})
        try:
            jinfo = JoinInfo()
            dut.driver.join(nid, eid, sandbox.key, jinfo, {})
            try:
                yield jinfo, data, sandbox.key
            finally:
                dut.driver.leave(nid, eid)
        finally:
            dut.driver.delete_endpoint(nid, eid)
    finally:
        dut.ctrl.delete_sandbox(sandbox.container)
        dut.driver.delete_network(nid)


@pytest.mark.kernel_effects
def test_join_interface_names_are_valid(dut: DriverUnderTest) -> None:
    with joined(dut) as (jinfo, _, _):
        if jinfo.src_name is None:
            assert jinfo.dst_prefix is None, "a destination prefix without a source interface"
            return
        host_links = {link.name for link in dut.kernel.links(dut.ctrl.host.namespace)}
        assert jinfo.src_name in host_links, f"source interface {jinfo.src_name!r} is not in the host namespace"
        prefix = jinfo.dst_prefix or ""
        assert prefix, "join set a source interface but no destination prefix"
        assert len(prefix.encode()) <= MAX_PREFIX and prefix.isprintable(), f"bad destination prefix {prefix!r}"
        assert not any(c in prefix for c in "/: \t"), f"bad destination prefix {prefix!r}"


def test_join_gateway_is_on_link(dut: DriverUnderTest) -> None:
    """A gateway given at join is on-link: inside the network's subnet (and not its
    network address), or inside a CONNECTED static route of the same join.

    libnetwork's ``SetGateway`` stores any address, and the sandbox adds the
    join's connected routes to the interface before its default route, so a
    gateway outside the subnet is valid when a connected route reaches it
    (Calico's 169.254.1.1 with ``169.254.1.1/32 dev eth0``). One reached by
    nothing could never be a default route's next hop."""
    with joined(dut) as (jinfo, data, _):
        gateway = jinfo.gateway
        if gateway is None:
            return
        connected = [r.destination for r in jinfo.static_routes if r.route_type == CONNECTED]
        if any(gateway.version == net.version and gateway in net for net in connected):
            return
        pools = [d.pool for d in data if d.pool.version == gateway.version]
        assert any(gateway in pool for pool in pools), (
            f"gateway {gateway} is outside {', '.join(map(str, pools)) or 'every pool'} and no CONNECTED "
            "static route reaches it"
        )
        assert all(gateway != pool.network_address for pool in pools), "the gateway is the network address"


def test_join_static_routes_are_valid(dut: DriverUnderTest) -> None:
    with joined(dut) as (jinfo, _, _):
        for route in jinfo.static_routes:
            assert route.route_type in (NEXTHOP, CONNECTED), f"route type {route.route_type}"
            assert isinstance(route.destination, ipaddress.IPv4Network | ipaddress.IPv6Network)
            if route.route_type == NEXTHOP:
                assert route.next_hop is not None, f"next-hop route to {route.destination} without next hop"
                assert route.next_hop.version == route.destination.version


def test_leave_then_join_again(dut: DriverUnderTest) -> None:
    """Leave must undo join completely enough that the same endpoint can join again."""
    nid, data = dut.create_network_direct()
    eid = new_id()
    address = ipaddress.ip_interface(f"{data[0].pool[21]}/{data[0].pool.prefixlen}")
    sandbox = dut.ctrl.create_sandbox("conf-rejoin")
    try:
        dut.driver.create_endpoint(nid, eid, InterfaceInfo(address=address), {})
        try:
            first = JoinInfo()
            dut.driver.join(nid, eid, sandbox.key, first, {})
            dut.driver.leave(nid, eid)
            second = JoinInfo()
            dut.driver.join(nid, eid, sandbox.key, second, {})
            dut.driver.leave(nid, eid)
            assert (first.src_name, first.dst_prefix, first.gateway) == (
                second.src_name,
                second.dst_prefix,
                second.gateway,
            )
        finally:
            dut.driver.delete_endpoint(nid, eid)
    finally:
        dut.ctrl.delete_sandbox(sandbox.container)
        dut.driver.delete_network(nid)


@pytest.mark.kernel_effects
def test_disconnect_undoes_connect(dut: DriverUnderTest) -> None:
    """Through the controller: connect, disconnect and sandbox removal leave the
    kernel as it was before the container existed."""
    net = dut.create_network("conf-leave")
    try:
        before = dut.kernel.snapshot()
        dut.ctrl.connect("conf-leave-c", net.name)
        dut.ctrl.disconnect("conf-leave-c", net.name)
        dut.ctrl.delete_sandbox("conf-leave-c")
        assert_unchanged(dut.kernel, before, "leave + delete endpoint did not undo join + create endpoint")
    finally:
        if any(sb.container == "conf-leave-c" for sb in dut.ctrl.sandboxes()):
            dut.ctrl.delete_sandbox("conf-leave-c")
        dut.ctrl.delete_network(net.name)
