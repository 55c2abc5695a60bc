"""The controller's state as JSON records in a :class:`netsim.store.KVStore`.

Keys follow libnetwork: ``network/<nid>``, ``endpoint/<nid>/<eid>``,
``sandbox/<sid>``; plus name indexes (``name/network/<name>``,
``name/endpoint/<nid>/<name>``, ``name/sandbox/<container>``) written with
compare-and-set, so a duplicate name loses cleanly even between controllers
sharing a store. Records are plain dicts of JSON-native values.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from netsim.errors import ConflictError, NotFoundError
from netsim.store import MUST_NOT_EXIST, KVStore, MemoryStore, canonical_json, get_json, list_json, put_json

Record = dict[str, Any]


def network_key(nid: str) -> str:
    return f"network/{nid}"


def endpoint_key(nid: str, eid: str) -> str:
    return f"endpoint/{nid}/{eid}"


def sandbox_key(sid: str) -> str:
    return f"sandbox/{sid}"


def copy_record(value: Any) -> Any:
    """A deep copy of a JSON-native value (dicts and lists rebuilt, leaves shared:
    they are immutable). O(size); cheaper than ``copy.deepcopy`` or a JSON round trip.

    >>> record = {"ports": [{"port": 80}], "name": "web"}
    >>> twin = copy_record(record)
    >>> twin["ports"][0]["port"] = 81
    >>> record["ports"][0]["port"]
    80
    """
    if isinstance(value, dict):
        return {key: copy_record(item) for key, item in value.items()}
    if isinstance(value, list):
        return [copy_record(item) for item in value]
    return value


def normalized(record: Record) -> Record:
    """``record`` as the store would give it back through JSON (tuples become
    lists, non-str keys become str): for records built from user input."""
    loaded: Record = json.loads(canonical_json(record))
    return loaded


class Records:
    """Typed access to the controller's records. Each call is O(1) store work
    except the listings, O(k) in what they return.

    With a :class:`MemoryStore` (the default), records are kept as dicts and
    JSON is rendered only if someone reads the store's text. The price is a
    rule for this package: a dict handed to :meth:`put` belongs to the store
    (never change it afterwards), and what :meth:`view`, :meth:`network` and
    :meth:`load` return is shared (read-only; :meth:`load` gives a shallow
    copy whose top-level keys may be replaced, never its nested values
    changed). :meth:`get`, :meth:`endpoint` and :meth:`sandbox` return
    private deep copies, safe to hand to users.
    """

    def __init__(self, store: KVStore) -> None:
        self.store = store
        self._records: MemoryStore | None = store if isinstance(store, MemoryStore) else None
        self._networks: dict[str, tuple[int, Record]] = {}

    # --- name indexes --------------------------------------------------------------------
    def claim_name(self, index: str, name: str, owner: str, what: str | Callable[[], str]) -> None:
        """Reserve ``name`` for ``owner``; ConflictError if another has it
        (``what`` names the kind in that error; a callable is called only then)."""
        key = f"name/{index}/{name}"
        try:
            self.store.put(key, owner, previous_version=MUST_NOT_EXIST)
        except ConflictError:
            kind = what if isinstance(what, str) else what()
            raise ConflictError(f"{kind} {name!r} already exists") from None

    def release_name(self, index: str, name: str) -> None:
        try:  # not contextlib.suppress: a context manager costs more than the delete
            self.store.delete(f"name/{index}/{name}")
        except NotFoundError:
            return

    def name_taken(self, index: str, name: str) -> bool:
        """Whether ``name`` is claimed in ``index`` (one existence check, no read)."""
        return self.store.exists(f"name/{index}/{name}")

    def lookup_name(self, index: str, name: str) -> str | None:
        try:
            return self.store.get(f"name/{index}/{name}").value
        except NotFoundError:
            return None

    # --- records -------------------------------------------------------------------------
    def view(self, key: str, what: str) -> Record:
        """The record under ``key``, shared and read-only (O(1) with a MemoryStore)."""
        try:
            if self._records is not None:
                return self._records.get_record(key)
            return get_json(self.store, key)
        except NotFoundError:
            raise NotFoundError(f"{what} not found") from None

    def get(self, key: str, what: str) -> Record:
        """A private copy of the record under ``key``."""
        record = self.view(key, what)
        return copy_record(record) if self._records is not None else record

    def load(self, key: str, what: str) -> tuple[Record, Record]:
        """A shallow copy to update and the stored record (to put back on rollback)."""
        before = self.view(key, what)
        return dict(before), before

    def put(self, key: str, record: Record) -> None:
        """Store ``record``; it belongs to the store from now on (see the class doc)."""
        if self._records is not None:
            self._records.put_record(key, record)
        else:
            put_json(self.store, key, record)

    def delete(self, key: str) -> None:
        self._networks.pop(key, None)
        try:
            self.store.delete(key)
        except NotFoundError:
            return

    def network(self, nid: str) -> Record:
        """Treat as read-only: decoded once per stored version and shared
        (network records are read on every endpoint operation, written rarely)."""
        key = f"network/{nid}"
        if self._records is not None:
            return self._shared(key, "network", nid)
        try:
            pair = self.store.get(key)
        except NotFoundError:
            raise NotFoundError(f"network {nid[:12]!r} not found") from None
        cached = self._networks.get(key)
        if cached is None or cached[0] != pair.version:
            cached = (pair.version, json.loads(pair.value))
            self._networks[key] = cached
        return cached[1]

    def endpoint(self, nid: str, eid: str) -> Record:
        return self.get(endpoint_key(nid, eid), f"endpoint {eid[:12]!r}")

    def endpoint_view(self, nid: str, eid: str) -> Record:
        """Read-only :meth:`endpoint` without the copy, for the controller's own reads."""
        key = f"endpoint/{nid}/{eid}"
        if self._records is not None:
            return self._shared(key, "endpoint", eid)
        return self.view(key, f"endpoint {eid[:12]!r}")

    def sandbox(self, sid: str) -> Record:
        return self.get(sandbox_key(sid), f"sandbox {sid[:12]!r}")

    def sandbox_view(self, sid: str) -> Record:
        """Read-only :meth:`sandbox` without the copy, for the controller's own reads."""
        key = f"sandbox/{sid}"
        if self._records is not None:
            return self._shared(key, "sandbox", sid)
        return self.view(key, f"sandbox {sid[:12]!r}")

    def _shared(self, key: str, kind: str, ident: str) -> Record:
        """:meth:`view` on a MemoryStore, the error text formatted only on a miss
        (these lookups run several times per controller call)."""
        assert self._records is not None
        try:
            return self._records.get_record(key)  # one call: this runs ~15 times per lifecycle
        except NotFoundError:
            raise NotFoundError(f"{kind} {ident[:12]!r} not found") from None

    def _list(self, prefix: str) -> list[Record]:
        if self._records is not None:
            return [copy_record(record) for record in self._records.list_records(prefix)]
        return list_json(self.store, prefix)

    def all_under(self, prefix: str) -> list[Record]:
        """Private copies of every record under ``prefix`` (one listing)."""
        return self._list(prefix)

    def views_under(self, prefix: str) -> list[Record]:
        """Every record under ``prefix``, shared and read-only like :meth:`view`
        (one listing, no copies: recovery reads 10,000 containers' records)."""
        if self._records is not None:
            return self._records.list_records(prefix)
        return list_json(self.store, prefix)

    def networks(self) -> list[Record]:
        return self._list("network/")

    def endpoints(self, nid: str) -> list[Record]:
        return self._list(f"endpoint/{nid}/")

    def sandboxes(self) -> list[Record]:
        return self._list("sandbox/")

    def has_state(self) -> bool:
        """Whether the store holds any network or sandbox (a controller opened on it recovers)."""
        return any(
            self.store.list(prefix) for prefix in ("network/", "sandbox/", "endpoint/", "name/", "ipam/LocalDefault/")
        )

    def has_endpoints(self, nid: str) -> bool:
        return bool(self.store.list(f"endpoint/{nid}/"))
