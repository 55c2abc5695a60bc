"""Restart and recovery: a controller opened on a store that holds records
takes them back and converges with the kernel, as libnetwork's daemon does
at start (``sandboxCleanup``, stale endpoint removal, IPAM bitmaps reloaded).

The steps, each safe to repeat (a crash during recovery is recovered the
next time):

1. **Records**: name indexes without their object go; endpoints of a missing
   network go; sandbox/endpoint cross references are made to agree.
2. **Replay**: every in-process driver is called again with each network (in
   creation order), endpoint and join, on a :class:`ReplayKernel` that
   changes nothing but rules and notes which links each object owns.
3. **Health**: an object whose kernel side is gone (a sandbox without its
   namespace, a network or endpoint missing a link it owns, a joined
   endpoint whose interface or address is not in its sandbox) is *broken*,
   and so is an endpoint no sandbox uses (libnetwork's
   ``cleanupLocalEndpoints`` removes those "stale endpoints" at start);
   a broken network breaks its endpoints, a broken sandbox the endpoints
   joined to it (Docker removes a dead container's endpoints the same way).
4. **Clean-up** of broken objects: the driver forgets them (still replaying,
   so it does not touch the kernel), then what is left of them in the kernel
   is removed, their addresses and pools go back to IPAM, their records go.
5. **Sweep**, live: namespaces of this host's containers that no sandbox
   owns, links in the host or a sandbox that no object owns, rules no object
   owns; each sandbox's default routes are reset to what its record says.
6. **IPAM** (address spaces the IPAM can enumerate, local scope only: other
   hosts own addresses in global pools): pools no network owns are
   released, addresses no record owns are released, owned ones missing from
   the bitmap are taken back. No address is leaked or handed out twice.

Remote (out-of-process) drivers are not replayed: a plugin keeps its own
state across a daemon restart, as Docker assumes.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from netsim import netlabel
from netsim.controller.collector import collector_paused
from netsim.controller.discovery import rebuild as rebuild_service_records
from netsim.controller.ipam_reconcile import parse_ip_text as _ip
from netsim.controller.ipam_reconcile import quietly as _quietly
from netsim.controller.ipam_reconcile import reconcile_ipam
from netsim.controller.records import endpoint_key, network_key, sandbox_key
from netsim.controller.replay import ReplayKernel
from netsim.controller.views import ipam_data_of
from netsim.driverapi import InterfaceInfo, JoinInfo, NetworkInfo
from netsim.errors import NetsimError, NotFoundError

if TYPE_CHECKING:
    from netsim.controller import Controller

Record = dict[str, Any]
KEPT_LINKS = frozenset({"lo"})


@dataclass
class RecoveryReport:
    """What a recovery found and did; ``removed`` and ``swept`` say why, one line each."""

    networks: int = 0
    endpoints: int = 0
    sandboxes: int = 0
    removed: list[str] = field(default_factory=list)
    swept: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.removed or self.swept or self.released)


class _State:
    """The records under recovery, indexed once (O(records))."""

    def __init__(self, ctrl: Controller) -> None:
        # Three prefix listings, not one read per record: 10,000 containers in well under a second.
        self.networks = {r["id"]: r for r in _records(ctrl, "network/")}
        self.endpoints = {(r["network"], r["id"]): r for r in _records(ctrl, "endpoint/")}
        self.sandboxes = {r["id"]: r for r in _records(ctrl, "sandbox/")}
        self.broken_networks: dict[str, str] = {}
        self.broken_endpoints: dict[tuple[str, str], str] = {}
        self.broken_sandboxes: dict[str, str] = {}
        self.replayed_joins: set[tuple[str, str]] = set()


def _records(ctrl: Controller, prefix: str) -> list[Record]:
    """Copies of the records under ``prefix`` whose top-level values recovery
    may replace (never change in place: nested values are the store's)."""
    return [dict(record) for record in ctrl.records.views_under(prefix)]


def _replays(ctrl: Controller, driver_name: str) -> bool:
    entry = ctrl.registry.drivers().get(driver_name)
    return entry is not None and getattr(entry.driver, "replay_on_recovery", True)


def recover(ctrl: Controller, replay: ReplayKernel) -> RecoveryReport:
    """The steps above (see :func:`collector_paused`)."""
    with collector_paused():
        return _recover(ctrl, replay)


def _recover(ctrl: Controller, replay: ReplayKernel) -> RecoveryReport:
    report = RecoveryReport()
    state = _State(ctrl)
    _repair_records(ctrl, state, report)
    report.networks, report.endpoints, report.sandboxes = (
        len(state.networks),
        len(state.endpoints),
        len(state.sandboxes),
    )
    _replay(ctrl, replay, state)
    links = _Links(ctrl)
    _check_health(ctrl, replay, state, links)
    _clean_broken(ctrl, replay, state, report)
    replay.go_live()
    _sweep(ctrl, replay, state, report, links)
    reconcile_ipam(ctrl, state, report)
    rebuild_service_records(ctrl)
    return report


# --- 1. records ----------------------------------------------------------------------------------
def _repair_records(ctrl: Controller, state: _State, report: RecoveryReport) -> None:
    """Make the loaded records agree with each other (in the store and in ``state``)."""
    for pair in ctrl.store.list("name/"):
        parts = pair.key.split("/")
        kind = parts[1]
        if kind == "network":
            present = pair.value in state.networks
        elif kind == "endpoint":
            present = (parts[2], pair.value) in state.endpoints
        else:
            present = pair.value in state.sandboxes
        if not present:
            ctrl.records.delete(pair.key)
            report.removed.append(f"name {'/'.join(parts[1:])}: its {kind} record is gone")
    for key in [key for key in state.endpoints if key[0] not in state.networks]:
        del state.endpoints[key]
        ctrl.records.delete(endpoint_key(*key))
        report.removed.append(f"endpoint record {endpoint_key(*key)}: its network is gone")
    for sandbox in state.sandboxes.values():
        joined = [
            [nid, eid]
            for nid, eid in sandbox["endpoints"]
            if (nid, eid) in state.endpoints and state.endpoints[(nid, eid)]["sandbox"] == sandbox["id"]
        ]
        if joined != sandbox["endpoints"]:
            sandbox["endpoints"] = joined
            ctrl.records.put(sandbox_key(sandbox["id"]), dict(sandbox))
            report.removed.append(f"container {sandbox['container']!r}: join list repaired")


# --- 2. replay -----------------------------------------------------------------------------------
def _replay(ctrl: Controller, replay: ReplayKernel, state: _State) -> None:
    by_created = sorted(state.networks.values(), key=lambda r: (r.get("created", 0), r["id"]))
    for network in by_created:
        nid = network["id"]
        if not _replays(ctrl, network["driver"]):
            continue
        driver = ctrl.registry.driver(network["driver"]).driver
        replay.owner = ("network", nid)
        try:
            options = {
                netlabel.GENERIC_DATA: dict(network["options"]),
                netlabel.ENABLE_IPV6: network["ipv6"],
                netlabel.INTERNAL: network["internal"],
            }
            driver.create_network(
                nid, options, NetworkInfo(), ipam_data_of(network["ipv4"]), ipam_data_of(network["ipv6_pools"])
            )
        except NetsimError as exc:
            state.broken_networks[nid] = f"its driver refused it again: {exc}"
            continue
        endpoints = [(key, r) for key, r in state.endpoints.items() if key[0] == nid]
        for key, endpoint in sorted(endpoints, key=lambda item: (item[1].get("created", 0), item[0])):
            replay.owner = ("endpoint", *key)
            ifinfo = InterfaceInfo(
                endpoint["mac"],
                ipaddress.ip_interface(endpoint["address"]) if endpoint["address"] else None,
                ipaddress.ip_interface(endpoint["address_ipv6"]) if endpoint["address_ipv6"] else None,
                endpoint.get("iface_ns"),  # where the driver made the interface
            )
            options = {netlabel.MAC_ADDRESS: endpoint["mac"] or "", netlabel.PORT_MAP: endpoint["ports"]}
            try:
                driver.create_endpoint(nid, key[1], ifinfo, options)
            except NetsimError as exc:
                state.broken_endpoints[key] = f"its driver refused it again: {exc}"
    for sandbox in state.sandboxes.values():
        for nid, eid in sandbox["endpoints"]:
            network = state.networks[nid]
            if (nid, eid) in state.broken_endpoints or not _replays(ctrl, network["driver"]):
                continue
            endpoint = state.endpoints[(nid, eid)]
            driver = ctrl.registry.driver(network["driver"]).driver
            replay.owner = ("endpoint", nid, eid)
            try:
                driver.join(nid, eid, sandbox["namespace"], JoinInfo(), {})
                state.replayed_joins.add((nid, eid))
                driver.program_external_connectivity(nid, eid, {netlabel.PORT_MAP: endpoint["ports"]})
            except NetsimError as exc:
                state.broken_endpoints[(nid, eid)] = f"its driver refused the join again: {exc}"
            if endpoint["iface"] and endpoint["src_name"]:
                owned = replay.owned_links[("endpoint", nid, eid)]
                owned.discard((endpoint.get("iface_ns") or ctrl.host.namespace, endpoint["src_name"]))
                owned.add((sandbox["namespace"], endpoint["iface"]))
    replay.owner = None


# --- 3. health -----------------------------------------------------------------------------------
class _Links:
    """Link names per namespace, read once each."""

    def __init__(self, ctrl: Controller) -> None:
        self.kernel = ctrl.kernel
        self.known = set(ctrl.kernel.namespaces())
        self._cache: dict[str, set[str]] = {}

    def names(self, ns: str) -> set[str]:
        if ns not in self._cache:
            self._cache[ns] = set(self.kernel.link_names(ns)) if ns in self.known else set()
        return self._cache[ns]

    def missing(self, refs: Iterable[tuple[str, str]]) -> list[str]:
        gone = [(ns, name) for ns, name in refs if name not in self.names(ns)]
        return sorted(f"{name} in {ns}" for ns, name in gone) if gone else []


def _check_health(ctrl: Controller, replay: ReplayKernel, state: _State, links: _Links) -> None:
    for sid, sandbox in state.sandboxes.items():
        if sandbox["own_namespace"] and sandbox["namespace"] not in links.known:
            state.broken_sandboxes[sid] = f"its namespace {sandbox['namespace']} is gone"
    for nid in state.networks:
        missing = links.missing(replay.owned_links.get(("network", nid), ()))
        if missing and nid not in state.broken_networks:
            state.broken_networks[nid] = f"missing {', '.join(missing)}"
    for key, endpoint in state.endpoints.items():
        if key in state.broken_endpoints:
            continue
        if key[0] in state.broken_networks:
            state.broken_endpoints[key] = "its network is broken"
            continue
        sid = endpoint["sandbox"]
        if sid is None:
            # libnetwork's cleanupLocalEndpoints: at start, an endpoint no sandbox uses is stale.
            state.broken_endpoints[key] = "stale: no container uses it (Docker removes these at start)"
            continue
        if sid in state.broken_sandboxes:
            state.broken_endpoints[key] = "its container's sandbox is gone"
            continue
        missing = links.missing(replay.owned_links.get(("endpoint", *key), ()))
        if missing:
            state.broken_endpoints[key] = f"missing {', '.join(missing)}"
        elif sid is not None and endpoint["iface"]:
            ns = state.sandboxes[sid]["namespace"]
            present = {address for dev, address in ctrl.kernel.addresses(ns) if dev == endpoint["iface"]}
            lost = [a for a in (endpoint["address"], endpoint["address_ipv6"]) if a and a not in present]
            if lost or endpoint["iface"] not in links.names(ns):
                state.broken_endpoints[key] = f"its interface in {ns} lost {lost or 'itself'}"


# --- 4. clean-up of broken objects ---------------------------------------------------------------------
def _clean_broken(ctrl: Controller, replay: ReplayKernel, state: _State, report: RecoveryReport) -> None:
    for key, why in sorted(state.broken_endpoints.items()):
        report.removed.append(f"endpoint {state.endpoints[key]['name']!r}: {why}")
        _remove_endpoint(ctrl, replay, state, key)
    for nid, why in sorted(state.broken_networks.items()):
        report.removed.append(f"network {state.networks[nid]['name']!r}: {why}")
        _remove_network(ctrl, replay, state, nid)
    for sid, why in sorted(state.broken_sandboxes.items()):
        sandbox = state.sandboxes.pop(sid)
        ctrl.records.delete(sandbox_key(sid))
        ctrl.records.release_name("sandbox", sandbox["container"])
        report.removed.append(f"sandbox of container {sandbox['container']!r}: {why}")


def _delete_links(ctrl: Controller, refs: Iterable[tuple[str, str]]) -> None:
    known = set(ctrl.kernel.namespaces())
    for ns, name in sorted(refs):
        if ns in known:
            _quietly(ctrl.kernel.delete_link, ns, name)


def _delete_rules(ctrl: Controller, rules: list[tuple[str, Any]]) -> None:
    for ns, rule in rules:
        with contextlib.suppress(NetsimError):
            if rule in ctrl.kernel.rules(ns):
                ctrl.kernel.delete_rule(ns, rule)


def _remove_endpoint(ctrl: Controller, replay: ReplayKernel, state: _State, key: tuple[str, str]) -> None:
    nid, eid = key
    endpoint, network = state.endpoints[key], state.networks[nid]
    if _replays(ctrl, network["driver"]):
        driver = ctrl.registry.driver(network["driver"]).driver
        if key in state.replayed_joins:
            _quietly(driver.revoke_external_connectivity, nid, eid)
            _quietly(driver.leave, nid, eid)
        _quietly(driver.delete_endpoint, nid, eid)
    owner = ("endpoint", nid, eid)
    extra = set()
    sandbox = state.sandboxes.get(endpoint["sandbox"]) if endpoint["sandbox"] else None
    if sandbox is not None and endpoint["iface"]:
        extra.add((sandbox["namespace"], endpoint["iface"]))
    if endpoint["src_name"]:
        extra.add((ctrl.host.namespace, endpoint["src_name"]))
    _delete_links(ctrl, replay.owned_links.pop(owner, set()) | extra)
    _delete_rules(ctrl, replay.owned_rules.pop(owner, []))
    _release_endpoint_addresses(ctrl, network, endpoint)
    if sandbox is not None:
        sandbox["endpoints"] = [pair for pair in sandbox["endpoints"] if pair != [nid, eid]]
        ctrl.records.put(sandbox_key(sandbox["id"]), dict(sandbox))
    ctrl.records.delete(endpoint_key(nid, eid))
    ctrl.records.release_name(f"endpoint/{nid}", endpoint["name"])
    del state.endpoints[key]


def _release_endpoint_addresses(ctrl: Controller, network: Record, endpoint: Record) -> None:
    for address, pool_id in (
        (endpoint["address"], endpoint["pool_id"]),
        (endpoint["address_ipv6"], endpoint["pool_id6"]),
    ):
        if address and pool_id:
            with contextlib.suppress(NetsimError):
                ipam = ctrl.registry.ipam(network["ipam_driver"]).driver
                ipam.release_address(pool_id, _ip(address))


def _remove_network(ctrl: Controller, replay: ReplayKernel, state: _State, nid: str) -> None:
    from netsim.controller.network import release_pools

    network = state.networks[nid]
    if _replays(ctrl, network["driver"]):
        _quietly(ctrl.registry.driver(network["driver"]).driver.delete_network, nid)
    owner = ("network", nid)
    _delete_links(ctrl, replay.owned_links.pop(owner, set()))
    _delete_rules(ctrl, replay.owned_rules.pop(owner, []))
    entries = network["ipv4"] + network["ipv6_pools"]
    if entries:
        with contextlib.suppress(NetsimError):
            release_pools(ctrl.registry.ipam(network["ipam_driver"]).driver, entries)
    ctrl.records.delete(network_key(nid))
    ctrl.records.release_name("network", network["name"])
    del state.networks[nid]


# --- 5. sweep ----------------------------------------------------------------------------------------------
def _sweep(ctrl: Controller, replay: ReplayKernel, state: _State, report: RecoveryReport, links: _Links) -> None:
    from netsim.controller.sandbox import sandbox_namespace_role, update_default_routes
    from netsim.undo import Undo

    kernel, host_ns = ctrl.kernel, ctrl.host.namespace
    owned_namespaces = {s["namespace"] for s in state.sandboxes.values()}
    container_prefix = kernel.ns(sandbox_namespace_role(ctrl.host.name, ""))
    for ns in kernel.namespaces():
        if ns.startswith(container_prefix) and ns not in owned_namespaces:
            _quietly(kernel.delete_namespace, ns)
            report.swept.append(f"namespace {ns}: no sandbox owns it")
    expected = replay.expected_links()
    for sandbox in state.sandboxes.values():
        for nid, eid in sandbox["endpoints"]:
            iface = state.endpoints[(nid, eid)]["iface"]
            if iface:
                expected.add((sandbox["namespace"], iface))
    # Links and rules of out-of-process drivers are theirs: with one of them
    # present, nothing in the host namespace can be called an orphan.
    foreign = any(not _replays(ctrl, n["driver"]) for n in state.networks.values())
    keep = KEPT_LINKS | {ctrl.host.uplink} | set(ctrl.config.keep_links)
    sandbox_namespaces = sorted(s["namespace"] for s in state.sandboxes.values() if s["own_namespace"])
    for ns in sandbox_namespaces if foreign else [host_ns, *sandbox_namespaces]:
        for name in sorted(links.names(ns)):
            if name not in keep and (ns, name) not in expected:
                with contextlib.suppress(NotFoundError):  # gone with its veth peer already
                    kernel.delete_link(ns, name)
                    report.swept.append(f"link {name} in {ns}: no object owns it")
    wanted = replay.expected_rules()
    for rule in [] if foreign else kernel.rules(host_ns):
        if (host_ns, rule) not in wanted:
            _quietly(kernel.delete_rule, host_ns, rule)
            report.swept.append(f"rule {rule} in {host_ns}: no object owns it")
    for sandbox in state.sandboxes.values():
        if not sandbox["own_namespace"]:
            continue
        ns = sandbox["namespace"]
        # a driver's own default route (ipvlan l3: 0.0.0.0/0 CONNECTED) is the join's, not a gateway's
        joined = [state.endpoints.get((nid, eid)) for nid, eid in sandbox["endpoints"]]
        static = {
            (route["via"], endpoint["iface"])
            for endpoint in joined
            if endpoint is not None
            for route in endpoint["static_routes"]
            if route["dst"] in ("0.0.0.0/0", "::/0")
        }
        routes = kernel.routes(ns)
        defaults = [r for r in routes if r.dst == "default" and r.proto == "static" and (r.via, r.dev) not in static]
        recorded = {(g["via"], g["dev"]) for g in (sandbox["gw4"], sandbox["gw6"]) if g}
        if {(r.via, r.dev) for r in defaults} == recorded and _choices_hold(ctrl, sandbox):
            continue  # the common case: kernel and record agree
        for route in defaults:
            dst = "default" if route.family == 4 else "default6"
            _quietly(lambda dst=dst, r=route, ns=ns: kernel.delete_route(ns, dst, via=r.via, dev=r.dev))
        fresh = {**sandbox, "gw4": None, "gw6": None}
        with contextlib.suppress(NetsimError):
            update_default_routes(ctrl, fresh, Undo())
        if (fresh["gw4"], fresh["gw6"]) != (sandbox["gw4"], sandbox["gw6"]):
            ctrl.records.put(sandbox_key(sandbox["id"]), fresh)
            report.swept.append(f"container {sandbox['container']!r}: default routes reset")


def _choices_hold(ctrl: Controller, sandbox: Record) -> bool:
    """Whether the recorded gateways are still the ones libnetwork would choose."""
    from netsim.controller.sandbox import gateway_choices

    chosen = gateway_choices(ctrl, sandbox)
    return bool(chosen["gateway"] == sandbox["gw4"] and chosen["gateway6"] == sandbox["gw6"])
