"""Concurrency: operations on different endpoints may run at the same time."""

from __future__ import annotations

import ipaddress
from concurrent.futures import ThreadPoolExecutor

from netsim.conformance.harness import DriverUnderTest, assert_unchanged, new_id
from netsim.driverapi import InterfaceInfo, JoinInfo

WORKERS = 8


def test_concurrent_endpoint_create_and_delete(dut: DriverUnderTest) -> None:
    nid, data = dut.create_network_direct()
    pool = data[0].pool
    before = dut.kernel.snapshot()

    def lifecycle(index: int) -> str:
        eid = new_id()
        address = ipaddress.ip_interface(f"{pool[10 + index]}/{pool.prefixlen}")
        dut.driver.create_endpoint(nid, eid, InterfaceInfo(address=address), {})
        info = dut.driver.endpoint_oper_info(nid, eid)
        assert isinstance(info, dict)
        dut.driver.delete_endpoint(nid, eid)
        return eid

    try:
        with ThreadPoolExecutor(WORKERS) as pool_executor:
            done = list(pool_executor.map(lifecycle, range(WORKERS * 3)))
        assert len(set(done)) == WORKERS * 3
        assert_unchanged(dut.kernel, before, "concurrent create/delete left something behind")
    finally:
        dut.driver.delete_network(nid)


def test_concurrent_joins_on_different_endpoints(dut: DriverUnderTest) -> None:
    """Join and leave many endpoints at once, each into its own sandbox."""
    nid, data = dut.create_network_direct()
    pool = data[0].pool
    sandboxes = [dut.ctrl.create_sandbox(f"conf-j{i}") for i in range(WORKERS)]

    def join_and_leave(index: int) -> str | None:
        eid = new_id()
        address = ipaddress.ip_interface(f"{pool[50 + index]}/{pool.prefixlen}")
        dut.driver.create_endpoint(nid, eid, InterfaceInfo(address=address), {})
        try:
            jinfo = JoinInfo()
            dut.driver.join(nid, eid, sandboxes[index].key, jinfo, {})
            dut.driver.leave(nid, eid)
            return jinfo.src_name
        finally:
            dut.driver.delete_endpoint(nid, eid)

    try:
        with ThreadPoolExecutor(WORKERS) as executor:
            names = list(executor.map(join_and_leave, range(WORKERS)))
        given = [n for n in names if n is not None]
        assert len(set(given)) == len(given), f"two endpoints were given one interface: {names}"
    finally:
        for sandbox in sandboxes:
            dut.ctrl.delete_sandbox(sandbox.container)
        dut.driver.delete_network(nid)
