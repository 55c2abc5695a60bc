"""``zk://host:port[,host:port][/chroot]``: a global store on ZooKeeper (kazoo).

Layout: key ``a/b`` is znode ``[/<chroot>]/docker/network/v1.0/a/b``, one
znode per path segment, so ``list("endpoint/n1/")`` reads one subtree.
Segments are percent-encoded where ZooKeeper would refuse them (``%``, ``/``,
control and non-ASCII characters; ``.`` and ``..``; the empty segment of a
key ending in ``/`` is ``%``). A znode holding a key's value has data
``=`` + UTF-8 value; any other data (the empty data of parents ZooKeeper made
for a deeper key, or of a deleted key that still has children) marks a
"directory" that is no key.

Versions: znode versions restart at 0 when a node is re-created, so the public
version is the znode's ``mzxid`` (the zxid of its last write: global,
increasing, never reused). Compare-and-set reads the znode, compares its mzxid
with the expected version, then writes with that read's *znode* version: if
anyone wrote in between, ZooKeeper refuses (BadVersion) and the call raises
:class:`ConflictError`, so the check and the write are atomic.

``list(prefix)`` takes any string prefix: it lists the children of the
prefix's directory part, keeps those whose name starts with the rest, and reads
their subtrees level by level (pipelined reads; children are asked for
only where a node has some). It is not one snapshot: keys written during
the walk may or may not be seen.

Watches use kazoo's TreeCache (ZooKeeper 3.8 has persistent recursive watches,
kazoo 2.11 does not speak them): every change is reported in order per key,
but ZooKeeper watches read the *current* state, so several writes to a key in
quick succession may arrive as fewer events (the last one always arrives,
with its version). After a lost session the cache re-reads the tree and the
watch reports the differences.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from kazoo.client import KazooClient  # type: ignore[import-untyped]
from kazoo.exceptions import BadVersionError, KazooException, NodeExistsError, NoNodeError, NotEmptyError  # type: ignore[import-untyped]
from kazoo.handlers.threading import KazooTimeoutError  # type: ignore[import-untyped]
from kazoo.protocol.states import KazooState  # type: ignore[import-untyped]
from kazoo.recipe.cache import TreeCache  # type: ignore[import-untyped]

from netsim.errors import NetsimError, StoreUnavailableError
from netsim.store.base import (
    MUST_NOT_EXIST,
    ROOT,
    KVPair,
    check_prefix,
    encode_key,
    encode_value,
    exists_conflict,
    missing,
    version_conflict,
)
from netsim.store.url import StoreURL
from netsim.store.watch import Watch, WatchEvent
from netsim.store.zknodes import MARK, decode_segment, encode_segment
from netsim.store.zkwatch import TreeTracker

log = logging.getLogger("netsim.store")

_RETRIES = 20  # rounds of a read-then-write loop losing to concurrent writers
#: ZooKeeper drops the connection on a packet over jute.maxbuffer (1 MiB by default).
MAX_VALUE_BYTES = 1_000_000


class ZooKeeperStore:
    """A :class:`netsim.store.KVStore` on ZooKeeper (see the module docstring)."""

    def __init__(self, url: str, parsed: StoreURL) -> None:
        self.url = url
        self.timeout = parsed.timeout
        self.base = ("/" + parsed.path if parsed.path else "") + "/" + ROOT
        self._hosts = ",".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in parsed.endpoints)
        self._connect()

    def _connect(self) -> None:
        # Reconnect forever in the background (max 1 s apart); each call waits
        # at most ``timeout`` for a connection and fails otherwise.
        self._client = KazooClient(
            hosts=self._hosts,
            timeout=10.0,
            connection_retry={"max_tries": -1, "max_delay": 1.0},
            logger=logging.getLogger("netsim.store.kazoo"),  # its reconnect chatter, separable
        )
        self._pid = os.getpid()
        self._connected = threading.Event()
        self._lock = threading.Lock()
        self._root_ready = False
        self._closed = False
        self._watches: list[Watch] = []
        self._client.add_listener(self._on_state)
        self._client.start_async()

    def _on_state(self, state: str) -> None:
        if state == KazooState.CONNECTED:
            self._connected.set()
        elif not self._closed:
            self._connected.clear()
            log.warning("ZooKeeper store %s: connection %s", self.url, state.lower())

    # -- transport -----------------------------------------------------------

    def _ready(self, operation: str) -> None:
        if self._pid != os.getpid():
            # A forked child: kazoo's threads stayed in the parent. Its own
            # session (the parent's watches are the parent's).
            self._connect()
        if self._closed:
            with self._lock:
                if self._closed:  # reopened after close(), as the other stores allow
                    self._closed = False
                    self._client.start_async()
        if not self._connected.wait(self.timeout):
            raise StoreUnavailableError(
                f"not connected to ZooKeeper within {self.timeout:g}s", url=self.url, operation=operation
            )
        if not self._root_ready:
            self._wait(operation, self._client.ensure_path_async(self.base))
            self._root_ready = True

    def _wait(self, operation: str, result: Any) -> Any:
        """The value of a kazoo async ``result``, within the timeout; lost
        connections become :class:`StoreUnavailableError` (ZooKeeper's own
        errors such as NoNode pass through)."""
        try:
            return result.get(timeout=self.timeout)
        except KazooTimeoutError as exc:
            raise StoreUnavailableError(
                f"ZooKeeper did not answer within {self.timeout:g}s", url=self.url, operation=operation
            ) from exc
        except (NoNodeError, NodeExistsError, BadVersionError, NotEmptyError):
            raise
        except KazooException as exc:
            raise StoreUnavailableError(
                f"ZooKeeper connection failed ({type(exc).__name__})", url=self.url, operation=operation
            ) from exc

    def _path(self, key: str) -> str:
        encode_key(key)
        return self.base + "/" + "/".join(encode_segment(s) for s in key.split("/"))

    def _read(self, operation: str, path: str) -> tuple[bytes, Any] | None:
        """(data, stat) of ``path`` when it holds a key, else None."""
        try:
            data, stat = self._wait(operation, self._client.get_async(path))
        except NoNodeError:
            return None
        return (data, stat) if data.startswith(MARK) else None

    # -- the KVStore contract ----------------------------------------------

    def get(self, key: str) -> KVPair:
        path, operation = self._path(key), f"get {key!r}"
        self._ready(operation)
        found = self._read(operation, path)
        if found is None:
            raise missing(key)
        return KVPair(key, found[0][1:].decode(), found[1].mzxid)

    def exists(self, key: str) -> bool:
        path, operation = self._path(key), f"exists {key!r}"
        self._ready(operation)
        return self._read(operation, path) is not None

    def put(self, key: str, value: str, previous_version: int | None = None) -> int:
        path, operation = self._path(key), f"put {key!r}"
        data = MARK + encode_value(key, value, MAX_VALUE_BYTES, "ZooKeeper")
        self._ready(operation)
        client = self._client
        for _ in range(_RETRIES):
            try:
                if previous_version is None:
                    try:
                        return int(self._wait(operation, client.set_async(path, data)).mzxid)
                    except NoNodeError:
                        return self._create(operation, path, data)
                if previous_version == MUST_NOT_EXIST:
                    try:
                        return self._create(operation, path, data)
                    except NodeExistsError:
                        current, stat = self._wait(operation, client.get_async(path))
                        if current.startswith(MARK):
                            raise exists_conflict(key, stat.mzxid) from None
                        # A directory znode becomes a key: only if still a directory.
                        return int(self._wait(operation, client.set_async(path, data, stat.version)).mzxid)
                found = self._read(operation, path)
                if found is None:
                    raise missing(key, previous_version)
                if found[1].mzxid != previous_version:
                    raise version_conflict(key, found[1].mzxid, previous_version)
                try:
                    return int(self._wait(operation, client.set_async(path, data, found[1].version)).mzxid)
                except (BadVersionError, NoNodeError):
                    # Written or deleted since our read: no longer previous_version.
                    raise self._lost_race(operation, key, path, previous_version) from None
            except (NodeExistsError, NoNodeError, BadVersionError):
                continue  # a concurrent writer moved the node between our calls: look again
        raise self._gave_up(operation)

    def _gave_up(self, operation: str) -> StoreUnavailableError:
        return StoreUnavailableError(
            f"gave up after {_RETRIES} rounds of concurrent changes", url=self.url, operation=operation
        )

    def _create(self, operation: str, path: str, data: bytes) -> int:
        _, stat = self._wait(operation, self._client.create_async(path, data, makepath=True, include_data=True))
        return int(stat.mzxid)

    def _lost_race(self, operation: str, key: str, path: str, expected: int) -> NetsimError:
        """The error for a versioned write ZooKeeper refused: the key changed
        or went away after our read, so it is no longer at ``expected``."""
        found = self._read(operation, path)
        if found is None:
            return missing(key, expected)
        return version_conflict(key, found[1].mzxid, expected)

    def delete(self, key: str, previous_version: int | None = None) -> None:
        path, operation = self._path(key), f"delete {key!r}"
        self._ready(operation)
        client = self._client
        for _ in range(_RETRIES):
            found = self._read(operation, path)
            if found is None:
                raise missing(key)
            stat = found[1]
            if previous_version == MUST_NOT_EXIST:
                raise exists_conflict(key, stat.mzxid)
            if previous_version is not None and stat.mzxid != previous_version:
                raise version_conflict(key, stat.mzxid, previous_version)
            try:
                if stat.numChildren:
                    # Deeper keys live below: keep the znode as a directory.
                    self._wait(operation, client.set_async(path, b"", stat.version))
                else:
                    self._wait(operation, client.delete_async(path, stat.version))
                    self._prune(operation, path)
                return
            except (BadVersionError, NoNodeError):
                if previous_version is not None:
                    raise self._lost_race(operation, key, path, previous_version) from None
            except NotEmptyError:
                pass  # a child appeared: go round and keep the znode as a directory
        raise self._gave_up(operation)

    def _prune(self, operation: str, path: str) -> None:
        """Remove directory znodes left empty above ``path`` (best effort: a
        concurrent writer's child or value keeps its directory)."""
        parent = path.rsplit("/", 1)[0]
        while len(parent) > len(self.base):
            try:
                data, stat = self._wait(operation, self._client.get_async(parent))
                if data.startswith(MARK) or stat.numChildren:
                    return
                self._wait(operation, self._client.delete_async(parent, stat.version))
            except (NoNodeError, NotEmptyError, BadVersionError):
                return
            parent = parent.rsplit("/", 1)[0]

    def list(self, prefix: str) -> list[KVPair]:
        check_prefix(prefix)
        operation = f"list {prefix!r}"
        self._ready(operation)
        directory, _, partial = prefix.rpartition("/")
        start = self.base + ("/" + "/".join(encode_segment(s) for s in directory.split("/")) if directory else "")
        key_base = directory + "/" if directory else ""
        try:
            names = self._wait(operation, self._client.get_children_async(start))
        except NoNodeError:
            return []
        level = [
            (start + "/" + n, key_base + decode_segment(n)) for n in names if decode_segment(n).startswith(partial)
        ]
        pairs = []
        while level:
            # One round of pipelined reads per depth; children are asked for
            # only where the node's stat says it has some (most keys are leaves).
            reads = [(p, k, self._client.get_async(p)) for p, k in level]
            parents = []
            for path, key, data_result in reads:
                try:
                    data, stat = self._wait(operation, data_result)
                except NoNodeError:
                    continue  # deleted during the walk
                if data.startswith(MARK):
                    pairs.append(KVPair(key, data[1:].decode(), stat.mzxid))
                if stat.numChildren:
                    parents.append((path, key, self._client.get_children_async(path)))
            level = []
            for path, key, children_result in parents:
                try:
                    children = self._wait(operation, children_result)
                except NoNodeError:
                    continue
                level.extend((path + "/" + n, key + "/" + decode_segment(n)) for n in children)
        pairs.sort(key=lambda pair: pair.key)
        return pairs

    def close(self) -> None:
        """Cancel watches and end the ZooKeeper session (idempotent; a later call reconnects)."""
        if self._pid != os.getpid():
            return  # a forked child that never used the store: the session is the parent's
        with self._lock:
            watches, self._watches = self._watches, []
            was_closed, self._closed = self._closed, True
        for watch in watches:
            watch.cancel()
        if not was_closed:
            self._connected.clear()
            self._root_ready = False
            try:
                self._client.stop()
                self._client.close()
            except KazooException as exc:
                log.warning("ZooKeeper store %s: closing: %s", self.url, exc)

    def __repr__(self) -> str:
        return f"ZooKeeperStore({self.url!r})"

    # -- watch ---------------------------------------------------------------

    def watch(self, prefix: str, callback: Callable[[WatchEvent], None]) -> Watch:
        """Changes under ``prefix`` after this call, in order per key; quick
        successive writes to one key may be coalesced (see the module docstring)."""
        check_prefix(prefix)
        operation = f"watch {prefix!r}"
        self._ready(operation)
        known = {pair.key: pair.version for pair in self.list(prefix)}
        directory = prefix.rpartition("/")[0]
        start = self.base + ("/" + "/".join(encode_segment(s) for s in directory.split("/")) if directory else "")
        watch = Watch(self.url, prefix, callback)
        cache = TreeCache(self._client, start)
        tracker = TreeTracker(self, watch, cache, known)
        cache.listen(tracker.on_event)
        watch.on_cancel = cache.close
        with self._lock:
            self._watches.append(watch)
        cache.start()
        return watch

    def key_of(self, path: str) -> str | None:
        if not path.startswith(self.base + "/"):
            return None
        return "/".join(decode_segment(n) for n in path[len(self.base) + 1 :].split("/"))
