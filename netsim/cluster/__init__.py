"""Several simulated hosts on one kernel, sharing global state: libnetwork's
multi-host model (swarm-scope networks, networkdb) in one process.

Each host is a :class:`Controller` (host index 0, 1, ...). They share a
global store (VNIs and other global-scope records), a :class:`TableEventBus`
(networkdb's gossip, synchronous) and, per IPAM driver, one
:class:`SharedIpam`. An *underlay* namespace holds a bridge; every host has a
second uplink ``eth1`` on it with 198.19.0.(n+2)/24 (benchmarking range), the
address its VXLAN tunnels start from.

>>> from netsim.kernel.fake import FakeKernel
>>> with Cluster(FakeKernel(), ["h1", "h2"]) as cluster:
...     _ = cluster.create_network("ov")
...     a = cluster.connect("h1", "a", "ov"); b = cluster.connect("h2", "b", "ov")
...     sorted((e.table, e.origin) for e in cluster.bus.entries(cluster.network_id("ov")))
[('endpoint_table', 'h1'), ('endpoint_table', 'h2'), ('overlay_peer_table', 'h1'), ('overlay_peer_table', 'h2')]
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from netsim.cluster.bus import TableEntry, TableEventBus
from netsim.cluster.ipam import SharedIpam
from netsim.controller import Controller, ControllerConfig, Endpoint, IpamConfig
from netsim.controller.discovery import ServiceTableSink
from netsim.controller.records import network_key
from netsim.controller.services import SERVICE_TABLE
from netsim.driverapi import DiscoveryType, EventType
from netsim.errors import ConflictError, InvalidParameterError, NetsimError, NoSpaceError, NotFoundError
from netsim.ipamapi import DEFAULT_IPAM
from netsim.kernel.base import Kernel
from netsim.store import KVStore, MemoryStore, open_store
from netsim.undo import Undo, rollback_on_error

log = logging.getLogger(__name__)

UNDERLAY_ROLE = "underlay"
UNDERLAY_BRIDGE = "br0"
UNDERLAY_DEV = "eth1"
UNDERLAY_PREFIX = "198.19.0"
MAX_CLUSTER_HOSTS = 253  # .2 to .254 of the underlay /24
SHARED_IPAM_PREFIX = "cluster-"


def underlay_address(index: int) -> str:
    """Host ``index``'s VTEP address (no prefix length)."""
    return f"{UNDERLAY_PREFIX}.{index + 2}"


def notify_node(ctrl: Controller, address: str, *, self_node: bool = False, new: bool = True) -> None:
    """DiscoverNew / DiscoverDelete(NODE) to every driver of ``ctrl``, with
    libnetwork's NodeDiscoveryData. A driver's refusal is logged, never fatal
    (libnetwork logs it too)."""
    data = {"Address": address, "BindAddress": address, "Self": self_node}
    for name, entry in ctrl.registry.drivers().items():
        try:
            if new:
                entry.driver.discover_new(DiscoveryType.NODE, data)
            else:
                entry.driver.discover_delete(DiscoveryType.NODE, data)
        except NetsimError as exc:
            log.warning("driver %s refused node discovery of %s: %s", name, address, exc)


class Cluster:
    def __init__(
        self,
        kernel: Kernel,
        hosts: Sequence[str] = ("h1", "h2"),
        *,
        experimental: bool = False,
        global_store: KVStore | str | None = None,
        local_store: str | None = None,
    ) -> None:
        """``global_store`` (an object or URL) holds what hosts share; ``local_store``
        is a URL template with ``{host}`` for each host's own store. Neither: memory."""
        names = list(hosts)
        if not names or len(names) > MAX_CLUSTER_HOSTS or len(set(names)) != len(names):
            raise InvalidParameterError(f"a cluster needs 1-{MAX_CLUSTER_HOSTS} distinct host names, got {names!r}")
        if local_store is not None and len(names) > 1 and "{host}" not in local_store:
            raise InvalidParameterError(f"hosts cannot share the local store {local_store!r}: put {{host}} in it")
        self.kernel = kernel
        self.experimental = experimental
        self._configured_global = global_store is not None
        self._owns_global = isinstance(global_store, str)
        self.global_store: KVStore = (
            open_store(global_store)
            if isinstance(global_store, str)
            else global_store
            if global_store is not None
            else MemoryStore()
        )
        self._local_store = local_store
        self.bus = TableEventBus()
        self.controllers: dict[str, Controller] = {}
        #: host -> its index (underlay address .index+2); an index is reused once its host left
        self._index_of: dict[str, int] = {}
        self._host_teardown: dict[str, Undo] = {}
        self._shared_ipams: dict[str, SharedIpam] = {}
        self._networks: dict[str, tuple[str, str]] = {}  # name -> (network id, driver)
        #: name -> how each host creates it (a host joining later replays it)
        self._definitions: dict[str, _Definition] = {}
        self._forced_id: str | None = None
        self._closed = False
        self.underlay_namespace = kernel.ns(UNDERLAY_ROLE)
        self._teardown = Undo()
        with rollback_on_error() as undo:
            self._build_underlay(undo)
            for index, name in enumerate(names):
                self._add_host(name, index, undo)
            self._shared_ipam(DEFAULT_IPAM)
            self._teardown.extend(undo)

    # --- construction --------------------------------------------------------------------------
    def _build_underlay(self, undo: Undo) -> None:
        kernel, ns = self.kernel, self.underlay_namespace
        kernel.add_namespace(ns)
        undo.push(f"delete namespace {ns}", lambda: kernel.delete_namespace(ns))
        kernel.set_link_up(ns, "lo")
        kernel.add_bridge(ns, UNDERLAY_BRIDGE)
        kernel.set_link_up(ns, UNDERLAY_BRIDGE)

    def _add_host(self, name: str, index: int, undo: Undo) -> None:
        own = Undo()
        self._host_teardown[name] = own
        undo.push(f"tear down host {name}", lambda: _run_all(f"host {name}", own))
        self._index_of[name] = index
        self._build_host(name, index, own)

    def _build_host(self, name: str, index: int, undo: Undo) -> None:
        overlay_options = {
            "underlay_dev": UNDERLAY_DEV,
            "underlay_address": underlay_address(index),
            "global_store": self.global_store,
        }
        config = ControllerConfig(
            host=name,
            host_index=index,
            experimental=self.experimental,
            driver_options={"overlay": overlay_options},
            id_factory=self._new_id,
            table_events=self.bus,
            local_store=self._local_store.replace("{host}", name) if self._local_store else None,
            global_store=self.global_store if self._configured_global else None,
            keep_links=(UNDERLAY_DEV,),
        )
        ctrl = Controller(self.kernel, config)
        undo.push(f"close host {name}", ctrl.close)
        self.controllers[name] = ctrl
        kernel, port = self.kernel, f"ul{index}"
        kernel.add_veth(ctrl.host.namespace, UNDERLAY_DEV, port, peer_ns=self.underlay_namespace)
        kernel.add_address(ctrl.host.namespace, UNDERLAY_DEV, f"{underlay_address(index)}/24")
        kernel.set_master(self.underlay_namespace, port, UNDERLAY_BRIDGE)
        kernel.set_link_up(self.underlay_namespace, port)
        kernel.set_link_up(ctrl.host.namespace, UNDERLAY_DEV)
        self.bus.subscribe(name, lambda *event: self._deliver(ctrl, *event))
        undo.push(f"unsubscribe {name}", lambda: self.bus.unsubscribe(name))
        self._announce(name, index)

    def _announce(self, name: str, index: int) -> None:
        """libnetwork's pushNodeDiscovery: the new host learns itself and every
        host already here; every host already here learns the new one."""
        new = self.controllers[name]
        notify_node(new, underlay_address(index), self_node=True)
        for other, ctrl in self.controllers.items():
            if other != name:
                notify_node(new, underlay_address(self._index_of[other]))
                notify_node(ctrl, underlay_address(index))

    # --- membership -----------------------------------------------------------------------------------
    def add_host(self, name: str) -> Controller:
        """A host joining the running cluster, as a node joins a swarm: it
        learns the other nodes, gets every cluster network (same id, VNI and
        pool), and networkdb's bulk sync hands it every live table entry, so
        its first container reaches the existing ones on its first packet."""
        if name in self.controllers:
            raise ConflictError(f"host {name!r} is already in the cluster")
        if len(self.controllers) >= MAX_CLUSTER_HOSTS:
            raise NoSpaceError(f"a cluster holds at most {MAX_CLUSTER_HOSTS} hosts")
        if self._local_store is not None and "{host}" not in self._local_store:
            # as __init__ refuses for several hosts: the joining host would open the others' store
            raise InvalidParameterError(f"hosts cannot share the local store {self._local_store!r}: put {{host}} in it")
        index = min(set(range(MAX_CLUSTER_HOSTS)) - set(self._index_of.values()))
        with rollback_on_error() as undo:
            undo.push(f"forget host {name}", lambda: self._forget_host(name))
            self._add_host(name, index, undo)
            ctrl = self.controllers[name]
            for shared_name, shared in self._shared_ipams.items():
                ctrl.registry.register_ipam_driver(SHARED_IPAM_PREFIX + shared_name, shared)
            for network, definition in self._definitions.items():
                self._create_on(ctrl, network, definition, replay=definition.ipam_calls)
            self.bus.sync(name)
        own = self._host_teardown[name]
        self._teardown.push(f"tear down host {name}", lambda: _run_all(f"host {name}", own))
        return ctrl

    def remove_host(self, name: str) -> None:
        """A host leaving: networkdb withdraws the entries it owned (its peers
        vanish from every other host at once, gracefully or not), the others
        forget the node, then the host is closed and unplugged."""
        if self.controller(name) is self._primary():
            # its IPAM instance allocates for the whole cluster, as a swarm manager's does
            raise ConflictError(f"host {name!r} holds the cluster's address allocation: it cannot leave")
        address = underlay_address(self._index_of[name])
        self.bus.withdraw(name)
        for other, staying in self.controllers.items():
            if other != name:
                notify_node(staying, address, new=False)
        problems = self._host_teardown[name].run()
        self._forget_host(name)
        if problems:
            raise NetsimError(f"host {name} teardown incomplete: {'; '.join(problems)}")

    def _forget_host(self, name: str) -> None:
        self.controllers.pop(name, None)
        self._index_of.pop(name, None)
        self._host_teardown.pop(name, None)

    def _new_id(self) -> str:
        """Controllers' id factory: the cluster-wide network id while a network
        is being created on every host, a random id otherwise."""
        return self._forced_id if self._forced_id is not None else secrets.token_hex(32)

    @staticmethod
    def _deliver(ctrl: Controller, event: EventType, nid: str, table: str, key: str, value: bytes) -> None:
        """networkdb → driver: only to a host that has the network and whose
        driver registered the table for it."""
        if not ctrl.store.exists(network_key(nid)):
            return
        if table == SERVICE_TABLE:  # the controller's own: service records for the embedded DNS
            ServiceTableSink(ctrl).event_notify(event, nid, table, key, value)
            return
        record = ctrl.records.network(nid)
        if table not in record.get("tables", {}):
            return
        ctrl.registry.driver(record["driver"]).driver.event_notify(event, nid, table, key, value)

    # --- lookups ------------------------------------------------------------------------------------
    @property
    def hosts(self) -> list[str]:
        return list(self.controllers)

    def controller(self, host: str) -> Controller:
        ctrl = self.controllers.get(host)
        if ctrl is None:
            raise NotFoundError(f"host {host!r} is not in the cluster (hosts: {', '.join(self.controllers)})")
        return ctrl

    def network_id(self, name: str) -> str:
        found = self._networks.get(name)
        if found is None:
            raise NotFoundError(f"cluster network {name!r} not found")
        return found[0]

    def _primary(self) -> Controller:
        return next(iter(self.controllers.values()))

    def _shared_ipam(self, name: str) -> str:
        """Register (once) a :class:`SharedIpam` around IPAM driver ``name`` on every host."""
        shared_name = SHARED_IPAM_PREFIX + name
        if name not in self._shared_ipams:
            shared = SharedIpam(self._primary().registry.ipam(name).driver)
            for ctrl in self.controllers.values():
                ctrl.registry.register_ipam_driver(shared_name, shared)
            self._shared_ipams[name] = shared
        return shared_name

    # --- networks -----------------------------------------------------------------------------------
    def create_network(
        self,
        name: str,
        driver: str = "overlay",
        options: Mapping[str, str] | None = None,
        ipam: IpamConfig | None = None,
        internal: bool = False,
        labels: Mapping[str, str] | None = None,
        ipv6: bool = False,
    ) -> str:
        """Create ``name`` on every host with one id, one VNI and one IPAM
        allocation (``ipv6``: dual stack, as ``--ipv6``); returns the network
        id. All or nothing."""
        if name in self._networks:
            raise ConflictError(f"cluster network {name!r} exists already")
        ipam = ipam or IpamConfig()
        if not isinstance(ipam, IpamConfig):
            raise InvalidParameterError("ipam must be an IpamConfig")
        entry = self._primary().registry.driver(driver)
        if entry.capability.data_scope not in ("global", "swarm"):
            raise InvalidParameterError(
                f"driver {driver!r} has {entry.capability.data_scope} scope: only global-scope networks span hosts"
            )
        shared_name = self._shared_ipam(ipam.driver)
        shared = self._shared_ipams[ipam.driver]
        nid = secrets.token_hex(32)
        with rollback_on_error() as undo:
            allocated = entry.driver.network_allocate(nid, dict(options or {}), [], [])
            undo.push("network_free", lambda: entry.driver.network_free(nid))
            definition = _Definition(
                nid, driver, {**dict(options or {}), **allocated}, dataclasses.replace(ipam, driver=shared_name)
            )
            definition.internal, definition.labels, definition.ipv6 = internal, labels, ipv6
            for index, ctrl in enumerate(self.controllers.values()):
                if index == 0:
                    shared.start_recording()
                    try:
                        self._create_on(ctrl, name, definition, replay=None)
                    finally:
                        definition.ipam_calls = shared.stop_recording()
                else:
                    self._create_on(ctrl, name, definition, replay=definition.ipam_calls)
                undo.push(f"delete on {ctrl.config.host}", lambda ctrl=ctrl: ctrl.delete_network(nid))  # type: ignore[misc]
            self._networks[name] = (nid, driver)
            self._definitions[name] = definition
        return nid

    def _create_on(self, ctrl: Controller, name: str, definition: _Definition, replay: list[Any] | None) -> None:
        """Create the network on one host; ``replay``: the first host's IPAM answers."""
        shared = self._shared_ipams[definition.ipam.driver[len(SHARED_IPAM_PREFIX) :]]
        if replay is not None:
            shared.start_replay(replay)
        self._forced_id = definition.nid
        try:
            ctrl.create_network(
                name,
                definition.driver,
                definition.options,
                definition.ipam,
                definition.ipv6,
                definition.internal,
                definition.labels,
            )
        finally:
            self._forced_id = None
            if replay is not None:
                with contextlib.suppress(ConflictError):
                    shared.stop_replay()

    def delete_network(self, name: str) -> None:
        """Delete on every host (refused while any host has endpoints on it), then free the VNI."""
        nid = self.network_id(name)
        for host, ctrl in self.controllers.items():
            count = len(ctrl.records.endpoints(nid))
            if count:
                raise ConflictError(f"cluster network {name!r} has {count} endpoint(s) on host {host!r}")
        errors: list[NetsimError] = []
        driver = self._primary().registry.driver(self._networks[name][1]).driver
        for ctrl in self.controllers.values():
            try:
                ctrl.delete_network(nid)
            except NetsimError as exc:
                errors.append(exc)
        del self._networks[name]
        self._definitions.pop(name, None)
        try:
            driver.network_free(nid)
        except NetsimError as exc:
            errors.append(exc)
        if errors:
            raise errors[0]

    def networks(self) -> dict[str, str]:
        """Network name → id."""
        return {name: nid for name, (nid, _) in self._networks.items()}

    def peer_entries(self, name: str) -> list[tuple[TableEntry, str, dict[str, str]]]:
        """The network's live table entries, each decoded by the driver
        (``network inspect --verbose``): ``(entry, object id, fields)``."""
        nid = self.network_id(name)
        ctrl = self._primary()
        record = ctrl.records.network(nid)
        driver = ctrl.registry.driver(record["driver"]).driver
        # the driver decodes the tables it registered; the controller's own (libnetwork's
        # endpoint_table, for service discovery) are not the driver's to decode
        tables = record.get("tables", {})
        entries = [e for e in self.bus.entries(nid) if e.table in tables]
        return [(e, *driver.decode_table_entry(e.table, e.key, e.value)) for e in entries]

    # --- containers: delegated to the host's controller ------------------------------------------------
    def connect(self, host: str, container: str, network: str, **kwargs: Any) -> Endpoint:
        return self.controller(host).connect(container, self.network_id(network), **kwargs)

    def disconnect(self, host: str, container: str, network: str) -> None:
        self.controller(host).disconnect(container, self.network_id(network))

    def sandbox_namespace(self, host: str, container: str) -> str:
        return self.controller(host).sandbox(container).namespace

    # --- teardown ---------------------------------------------------------------------------------------
    def close(self) -> None:
        """Close every controller (their containers leave, peers are withdrawn),
        free the networks' VNIs, then remove the underlay. Idempotent; raises
        the first failure after trying everything."""
        if self._closed:
            return
        self._closed = True
        errors: list[BaseException] = []
        hosts = list(self.controllers.items())
        for position in reversed(range(len(hosts))):
            name, ctrl = hosts[position]
            for _, staying in hosts[:position]:
                notify_node(staying, underlay_address(self._index_of[name]), new=False)
            try:
                ctrl.close()
            except NetsimError as exc:
                errors.append(exc)
        for nid, driver in self._networks.values():
            try:
                self._primary().registry.driver(driver).driver.network_free(nid)
            except NetsimError as exc:
                errors.append(exc)
        self._networks.clear()
        self._definitions.clear()
        problems = self._teardown.run()
        if problems:
            errors.append(NetsimError(f"cluster teardown incomplete: {'; '.join(problems)}"))
        if self._owns_global:
            self.global_store.close()
        if errors:
            raise errors[0]

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclasses.dataclass
class _Definition:
    """A cluster network as every host creates it."""

    nid: str
    driver: str
    options: dict[str, str]
    ipam: IpamConfig
    internal: bool = False
    labels: Mapping[str, str] | None = None
    ipv6: bool = False
    #: the first host's IPAM answers, replayed by every other host
    ipam_calls: list[Any] = dataclasses.field(default_factory=list)


def _run_all(what: str, undo: Undo) -> None:
    problems = undo.run()
    if problems:
        raise NetsimError(f"{what} teardown incomplete: {'; '.join(problems)}")


__all__ = ["Cluster", "SharedIpam", "TableEntry", "TableEventBus", "underlay_address"]
