"""Discovery: node and datastore notifications are accepted."""

from __future__ import annotations

from netsim.conformance.harness import DriverUnderTest
from netsim.driverapi import DiscoveryType


def _node(dut: DriverUnderTest) -> dict[str, object]:
    return {"Address": dut.ctrl.host.host_ip, "BindAddress": dut.ctrl.host.host_ip, "Self": True}


def test_discover_new_node_is_accepted(dut: DriverUnderTest) -> None:
    dut.driver.discover_new(DiscoveryType.NODE, _node(dut))
    dut.driver.discover_delete(DiscoveryType.NODE, _node(dut))


def test_discover_delete_of_unknown_node_is_accepted(dut: DriverUnderTest) -> None:
    dut.driver.discover_delete(
        DiscoveryType.NODE, {"Address": "198.18.200.9", "BindAddress": "198.18.200.9", "Self": False}
    )
