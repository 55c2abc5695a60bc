"""The key-value stores the controller keeps its state in (libnetwork's datastore).

The controller never holds networks, endpoints or sandboxes in globals: each is
a JSON record under a libnetwork-shaped key (``network/<id>``,
``endpoint/<nid>/<eid>``, ``sandbox/<id>``) in a :class:`KVStore`, with a
per-key version for compare-and-set so several controllers can share a
global-scope store. :func:`open_store` picks the backend from a URL:
``memory://`` (embedded, the default), ``sqlite:///file`` (local scope),
``etcd://`` and ``zk://`` (global scope, real servers). See docs/stores.md.
"""

from netsim.store.base import (
    MUST_NOT_EXIST,
    ROOT,
    KVPair,
    KVStore,
    canonical_json,
    check_key,
    get_json,
    list_json,
    put_json,
)
from netsim.store.memory import MemoryStore, RecordPair
from netsim.store.url import StoreURL, open_store, parse_store_url
from netsim.store.watch import Watch, WatchEvent

__all__ = [
    "MUST_NOT_EXIST",
    "ROOT",
    "KVPair",
    "KVStore",
    "MemoryStore",
    "RecordPair",
    "StoreURL",
    "Watch",
    "WatchEvent",
    "canonical_json",
    "check_key",
    "get_json",
    "list_json",
    "open_store",
    "parse_store_url",
    "put_json",
]
