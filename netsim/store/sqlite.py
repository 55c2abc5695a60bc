"""``sqlite:///path/state.db``: the local store (boltdb's role in libnetwork).

One file in WAL mode with ``synchronous=NORMAL``: a put that returned is in
the file (sqlite's write-ahead log) and survives the process being killed at
any moment, the failure netsim's recovery is built and tested for; an
operating-system crash or power cut may roll back the last commits (never
corrupt the file). ``FULL`` would sync the disk on every commit: 2.5 ms per
commit on this project's machines, 4-10x the whole controller call.
Several threads and processes may open the same file: each thread has its own
connection, every write is one ``BEGIN IMMEDIATE`` transaction (the version
check and the write happen under sqlite's write lock, so compare-and-set is
atomic across processes), and a writer waits at most the URL's ``timeout``
for the lock before :class:`StoreUnavailableError`.

Layout: ``kv(key BLOB PRIMARY KEY, value TEXT, version INTEGER)`` with keys as
UTF-8 bytes (so ``ORDER BY key`` is code-point order and a prefix is a byte
range), and ``changes(seq INTEGER PRIMARY KEY AUTOINCREMENT, kind, key, value,
old_version)``, one row per write in the same transaction. A put's version is
its change ``seq``: global, never reused (AUTOINCREMENT), so a recreated key
gets a new version. Watches poll ``changes`` (every ``poll`` seconds, 0.05 by
default), which is how processes on one machine see each other's writes with
no server; the log keeps the last :data:`KEEP_CHANGES` rows.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from typing import Any

from netsim.errors import StoreUnavailableError
from netsim.store.base import (
    MUST_NOT_EXIST,
    KVPair,
    check_prefix,
    encode_key,
    encode_value,
    exists_conflict,
    missing,
    prefix_end,
    version_conflict,
)
from netsim.store.url import StoreURL
from netsim.store.watch import Watch, WatchEvent

log = logging.getLogger("netsim.store")

#: Change-log rows kept for watchers; a watcher further behind logs what it missed.
KEEP_CHANGES = 100_000
_TRIM_EVERY = 1000
_WATCH_BATCH = 500

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (key BLOB PRIMARY KEY, value TEXT NOT NULL, version INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    key BLOB NOT NULL,
    value TEXT,
    old_version INTEGER
);
"""


class SqliteStore:
    """A :class:`netsim.store.KVStore` in one sqlite file (see the module docstring)."""

    def __init__(self, url: str, parsed: StoreURL) -> None:
        self.url = url
        self.path = os.path.abspath(parsed.path)
        self.timeout = parsed.timeout
        self.poll = parsed.poll
        self._lock = threading.Lock()
        self._local = threading.local()
        self._pid = os.getpid()
        self._connections: list[sqlite3.Connection] = []
        self._watches: list[Watch] = []
        with self._failures("open"):
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    # -- connections and errors ------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        if self._pid != os.getpid():
            self._forget_parent()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False)
            # WAL lets readers run beside one writer across processes; NORMAL:
            # see the module doc (process crashes lose nothing, no sync per commit).
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def _forget_parent(self) -> None:
        """In a forked child: never touch the parent's connections (sqlite
        forbids carrying one across fork) or its watches; open our own."""
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._local = threading.local()
        self._connections = []
        self._watches = []

    @contextlib.contextmanager
    def _failures(self, operation: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.OperationalError as exc:
            raise StoreUnavailableError(
                f"{exc} (file {self.path}, waited up to {self.timeout:g}s)", url=self.url, operation=operation
            ) from exc
        except sqlite3.DatabaseError as exc:
            raise StoreUnavailableError(f"{exc} (file {self.path})", url=self.url, operation=operation) from exc

    @contextlib.contextmanager
    def _write(self, operation: str) -> Iterator[sqlite3.Connection]:
        with self._failures(operation):
            conn = self._conn()
            if getattr(self._local, "batch", 0):
                # Inside batch(): a savepoint, so a refused write (a CAS conflict) undoes only itself.
                conn.execute("SAVEPOINT write")
                try:
                    yield conn
                except BaseException:
                    conn.execute("ROLLBACK TO write")
                    conn.execute("RELEASE write")
                    raise
                conn.execute("RELEASE write")
                return
            conn.execute("BEGIN IMMEDIATE")  # take the write lock before reading the version
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Every write of this thread inside the block is one transaction (one
        sync to disk): the controller wraps each public call in it, so a call's
        records land together or, if the process dies first, not at all.
        Nested blocks join the outer one. Writes stay visible to this thread at
        once and to others at the end; other writers wait for the block."""
        depth = getattr(self._local, "batch", 0)
        if depth:
            self._local.batch = depth + 1
            try:
                yield
            finally:
                self._local.batch = depth
            return
        with self._failures("begin a batch"):
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
        self._local.batch = 1
        try:
            yield
        finally:
            self._local.batch = 0
            # Committed even when the block raised: the caller's undo log has
            # already written the compensations, and they must land too.
            with self._failures("commit a batch"):
                conn.execute("COMMIT")

    # -- the KVStore contract --------------------------------------------

    def get(self, key: str) -> KVPair:
        raw = encode_key(key)
        with self._failures(f"get {key!r}"):
            row = self._conn().execute("SELECT value, version FROM kv WHERE key = ?", (raw,)).fetchone()
        if row is None:
            raise missing(key)
        return KVPair(key, row[0], row[1])

    def exists(self, key: str) -> bool:
        raw = encode_key(key)
        with self._failures(f"exists {key!r}"):
            return self._conn().execute("SELECT 1 FROM kv WHERE key = ?", (raw,)).fetchone() is not None

    def put(self, key: str, value: str, previous_version: int | None = None) -> int:
        raw = encode_key(key)
        encode_value(key, value)
        with self._write(f"put {key!r}") as conn:
            if previous_version is not None:
                self._check_version(conn, key, raw, previous_version)
            cursor = conn.execute("INSERT INTO changes (kind, key, value) VALUES ('put', ?, ?)", (raw, value))
            version = cursor.lastrowid
            assert version is not None
            conn.execute("INSERT OR REPLACE INTO kv (key, value, version) VALUES (?, ?, ?)", (raw, value, version))
            if version % _TRIM_EVERY == 0:
                conn.execute("DELETE FROM changes WHERE seq <= ?", (version - KEEP_CHANGES,))
        return version

    def delete(self, key: str, previous_version: int | None = None) -> None:
        raw = encode_key(key)
        with self._write(f"delete {key!r}") as conn:
            row = conn.execute("SELECT version FROM kv WHERE key = ?", (raw,)).fetchone()
            if row is None:
                raise missing(key)
            if previous_version is not None and row[0] != previous_version:
                if previous_version == MUST_NOT_EXIST:
                    raise exists_conflict(key, row[0])
                raise version_conflict(key, row[0], previous_version)
            conn.execute("DELETE FROM kv WHERE key = ?", (raw,))
            conn.execute("INSERT INTO changes (kind, key, old_version) VALUES ('delete', ?, ?)", (raw, row[0]))

    @staticmethod
    def _check_version(conn: sqlite3.Connection, key: str, raw: bytes, expected: int) -> None:
        row = conn.execute("SELECT version FROM kv WHERE key = ?", (raw,)).fetchone()
        if expected == MUST_NOT_EXIST:
            if row is not None:
                raise exists_conflict(key, row[0])
        elif row is None:
            raise missing(key, expected)
        elif row[0] != expected:
            raise version_conflict(key, row[0], expected)

    def list(self, prefix: str) -> list[KVPair]:
        check_prefix(prefix)
        query, params = _range_query("SELECT key, value, version FROM kv", prefix)
        with self._failures(f"list {prefix!r}"):
            rows = self._conn().execute(query + " ORDER BY key", params).fetchall()
        return [KVPair(key.decode(), value, version) for key, value, version in rows]

    def watch(self, prefix: str, callback: Callable[[WatchEvent], None]) -> Watch:
        """Deliver every later change under ``prefix`` exactly, in commit
        order, from any process writing the file; latency is up to ``poll``
        seconds plus one query."""
        check_prefix(prefix)
        with self._failures(f"watch {prefix!r}"):
            start = self._conn().execute("SELECT COALESCE(MAX(seq), 0) FROM changes").fetchone()[0]
        watch = Watch(self.url, prefix, callback)
        poller = threading.Thread(
            target=self._poll_changes, args=(watch, start), name=f"netsim-sqlite-watch {prefix!r}", daemon=True
        )
        with self._lock:
            self._watches.append(watch)
        poller.start()
        return watch

    def _poll_changes(self, watch: Watch, last: int) -> None:
        raw_prefix = watch.prefix.encode("utf-8", "surrogatepass")
        conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False)
        failing = False
        try:
            while not watch.cancelled:
                try:
                    rows = conn.execute(
                        "SELECT seq, kind, key, value, old_version FROM changes WHERE seq > ? ORDER BY seq LIMIT ?",
                        (last, _WATCH_BATCH),
                    ).fetchall()
                except sqlite3.DatabaseError as exc:
                    if not failing:
                        log.warning(
                            "watch %r on %s: reading the change log failed (%s); retrying", watch.prefix, self.url, exc
                        )
                    failing = True
                    watch._cancelled.wait(max(self.poll, 0.5))
                    continue
                if failing:
                    log.warning(
                        "watch %r on %s: change log readable again, resuming after %d", watch.prefix, self.url, last
                    )
                    failing = False
                if rows and rows[0][0] != last + 1 and last:
                    log.warning(
                        "watch %r on %s: changes %d..%d were trimmed from the log before this watch read them",
                        watch.prefix,
                        self.url,
                        last + 1,
                        rows[0][0] - 1,
                    )
                for seq, kind, key, value, old_version in rows:
                    last = seq
                    if key.startswith(raw_prefix):
                        if kind == "put":
                            watch.deliver(WatchEvent("put", key.decode(), value, seq))
                        else:
                            watch.deliver(WatchEvent("delete", key.decode(), None, old_version))
                if len(rows) < _WATCH_BATCH:
                    watch._cancelled.wait(self.poll)
        finally:
            conn.close()

    def close(self) -> None:
        """Cancel watches and close every connection (idempotent); a later call reopens."""
        if self._pid != os.getpid():
            return  # a forked child that never used the store: the connections are the parent's
        with self._lock:
            watches, self._watches = self._watches, []
            connections, self._connections = self._connections, []
            self._local = threading.local()
        for watch in watches:
            watch.cancel()
        for conn in connections:
            conn.close()

    def _check(self) -> None:
        """Invariant: every version is a put in the change log's numbering."""
        conn = self._conn()
        top = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM changes").fetchone()[0]
        for key, version in conn.execute("SELECT key, version FROM kv"):
            assert 1 <= version <= top, (key, version, top)

    def __repr__(self) -> str:
        return f"SqliteStore({self.url!r})"


def _range_query(select: str, prefix: str) -> tuple[str, tuple[Any, ...]]:
    if not prefix:
        return select, ()
    raw = prefix.encode("utf-8", "surrogatepass")  # matches no stored key, refuses nothing
    end = prefix_end(raw)
    if end is None:
        return select + " WHERE key >= ?", (raw,)
    return select + " WHERE key >= ? AND key < ?", (raw, end)
