"""What hosts in separate processes share through the global store.

* **Network definitions** (``cluster/network/<name>``): a global-scope
  network is created on one host, which records its IPAM answers (pool,
  gateway, aux addresses) and its driver's allocation (the VNI) in the
  definition; every other host creates its copy from the definition,
  replaying those answers (:class:`ClusterIpam`), so the pool is allocated
  once, as libnetwork allocates a swarm network once on the manager.
  Endpoint addresses come from the one pool in the global store (CAS), so no
  two hosts ever hold the same address.
* **Table events** (``cluster/table/<nid>/<table>/<key>``): what networkdb
  gossips in libnetwork (the overlay's peer entries). A join writes the
  entry, a leave deletes it; every host watches the prefix and hands the
  changes of the others to its drivers, and catches up by listing the
  prefix when it gets a network (:meth:`StoreTableEvents.sync`).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import threading
from typing import TYPE_CHECKING, Any

from netsim.cluster.ipam import SharedIpam
from netsim.controller.discovery import ServiceTableSink
from netsim.controller.records import network_key
from netsim.controller.services import SERVICE_TABLE
from netsim.driverapi import EventType, IPAddress
from netsim.errors import InvalidParameterError, NetsimError
from netsim.store import MUST_NOT_EXIST, KVStore, Watch, WatchEvent, canonical_json

if TYPE_CHECKING:
    from netsim.controller import Controller

log = logging.getLogger(__name__)

NETWORK_PREFIX = "cluster/network/"
TABLE_PREFIX = "cluster/table/"


def definition_key(name: str) -> str:
    return f"{NETWORK_PREFIX}{name}"


def table_key(nid: str, table: str, key: str) -> str:
    return f"{TABLE_PREFIX}{nid}/{table}/{key}"


# --- IPAM answers, as JSON ---------------------------------------------------------------------------
def encode_calls(calls: list[tuple[str, tuple[Any, ...], Any]]) -> list[dict[str, Any]]:
    """SharedIpam's recorded calls as JSON (pools and addresses as CIDR text)."""
    out = []
    for kind, args, result in calls:
        if kind == "pool":
            pool_id, network, data = result
            answer: Any = [pool_id, str(network), data]
        else:
            answer = [str(result[0]), result[1]] if result is not None and result[0] is not None else None
        out.append({"kind": kind, "args": json.loads(json.dumps(args)), "result": answer})
    return out


def decode_calls(entries: list[dict[str, Any]]) -> list[tuple[str, tuple[Any, ...], Any]]:
    calls = []
    for entry in entries:
        kind, args = entry["kind"], _tuples(entry["args"])
        answer = entry["result"]
        if kind == "pool":
            result: Any = (answer[0], ipaddress.ip_network(answer[1]), answer[2])
        else:
            result = (ipaddress.ip_interface(answer[0]), answer[1]) if answer is not None else None
        calls.append((kind, args, result))
    return calls


def _tuples(value: Any) -> Any:
    """JSON lists back into the tuples SharedIpam compares arguments with."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


class ClusterIpam(SharedIpam):
    """SharedIpam for one host among processes: the allocations recorded in a
    network definition are never released by a host's own delete (other
    hosts still use them); the cluster releases them once, when the
    definition goes (:meth:`release_recorded`)."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self._recorded_pools: set[str] = set()
        self._recorded_addresses: set[tuple[str, str]] = set()

    def note_recorded(self, calls: list[tuple[str, tuple[Any, ...], Any]]) -> None:
        with self._lock:
            for kind, args, result in calls:
                if kind == "pool":
                    self._recorded_pools.add(result[0])
                elif result is not None and result[0] is not None:
                    self._recorded_addresses.add((args[0], str(result[0].ip)))

    def release_pool(self, pool_id: str) -> None:
        if pool_id in self._recorded_pools:
            return
        super().release_pool(pool_id)

    def release_address(self, pool_id: str, address: IPAddress) -> None:
        if (pool_id, str(address)) in self._recorded_addresses:
            return
        super().release_address(pool_id, address)

    def release_recorded(self, calls: list[tuple[str, tuple[Any, ...], Any]]) -> list[str]:
        """Give the definition's allocations back to the global pool (addresses, then pools)."""
        problems = []
        for kind, args, result in reversed(calls):
            try:
                if kind == "address" and result is not None and result[0] is not None:
                    self.inner.release_address(args[0], result[0].ip)
                    self._recorded_addresses.discard((args[0], str(result[0].ip)))
                elif kind == "pool":
                    self.inner.release_pool(result[0])
                    self._recorded_pools.discard(result[0])
            except NetsimError as exc:
                problems.append(f"{kind} {args[0]}: {exc}")
        return problems


class StoreTableEvents:
    """A :class:`netsim.controller.config.TableEventSink` on the global store,
    and the watch that delivers the other hosts' entries to this host."""

    def __init__(self, store: KVStore, host: str) -> None:
        self.store = store
        self.host = host
        self.controller: Controller | None = None
        #: store key -> (event value) delivered to this host's drivers
        self._delivered: dict[str, bytes] = {}
        self._lock = threading.RLock()
        self._watch: Watch | None = None
        #: one line per delivery that raised (gossip never fails the publisher)
        self.failures: list[str] = []

    # --- publishing (this host's joins and leaves) ------------------------------------------------
    def publish(self, origin: str, event: EventType, nid: str, table: str, key: str, value: bytes) -> None:
        if not isinstance(event, EventType):
            raise InvalidParameterError(f"invalid table event {event!r}: expected an EventType")
        store_key = table_key(nid, table, key)
        if event == EventType.DELETE:
            with contextlib.suppress(NetsimError):
                self.store.delete(store_key)
            return
        self.store.put(store_key, canonical_json({"origin": origin, "value": value.hex()}))

    # --- delivery (the other hosts' entries) ---------------------------------------------------------
    def start(self, controller: Controller) -> None:
        self.controller = controller
        self._watch = self.store.watch(TABLE_PREFIX, self._on_event)

    def stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None

    def _on_event(self, event: WatchEvent) -> None:
        if event.kind == "put" and event.value is not None:
            self._deliver_put(event.key, event.value)
        else:
            self._deliver_delete(event.key)

    def _split(self, store_key: str) -> tuple[str, str, str]:
        nid, table, key = store_key[len(TABLE_PREFIX) :].split("/", 2)
        return nid, table, key

    def _driver_for(self, nid: str, table: str) -> Any:
        ctrl = self.controller
        if ctrl is None or not ctrl.store.exists(network_key(nid)):
            return None
        if table == SERVICE_TABLE:  # the controller's own: service records for the embedded DNS
            return ServiceTableSink(ctrl)
        record = ctrl.records.network(nid)
        if table not in record.get("tables", {}):
            return None
        return ctrl.registry.driver(record["driver"]).driver

    def _deliver_put(self, store_key: str, text: str) -> None:
        entry = json.loads(text)
        if entry.get("origin") == self.host:
            return
        value = bytes.fromhex(entry["value"])
        nid, table, key = self._split(store_key)
        with self._lock:
            if self._delivered.get(store_key) == value:
                return
            driver = self._driver_for(nid, table)
            if driver is None:
                return  # not here (yet): sync() delivers it when the network comes
            event = EventType.UPDATE if store_key in self._delivered else EventType.CREATE
            self._call(driver, event, nid, table, key, value)
            self._delivered[store_key] = value

    def _deliver_delete(self, store_key: str) -> None:
        nid, table, key = self._split(store_key)
        with self._lock:
            value = self._delivered.pop(store_key, None)
            if value is None:
                return
            driver = self._driver_for(nid, table)
            if driver is not None:
                self._call(driver, EventType.DELETE, nid, table, key, value)

    def _call(self, driver: Any, event: EventType, nid: str, table: str, key: str, value: bytes) -> None:
        try:
            driver.event_notify(event, nid, table, key, value)
        except Exception as exc:
            line = f"{self.host}: {event.name} {table}/{key[:12]}: {exc!r}"
            log.warning("table event delivery failed: %s", line)
            self.failures.append(line)

    def sync(self, nid: str | None = None) -> int:
        """Make what this host delivered equal what the store holds now (for
        one network or all); returns how many events it had to deliver."""
        prefix = TABLE_PREFIX if nid is None else f"{TABLE_PREFIX}{nid}/"
        pairs = {pair.key: pair.value for pair in self.store.list(prefix)}
        done = 0
        with self._lock:
            for store_key in [k for k in self._delivered if k.startswith(prefix) and k not in pairs]:
                self._deliver_delete(store_key)
                done += 1
            for store_key, text in sorted(pairs.items()):
                before = self._delivered.get(store_key)
                self._deliver_put(store_key, text)
                done += self._delivered.get(store_key) != before
        return done

    def forget(self, nid: str) -> None:
        """The network left this host: its entries are no longer delivered here."""
        with self._lock:
            for store_key in [k for k in self._delivered if k.startswith(f"{TABLE_PREFIX}{nid}/")]:
                del self._delivered[store_key]


def put_definition(store: KVStore, name: str, definition: dict[str, Any]) -> None:
    store.put(definition_key(name), canonical_json(definition), previous_version=MUST_NOT_EXIST)


def get_definition(store: KVStore, name: str) -> dict[str, Any]:
    value = json.loads(store.get(definition_key(name)).value)
    if not isinstance(value, dict):
        raise InvalidParameterError(f"cluster network definition {name!r} is not a JSON object")
    return value
