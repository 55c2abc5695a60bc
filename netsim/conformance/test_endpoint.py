"""Endpoints: create fills only what is empty, oper info, delete."""

from __future__ import annotations

import ipaddress

import pytest

from netsim.conformance.harness import DriverUnderTest, assert_unchanged, expect_error, new_id
from netsim.controller import IpamConfig, PoolConfig
from netsim.driverapi import InterfaceInfo
from netsim.errors import InvalidParameterError, NetsimError
from netsim.validate import parse_mac

PRESET_MAC = "02:42:0a:4d:00:63"


def test_create_endpoint_keeps_what_was_set(dut: DriverUnderTest) -> None:
    """A driver whose interfaces cannot have a MAC of their own may refuse a preset
    one instead, naming it, with nothing created (libnetwork's ipvlan: "ipvlan
    interfaces do not support custom mac address assignment"); never overwrite it."""
    nid, data = dut.create_network_direct()
    eid = new_id()
    address = ipaddress.ip_interface(f"{data[0].pool[99]}/{data[0].pool.prefixlen}")
    ifinfo = InterfaceInfo(mac=PRESET_MAC, address=address)
    try:
        try:
            dut.driver.create_endpoint(nid, eid, ifinfo, {})
        except InvalidParameterError as exc:
            if "mac" not in str(exc).lower():
                raise
            ifinfo = InterfaceInfo(address=address)  # the same id again: the refusal left nothing
            dut.driver.create_endpoint(nid, eid, ifinfo, {})
            assert ifinfo.mac_address is None, f"driver refused a preset MAC but set one: {ifinfo.mac_address}"
        try:
            assert ifinfo.address == address, f"driver overwrote the IPv4 address: {ifinfo.address}"
            if ifinfo.mac_address is not None:
                assert ifinfo.mac_address == PRESET_MAC, f"driver overwrote the MAC: {ifinfo.mac_address}"
        finally:
            dut.driver.delete_endpoint(nid, eid)
    finally:
        dut.driver.delete_network(nid)


def test_create_endpoint_fills_empty_fields_validly(dut: DriverUnderTest) -> None:
    nid, data = dut.create_network_direct()
    eid = new_id()
    address = ipaddress.ip_interface(f"{data[0].pool[42]}/{data[0].pool.prefixlen}")
    ifinfo = InterfaceInfo(address=address)
    try:
        dut.driver.create_endpoint(nid, eid, ifinfo, {})
        try:
            if ifinfo.mac_address is not None:
                assert parse_mac(ifinfo.mac_address) == ifinfo.mac_address
            if ifinfo.address_ipv6 is not None:
                assert ifinfo.address_ipv6.version == 6
        finally:
            dut.driver.delete_endpoint(nid, eid)
    finally:
        dut.driver.delete_network(nid)


def test_endpoint_oper_info_is_a_mapping(dut: DriverUnderTest) -> None:
    nid, data = dut.create_network_direct()
    eid = new_id()
    address = ipaddress.ip_interface(f"{data[0].pool[7]}/{data[0].pool.prefixlen}")
    try:
        dut.driver.create_endpoint(nid, eid, InterfaceInfo(address=address), {})
        try:
            info = dut.driver.endpoint_oper_info(nid, eid)
            assert isinstance(info, dict), f"endpoint_oper_info returned {type(info).__name__}, not a mapping"
            assert all(isinstance(key, str) for key in info)
        finally:
            dut.driver.delete_endpoint(nid, eid)
    finally:
        dut.driver.delete_network(nid)


def test_create_endpoint_on_unknown_network_fails(dut: DriverUnderTest) -> None:
    with expect_error(NetsimError, "from create_endpoint on an unknown network"):
        dut.driver.create_endpoint(new_id(), new_id(), InterfaceInfo(), {})


def test_delete_endpoint_undoes_create(dut: DriverUnderTest) -> None:
    nid, data = dut.create_network_direct()
    try:
        before = dut.kernel.snapshot()
        eid = new_id()
        address = ipaddress.ip_interface(f"{data[0].pool[9]}/{data[0].pool.prefixlen}")
        dut.driver.create_endpoint(nid, eid, InterfaceInfo(address=address), {})
        dut.driver.delete_endpoint(nid, eid)
        assert_unchanged(dut.kernel, before, "delete_endpoint left something in the kernel")
    finally:
        dut.driver.delete_network(nid)


def test_duplicate_endpoint_id_is_refused(dut: DriverUnderTest) -> None:
    """A second create_endpoint with an endpoint id the network already has is
    refused with a netsim error and changes nothing in the kernel; a driver that
    keeps no endpoint state (null, host) may accept it as a no-op instead.
    Either way one delete_endpoint then undoes the first create completely.

    libnetwork's bridge, macvlan and overlay look the id up first and fail
    (``endpoint %s already exists``); null's and host's CreateEndpoint do nothing."""
    nid, data = dut.create_network_direct()
    try:
        before_create = dut.kernel.snapshot()
        eid = new_id()
        pool = data[0].pool
        dut.driver.create_endpoint(
            nid, eid, InterfaceInfo(address=ipaddress.ip_interface(f"{pool[30]}/{pool.prefixlen}")), {}
        )
        try:
            before_duplicate = dut.kernel.snapshot()
            again = InterfaceInfo(address=ipaddress.ip_interface(f"{pool[31]}/{pool.prefixlen}"))
            try:
                dut.driver.create_endpoint(nid, eid, again, {})
            except NetsimError:
                pass  # refused, as libnetwork's stateful drivers do
            except Exception as exc:
                raise AssertionError(
                    f"expected a netsim error for a duplicate endpoint id, got {type(exc).__name__}: {exc}"
                ) from exc
            assert_unchanged(dut.kernel, before_duplicate, "a duplicate create_endpoint changed the kernel")
        finally:
            dut.driver.delete_endpoint(nid, eid)
        assert_unchanged(dut.kernel, before_create, "one delete_endpoint did not undo create + duplicate create")
    finally:
        dut.driver.delete_network(nid)


@pytest.mark.kernel_effects
def test_ipv6_endpoint_on_a_dual_stack_network(dut: DriverUnderTest) -> None:
    """On a network with an IPv4 and an IPv6 pool, an endpoint created with an
    IPv6 address keeps it, and after join the container's interface carries
    both its IPv4 and its IPv6 address. Skipped for null and host networks,
    which get no pools at all (libnetwork's ``hasSpecialDriver`` skips IPAM),
    and for a driver whose join gives the container no interface.

    libnetwork hands create_network the IPv6 pools (ipV6Data) and create_endpoint
    the address (InterfaceInfo.AddressIPv6); osl puts both on the interface."""
    subnet = dut.next_subnet()
    v6_subnet = f"fd77:0:0:{subnet.split('.')[2]}::/64"
    net = dut.ctrl.create_network(
        "conf-dual",
        driver=dut.name,
        options=dict(dut.options),
        ipv6=True,
        ipam=IpamConfig(pools=[PoolConfig(subnet=subnet)], pools_v6=[PoolConfig(subnet=v6_subnet)]),
    )
    try:
        if not net.ipv6_data:
            pytest.skip("the network has no IP pools (a null or host network, as in libnetwork)")
        wanted = ipaddress.ip_interface(f"{ipaddress.ip_network(v6_subnet)[0x20]}/64")
        ep = dut.ctrl.connect("conf-dual-c", net.name, ipv6=str(wanted.ip))
        try:
            assert ep.address_ipv6 == wanted, f"the endpoint's IPv6 address is {ep.address_ipv6}, not {wanted}"
            sandbox = ep.sandbox
            assert sandbox is not None, "the connected endpoint has no sandbox"
            if ep.iface is None:
                pytest.skip("the driver's join gives the container no interface (null semantics)")
            by_dev: dict[str, set[str]] = {}
            for dev, cidr in dut.kernel.addresses(sandbox.namespace):
                by_dev.setdefault(dev, set()).add(cidr)
            carriers = [dev for dev, cidrs in by_dev.items() if str(wanted) in cidrs]
            assert carriers, f"no interface in the container carries {wanted}: {by_dev}"
            assert str(ep.address) in by_dev[carriers[0]], (
                f"{carriers[0]} carries {wanted} but not the IPv4 address {ep.address}: {sorted(by_dev[carriers[0]])}"
            )
        finally:
            dut.ctrl.disconnect("conf-dual-c", net.name)
            dut.ctrl.delete_sandbox("conf-dual-c")
    finally:
        dut.ctrl.delete_network(net.name)
