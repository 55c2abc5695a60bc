"""What the controller does for service discovery at a join, a leave, a
sandbox's deletion and a recovery, and with service records from other hosts:
the glue between :mod:`netsim.controller.services` (the records and the
resolvers' lookups) and the kernel's resolvers and the cluster's table events."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from netsim.controller.services import SERVICE_TABLE, ServiceRecord, resolves_names
from netsim.driverapi import EventType
from netsim.kernel.dns import RESOLVER_ADDRESS
from netsim.undo import Undo

if TYPE_CHECKING:
    from netsim.controller import Controller


def _plain(address: str | None) -> str | None:
    return address.partition("/")[0] if address else None


def joined(
    ctrl: Controller,
    nid: str,
    network: dict[str, Any],
    endpoint: dict[str, Any],
    sandbox: dict[str, Any],
    undo: Undo,
) -> None:
    """After a join: the endpoint's records, the sandbox's resolver if it has
    none yet, and the record for the other hosts (global networks). O(1)."""
    driver_type = ctrl.registry.driver(network["driver"]).driver.type()
    if not resolves_names(network["name"], driver_type):
        return
    services, sid = ctrl.services, sandbox["id"]
    record = ServiceRecord(
        endpoint=endpoint["id"],
        container=sandbox["container"],
        aliases=tuple(endpoint.get("aliases") or ()),
        ipv4=_plain(endpoint["address"]),
        ipv6=_plain(endpoint["address_ipv6"]),
        endpoint_name=endpoint["name"] if endpoint["name"] != sandbox["container"] else None,
    )
    services.add_joined(sid, nid, network["name"], record)
    undo.push("remove service records", lambda: services.remove_joined(sid, nid, record.endpoint))
    ns = sandbox["namespace"]
    if sandbox["own_namespace"] and sid not in services.resolvers:
        ctrl.kernel.add_dns_server(ns, RESOLVER_ADDRESS, services.lookup_for(sid))
        services.resolvers[sid] = ns
        undo.push("stop the resolver", lambda: _stop_resolver(ctrl, sid))
    if network.get("scope") == "global":
        _publish(ctrl, EventType.CREATE, nid, record)


def left(ctrl: Controller, nid: str, eid: str, sid: str) -> None:
    """After a leave: the endpoint's records go (the resolver stays until the
    sandbox goes, as Docker's does)."""
    record = ctrl.services.remove_joined(sid, nid, eid)
    if (
        record is not None
        and ctrl.config.table_events is not None
        and ctrl.records.network(nid).get("scope") == "global"
    ):
        _publish(ctrl, EventType.DELETE, nid, record)


def sandbox_deleted(ctrl: Controller, sandbox: dict[str, Any]) -> None:
    """Before a sandbox's namespace goes: stop its resolver (its socket would
    keep the namespace alive on the real kernel)."""
    ctrl.services.forget_sandbox(sandbox["id"])
    _stop_resolver(ctrl, sandbox["id"])


def _stop_resolver(ctrl: Controller, sid: str) -> None:
    ns = ctrl.services.resolvers.pop(sid, None)
    if ns is not None and RESOLVER_ADDRESS in ctrl.kernel.dns_servers(ns):
        ctrl.kernel.delete_dns_server(ns, RESOLVER_ADDRESS)


def _publish(ctrl: Controller, event: EventType, nid: str, record: ServiceRecord) -> None:
    sink = ctrl.config.table_events
    if sink is not None:
        sink.publish(ctrl.config.host, event, nid, SERVICE_TABLE, record.endpoint, record.to_wire())


def table_event(ctrl: Controller, event: EventType, nid: str, value: bytes) -> None:
    """A record from another host (networkdb's endpoint_table): add or remove it."""
    record = ServiceRecord.from_wire(value)
    if event == EventType.DELETE:
        ctrl.services.remove(nid, record.endpoint)
    else:
        ctrl.services.add(nid, ctrl.records.network(nid)["name"], record)


def rebuild(ctrl: Controller) -> None:
    """After a recovery: the records of every joined endpoint, and a fresh
    resolver in every sandbox that should have one (a crashed process took
    its resolvers with it; one left by an in-process controller is replaced)."""
    for sandbox in ctrl.records.views_under("sandbox/"):
        ns = sandbox["namespace"]
        if sandbox["own_namespace"] and RESOLVER_ADDRESS in ctrl.kernel.dns_servers(ns):
            # a resolver left by the controller that died answers from its dead records
            ctrl.kernel.delete_dns_server(ns, RESOLVER_ADDRESS)
        for nid, eid in sandbox["endpoints"]:
            network = ctrl.records.network(nid)
            endpoint = ctrl.records.endpoint_view(nid, eid)
            joined(ctrl, nid, network, endpoint, sandbox, Undo())


class ServiceTableSink:
    """Where the cluster hands ``endpoint_table`` events (as a driver's
    ``event_notify`` would take its own tables'): into this host's records."""

    def __init__(self, ctrl: Controller) -> None:
        self.ctrl = ctrl

    def event_notify(self, event: EventType, nid: str, table: str, key: str, value: bytes) -> None:
        table_event(self.ctrl, event, nid, value)
