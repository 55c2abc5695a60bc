"""The :class:`KVStore` contract every backend honours, and helpers shared by them.

Semantics (``MemoryStore`` defines them, every backend reproduces them):

* keys are non-empty relative paths (no leading ``/``, no ``//``); values are
  strings (canonical JSON in practice);
* every write returns the key's new version, an integer >= 1 that grows with
  every write to the store and is never reused, even by a deleted and
  recreated key;
* ``previous_version`` turns :meth:`KVStore.put` / :meth:`KVStore.delete` into
  a compare-and-set: ``None`` is unconditional, :data:`MUST_NOT_EXIST` (0)
  requires the key to be absent, any other value must equal the stored
  version. A mismatch raises :class:`ConflictError`; expecting a version of a
  key that does not exist raises :class:`NotFoundError`; nothing changes;
* ``list(prefix)`` returns every pair whose key starts with ``prefix`` (a plain
  string prefix, not only ``dir/``), in key order;
* a store that cannot reach its server raises
  :class:`netsim.errors.StoreUnavailableError` naming the store and the call.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from netsim.errors import ConflictError, InvalidParameterError, NotFoundError
from netsim.store.watch import Watch, WatchEvent

#: ``previous_version`` value meaning "the key must not exist yet".
MUST_NOT_EXIST = 0

#: libnetwork's datastore root; persistent backends store key ``k`` under it.
ROOT = "docker/network/v1.0"


@dataclass(frozen=True)
class KVPair:
    """One stored value and the version it was written with (versions start at 1)."""

    key: str
    value: str
    version: int


def canonical_json(record: dict[str, Any]) -> str:
    """Canonical JSON text (sorted keys, no spaces), so equal records are equal text."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"))


class KVStore(Protocol):
    """What the controller needs from a store.

    ``previous_version`` on :meth:`put` and :meth:`delete` turns the call into a
    compare-and-set: ``None`` writes unconditionally, :data:`MUST_NOT_EXIST`
    requires the key to be absent, any other value must equal the stored
    version, otherwise :class:`ConflictError` is raised and nothing changes.
    ``url`` is the URL the store was opened from (for messages); ``watch``
    calls ``callback`` on a background thread for every change under a prefix.
    """

    url: str

    def get(self, key: str) -> KVPair: ...

    def put(self, key: str, value: str, previous_version: int | None = None) -> int: ...

    def delete(self, key: str, previous_version: int | None = None) -> None: ...

    def list(self, prefix: str) -> list[KVPair]: ...

    def exists(self, key: str) -> bool: ...

    def watch(self, prefix: str, callback: Callable[[WatchEvent], None]) -> Watch: ...

    def close(self) -> None: ...


def check_key(key: str) -> None:
    """Refuse what :class:`MemoryStore` refuses: non-strings, empty, absolute, ``//``."""
    if key.__class__ is str and key and key[0] != "/" and "//" not in key:
        return  # the common case in one cheap test (this runs on every store call)
    if not isinstance(key, str) or not key or key.startswith("/") or "//" in key:
        raise InvalidParameterError(
            f"invalid store key {key!r}: expected a non-empty relative path like 'network/<id>'"
        )


def encode_key(key: str) -> bytes:
    """A key as UTF-8 for a persistent backend (after :func:`check_key`).

    Lone surrogates cannot be stored as UTF-8: persistent stores refuse them
    (MemoryStore, keeping its hot path free of the check, does not)."""
    check_key(key)
    try:
        return key.encode()
    except UnicodeEncodeError as exc:
        raise InvalidParameterError(f"invalid store key {key!r}: not valid Unicode text ({exc.reason})") from exc


def encode_value(key: str, value: str, limit: int | None = None, backend: str = "") -> bytes:
    """``value`` as UTF-8; a server with a request size limit passes it, so an
    oversized value is refused as such instead of breaking the connection."""
    if not isinstance(value, str):
        raise InvalidParameterError(f"store value for {key!r} must be a string, got {type(value).__name__}")
    try:
        raw = value.encode()
    except UnicodeEncodeError as exc:
        raise InvalidParameterError(f"store value for {key!r} is not valid Unicode text ({exc.reason})") from exc
    if limit is not None and len(raw) > limit:
        raise InvalidParameterError(f"store value for {key!r} is {len(raw)} bytes: {backend} takes at most {limit}")
    return raw


def check_prefix(prefix: str) -> None:
    if not isinstance(prefix, str):
        raise InvalidParameterError(f"store prefix must be a string, got {type(prefix).__name__}")


def prefix_end(prefix: bytes) -> bytes | None:
    """The smallest byte string above every string starting with ``prefix``
    (None: no bound). O(len(prefix)).

    >>> prefix_end(b"network/"), prefix_end(b"a\\xff"), prefix_end(b"")
    (b'network0', b'b', None)
    """
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])


def exists_conflict(key: str, version: int) -> ConflictError:
    return ConflictError(f"store key {key!r} exists already (version {version})")


def version_conflict(key: str, version: int, expected: int) -> ConflictError:
    return ConflictError(f"store key {key!r} is at version {version}, not {expected}")


def missing(key: str, expected: int | None = None) -> NotFoundError:
    if expected is None:
        return NotFoundError(f"store key {key!r} does not exist")
    return NotFoundError(f"store key {key!r} does not exist (expected version {expected})")


def decode_object(key: str, text: str) -> dict[str, Any]:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise InvalidParameterError(f"store key {key!r} does not hold a JSON object")
    return value


def put_json(store: KVStore, key: str, record: dict[str, Any], previous_version: int | None = None) -> int:
    """Store ``record`` as canonical JSON (sorted keys, so equal records are equal text)."""
    return store.put(key, canonical_json(record), previous_version)


def get_json(store: KVStore, key: str) -> dict[str, Any]:
    return decode_object(key, store.get(key).value)


def list_json(store: KVStore, prefix: str) -> list[dict[str, Any]]:
    out = []
    for pair in store.list(prefix):
        value = json.loads(pair.value)
        if isinstance(value, dict):
            out.append(value)
    return out
