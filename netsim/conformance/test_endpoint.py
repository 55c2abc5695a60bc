"""Endpoints: create fills only what is empty, oper info, delete."""

from __future__ import annotations

import ipaddress

from netsim.conformance.harness import DriverUnderTest, assert_unchanged, expect_error, new_id
from netsim.driverapi import InterfaceInfo
from netsim.errors import NetsimError
from netsim.validate import parse_mac

PRESET_MAC = "02:42:0a:4d:00:63"


def test_create_endpoint_keeps_what_was_set(dut: DriverUnderTest) -> None:
    nid, data = dut.create_network_direct()
    eid = new_id()
    address = ipaddress.ip_interface(f"{data[0].pool[99]}/{data[0].pool.prefixlen}")
    ifinfo = InterfaceInfo(mac=PRESET_MAC, address=address)
    try:
        dut.driver.create_endpoint(nid, eid, ifinfo, {})
        try:
            assert ifinfo.address == address, f"driver overwrote the IPv4 address: {ifinfo.address}"
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
