"""Networks: create/delete and allocate/free."""

from __future__ import annotations

from netsim import netlabel
from netsim.conformance.harness import DriverUnderTest, assert_unchanged, expect_error, new_id
from netsim.driverapi import NetworkInfo
from netsim.errors import (
    InvalidParameterError,
    NetsimError,
    NotFoundError,
    NotImplementedByDriverError,
    PluginReplyError,
)


def test_create_then_delete_network(dut: DriverUnderTest) -> None:
    before = dut.kernel.snapshot()
    nid, _ = dut.create_network_direct()
    dut.driver.delete_network(nid)
    assert_unchanged(dut.kernel, before, "delete_network did not undo what create_network did in the kernel")


def test_duplicate_create_is_refused(dut: DriverUnderTest) -> None:
    nid, data = dut.create_network_direct()
    try:
        with expect_error(NetsimError, "from a second create_network with the same id"):
            dut.driver.create_network(nid, dut.network_options(), NetworkInfo(), data, [])
    finally:
        dut.driver.delete_network(nid)


def test_delete_unknown_network_is_not_found(dut: DriverUnderTest) -> None:
    with expect_error((NotFoundError, PluginReplyError), "from delete_network of an unknown network"):
        dut.driver.delete_network(new_id())


def test_allocate_and_free_are_symmetric(dut: DriverUnderTest) -> None:
    """Global-scope drivers allocate and free; local ones may say "not implemented"."""
    nid = new_id()
    data = dut.ipam_data()
    try:
        first = dut.driver.network_allocate(nid, dict(dut.options), data, [])
    except NotImplementedByDriverError:
        assert not dut.is_global, "a global-scope driver must implement network_allocate"
        with expect_error(NotImplementedByDriverError, "from network_free when network_allocate is not implemented"):
            dut.driver.network_free(nid)
        return
    assert isinstance(first, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in first.items())
    dut.driver.network_free(nid)
    again = dut.driver.network_allocate(nid, dict(dut.options), data, [])
    assert again == first, "allocate after free returned different options: allocation state leaked"
    dut.driver.network_free(nid)


def test_network_through_controller_round_trip(dut: DriverUnderTest) -> None:
    before = dut.kernel.snapshot()
    net = dut.create_network("conf-net")
    dut.ctrl.delete_network(net.name)
    assert_unchanged(dut.kernel, before, "the kernel changed")


def test_malformed_option_value_is_invalid_parameter(dut: DriverUnderTest) -> None:
    """A malformed value of a driver option (``com.docker.network.driver.mtu=12ab``)
    is refused with InvalidParameterError, not another error, and the refused
    create leaves the kernel as it was; a driver that does not take the option
    (null, host, overlay) may ignore it.

    libnetwork's bridge parses its options with ``parseErr`` →
    ``types.InvalidParameterErrorf``; like libnetwork it ignores option keys it
    does not know, so this check is about values, not unknown keys."""
    before = dut.kernel.snapshot()
    nid = new_id()
    options = dut.network_options()
    options[netlabel.GENERIC_DATA] = {**options[netlabel.GENERIC_DATA], netlabel.DRIVER_MTU: "12ab"}
    try:
        dut.driver.create_network(nid, options, NetworkInfo(), dut.ipam_data(), [])
    except InvalidParameterError:
        assert_unchanged(dut.kernel, before, "a create_network refused for a malformed option changed the kernel")
        return
    except Exception as exc:
        raise AssertionError(
            f"expected InvalidParameterError for {netlabel.DRIVER_MTU}='12ab', got {type(exc).__name__}: {exc}"
        ) from exc
    dut.driver.delete_network(nid)
