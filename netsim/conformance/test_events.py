"""Table events: event_notify and decode_table_entry (global-scope drivers)."""

from __future__ import annotations

import pytest

from netsim.conformance.harness import DriverUnderTest, new_id
from netsim.driverapi import EventType, NetworkInfo


def _require_global(dut: DriverUnderTest) -> None:
    if not dut.is_global:
        pytest.skip(f"{dut.name} has {dut.capability.data_scope} data scope: table events are for global-scope drivers")


def test_event_notify_accepts_every_event_type(dut: DriverUnderTest) -> None:
    _require_global(dut)
    nid = new_id()
    ninfo = NetworkInfo()
    dut.driver.create_network(nid, dut.network_options(), ninfo, dut.ipam_data(), [])
    try:
        tables = list(ninfo.tables) or ["endpoint_table"]
        for event in EventType:
            for table in tables:
                dut.driver.event_notify(event, nid, table, new_id(), b"")
    finally:
        dut.driver.delete_network(nid)


def test_decode_table_entry_returns_id_and_strings(dut: DriverUnderTest) -> None:
    _require_global(dut)
    nid = new_id()
    ninfo = NetworkInfo()
    dut.driver.create_network(nid, dut.network_options(), ninfo, dut.ipam_data(), [])
    try:
        for table in list(ninfo.tables) or ["endpoint_table"]:
            result = dut.driver.decode_table_entry(table, new_id(), b"")
            assert isinstance(result, tuple) and len(result) == 2, f"decode_table_entry returned {result!r}"
            object_id, fields = result
            assert isinstance(object_id, str)
            assert isinstance(fields, dict) and all(
                isinstance(k, str) and isinstance(v, str) for k, v in fields.items()
            )
    finally:
        dut.driver.delete_network(nid)
