"""libnetwork's NetworkController for one simulated host (see docs/controller-api.md).

The controller owns the host (a namespace plus an outside namespace on its
uplink), the driver registry and a key-value store holding every network,
endpoint and sandbox record. Each public call runs under one lock and either
completes or rolls back everything it did.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from netsim.controller import default_gateway as _default_gateway
from netsim.controller import endpoint as _endpoint
from netsim.controller import join as _join
from netsim.controller import network as _network
from netsim.controller import sandbox as _sandbox
from netsim.controller.collector import collector_paused
from netsim.controller.config import ControllerConfig, IpamConfig, PoolConfig
from netsim.controller.hostsetup import build_host
from netsim.controller.inspect import inspect_network
from netsim.controller.records import Records, endpoint_key
from netsim.controller.recovery import RecoveryReport, recover
from netsim.controller.replay import ReplayKernel
from netsim.controller.services import ServiceRecords
from netsim.controller.stores import open_stores
from netsim.controller.views import Endpoint, Network, Sandbox
from netsim.driverapi import (
    CONFIG_GLOBAL_STORE,
    CONFIG_HOST,
    CONFIG_KERNEL,
    CONFIG_OPTIONS,
    CONFIG_PERSISTENT,
    CONFIG_STORE,
    DiscoveryType,
)
from netsim.errors import ConflictError, InvalidParameterError, NetsimError, NotFoundError, NotImplementedByDriverError
from netsim.kernel.base import Kernel
from netsim.kernel.dns import RESOLVE_TIMEOUT, DnsResult, reverse_name
from netsim.netlabel import PortBinding
from netsim.netutils import is_ip_address
from netsim.registry import EntryPointScan, Registry, process_entry_points
from netsim.undo import rollback_on_error

NetworkRef = Network | str
SandboxRef = Sandbox | str


def _adopt_host_namespaces(kernel: Kernel, host: str) -> list[str]:
    """This host's namespaces left by a process that died (real kernel; the fake keeps its own)."""
    own = {kernel.ns(host), kernel.ns(f"{host}-out")}
    containers = kernel.ns(_sandbox.sandbox_namespace_role(host, ""))
    networks = kernel.ns(f"{host}-ov-")  # the overlay driver's network sandboxes (drivers/overlay/sandbox.py)
    return kernel.adopt_namespaces(lambda name: name in own or name.startswith((containers, networks)))


class _Operation:
    """``with ctrl._op():``: the controller's lock, then the store's batch if any.
    A plain class: it wraps every public call, and @contextmanager costs more."""

    __slots__ = ("_batch", "_lock")

    def __init__(self, lock: threading.RLock, batch: contextlib.AbstractContextManager[None] | None) -> None:
        self._lock = lock
        self._batch = batch

    def __enter__(self) -> None:
        self._lock.acquire()
        if self._batch is not None:
            try:
                self._batch.__enter__()
            except BaseException:
                self._lock.release()
                raise

    def __exit__(self, *exc: Any) -> None:
        try:
            if self._batch is not None:
                self._batch.__exit__(*exc)
        finally:
            self._lock.release()


class Controller:
    def __init__(self, kernel: Kernel, config: ControllerConfig | None = None) -> None:
        # A controller opened on a persistent store loads and recovers every record here.
        with collector_paused():
            self._open(kernel, config)

    def _open(self, kernel: Kernel, config: ControllerConfig | None) -> None:
        self.kernel = kernel
        self.config = config or ControllerConfig()
        self.stores = open_stores(self.config)
        self.store = self.stores.local
        self.global_store = self.stores.global_
        self.records = Records(self.store)
        #: names and addresses the embedded DNS answers (netsim.controller.services)
        self.services = ServiceRecords()
        self._lock = threading.RLock()
        # A store that groups writes (sqlite) gets one transaction per public call.
        self._batch: Any = getattr(self.store, "batch", None)
        self._closed = False
        #: what the recovery found and did, when this controller was opened on existing state
        self.recovery: RecoveryReport | None = None
        try:
            if self.stores.persistent:
                _adopt_host_namespaces(kernel, self.config.host)
            recovering = self.stores.persistent and self.records.has_state()
            self.host, self._host_teardown, adopted = build_host(
                kernel, self.config.host, self.config.host_index, adopt=self.stores.persistent
            )
        except BaseException:
            self.stores.close()
            raise
        # Drivers see the kernel through a replay wrapper while they are rebuilt.
        replay = ReplayKernel(kernel) if recovering else None
        self._driver_kernel: Any = replay if replay is not None else kernel
        try:
            self.registry = Registry()
            self.load_warnings = self.registry.load(
                self.driver_config,
                experimental=self.config.experimental,
                entry_points=self.config.entry_points,
                discovered=self._discovery() if self.config.entry_points else None,
            )
            self._pending: ReplayKernel | None = None
            if replay is not None and self.config.recover_on_open:
                self.recovery = recover(self, replay)
            elif replay is not None:
                self._pending = replay
            self.load_warnings += self._announce_stores()
        except BaseException:
            if not adopted and not recovering:
                self._host_teardown.run()
            self.stores.close()
            raise

    def recover(self) -> RecoveryReport:
        """Run the recovery left pending by ``recover_on_open=False`` (after
        registering drivers that must be replayed too); ConflictError if there
        is none pending."""
        with self._op():
            replay, self._pending = self._pending, None
            if replay is None:
                raise ConflictError("nothing to recover: the store was empty, or recovery already ran")
            self.recovery = recover(self, replay)
            return self.recovery

    def _announce_stores(self) -> list[str]:
        """libnetwork's DiscoverNew(DATASTORE) to every driver, once per configured scope."""
        warnings = []
        for data in self.stores.discovery_data():
            for name, entry in self.registry.drivers().items():
                try:
                    entry.driver.discover_new(DiscoveryType.DATASTORE, data)
                except NotImplementedByDriverError:
                    continue
                except NetsimError as exc:
                    warnings.append(f"driver {name!r} refused the {data['Scope']} datastore: {exc}")
        return warnings

    def _op(self) -> contextlib.AbstractContextManager[Any]:
        """The lock, and one store transaction where the store offers one
        (without one, the lock itself: its context manager is C code)."""
        if self._batch is None:
            return self._lock
        return _Operation(self._lock, self._batch())

    def _discovery(self) -> EntryPointScan:
        return self.config.discovery if self.config.discovery is not None else process_entry_points()

    def new_id(self) -> str:
        """A new 64-hex object id (from ``config.id_factory`` when set)."""
        if self.config.id_factory is None:
            return secrets.token_hex(32)
        made = self.config.id_factory()
        if not isinstance(made, str) or len(made) != 64 or any(c not in "0123456789abcdef" for c in made):
            raise InvalidParameterError(f"id_factory returned {made!r}: expected 64 lowercase hex digits")
        return made

    def driver_config(self, name: str) -> dict[str, Any]:
        """libnetwork's makeDriverConfig: what a driver's init function receives."""
        return {
            CONFIG_KERNEL: self._driver_kernel,
            CONFIG_HOST: self.host,
            CONFIG_OPTIONS: dict(self.config.driver_options.get(name, {})),
            CONFIG_STORE: self.store,
            CONFIG_GLOBAL_STORE: self.global_store,
            CONFIG_PERSISTENT: self.stores.persistent,
        }

    # --- lookups --------------------------------------------------------------------------
    def _network_id(self, ref: NetworkRef) -> str:
        if isinstance(ref, Network):
            self.records.network(ref.id)
            return ref.id
        if not isinstance(ref, str) or not ref:
            raise InvalidParameterError(f"invalid network reference {ref!r}")
        by_name = self.records.lookup_name(_network.NETWORK_INDEX, ref)
        if by_name is not None:
            return by_name
        matches = [r["id"] for r in self.records.networks() if r["id"].startswith(ref)]
        if len(matches) == 1 and len(ref) >= 12:
            return str(matches[0])
        raise NotFoundError(f"network {ref!r} not found")

    def network(self, name_or_id: NetworkRef) -> Network:
        nid = self._network_id(name_or_id)
        return Network(self, nid, self.records.network(nid)["name"])

    def networks(self) -> list[Network]:
        return sorted((Network(self, r["id"], r["name"]) for r in self.records.networks()), key=lambda n: n.name)

    def _sandbox_id(self, ref: SandboxRef) -> str:
        if isinstance(ref, Sandbox):
            self.records.sandbox_view(ref.id)  # NotFoundError if it is gone
            return ref.id
        sid = self.records.lookup_name(_sandbox.SANDBOX_INDEX, ref) if isinstance(ref, str) else None
        if sid is None:
            raise NotFoundError(f"sandbox for container {ref!r} not found")
        return sid

    def sandbox(self, container: SandboxRef) -> Sandbox:
        sid = self._sandbox_id(container)
        return Sandbox(self, sid, self.records.sandbox(sid)["container"])

    def sandboxes(self) -> list[Sandbox]:
        return sorted(
            (Sandbox(self, r["id"], r["container"]) for r in self.records.sandboxes()), key=lambda s: s.container
        )

    def endpoint(self, network: NetworkRef, name: str) -> Endpoint:
        nid = self._network_id(network)
        eid = self.records.lookup_name(_endpoint.endpoint_index(nid), name)
        if eid is None:
            raise NotFoundError(f"endpoint {name!r} not found in network {network!r}")
        return Endpoint(self, nid, eid, name)

    def _endpoint_ids(self, ep: Endpoint) -> tuple[str, str]:
        if not isinstance(ep, Endpoint):
            raise InvalidParameterError(f"expected an Endpoint, got {ep!r}")
        if not self.store.exists(endpoint_key(ep.network_id, ep.id)):
            raise NotFoundError(f"endpoint {ep.name!r} not found")
        return ep.network_id, ep.id

    # --- networks ---------------------------------------------------------------------------
    def create_network(
        self,
        name: str,
        driver: str = "bridge",
        options: Mapping[str, str] | None = None,
        ipam: IpamConfig | None = None,
        ipv6: bool = False,
        internal: bool = False,
        labels: Mapping[str, str] | None = None,
        ipv4: bool = True,
    ) -> Network:
        with self._op():
            return _network.create_network(self, name, driver, options, ipam, ipv6, internal, labels, ipv4)

    def delete_network(self, network: NetworkRef) -> None:
        with self._op():
            _network.delete_network(self, self._network_id(network))

    def inspect_network(self, network: NetworkRef) -> dict[str, Any]:
        with self._op():
            return inspect_network(self, self._network_id(network))

    # --- endpoints ----------------------------------------------------------------------------
    def create_endpoint(
        self,
        network: NetworkRef,
        name: str,
        ipv4: str | None = None,
        ipv6: str | None = None,
        mac: str | None = None,
        ports: Sequence[PortBinding] | None = None,
        sandbox: SandboxRef | None = None,
        aliases: Sequence[str] | None = None,
    ) -> Endpoint:
        """``sandbox``: the container the endpoint is for, when known (Docker knows it):
        a driver may then create the interface directly in its namespace.
        ``aliases``: names the embedded DNS answers with this endpoint's
        addresses on this network (Docker's ``--network-alias``)."""
        with self._op():
            sid = None if sandbox is None else self._sandbox_id(sandbox)
            return _endpoint.create_endpoint(
                self, self._network_id(network), name, ipv4, ipv6, mac, ports, sid, aliases=aliases
            )

    def delete_endpoint(self, ep: Endpoint) -> None:
        with self._op():
            _endpoint.delete_endpoint(self, *self._endpoint_ids(ep))

    # --- sandboxes ------------------------------------------------------------------------------
    def create_sandbox(self, container: str, host_namespace: bool = False) -> Sandbox:
        """A namespace for ``container`` (or the host's, for host-network containers)."""
        with self._op():
            return _sandbox.create_sandbox(self, container, host_namespace)

    def delete_sandbox(self, sb: SandboxRef) -> None:
        with self._op():
            _sandbox.delete_sandbox(self, self._sandbox_id(sb))

    def join(self, ep: Endpoint, sb: SandboxRef) -> None:
        with self._op():
            nid, eid = self._endpoint_ids(ep)
            sid = self._sandbox_id(sb)
            _join.join(self, nid, eid, sid)
            if _default_gateway.may_change(self, sid):
                with rollback_on_error() as undo:
                    undo.push("leave", lambda: _join.leave(self, nid, eid, sid))
                    _default_gateway.reconcile(self, sid)  # docker_gwbridge when the sandbox has no way out

    def leave(self, ep: Endpoint, sb: SandboxRef) -> None:
        with self._op():
            nid, eid = self._endpoint_ids(ep)
            sid = self._sandbox_id(sb)
            _join.leave(self, nid, eid, sid)
            _default_gateway.reconcile(self, sid)

    def connect(
        self,
        container: str,
        network: NetworkRef,
        *,
        name: str | None = None,
        ipv4: str | None = None,
        ipv6: str | None = None,
        mac: str | None = None,
        ports: Sequence[PortBinding] | None = None,
        aliases: Sequence[str] | None = None,
    ) -> Endpoint:
        """``docker network connect``: sandbox (made if missing) + endpoint + join
        (``aliases``: ``--alias``, names the embedded DNS answers on this network)."""
        with self._op(), rollback_on_error() as undo:
            nid = self._network_id(network)
            sid = self.records.lookup_name(_sandbox.SANDBOX_INDEX, container)
            if sid is None:
                driver = self.registry.driver(self.records.network(nid)["driver"]).driver
                sb = _sandbox.create_sandbox(self, container, host_namespace=driver.type() == _join.HOST_TYPE)
                undo.push("delete sandbox", lambda: _sandbox.delete_sandbox(self, sb.id))
                sid = sb.id
            ep = _endpoint.create_endpoint(self, nid, name or container, ipv4, ipv6, mac, ports, sid, aliases=aliases)
            undo.push("delete endpoint", lambda: _endpoint.delete_endpoint(self, nid, ep.id))
            _join.join(self, nid, ep.id, sid)
            undo.push("leave", lambda: _join.leave(self, nid, ep.id, sid))
            _default_gateway.reconcile(self, sid)  # docker_gwbridge when the sandbox has no way out
            return ep

    def resolve(
        self, container: SandboxRef, name: str, qtype: str = "A", timeout: float = RESOLVE_TIMEOUT
    ) -> DnsResult:
        """Ask the container's resolver (127.0.0.11) for ``name``: one real DNS
        query sent from its namespace (``qtype`` A, AAAA, or PTR with an address
        or a reverse name). Outside the controller's lock: on the real kernel
        the resolver answers from a thread that reads the service records."""
        with self._op():
            namespace = self.records.sandbox(self._sandbox_id(container))["namespace"]
        if qtype == "PTR" and is_ip_address(name):
            name = reverse_name(name)
        return self.kernel.resolve(namespace, name, qtype, timeout=timeout)

    def disconnect(self, container: str, network: NetworkRef) -> None:
        """``docker network disconnect``: leave + delete the container's endpoint on ``network``."""
        with self._op():
            nid = self._network_id(network)
            sid = self._sandbox_id(container)
            for joined_nid, eid in self.records.sandbox(sid)["endpoints"]:
                if joined_nid == nid:
                    with rollback_on_error() as undo:
                        _join.leave(self, nid, eid, sid, endpoint_going=True)
                        undo.push("rejoin", lambda eid=eid: _join.join(self, nid, eid, sid))  # type: ignore[misc]
                        _endpoint.delete_endpoint(self, nid, eid)
                    _default_gateway.reconcile(self, sid)
                    return
            raise NotFoundError(f"container {container!r} is not connected to network {network!r}")

    # --- teardown ---------------------------------------------------------------------------------
    def close(self) -> None:
        """Delete every sandbox, endpoint and network, then the host. Idempotent;
        keeps going past failures and raises the first one at the end."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            errors: list[BaseException] = []
            try:
                with self._op():
                    self._tear_down(errors)
            except NetsimError as exc:  # the store's own commit
                errors.append(exc)
            self.stores.close()
            if errors:
                raise errors[0]

    def _tear_down(self, errors: list[BaseException]) -> None:

        def attempt(action: Any, *args: Any) -> None:
            try:
                action(*args)
            except NetsimError as exc:
                errors.append(exc)

        for record in self.records.sandboxes():
            attempt(_sandbox.delete_sandbox, self, record["id"])
        for record in self.records.networks():
            for endpoint in self.records.endpoints(record["id"]):
                attempt(_endpoint.delete_endpoint, self, record["id"], endpoint["id"])
            attempt(_network.delete_network, self, record["id"])
        problems = self._host_teardown.run()
        if problems:
            errors.append(NetsimError(f"host teardown incomplete: {'; '.join(problems)}"))

    def __enter__(self) -> Controller:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = [
    "Controller",
    "ControllerConfig",
    "Endpoint",
    "IpamConfig",
    "Network",
    "PoolConfig",
    "PortBinding",
    "Sandbox",
]
