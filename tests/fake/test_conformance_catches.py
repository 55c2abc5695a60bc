"""Every conformance check can fail: for each one, a driver with exactly the
fault it looks for (tests/fake/faulty_drivers.py) makes it fail."""

from __future__ import annotations

from pathlib import Path

import pytest

# check (module::test) -> the faulty driver class that must make it fail
CATCHES = {
    "test_capability.py::test_capability_scopes_are_valid": "BadScope",
    "test_capability.py::test_type_is_a_non_empty_string": "EmptyType",
    "test_capability.py::test_is_builtin_is_a_bool": "BuiltinNotBool",
    "test_network.py::test_create_then_delete_network": "LeakyDeleteNetwork",
    "test_network.py::test_duplicate_create_is_refused": "DuplicateCreateAccepted",
    "test_network.py::test_delete_unknown_network_is_not_found": "DeleteUnknownSilent",
    "test_network.py::test_allocate_and_free_are_symmetric": "AllocateAsymmetric",
    "test_network.py::test_network_through_controller_round_trip": "LeakyDeleteNetwork",
    "test_endpoint.py::test_create_endpoint_keeps_what_was_set": "OverwritesAddress",
    "test_endpoint.py::test_create_endpoint_fills_empty_fields_validly": "BadMac",
    "test_endpoint.py::test_endpoint_oper_info_is_a_mapping": "OperInfoList",
    "test_endpoint.py::test_create_endpoint_on_unknown_network_fails": "AcceptsUnknownNetwork",
    "test_endpoint.py::test_delete_endpoint_undoes_create": "LeakyDeleteEndpoint",
    "test_endpoint.py::test_duplicate_endpoint_id_is_refused": "DuplicateEndpointLeaks",
    "test_endpoint.py::test_ipv6_endpoint_on_a_dual_stack_network": "NoDualStack",
    "test_network.py::test_malformed_option_value_is_invalid_parameter": "MalformedMtuBareError",
    "test_join.py::test_join_interface_names_are_valid": "BadPrefix",
    "test_join.py::test_join_gateway_is_on_link": "GatewayOutside",
    "test_join.py::test_join_static_routes_are_valid": "BadStaticRoute",
    "test_join.py::test_leave_then_join_again": "LeaveForgetsJoin",
    "test_join.py::test_disconnect_undoes_connect": "LeakyDeleteEndpoint",
    "test_external.py::test_program_then_revoke_restores_the_kernel": "RevokeNoop",
    "test_external.py::test_revoke_is_safe_to_repeat": "RevokeTwiceRaises",
    "test_external.py::test_published_port_is_reachable_from_outside": "PublishesToTheWrongPort",
    "test_events.py::test_event_notify_accepts_every_event_type": "GlobalBadEvents",
    "test_events.py::test_decode_table_entry_returns_id_and_strings": "GlobalBadEvents",
    "test_discovery.py::test_discover_new_node_is_accepted": "DiscoveryRaises",
    "test_discovery.py::test_discover_delete_of_unknown_node_is_accepted": "DiscoveryRaises",
    "test_concurrency.py::test_concurrent_endpoint_create_and_delete": "NotThreadSafe",
    "test_concurrency.py::test_concurrent_joins_on_different_endpoints": "NotThreadSafe",
    "test_reachability.py::test_endpoints_of_one_network_reach_each_other": "IccAlwaysOff",
    "test_reachability.py::test_separate_networks_do_not_reach_each_other": "NoIsolation",
    "test_restart.py::test_restart_rebuilds_the_driver_exactly": "RandomNames",
}


def test_every_check_has_a_fault() -> None:
    import netsim.conformance

    suite = Path(netsim.conformance.__file__).parent
    checks = set()
    for module in sorted(suite.glob("test_*.py")):
        for line in module.read_text().splitlines():
            if line.startswith("def test_"):
                checks.add(f"{module.name}::{line[4:].split('(')[0]}")
    assert checks == set(CATCHES), f"checks without a fault: {sorted(checks - set(CATCHES))}"


@pytest.mark.parametrize("check", sorted(CATCHES))
def test_check_catches_its_fault(pytester: pytest.Pytester, check: str) -> None:
    pytester.syspathinsert(Path(__file__).parent)
    module, name = check.split("::")
    result = pytester.runpytest_inprocess(
        "--pyargs",
        f"netsim.conformance.{module[:-3]}",
        f"--netsim-driver=faulty_drivers:{CATCHES[check]}",
        "-k",
        name,
        "-p",
        "no:cacheprovider",
    )
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) >= 1 or outcomes.get("errors", 0) >= 1, (
        f"{check} did not catch {CATCHES[check]}: {outcomes}"
    )
    assert any(line.startswith(("FAILED", "ERROR")) and name in line for line in result.outlines), "\n".join(
        result.outlines[-15:]
    )


def test_the_unbroken_wrapper_passes_those_checks(pytester: pytest.Pytester) -> None:
    """The wrapper itself is sound, so each failure above is the fault's doing."""
    pytester.syspathinsert(Path(__file__).parent)
    result = pytester.runpytest_inprocess(
        "--pyargs", "netsim.conformance", "--netsim-driver=faulty_drivers:Wrapped", "-p", "no:cacheprovider"
    )
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0 and outcomes.get("errors", 0) == 0, "\n".join(result.outlines[-30:])
    assert outcomes.get("passed", 0) >= 20


def test_a_gateway_reached_through_a_connected_route_passes(pytester: pytest.Pytester) -> None:
    """Calico's link-local gateway outside the subnet, reached through a CONNECTED
    /32: libnetwork accepts it, so the join checks must too (they refused it once)."""
    pytester.syspathinsert(Path(__file__).parent)
    result = pytester.runpytest_inprocess(
        "--pyargs",
        "netsim.conformance.test_join",
        "--netsim-driver=faulty_drivers:CalicoGateway",
        "-p",
        "no:cacheprovider",
    )
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0 and outcomes.get("errors", 0) == 0, "\n".join(result.outlines[-30:])
    assert outcomes.get("passed", 0) >= 5
