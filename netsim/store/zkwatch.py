"""The ZooKeeper store's watch: kazoo's TreeCache events turned into
:class:`WatchEvent` values (see :mod:`netsim.store.zookeeper`)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from kazoo.recipe.cache import TreeCache, TreeEvent  # type: ignore[import-untyped]

from netsim.errors import StoreUnavailableError
from netsim.store.watch import Watch, WatchEvent
from netsim.store.zknodes import MARK

if TYPE_CHECKING:
    from netsim.store.zookeeper import ZooKeeperStore

log = logging.getLogger("netsim.store")


class TreeTracker:
    """Turns TreeCache's node events into put/delete events by diffing against
    the versions this watch last reported (so replays after a reconnect and
    the cache's initial load report nothing twice)."""

    def __init__(self, store: ZooKeeperStore, watch: Watch, cache: TreeCache, known: dict[str, int]) -> None:
        self.store, self.watch, self.cache, self.known = store, watch, cache, known
        self.unverified: set[str] = set()

    def on_event(self, event: Any) -> None:
        # Runs on the TreeCache's own thread (not kazoo's), where blocking reads are safe.
        if self.watch.cancelled:
            return
        kind = event.event_type
        if kind == TreeEvent.INITIALIZED:
            present = set(self._cached_keys(self.cache._root._path))
            self._verify(set(self.known) - present)
        elif kind == TreeEvent.CONNECTION_RECONNECTED:
            log.warning("watch %r on %s: reconnected; re-reading the tree", self.watch.prefix, self.store.url)
            self._verify(set(self.unverified))
        elif kind in (TreeEvent.CONNECTION_SUSPENDED, TreeEvent.CONNECTION_LOST) and not self.store._closed:
            log.warning("watch %r on %s: connection %s", self.watch.prefix, self.store.url,
                        "suspended" if kind == TreeEvent.CONNECTION_SUSPENDED else "lost")  # fmt: skip
        elif event.event_data is not None:
            node = event.event_data
            key = self.store.key_of(node.path)
            if key is None or not key.startswith(self.watch.prefix):
                return
            if kind != TreeEvent.NODE_REMOVED and node.data is not None and node.data.startswith(MARK):
                self.unverified.discard(key)
                if node.stat.mzxid > self.known.get(key, 0):
                    self.known[key] = node.stat.mzxid
                    self.watch.deliver(WatchEvent("put", key, node.data[1:].decode(), node.stat.mzxid))
            elif key in self.known:
                self.unverified.discard(key)
                self.watch.deliver(WatchEvent("delete", key, None, self.known.pop(key)))

    def _verify(self, keys: set[str]) -> None:
        """Keys listed when the watch began but absent from the cache: deleted
        meanwhile, or not loaded because the connection dropped. Ask the server;
        what cannot be asked now is asked again after the next reconnect."""
        for key in sorted(keys):
            try:
                present = self.store._read("watch", self.store._path(key)) is not None
            except StoreUnavailableError:
                self.unverified.add(key)
                continue
            self.unverified.discard(key)
            if not present and key in self.known:
                self.watch.deliver(WatchEvent("delete", key, None, self.known.pop(key)))

    def _cached_keys(self, path: str) -> Iterator[str]:
        node = self.cache.get_data(path)
        if node is not None and node.data is not None and node.data.startswith(MARK):
            key = self.store.key_of(path)
            if key is not None:
                yield key
        for child in self.cache.get_children(path, default=()) or ():
            yield from self._cached_keys(path + "/" + child)
