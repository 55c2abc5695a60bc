"""A local store held in memory and written through to its backing store.

A controller's local store belongs to that controller alone (libnetwork's
boltdb file is opened by one daemon at a time), so it can serve every read
from memory and send only what changed to the backing store: once per
controller call, in one transaction (:meth:`CachedStore.batch`), or at once
for a write outside any batch. Reads then cost what they cost on
:class:`MemoryStore` (records stay decoded), and a write costs one JSON
encoding plus one row, when the call ends.

If the backing store fails at the end of a call, the call's changes stay in
memory and stay marked dirty: the next call's flush carries them (or the
process dies and recovery starts from the last flush, as after a crash).
Opening takes one listing of the backing store.

>>> backing = MemoryStore()
>>> store = CachedStore(backing)
>>> with store.batch():
...     _ = store.put("network/a", "{}")
...     backing.exists("network/a")
False
>>> backing.exists("network/a")
True
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator
from typing import Any

from netsim.errors import NotFoundError
from netsim.store.base import KVStore
from netsim.store.memory import MemoryStore


class CachedStore(MemoryStore):
    def __init__(self, backing: KVStore) -> None:
        super().__init__()
        self.backing = backing
        self.url = backing.url
        #: keys changed since the last flush
        self._dirty: set[str] = set()
        self._local = threading.local()
        # One listing, loaded in bulk with the cyclic collector paused: 10,000
        # containers are ~40,000 pairs, and its passes would find nothing to free.
        paused = gc.isenabled()
        gc.disable()
        try:
            self.load(backing.list(""))
        finally:
            if paused:
                gc.enable()

    # --- writes: memory first, the backing store at the end of the batch -------------------------
    def put(self, key: str, value: str, previous_version: int | None = None) -> int:
        version = super().put(key, value, previous_version)
        self._changed(key)
        return version

    def put_record(self, key: str, record: dict[str, Any], previous_version: int | None = None) -> int:
        version = super().put_record(key, record, previous_version)
        self._changed(key)
        return version

    def delete(self, key: str, previous_version: int | None = None) -> None:
        super().delete(key, previous_version)
        self._changed(key)

    def _changed(self, key: str) -> None:
        with self._lock:
            self._dirty.add(key)
        if not getattr(self._local, "depth", 0):
            self.flush()

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Writes of this thread inside the block reach the backing store together at its end."""
        depth = getattr(self._local, "depth", 0)
        self._local.depth = depth + 1
        try:
            yield
        finally:
            self._local.depth = depth
            if depth == 0:
                self.flush()

    def flush(self) -> None:
        """Send every changed key to the backing store (one transaction where it has them)."""
        with self._lock:
            dirty, self._dirty = self._dirty, set()
            changes = [(key, self._data[key].value if key in self._data else None) for key in sorted(dirty)]
        if not changes:
            return
        group = getattr(self.backing, "batch", None)
        try:
            with group() if group is not None else contextlib.nullcontext():
                for key, value in changes:
                    if value is not None:
                        self.backing.put(key, value)
                    else:
                        with contextlib.suppress(NotFoundError):
                            self.backing.delete(key)
        except BaseException:
            with self._lock:
                self._dirty |= dirty  # carried by the next flush
            raise

    def close(self) -> None:
        try:
            self.flush()
        finally:
            super().close()
            self.backing.close()
