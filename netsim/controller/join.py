"""Join and leave: the driver's half, the sandbox's half, and external
connectivity (published ports), each step undone if a later one fails."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from netsim import netlabel
from netsim.controller import discovery
from netsim.controller.records import endpoint_key, sandbox_key
from netsim.controller.sandbox import make_namespace, plug_interface, unplug_interface, update_default_routes
from netsim.driverapi import EventType, IPAddress, JoinInfo
from netsim.errors import ConflictError, ForbiddenError
from netsim.undo import Undo, rollback_on_error

if TYPE_CHECKING:
    from netsim.controller import Controller

HOST_TYPE = "host"
NULL_TYPE = "null"


@functools.lru_cache(maxsize=1024)
def _text(address: IPAddress) -> str:
    """``str(address)``, memoized: a network's gateway is the same on every join."""
    return str(address)


def _driver_type(ctrl: Controller, network: dict[str, Any]) -> str:
    return ctrl.registry.driver(network["driver"]).driver.type()


def _check_mode(ctrl: Controller, sandbox: dict[str, Any], network: dict[str, Any], undo: Undo) -> None:
    """Docker's rules: host-network containers live in the host namespace and
    join nothing else; a null-network container joins nothing else."""
    kind = _driver_type(ctrl, network)
    joined = [_driver_type(ctrl, ctrl.records.network(nid)) for nid, _ in sandbox["endpoints"]]
    if NULL_TYPE in joined or (kind == NULL_TYPE and joined):
        raise ForbiddenError(
            f"container {sandbox['container']!r}: a container on a null network cannot join other networks"
        )
    if kind == HOST_TYPE:
        if joined:
            raise ForbiddenError(
                f"container {sandbox['container']!r} is on other networks: cannot join the host network"
            )
        if sandbox["own_namespace"]:
            # A fresh sandbox joining the host network moves into the host namespace.
            own_ns = sandbox["namespace"]
            ctrl.kernel.delete_namespace(own_ns)
            undo.push("recreate sandbox namespace", lambda: make_namespace(ctrl.kernel, own_ns, Undo()))
            sandbox["namespace"], sandbox["own_namespace"] = ctrl.host.namespace, False
    elif not sandbox["own_namespace"]:
        raise ForbiddenError(
            f"container {sandbox['container']!r} shares the host namespace: it cannot join network {network['name']!r}"
        )


def _save(ctrl: Controller, key: str, record: dict[str, Any], before: dict[str, Any], undo: Undo) -> None:
    ctrl.records.put(key, record)
    undo.push(f"restore {key}", lambda: ctrl.records.put(key, before))


def _load(
    ctrl: Controller, nid: str, eid: str, sid: str
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Shallow copies of the endpoint and sandbox records to update (replace
    their top-level values, never change nested ones in place) and the stored
    records to restore on rollback."""
    endpoint_raw = ctrl.records.endpoint_view(nid, eid)
    sandbox_raw = ctrl.records.sandbox_view(sid)
    return dict(endpoint_raw), endpoint_raw, dict(sandbox_raw), sandbox_raw


def _publish(ctrl: Controller, event: EventType, nid: str, entries: list[list[str]]) -> None:
    """Multi-host only: hand the endpoint's table entries to the cluster's bus."""
    sink = ctrl.config.table_events
    if sink is None:
        return
    for table, key, value_hex in entries:
        sink.publish(ctrl.config.host, event, nid, table, key, bytes.fromhex(value_hex))


def join(ctrl: Controller, nid: str, eid: str, sid: str) -> None:
    endpoint, endpoint_before, sandbox, sandbox_before = _load(ctrl, nid, eid, sid)
    network = ctrl.records.network(nid)
    if endpoint["sandbox"]:
        raise ConflictError(f"endpoint {endpoint['name']!r} is already joined to a sandbox")
    for joined_nid, _ in sandbox["endpoints"]:
        if joined_nid == nid:
            raise ConflictError(
                f"container {sandbox['container']!r} is already connected to network {network['name']!r}"
            )
    driver = ctrl.registry.driver(network["driver"]).driver
    with rollback_on_error() as undo:
        _check_mode(ctrl, sandbox, network, undo)
        jinfo = JoinInfo()
        driver.join(nid, eid, sandbox["namespace"], jinfo, {})
        undo.push("driver leave", lambda: driver.leave(nid, eid))
        if jinfo.src_name:
            endpoint["iface"] = plug_interface(ctrl, sandbox, endpoint, jinfo, undo)
            endpoint["src_name"] = jinfo.src_name
        internal = network["internal"]
        endpoint["gateway"] = _text(jinfo.gateway) if jinfo.gateway and not internal else None
        endpoint["gateway6"] = _text(jinfo.gateway_ipv6) if jinfo.gateway_ipv6 and not internal else None
        endpoint["static_routes"] = (
            [{"dst": str(r.destination), "via": str(r.next_hop) if r.next_hop else None} for r in jinfo.static_routes]
            if jinfo.static_routes
            else []
        )
        endpoint["sandbox"] = sid
        if ctrl.config.table_events is not None:
            endpoint["table_entries"] = [[t, k, v.hex()] for t, k, v in jinfo.table_entries]
        sandbox["endpoints"] = [*sandbox["endpoints"], [nid, eid]]
        _save(ctrl, endpoint_key(nid, eid), endpoint, endpoint_before, undo)
        update_default_routes(ctrl, sandbox, undo)
        _save(ctrl, sandbox_key(sid), sandbox, sandbox_before, undo)
        driver.program_external_connectivity(nid, eid, {netlabel.PORT_MAP: endpoint["ports"]})
        undo.push("revoke external connectivity", lambda: driver.revoke_external_connectivity(nid, eid))
        discovery.joined(ctrl, nid, network, endpoint, sandbox, undo)
    if ctrl.config.table_events is not None:
        _publish(ctrl, EventType.CREATE, nid, endpoint.get("table_entries", []))


def leave(
    ctrl: Controller, nid: str, eid: str, sid: str, *, endpoint_going: bool = False, sandbox_going: bool = False
) -> None:
    """An interface the driver made in this sandbox (InterfaceInfo.sandbox_key) is not
    moved out when it is about to go anyway (a move costs an RCU barrier on Linux):
    ``endpoint_going`` (disconnect deletes the endpoint next) unplugs it in place,
    ``sandbox_going`` (the sandbox is being deleted) leaves it as it is; the
    driver's delete_endpoint removes it there."""
    endpoint, endpoint_before, sandbox, sandbox_before = _load(ctrl, nid, eid, sid)
    if endpoint["sandbox"] != sid:
        raise ConflictError(f"endpoint {endpoint['name']!r} is not joined to container {sandbox['container']!r}")
    network = ctrl.records.network(nid)
    driver = ctrl.registry.driver(network["driver"]).driver
    ports = list(endpoint["ports"])
    published = list(endpoint.get("table_entries", []))
    with rollback_on_error() as undo:
        driver.revoke_external_connectivity(nid, eid)
        undo.push(
            "program external connectivity",
            lambda: driver.program_external_connectivity(nid, eid, {netlabel.PORT_MAP: ports}),
        )
        sandbox["endpoints"] = [pair for pair in sandbox["endpoints"] if pair[1] != eid]
        # Move the default route first: it goes away with the interface otherwise.
        update_default_routes(ctrl, sandbox, undo)
        made_inside = endpoint.get("iface_ns") == sandbox["namespace"]
        if endpoint["iface"] and not (sandbox_going and made_inside):
            in_place = made_inside and endpoint_going
            unplug_interface(ctrl, sandbox, endpoint, undo, in_place=in_place)
            if not in_place:
                endpoint["iface_ns"] = None  # in the host now, where libnetwork's RemoveInterface puts it
        driver.leave(nid, eid)
        endpoint.update(sandbox=None, iface=None, src_name=None, gateway=None, gateway6=None, static_routes=[])
        endpoint.pop("table_entries", None)
        _save(ctrl, endpoint_key(nid, eid), endpoint, endpoint_before, undo)
        _save(ctrl, sandbox_key(sid), sandbox, sandbox_before, undo)
    discovery.left(ctrl, nid, eid, sid)
    if published:
        _publish(ctrl, EventType.DELETE, nid, published)
