"""Concurrency: operations on different endpoints may run at the same time."""

from __future__ import annotations

import ipaddress
from concurrent.futures import ThreadPoolExecutor

from netsim.conformance.harness import DriverUnderTest, new_id
from netsim.driverapi import InterfaceInfo

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
        assert dut.kernel.snapshot() == before, "concurrent create/delete left something behind"
    finally:
        dut.driver.delete_network(nid)


def test_concurrent_connects_get_distinct_addresses(dut: DriverUnderTest) -> None:
    net = dut.create_network("conf-conc")
    names = [f"conf-c{i}" for i in range(WORKERS)]
    for name in names:
        dut.ctrl.create_sandbox(name)
    try:
        with ThreadPoolExecutor(WORKERS) as executor:
            endpoints = list(executor.map(lambda n: dut.ctrl.connect(n, net.name), names))
        addresses = [ep.address for ep in endpoints if ep.address is not None]
        assert len(set(addresses)) == len(addresses), f"duplicate addresses handed out: {addresses}"
    finally:
        for name in names:
            dut.ctrl.delete_sandbox(name)
        dut.ctrl.delete_network(net.name)
