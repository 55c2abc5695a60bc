"""The key-value store the controller keeps its state in (libnetwork's datastore).

The controller never holds networks, endpoints or sandboxes in globals: each is
a JSON record under a libnetwork-shaped key (``network/<id>``,
``endpoint/<nid>/<eid>``, ``sandbox/<id>``). Only the in-memory store exists
today; a persistent (sqlite) or distributed (etcd) one implements the same
:class:`KVStore` protocol, with a per-key version for compare-and-set so that
several controllers can share a global-scope store later.

:class:`MemoryStore` also takes records as dicts (:meth:`MemoryStore.put_record`)
and renders their JSON text only when someone reads ``KVPair.value``: the
controller's hot paths then never encode or decode JSON, while every reader of
the plain :class:`KVStore` interface still sees the same canonical text.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from sortedcontainers import SortedDict  # type: ignore[import-untyped]

from netsim.errors import ConflictError, InvalidParameterError, NotFoundError

#: ``previous_version`` value meaning "the key must not exist yet".
MUST_NOT_EXIST = 0


@dataclass(frozen=True)
class KVPair:
    """One stored value and the version it was written with (versions start at 1)."""

    key: str
    value: str
    version: int


def canonical_json(record: dict[str, Any]) -> str:
    """Canonical JSON text (sorted keys, no spaces), so equal records are equal text."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"))


class RecordPair(KVPair):
    """A :class:`KVPair` holding a record dict; ``value`` (its canonical JSON)
    is rendered on first read and kept. The record is owned by the store: treat
    it as read-only. O(size of record) on first ``value``, O(1) after.

    >>> pair = RecordPair("network/a", {"name": "front", "id": "a"}, 3)
    >>> pair.value
    '{"id":"a","name":"front"}'
    >>> pair == KVPair("network/a", '{"id":"a","name":"front"}', 3)
    True
    """

    record: dict[str, Any]

    def __init__(self, key: str, record: dict[str, Any], version: int) -> None:
        # Frozen dataclass: set fields the way its own __init__ does.
        object.__setattr__(self, "key", key)
        object.__setattr__(self, "record", record)
        object.__setattr__(self, "version", version)

    @property
    def value(self) -> str:
        text: str | None = self.__dict__.get("_text")
        if text is None:
            text = canonical_json(self.record)
            object.__setattr__(self, "_text", text)
        return text

    def __eq__(self, other: object) -> bool:
        # Equal to any KVPair with the same key, text and version (dataclass
        # equality alone would demand the exact same class).
        if not isinstance(other, KVPair):
            return NotImplemented
        return (self.key, self.version, self.value) == (other.key, other.version, other.value)

    def __hash__(self) -> int:
        return hash((self.key, self.value, self.version))


class KVStore(Protocol):
    """What the controller needs from a store.

    ``previous_version`` on :meth:`put` and :meth:`delete` turns the call into a
    compare-and-set: ``None`` writes unconditionally, :data:`MUST_NOT_EXIST`
    requires the key to be absent, any other value must equal the stored
    version, otherwise :class:`ConflictError` is raised and nothing changes.
    """

    def get(self, key: str) -> KVPair: ...

    def put(self, key: str, value: str, previous_version: int | None = None) -> int: ...

    def delete(self, key: str, previous_version: int | None = None) -> None: ...

    def list(self, prefix: str) -> list[KVPair]: ...

    def exists(self, key: str) -> bool: ...


def _check_key(key: str) -> None:
    if key.__class__ is str and key and key[0] != "/" and "//" not in key:
        return  # the common case in one cheap test (this runs on every store call)
    if not isinstance(key, str) or not key or key.startswith("/") or "//" in key:
        raise InvalidParameterError(
            f"invalid store key {key!r}: expected a non-empty relative path like 'network/<id>'"
        )


class MemoryStore:
    """A thread-safe in-memory :class:`KVStore` ordered by key.

    Complexity: get/exists O(1) average, put/delete O(log n), ``list(prefix)``
    O(log n + k) for k matching keys (a sorted key range, not a scan).

    >>> store = MemoryStore()
    >>> store.put("network/a", '{"name": "front"}')
    1
    >>> store.put("network/a", '{"name": "back"}', previous_version=1)
    2
    >>> [p.key for p in store.list("network/")]
    ['network/a']
    >>> store.put("network/a", "{}", previous_version=1)
    Traceback (most recent call last):
    ...
    netsim.errors.ConflictError: store key 'network/a' is at version 2, not 1
    """

    def __init__(self) -> None:
        self._data: SortedDict = SortedDict()
        self._lock = threading.Lock()
        # A global counter (like etcd's revision) so a deleted-then-recreated
        # key never reuses a version an old reader may still hold.
        self._revision = 0

    def _check_version(self, key: str, previous_version: int | None) -> None:
        if previous_version is None:
            return
        current = self._data.get(key)
        if previous_version == MUST_NOT_EXIST:
            if current is not None:
                raise ConflictError(f"store key {key!r} exists already (version {current.version})")
            return
        if current is None:
            raise NotFoundError(f"store key {key!r} does not exist (expected version {previous_version})")
        if current.version != previous_version:
            raise ConflictError(f"store key {key!r} is at version {current.version}, not {previous_version}")

    def get(self, key: str) -> KVPair:
        pair: KVPair | None = self._data.get(key) if key.__class__ is str else None
        if pair is None:
            _check_key(key)  # only now: a key that is stored was valid when put
            raise NotFoundError(f"store key {key!r} does not exist")
        return pair

    def exists(self, key: str) -> bool:
        return key in self._data

    def put(self, key: str, value: str, previous_version: int | None = None) -> int:
        _check_key(key)
        if not isinstance(value, str):
            raise InvalidParameterError(f"store value for {key!r} must be a string, got {type(value).__name__}")
        with self._lock:
            self._check_version(key, previous_version)
            self._revision += 1
            self._data[key] = KVPair(key, value, self._revision)
            return self._revision

    def put_record(self, key: str, record: dict[str, Any], previous_version: int | None = None) -> int:
        """Like :meth:`put` with ``canonical_json(record)``, without encoding now.

        The store takes ``record`` over: the caller must not change it (or
        anything inside it) afterwards. Values must be JSON-native (str, int,
        float, bool, None, lists, dicts with str keys): they are encoded when
        read. O(log n).
        """
        _check_key(key)
        if not isinstance(record, dict):
            raise InvalidParameterError(f"store record for {key!r} must be a dict, got {type(record).__name__}")
        with self._lock:
            self._check_version(key, previous_version)
            self._revision += 1
            self._data[key] = RecordPair(key, record, self._revision)
            return self._revision

    def get_record(self, key: str) -> dict[str, Any]:
        """The record stored under ``key``, decoded (shared, read-only: do not
        change it). O(1) for records put with :meth:`put_record`, else a JSON decode."""
        pair = self.get(key)
        if isinstance(pair, RecordPair):
            return pair.record
        return _decode_object(key, pair.value)

    def list_records(self, prefix: str) -> list[dict[str, Any]]:
        """The JSON-object records under ``prefix`` in key order (shared, read-only)."""
        out = []
        for pair in self.list(prefix):
            if isinstance(pair, RecordPair):
                out.append(pair.record)
            else:
                value = json.loads(pair.value)
                if isinstance(value, dict):
                    out.append(value)
        return out

    def delete(self, key: str, previous_version: int | None = None) -> None:
        _check_key(key)
        with self._lock:
            if key not in self._data:
                raise NotFoundError(f"store key {key!r} does not exist")
            self._check_version(key, previous_version)
            del self._data[key]

    def list(self, prefix: str) -> list[KVPair]:
        with self._lock:
            return [self._data[k] for k in self._keys_with_prefix(prefix)]

    def _keys_with_prefix(self, prefix: str) -> Iterator[str]:
        for key in self._data.irange(minimum=prefix):
            if not key.startswith(prefix):
                break
            yield key

    def __len__(self) -> int:
        return len(self._data)

    def _check(self) -> None:
        """Invariant: every pair is stored under its own key with a version in 1..revision."""
        for key, pair in self._data.items():
            assert pair.key == key, (key, pair)
            assert 1 <= pair.version <= self._revision, (pair, self._revision)


def _decode_object(key: str, text: str) -> dict[str, Any]:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise InvalidParameterError(f"store key {key!r} does not hold a JSON object")
    return value


def put_json(store: KVStore, key: str, record: dict[str, Any], previous_version: int | None = None) -> int:
    """Store ``record`` as canonical JSON (sorted keys, so equal records are equal text)."""
    return store.put(key, canonical_json(record), previous_version)


def get_json(store: KVStore, key: str) -> dict[str, Any]:
    return _decode_object(key, store.get(key).value)


def list_json(store: KVStore, prefix: str) -> list[dict[str, Any]]:
    out = []
    for pair in store.list(prefix):
        value = json.loads(pair.value)
        if isinstance(value, dict):
            out.append(value)
    return out
