"""The controller's state as JSON records in a :class:`netsim.store.KVStore`.

Keys follow libnetwork: ``network/<nid>``, ``endpoint/<nid>/<eid>``,
``sandbox/<sid>``; plus name indexes (``name/network/<name>``,
``name/endpoint/<nid>/<name>``, ``name/sandbox/<container>``) written with
compare-and-set, so a duplicate name loses cleanly even between controllers
sharing a store. Records are plain dicts (what JSON gives back).
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from netsim.errors import ConflictError, NotFoundError
from netsim.store import MUST_NOT_EXIST, KVStore, get_json, list_json, put_json

Record = dict[str, Any]


def network_key(nid: str) -> str:
    return f"network/{nid}"


def endpoint_key(nid: str, eid: str) -> str:
    return f"endpoint/{nid}/{eid}"


def sandbox_key(sid: str) -> str:
    return f"sandbox/{sid}"


class Records:
    """Typed access to the controller's records. Each call is O(1) store work
    except the listings, O(k) in what they return."""

    def __init__(self, store: KVStore) -> None:
        self.store = store
        self._networks: dict[str, tuple[int, Record]] = {}

    # --- name indexes --------------------------------------------------------------------
    def claim_name(self, index: str, name: str, owner: str, what: str) -> None:
        """Reserve ``name`` for ``owner``; ConflictError if another has it."""
        key = f"name/{index}/{name}"
        try:
            self.store.put(key, owner, previous_version=MUST_NOT_EXIST)
        except ConflictError:
            raise ConflictError(f"{what} {name!r} already exists") from None

    def release_name(self, index: str, name: str) -> None:
        with contextlib.suppress(NotFoundError):
            self.store.delete(f"name/{index}/{name}")

    def lookup_name(self, index: str, name: str) -> str | None:
        key = f"name/{index}/{name}"
        if not self.store.exists(key):
            return None
        return self.store.get(key).value

    # --- records -------------------------------------------------------------------------
    def get(self, key: str, what: str) -> Record:
        try:
            return get_json(self.store, key)
        except NotFoundError:
            raise NotFoundError(f"{what} not found") from None

    def load(self, key: str, what: str) -> tuple[Record, str]:
        """The record and its stored text (cheap to put back on rollback)."""
        try:
            raw = self.store.get(key).value
        except NotFoundError:
            raise NotFoundError(f"{what} not found") from None
        return json.loads(raw), raw

    def put_raw(self, key: str, raw: str) -> None:
        self.store.put(key, raw)

    def put(self, key: str, record: Record) -> None:
        put_json(self.store, key, record)

    def delete(self, key: str) -> None:
        self._networks.pop(key, None)
        with contextlib.suppress(NotFoundError):
            self.store.delete(key)

    def network(self, nid: str) -> Record:
        """Treat as read-only: decoded once per stored version and shared
        (network records are read on every endpoint operation, written rarely)."""
        key = network_key(nid)
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

    def sandbox(self, sid: str) -> Record:
        return self.get(sandbox_key(sid), f"sandbox {sid[:12]!r}")

    def networks(self) -> list[Record]:
        return list_json(self.store, "network/")

    def endpoints(self, nid: str) -> list[Record]:
        return list_json(self.store, f"endpoint/{nid}/")

    def sandboxes(self) -> list[Record]:
        return list_json(self.store, "sandbox/")

    def has_endpoints(self, nid: str) -> bool:
        return bool(self.store.list(f"endpoint/{nid}/"))
