"""The controller's two stores (libnetwork's ``initStores``): local scope for
this host's records, global scope for what hosts share. Each may be given as
an object or as a URL (``sqlite:///…``, ``etcd://…``, ``zk://…``,
``memory://``); the controller closes the stores it opened itself.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from netsim.controller.config import ControllerConfig
from netsim.driverapi import DiscoveryType
from netsim.errors import NetsimError
from netsim.store import KVStore, MemoryStore


@dataclass
class ControllerStores:
    local: KVStore
    global_: KVStore
    #: given by the caller (a store to survive in): drivers and IPAM keep their state there
    persistent: bool
    opened: list[KVStore] = field(default_factory=list)

    def close(self) -> None:
        for store in reversed(self.opened):
            with contextlib.suppress(NetsimError):
                store.close()
        self.opened.clear()

    def discovery_data(self) -> list[dict[str, str]]:
        """libnetwork's DatastoreConfigData for each configured scope."""
        scopes = [("local", self.local)] if self.persistent else []
        if self.persistent and self.global_ is not self.local:
            scopes.append(("global", self.global_))
        out = []
        for scope, store in scopes:
            url = str(getattr(store, "url", "memory://"))
            out.append({"Scope": scope, "Provider": url.partition("://")[0], "Address": url})
        return out


def open_stores(config: ControllerConfig) -> ControllerStores:
    opened: list[KVStore] = []

    def resolve(value: KVStore | str | None, *, cached: bool = False) -> KVStore | None:
        if value is None or not isinstance(value, str):
            return value
        from netsim.store import open_store

        store: KVStore = open_store(value)
        if cached and not value.startswith("memory:"):
            # The local store is this controller's alone: reads from memory, writes
            # through at the end of each call (netsim.store.cached).
            from netsim.store.cached import CachedStore

            try:
                store = CachedStore(store)
            except BaseException:
                store.close()
                raise
        opened.append(store)
        return store

    try:
        local = resolve(config.local_store if config.local_store is not None else config.store, cached=True)
        global_ = resolve(config.global_store)
    except BaseException:
        ControllerStores(MemoryStore(), MemoryStore(), False, opened).close()
        raise
    persistent = local is not None or global_ is not None
    local = local if local is not None else MemoryStore()
    return ControllerStores(local, global_ if global_ is not None else local, persistent, opened)


__all__ = ["ControllerStores", "DiscoveryType", "open_stores"]
