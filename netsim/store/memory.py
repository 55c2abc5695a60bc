"""The embedded in-memory store (``memory://``), the default and the reference
for every other backend's semantics (see :mod:`netsim.store.base`).

:class:`MemoryStore` also takes records as dicts (:meth:`MemoryStore.put_record`)
and renders their JSON text only when someone reads ``KVPair.value``: the
controller's hot paths then never encode or decode JSON, while every reader of
the plain :class:`KVStore` interface still sees the same canonical text.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

from sortedcontainers import SortedList  # type: ignore[import-untyped]

from netsim.errors import ConflictError, InvalidParameterError, NotFoundError
from netsim.store.base import MUST_NOT_EXIST, KVPair, canonical_json, check_key, check_prefix, decode_object
from netsim.store.watch import Watch, WatchEvent


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
        # Frozen dataclass: fill the instance dict directly (what object.__setattr__
        # does, at half the cost: one is made per record write).
        fields = self.__dict__
        fields["key"] = key
        fields["record"] = record
        fields["version"] = version

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


def _pair(key: str, value: str, version: int, _new: Any = object.__new__) -> KVPair:
    """``KVPair(key, value, version)`` at half the cost of the frozen dataclass's
    own ``__init__`` (one is made per name claim)."""
    pair: KVPair = _new(KVPair)
    fields = pair.__dict__
    fields["key"] = key
    fields["value"] = value
    fields["version"] = version
    return pair


class MemoryStore:
    """A thread-safe in-memory :class:`KVStore` ordered by key.

    Complexity: get/exists/put/delete O(1) average, ``list(prefix)``
    O(log n + k) for k matching keys (a sorted key range, not a scan), plus
    O(c log n) once for the c keys created or deleted since the last listing:
    the sorted key index is brought up to date lazily, so a key made and
    removed between two listings (an endpoint's, over its lifecycle) never
    touches it.

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

    def __init__(self, url: str = "memory://") -> None:
        self.url = url
        self._data: dict[str, KVPair] = {}
        # Sorted keys as of the last listing, and the changes since: keys
        # created (in _data, not in _sorted) and deleted (in _sorted, not in _data).
        self._sorted = SortedList()
        self._created: set[str] = set()
        self._deleted: set[str] = set()
        self._lock = threading.Lock()
        # Running watches; writes test this list's truth only, so an unwatched
        # store pays one attribute load per write.
        self._watches: list[Watch] = []
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
            check_key(key)  # only now: a key that is stored was valid when put
            raise NotFoundError(f"store key {key!r} does not exist")
        return pair

    def exists(self, key: str) -> bool:
        return key in self._data

    def put(self, key: str, value: str, previous_version: int | None = None) -> int:
        check_key(key)
        if value.__class__ is not str and not isinstance(value, str):
            raise InvalidParameterError(f"store value for {key!r} must be a string, got {type(value).__name__}")
        with self._lock:
            if previous_version is not None:
                self._check_version(key, previous_version)
            self._revision += 1
            if key not in self._data:
                self._key_created(key)
            pair = self._data[key] = _pair(key, value, self._revision)
            if self._watches:
                self._notify(pair)
            return self._revision

    def put_record(self, key: str, record: dict[str, Any], previous_version: int | None = None) -> int:
        """Like :meth:`put` with ``canonical_json(record)``, without encoding now.

        The store takes ``record`` over: the caller must not change it (or
        anything inside it) afterwards. Values must be JSON-native (str, int,
        float, bool, None, lists, dicts with str keys): they are encoded when
        read. O(log n).
        """
        check_key(key)
        if record.__class__ is not dict and not isinstance(record, dict):
            raise InvalidParameterError(f"store record for {key!r} must be a dict, got {type(record).__name__}")
        with self._lock:
            if previous_version is not None:
                self._check_version(key, previous_version)
            self._revision += 1
            if key not in self._data:
                self._key_created(key)
            pair = self._data[key] = RecordPair(key, record, self._revision)
            if self._watches:
                self._notify(pair)
            return self._revision

    def get_record(self, key: str) -> dict[str, Any]:
        """The record stored under ``key``, decoded (shared, read-only: do not
        change it). O(1) for records put with :meth:`put_record`, else a JSON decode."""
        pair = self._data.get(key) if key.__class__ is str else None
        if pair is None:
            pair = self.get(key)  # raises: the same check and error as get()
        if pair.__class__ is RecordPair:
            return pair.record
        record = decode_object(key, pair.value)
        self._keep_decoded(pair, record)
        return record

    def list_records(self, prefix: str) -> list[dict[str, Any]]:
        """The JSON-object records under ``prefix`` in key order (shared, read-only)."""
        out = []
        for pair in self.list(prefix):
            if pair.__class__ is RecordPair:
                out.append(pair.record)
            else:
                value = json.loads(pair.value)
                if isinstance(value, dict):
                    self._keep_decoded(pair, value)
                    out.append(value)
        return out

    def _keep_decoded(self, pair: KVPair, record: dict[str, Any]) -> None:
        """Text stored with :meth:`put` is decoded once: the pair is swapped for a
        :class:`RecordPair` of the same key, version and text (what a reader of
        ``get`` sees is unchanged), so the next record read costs no decode."""
        decoded = RecordPair(pair.key, record, pair.version)
        decoded.__dict__["_text"] = pair.value
        with self._lock:
            if self._data.get(pair.key) is pair:  # not written meanwhile
                self._data[pair.key] = decoded

    def load(self, pairs: list[KVPair]) -> None:
        """Fill an empty store with ``pairs`` (a backing store's listing), as
        :meth:`put` of each in order would, without the per-write checks: the
        values come from a store. O(n log n)."""
        with self._lock:
            if self._data:
                raise InvalidParameterError(f"{self.url}: load() fills an empty store only")
            for pair in pairs:
                check_key(pair.key)
                if pair.value.__class__ is not str:
                    raise InvalidParameterError(f"store value for {pair.key!r} must be a string")
                self._revision += 1
                self._data[pair.key] = _pair(pair.key, pair.value, self._revision)
            self._sorted = SortedList(self._data)
            self._created.clear()
            self._deleted.clear()

    def delete(self, key: str, previous_version: int | None = None) -> None:
        check_key(key)
        with self._lock:
            if key not in self._data:
                raise NotFoundError(f"store key {key!r} does not exist")
            if previous_version is not None:
                self._check_version(key, previous_version)
            pair = self._data.pop(key)
            if key in self._created:
                self._created.discard(key)
            else:
                self._deleted.add(key)
            if self._watches:
                self._notify(pair, deleted=True)

    def list(self, prefix: str) -> list[KVPair]:
        if prefix.__class__ is not str:
            check_prefix(prefix)
        with self._lock:
            return [self._data[k] for k in self._keys_with_prefix(prefix)]

    def _key_created(self, key: str) -> None:
        if key in self._deleted:
            self._deleted.discard(key)  # still in the index
        else:
            self._created.add(key)

    def _keys_with_prefix(self, prefix: str) -> Iterator[str]:
        """With the lock held."""
        if self._deleted:
            for key in self._deleted:
                self._sorted.remove(key)
            self._deleted.clear()
        if self._created:
            self._sorted.update(self._created)
            self._created.clear()
        for key in self._sorted.irange(minimum=prefix):
            if not key.startswith(prefix):
                break
            yield key

    def watch(self, prefix: str, callback: Callable[[WatchEvent], None]) -> Watch:
        """Call ``callback`` (on the watch's own thread) for every later write
        under ``prefix``, in write order: exact, no change is coalesced."""
        check_prefix(prefix)
        watch = Watch(self.url, prefix, callback)

        def forget() -> None:
            with self._lock:
                if watch in self._watches:
                    self._watches.remove(watch)

        watch.on_cancel = forget
        with self._lock:
            self._watches.append(watch)
        return watch

    def _notify(self, pair: KVPair, *, deleted: bool = False) -> None:
        # Called with the lock held, so watchers see writes in store order.
        event: WatchEvent | None = None
        for watch in self._watches:
            if pair.key.startswith(watch.prefix):
                if event is None:
                    event = (
                        WatchEvent("delete", pair.key, None, pair.version)
                        if deleted
                        else WatchEvent("put", pair.key, pair.value, pair.version)
                    )
                watch.deliver(event)

    def close(self) -> None:
        """Cancel every watch (idempotent); the data stays readable."""
        with self._lock:
            watches, self._watches = self._watches, []
        for watch in watches:
            watch.cancel()

    def __len__(self) -> int:
        return len(self._data)

    def _check(self) -> None:
        """Invariant: every pair is stored under its own key with a version in 1..revision."""
        for key, pair in self._data.items():
            assert pair.key == key, (key, pair)
            assert 1 <= pair.version <= self._revision, (pair, self._revision)
        assert not self._created & self._deleted
        assert set(self._sorted) | self._created == set(self._data) | self._deleted
        assert len(self._sorted) == len(set(self._sorted)), "no key twice in the index"
