"""Capability: what the driver declares when it registers."""

from __future__ import annotations

from netsim.conformance.harness import DriverUnderTest
from netsim.driverapi import SCOPES, Capability


def test_capability_scopes_are_valid(dut: DriverUnderTest) -> None:
    cap = dut.capability
    assert isinstance(cap, Capability)
    assert cap.data_scope in SCOPES, f"data scope {cap.data_scope!r} is not one of {SCOPES}"
    assert cap.connectivity_scope in SCOPES, f"connectivity scope {cap.connectivity_scope!r} is not one of {SCOPES}"


def test_type_is_a_non_empty_string(dut: DriverUnderTest) -> None:
    kind = dut.driver.type()
    assert isinstance(kind, str) and kind.strip(), f"type() returned {kind!r}"


def test_is_builtin_is_a_bool(dut: DriverUnderTest) -> None:
    assert isinstance(dut.driver.is_builtin(), bool)
