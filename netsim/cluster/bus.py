"""The table-event bus: an in-process, synchronous stand-in for libnetwork's
networkdb gossip.

A controller publishes the table entries its drivers add at join (CREATE) and
withdraws them at leave (DELETE); the bus keeps the live entries and hands
every event to every other host's subscriber at once. Delivery failures are
recorded, not raised: in libnetwork gossip is asynchronous, so a remote
host's trouble never fails the local join or leave.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from netsim.driverapi import EventType
from netsim.errors import ConflictError, InvalidParameterError, NotFoundError

log = logging.getLogger(__name__)

Deliver = Callable[[EventType, str, str, str, bytes], None]


@dataclass(frozen=True)
class TableEntry:
    origin: str
    nid: str
    table: str
    key: str
    value: bytes


class TableEventBus:
    """Live entries keyed by ``(nid, table, key)`` and one subscriber per host.

    ``publish`` costs O(1) plus one delivery per other host; ``entries``,
    ``sync`` and ``withdraw`` O(n log n) for n live entries.

    >>> bus = TableEventBus()
    >>> seen = []
    >>> bus.subscribe("h2", lambda *event: seen.append(event[0].name))
    >>> bus.publish("h1", EventType.CREATE, "n1", "t", "k", b"v")
    >>> bus.publish("h2", EventType.CREATE, "n1", "t", "k2", b"v")  # not echoed to its origin
    >>> seen, [e.key for e in bus.entries("n1")]
    (['CREATE'], ['k', 'k2'])
    >>> bus.withdraw("h1"), seen, [e.key for e in bus.entries("n1")]
    (1, ['CREATE', 'DELETE'], ['k2'])
    """

    def __init__(self) -> None:
        self._subscribers: dict[str, Deliver] = {}
        self._entries: dict[tuple[str, str, str], TableEntry] = {}
        self._lock = threading.RLock()
        #: one line per delivery that raised (host, event, error)
        self.failures: list[str] = []

    def subscribe(self, host: str, deliver: Deliver) -> None:
        with self._lock:
            if host in self._subscribers:
                raise ConflictError(f"host {host!r} is already subscribed to table events")
            self._subscribers[host] = deliver

    def unsubscribe(self, host: str) -> None:
        with self._lock:
            if self._subscribers.pop(host, None) is None:
                raise NotFoundError(f"host {host!r} is not subscribed to table events")

    def publish(self, origin: str, event: EventType, nid: str, table: str, key: str, value: bytes) -> None:
        if not isinstance(event, EventType):
            raise InvalidParameterError(f"invalid table event {event!r}: expected an EventType")
        for label, text in (("origin", origin), ("network id", nid), ("table", table), ("key", key)):
            if not isinstance(text, str) or not text:
                raise InvalidParameterError(f"table event needs a non-empty {label}, got {text!r}")
        if not isinstance(value, bytes):
            raise InvalidParameterError(f"table event value must be bytes, got {type(value).__name__}")
        with self._lock:
            if event == EventType.DELETE:
                self._entries.pop((nid, table, key), None)
            else:
                self._entries[(nid, table, key)] = TableEntry(origin, nid, table, key, value)
            targets = sorted((host, deliver) for host, deliver in self._subscribers.items() if host != origin)
        entry = TableEntry(origin, nid, table, key, value)
        for host, deliver in targets:
            self._deliver(host, deliver, event, entry)

    def sync(self, host: str) -> int:
        """networkdb's bulk sync for a host that just joined (or got a network):
        every live entry of the other hosts, as CREATE events, to its subscriber.
        Returns how many were delivered. O(entries)."""
        with self._lock:
            deliver = self._subscribers.get(host)
            if deliver is None:
                raise NotFoundError(f"host {host!r} is not subscribed to table events")
            entries = sorted((e for e in self._entries.values() if e.origin != host), key=_entry_order)
        for entry in entries:
            self._deliver(host, deliver, EventType.CREATE, entry)
        return len(entries)

    def withdraw(self, origin: str) -> int:
        """A host left: every entry it still owns is deleted, and the others are
        told (networkdb deletes a departed node's entries). Returns how many."""
        with self._lock:
            owned = sorted((e for e in self._entries.values() if e.origin == origin), key=_entry_order)
        for entry in owned:
            self.publish(origin, EventType.DELETE, entry.nid, entry.table, entry.key, entry.value)
        return len(owned)

    def _deliver(self, host: str, deliver: Deliver, event: EventType, entry: TableEntry) -> None:
        try:
            deliver(event, entry.nid, entry.table, entry.key, entry.value)
        except Exception as exc:  # gossip never fails the publisher; keep a record
            line = f"{host}: {event.name} {entry.table}/{entry.key[:12]}: {exc!r}"
            log.warning("table event delivery failed: %s", line)
            self.failures.append(line)

    def entries(self, nid: str | None = None) -> list[TableEntry]:
        """Live entries (of one network), sorted by table and key."""
        with self._lock:
            found = [e for e in self._entries.values() if nid is None or e.nid == nid]
        return sorted(found, key=_entry_order)


def _entry_order(entry: TableEntry) -> tuple[str, str, str]:
    return entry.nid, entry.table, entry.key
