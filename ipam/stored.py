"""The default IPAM driver with its pools kept in key-value stores, as
libnetwork keeps each pool's bitmap (a bitseq handle) in its datastore.

Each address space is bound to a store (``LocalDefault`` to the local store,
``GlobalDefault`` to the global one); each pool is one record under
``ipam/<space>/<address>-<prefix length>`` holding what
:meth:`DefaultIpam.to_json` holds for it (held flag, sub-pools, the bitmap's
bytes, serial cursor included). Every change is written with compare-and-set
against the version last seen: several controllers (in several processes,
on several hosts) can share one global pool, and whoever loses a race
reloads the space and tries again, as libnetwork's bitseq does on
``ErrKeyModified``. A store that cannot be reached fails the call with an
:class:`UnavailableError` and leaves nothing applied: the in-memory copy is
reloaded before the next call.

Cost: one store write per call (O(size of the pool's bitmap bytes), which
stay small: runs are compressed), one list of the space on a lost race.
"""

from __future__ import annotations

import base64
import json
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from ipam.default import DefaultIpam, _Handle, _Pool, _Space
from ipam.pools import PredefinedPool
from netsim.driverapi import IPAddress, IPInterface, IPNetwork
from netsim.errors import ConflictError, InvalidParameterError, NotFoundError, UnavailableError
from netsim.store import MUST_NOT_EXIST, KVStore, canonical_json

#: lost races tolerated per call before giving up (each one means another host wrote)
MAX_ATTEMPTS = 64
POOL_PREFIX = "ipam"

T = TypeVar("T")


def space_prefix(space: str) -> str:
    return f"{POOL_PREFIX}/{space}/"


def pool_key(space: str, network: IPNetwork) -> str:
    """``ipam/LocalDefault/172.17.0.0-16``: no ``/`` inside the last element,
    so the key is one node in path-shaped stores (ZooKeeper).

    >>> import ipaddress
    >>> pool_key("GlobalDefault", ipaddress.ip_network("fd00::/64"))
    'ipam/GlobalDefault/fd00::-64'
    """
    return f"{space_prefix(space)}{network.network_address}-{network.prefixlen}"


def pool_record(pool: _Pool) -> dict[str, Any]:
    return {
        "network": str(pool.network),
        "held": pool.held,
        "children": sorted(str(child) for child in pool.children),
        "bitmap": base64.b64encode(pool.bitmap.to_bytes()).decode("ascii"),
    }


class StoredIpam(DefaultIpam):
    """:class:`DefaultIpam` whose address spaces listed in ``stores`` live in
    those stores (spaces not listed stay in memory only).

    Opening one on a store that holds pools recovers them, bitmaps and all.
    """

    def __init__(
        self,
        stores: Mapping[str, KVStore],
        local_pools: tuple[PredefinedPool, ...] | None = None,
        global_pools: tuple[PredefinedPool, ...] | None = None,
    ) -> None:
        super().__init__(local_pools, global_pools)
        unknown = set(stores) - set(self._spaces)
        if unknown:
            raise InvalidParameterError(f"stored IPAM: unknown address space(s) {sorted(unknown)}")
        self._stores = dict(stores)
        self._versions: dict[str, int] = {}
        #: spaces whose in-memory copy may differ from the store (a write failed)
        self._stale: set[str] = set()
        self._mutex = threading.RLock()
        for name in self._stores:
            self._reload_space(name)

    # --- loading ------------------------------------------------------------------------------
    def _reload_space(self, name: str) -> None:
        """Replace the in-memory space ``name`` with what its store holds."""
        pairs = self._stores[name].list(space_prefix(name))
        fresh = _Space(name, self._spaces[name].predefined)
        handles = {pid: h for pid, h in self._handles.items() if pid.split("/", 1)[0] != name}
        versions = {key: v for key, v in self._versions.items() if not key.startswith(space_prefix(name))}
        saved_handles = self._handles
        self._handles = handles
        try:
            for pair in pairs:
                try:
                    entry = json.loads(pair.value)
                except ValueError as exc:
                    raise InvalidParameterError(f"stored IPAM: {pair.key} is not JSON: {exc}") from None
                self._restore_pool(fresh, entry, pair.key)
                versions[pair.key] = pair.version
        except BaseException:
            self._handles = saved_handles
            raise
        self._spaces[name] = fresh
        self._versions = versions
        self._stale.discard(name)

    def _handle(self, pool_id: object) -> _Handle:
        """A pool another controller made (or one a lost race removed): reload once."""
        handle = self._handles.get(pool_id) if isinstance(pool_id, str) else None
        if handle is None and isinstance(pool_id, str):
            space = pool_id.split("/", 1)[0]
            if space in self._stores:
                self._reload_space(space)
        return super()._handle(pool_id)

    # --- writing ------------------------------------------------------------------------------
    def _save(self, space: str, pool: _Pool) -> None:
        store = self._stores.get(space)
        if store is None:
            return
        key = pool_key(space, pool.network)
        previous = self._versions.get(key, MUST_NOT_EXIST)
        if pool.held or pool.children:
            self._versions[key] = store.put(key, canonical_json(pool_record(pool)), previous_version=previous)
        elif previous != MUST_NOT_EXIST:
            store.delete(key, previous_version=previous)
            del self._versions[key]

    def _apply(self, space: str, change: Callable[[], tuple[T, _Pool]]) -> T:
        """Run ``change`` on the in-memory space, then write the pool it touched.
        A lost race reloads the space and runs ``change`` again; any other
        failure to write leaves the space marked stale (reloaded next call)."""
        if space not in self._stores:
            return change()[0]
        for attempt in range(MAX_ATTEMPTS):
            with self._mutex:
                if space in self._stale:
                    self._reload_space(space)
                result, pool = change()
                try:
                    self._save(space, pool)
                    return result
                except (ConflictError, NotFoundError):
                    self._stale.add(space)
                except BaseException:
                    self._stale.add(space)
                    raise
            time.sleep(random.uniform(0, 0.001 * min(attempt + 1, 20)))  # spread racing hosts apart
        raise UnavailableError(
            f"stored IPAM: gave up on address space {space} after {MAX_ATTEMPTS} lost write races"
            f" ({self._stores[space].__class__.__name__})"
        )

    def _space_of(self, address_space: object) -> str:
        return self._space(address_space).name

    def _pool_of(self, pool_id: str) -> _Pool:
        return self._handle(pool_id).pool

    # --- the Ipam contract ------------------------------------------------------------------------
    def request_pool(
        self, address_space: str, pool: str, sub_pool: str, options: Mapping[str, str], v6: bool
    ) -> tuple[str, IPNetwork, dict[str, str]]:
        with self._mutex:
            space = self._space_of(address_space)

            def change() -> tuple[tuple[str, IPNetwork, dict[str, str]], _Pool]:
                result = DefaultIpam.request_pool(self, address_space, pool, sub_pool, options, v6)
                return result, self._pool_of(result[0])

            return self._apply(space, change)

    def release_pool(self, pool_id: str) -> None:
        with self._mutex:
            space = pool_id.split("/", 1)[0] if isinstance(pool_id, str) else ""

            def change() -> tuple[None, _Pool]:
                pool = self._pool_of(pool_id)
                DefaultIpam.release_pool(self, pool_id)
                return None, pool

            self._apply(space, change)

    def request_address(
        self, pool_id: str, preferred: IPAddress | None, options: Mapping[str, str]
    ) -> tuple[IPInterface, dict[str, str]]:
        with self._mutex:
            space = pool_id.split("/", 1)[0] if isinstance(pool_id, str) else ""

            def change() -> tuple[tuple[IPInterface, dict[str, str]], _Pool]:
                pool = self._pool_of(pool_id)
                return DefaultIpam.request_address(self, pool_id, preferred, options), pool

            return self._apply(space, change)

    def release_address(self, pool_id: str, address: IPAddress) -> None:
        with self._mutex:
            space = pool_id.split("/", 1)[0] if isinstance(pool_id, str) else ""

            def change() -> tuple[None, _Pool]:
                pool = self._pool_of(pool_id)
                DefaultIpam.release_address(self, pool_id, address)
                return None, pool

            self._apply(space, change)

    # --- reconciliation (the controller's recovery) -----------------------------------------------------
    def pool_ids(self, address_space: str) -> list[str]:
        """Every pool id held in ``address_space`` (sorted)."""
        with self._mutex:
            self._reload_space(address_space) if address_space in self._stores else None
            prefix = f"{address_space}/"
            return sorted(pid for pid in self._handles if pid.startswith(prefix))

    def allocated(self, pool_id: str) -> set[IPAddress]:
        """The addresses taken in ``pool_id``'s pool, reserved ones excepted. O(taken)."""
        with self._mutex:
            pool = self._pool_of(pool_id)
            reserved = set(pool.reserved)
            return {pool.address_type(pool.base + o) for o in pool.bitmap if o not in reserved}
