"""``.. netsim-checks::``: the conformance suite's checks as a table, generated
from ``netsim/conformance/test_*.py`` at build time.

Each row: the check's name, its area (its module), what it asserts (the
first paragraph of its docstring, else :data:`ASSERTS`) and the libnetwork
behaviour it comes from (:data:`LIBNETWORK`). A check with neither a
docstring nor an entry here is a build warning, so with ``-W`` the list
cannot miss a check.
"""

# ruff: noqa: E501  (two tables of prose, one row a line, read side by side)
from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.parsers.rst import Directive
from sphinx.util import logging

import netsim.conformance

LOG = logging.getLogger(__name__)

#: what a check asserts, for checks without a docstring
ASSERTS = {
    "test_capability_scopes_are_valid": "The registered Capability has a data and a connectivity scope of local, global or swarm.",
    "test_type_is_a_non_empty_string": "type() returns a non-empty string.",
    "test_is_builtin_is_a_bool": "is_builtin() returns a bool.",
    "test_concurrent_endpoint_create_and_delete": "24 endpoint lifecycles on 8 threads at once all succeed and leave the kernel as before.",
    "test_discover_new_node_is_accepted": "discover_new and discover_delete of this node's NODE discovery are accepted.",
    "test_discover_delete_of_unknown_node_is_accepted": "discover_delete of a node never announced is accepted.",
    "test_create_endpoint_keeps_what_was_set": "create_endpoint keeps the MAC and IPv4 address the controller set in InterfaceInfo (or refuses a preset MAC, naming it, as ipvlan does).",
    "test_create_endpoint_fills_empty_fields_validly": "What create_endpoint fills in (MAC, IPv6 address) is valid.",
    "test_endpoint_oper_info_is_a_mapping": "endpoint_oper_info returns a dict with string keys.",
    "test_create_endpoint_on_unknown_network_fails": "create_endpoint on an unknown network raises a netsim error, not a bare exception.",
    "test_delete_endpoint_undoes_create": "delete_endpoint removes everything create_endpoint put in the kernel.",
    "test_event_notify_accepts_every_event_type": "Global scope: event_notify accepts create, update and delete on the registered tables.",
    "test_decode_table_entry_returns_id_and_strings": "Global scope: decode_table_entry returns (object id, dict of strings).",
    "test_program_then_revoke_restores_the_kernel": "revoke_external_connectivity undoes program_external_connectivity in the kernel.",
    "test_revoke_is_safe_to_repeat": "program/revoke can be repeated and a second revoke is harmless.",
    "test_join_interface_names_are_valid": "join names an interface present in the host namespace and a usable destination prefix.",
    "test_join_static_routes_are_valid": "Static routes have type 0 (next hop, with a next hop of the same family) or 1 (connected).",
    "test_create_then_delete_network": "delete_network removes everything create_network put in the kernel.",
    "test_duplicate_create_is_refused": "create_network with an existing network ID is refused with a netsim error.",
    "test_delete_unknown_network_is_not_found": "delete_network of an unknown ID raises NotFoundError.",
    "test_network_through_controller_round_trip": "A network created and deleted through the controller leaves the kernel as before.",
    "test_restart_rebuilds_the_driver_exactly": "A controller reopened on its store replays the driver's networks, endpoints and joins and gets exactly the kernel objects it had.",
    "test_endpoints_of_one_network_reach_each_other": "Two containers on one network reach each other (ICMP), or have loopback only (null semantics).",
}

#: where libnetwork has the rule each check enforces
LIBNETWORK = {
    "test_capability_scopes_are_valid": "driverapi.Capability; datastore.LocalScope / GlobalScope / SwarmScope",
    "test_type_is_a_non_empty_string": "driverapi.Driver.Type()",
    "test_is_builtin_is_a_bool": "driverapi.Driver.IsBuiltIn()",
    "test_concurrent_endpoint_create_and_delete": "the daemon serves container starts concurrently; drivers lock their own state (bridge: network.Lock())",
    "test_concurrent_joins_on_different_endpoints": "as above: concurrent sandbox joins",
    "test_discover_new_node_is_accepted": "driverapi.Driver.DiscoverNew (discoverapi.NodeDiscovery)",
    "test_discover_delete_of_unknown_node_is_accepted": "driverapi.Driver.DiscoverDelete; local drivers return nil",
    "test_create_endpoint_keeps_what_was_set": "driverapi.InterfaceInfo: SetMacAddress/SetIPAddress fail when already set; ipvlan CreateEndpoint refuses a custom MAC",
    "test_create_endpoint_fills_empty_fields_validly": "bridge driver's CreateEndpoint fills the MAC only when empty",
    "test_endpoint_oper_info_is_a_mapping": "driverapi.Driver.EndpointOperInfo returns map[string]interface{}",
    "test_create_endpoint_on_unknown_network_fails": "bridge: getNetwork returns types.NotFoundError",
    "test_delete_endpoint_undoes_create": "bridge DeleteEndpoint removes the veth it created",
    "test_event_notify_accepts_every_event_type": "driverapi.Driver.EventNotify (driverapi.Create/Update/Delete)",
    "test_decode_table_entry_returns_id_and_strings": "driverapi.Driver.DecodeTableEntry",
    "test_program_then_revoke_restores_the_kernel": "bridge ProgramExternalConnectivity / RevokeExternalConnectivity (port mappings)",
    "test_revoke_is_safe_to_repeat": "sandbox.releaseOSSbox and endpoint leave both revoke: drivers must tolerate it",
    "test_join_interface_names_are_valid": "JoinInfo.InterfaceName().SetNames(srcName, dstPrefix); osl moves srcName into the sandbox",
    "test_duplicate_endpoint_id_is_refused": "bridge/macvlan/overlay CreateEndpoint: endpoint already exists; null and host CreateEndpoint return nil",
    "test_malformed_option_value_is_invalid_parameter": "bridge parseNetworkGenericOptions / fromLabels: parseErr -> types.InvalidParameterErrorf (unknown keys ignored)",
    "test_ipv6_endpoint_on_a_dual_stack_network": "CreateNetwork ipV6Data; InterfaceInfo.AddressIPv6; osl sets both addresses on the interface",
    "test_published_port_is_reachable_from_outside": "bridge ProgramExternalConnectivity (DNAT + docker-proxy); EndpointOperInfo netlabel.PortMap",
    "test_join_gateway_is_on_link": "endpoint.SetGateway stores any address; sandbox adds connected routes (ep.iface.routes) before the default route",
    "test_join_static_routes_are_valid": "types.NEXTHOP (0) / types.CONNECTED (1); JoinInfo.AddStaticRoute",
    "test_leave_then_join_again": "an endpoint leaves and joins again on container restart",
    "test_disconnect_undoes_connect": "docker network disconnect: Leave then DeleteEndpoint",
    "test_create_then_delete_network": "bridge DeleteNetwork removes the bridge and its rules",
    "test_duplicate_create_is_refused": 'bridge CreateNetwork: types.ForbiddenErrorf("network %s exists")',
    "test_delete_unknown_network_is_not_found": "bridge DeleteNetwork: types.NotFoundError for an unknown network",
    "test_allocate_and_free_are_symmetric": "NetworkAllocate / NetworkFree (global scope; overlay); local drivers: types.NotImplementedError",
    "test_network_through_controller_round_trip": "controller.NewNetwork / network.Delete",
    "test_endpoints_of_one_network_reach_each_other": "endpoints of one network share a link (bridge) or routes",
    "test_separate_networks_do_not_reach_each_other": "bridge isolation: DOCKER-ISOLATION chains between bridge networks",
    "test_restart_rebuilds_the_driver_exactly": "the daemon restarts with live containers: drivers restore from the store",
}


def collect_checks(suite: Path) -> list[dict[str, Any]]:
    """Every ``test_*`` function of the suite's modules, in file order."""
    checks = []
    for module in sorted(suite.glob("test_*.py")):
        tree = ast.parse(module.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                doc = ast.get_docstring(node) or ""
                checks.append(
                    {
                        "name": node.name,
                        "area": module.stem.removeprefix("test_"),
                        "module": module.name,
                        "asserts": doc.split("\n\n")[0].replace("\n", " ") or ASSERTS.get(node.name, ""),
                        "libnetwork": LIBNETWORK.get(node.name, ""),
                    }
                )
    return checks


def _cell(text: str, literal: bool = False) -> nodes.entry:
    entry = nodes.entry()
    paragraph = nodes.paragraph()
    paragraph += nodes.literal(text=text) if literal else nodes.Text(text)
    entry += paragraph
    return entry


class ChecksDirective(Directive):
    has_content = False

    def run(self) -> list[nodes.Node]:
        suite = Path(netsim.conformance.__file__).parent
        checks = collect_checks(suite)
        headers = ("check", "area", "what it asserts", "where libnetwork has it")
        table = nodes.table()
        group = nodes.tgroup(cols=len(headers))
        table += group
        for width in (30, 10, 40, 30):
            group += nodes.colspec(colwidth=width)
        head = nodes.thead()
        row = nodes.row()
        for header in headers:
            row += _cell(header)
        head += row
        group += head
        body = nodes.tbody()
        for check in checks:
            if not check["asserts"]:
                LOG.warning(
                    "conformance check %s (%s) has no docstring: give it one, or a row in ASSERTS and "
                    "LIBNETWORK of docs/_ext/netsim_checks.py",
                    check["name"],
                    check["module"],
                )
            if not check["libnetwork"]:
                LOG.info("conformance check %s names no libnetwork source", check["name"])
            row = nodes.row()
            row += _cell(check["name"], literal=True)
            row += _cell(check["area"])
            row += _cell(check["asserts"] or "(undocumented)")
            row += _cell(check["libnetwork"] or "(not stated)")
            body += row
        group += body
        return [table]


def setup(app: Any) -> dict[str, Any]:
    app.add_directive("netsim-checks", ChecksDirective)
    return {"version": "1", "parallel_read_safe": True}
