"""``etcd://host:port[,host:port][/prefix]``: a global store on etcd v3.

Requests go through etcd3gw's client to etcd's JSON gateway (``/v3/...``,
etcd >= 3.4). Key ``k`` is etcd key ``/[<prefix>/]docker/network/v1.0/k``.

* version = the key's ``mod_revision`` (etcd's global revision: grows with every
  write, never reused, so a recreated key gets a new version);
* compare-and-set = one transaction comparing ``mod_revision`` (or
  ``create_revision == 0`` for "must not exist"), whose failure branch reads
  the key so the error says whether it is missing or at another version;
* ``list(prefix)`` = one range request ``[root+prefix, successor)``, key order;
* ``watch(prefix)`` = a watch stream on the same range with ``prev_kv``, exact
  and in revision order. If the stream breaks (server restart), it is
  re-created from the last delivered revision + 1, so nothing is lost or
  repeated, and a warning says so. (etcd3gw's own Watcher neither reports a
  broken stream nor resumes, hence netsim's loop over the same endpoint.)

A server that is down or does not answer within ``timeout`` seconds gives
:class:`StoreUnavailableError` after every endpoint was tried. A write that
timed out may or may not have been applied (etcd's own rule): compare-and-set
callers re-read and retry.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import logging
import os
import socket
import threading
from collections.abc import Callable
from typing import Any

from etcd3gw.client import Etcd3Client
from etcd3gw.exceptions import ConnectionFailedError, ConnectionTimeoutError, Etcd3Exception

from netsim.errors import StoreUnavailableError
from netsim.store.base import (
    MUST_NOT_EXIST,
    ROOT,
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

#: etcd refuses requests over 1.5 MiB by default (--max-request-bytes).
MAX_VALUE_BYTES = 1_500_000


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _unb64(text: str | None) -> bytes:
    return base64.b64decode(text) if text else b""


class EtcdStore:
    """A :class:`netsim.store.KVStore` on an etcd v3 cluster (see the module docstring)."""

    def __init__(self, url: str, parsed: StoreURL) -> None:
        self.url = url
        self.endpoints = parsed.endpoints
        self.timeout = parsed.timeout
        self.root = ("/" + parsed.path if parsed.path else "") + "/" + ROOT + "/"
        self._root_raw = self.root.encode()
        self._current = 0  # the endpoint that answered last
        self._local = threading.local()
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._clients: list[Etcd3Client] = []
        self._watches: list[Watch] = []

    # -- transport ---------------------------------------------------------

    def _client(self, index: int) -> Etcd3Client:
        if self._pid != os.getpid():
            # A forked child must not share the parent's HTTP connections.
            self._pid, self._lock, self._local = os.getpid(), threading.Lock(), threading.local()
            self._clients, self._watches = [], []
        clients: dict[int, Etcd3Client] | None = getattr(self._local, "clients", None)
        if clients is None:
            clients = self._local.clients = {}
        client = clients.get(index)
        if client is None:
            host, port = self.endpoints[index]
            # api_path given: no version round trip per client.
            client = clients[index] = Etcd3Client(host=host, port=port, timeout=self.timeout, api_path="/v3/")
            with self._lock:
                self._clients.append(client)
        return client

    def _call(self, operation: str, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        """POST ``payload`` to the first endpoint that answers, starting with the last good one."""
        failures = []
        count = len(self.endpoints)
        for attempt in range(count):
            index = (self._current + attempt) % count
            client = self._client(index)
            try:
                result: dict[str, Any] = client.post(client.get_url(path), json=payload)
            except (ConnectionFailedError, ConnectionTimeoutError) as exc:
                host, port = self.endpoints[index]
                failures.append(f"{host}:{port}: {type(exc).__name__}")
                continue
            except Etcd3Exception as exc:
                raise StoreUnavailableError(
                    f"etcd refused the request: {exc}", url=self.url, operation=operation
                ) from exc
            self._current = index
            return result
        raise StoreUnavailableError(
            f"no etcd endpoint answered within {self.timeout:g}s ({'; '.join(failures)})",
            url=self.url,
            operation=operation,
        )

    def _key(self, key: str) -> str:
        return _b64(self._root_raw + encode_key(key))

    def _pair(self, kv: dict[str, Any]) -> KVPair:
        key = _unb64(kv["key"])[len(self._root_raw) :].decode()
        return KVPair(key, _unb64(kv.get("value")).decode(), int(kv["mod_revision"]))

    # -- the KVStore contract ----------------------------------------------

    def get(self, key: str) -> KVPair:
        kvs = self._call(f"get {key!r}", "kv/range", {"key": self._key(key)}).get("kvs")
        if not kvs:
            raise missing(key)
        return self._pair(kvs[0])

    def exists(self, key: str) -> bool:
        reply = self._call(f"exists {key!r}", "kv/range", {"key": self._key(key), "count_only": True})
        return int(reply.get("count", 0)) > 0

    def put(self, key: str, value: str, previous_version: int | None = None) -> int:
        etcd_key = self._key(key)
        etcd_value = _b64(encode_value(key, value, MAX_VALUE_BYTES, "etcd"))
        operation = f"put {key!r}"
        if previous_version is None:
            reply = self._call(operation, "kv/put", {"key": etcd_key, "value": etcd_value})
            return int(reply["header"]["revision"])
        request = {"request_put": {"key": etcd_key, "value": etcd_value}}
        reply = self._transaction(operation, key, etcd_key, previous_version, request)
        return int(reply["header"]["revision"])

    def delete(self, key: str, previous_version: int | None = None) -> None:
        etcd_key = self._key(key)
        operation = f"delete {key!r}"
        if previous_version is None:
            reply = self._call(operation, "kv/deleterange", {"key": etcd_key})
            if int(reply.get("deleted", 0)) == 0:
                raise missing(key)
            return
        if previous_version == MUST_NOT_EXIST:
            # MemoryStore's order: a missing key is "not found", a present one a conflict.
            raise exists_conflict(key, self.get(key).version)
        self._transaction(operation, key, etcd_key, previous_version, {"request_delete_range": {"key": etcd_key}})

    def _transaction(
        self, operation: str, key: str, etcd_key: str, expected: int, request: dict[str, Any]
    ) -> dict[str, Any]:
        if expected == MUST_NOT_EXIST:
            compare = {"key": etcd_key, "result": "EQUAL", "target": "CREATE", "create_revision": 0}
        else:
            compare = {"key": etcd_key, "result": "EQUAL", "target": "MOD", "mod_revision": expected}
        reply = self._call(
            operation,
            "kv/txn",
            {"compare": [compare], "success": [request], "failure": [{"request_range": {"key": etcd_key}}]},
        )
        if reply.get("succeeded"):
            return reply
        kvs = reply["responses"][0]["response_range"].get("kvs")
        if not kvs:
            raise missing(key, expected)
        current = int(kvs[0]["mod_revision"])
        if expected == MUST_NOT_EXIST:
            raise exists_conflict(key, current)
        raise version_conflict(key, current, expected)

    def _range(self, prefix: str) -> dict[str, str]:
        start = self._root_raw + prefix.encode("utf-8", "surrogatepass")
        end = prefix_end(start)
        assert end is not None  # the root is never empty
        return {"key": _b64(start), "range_end": _b64(end)}

    def list(self, prefix: str) -> list[KVPair]:
        check_prefix(prefix)
        reply = self._call(f"list {prefix!r}", "kv/range", {**self._range(prefix), "sort_order": "ASCEND"})
        return [self._pair(kv) for kv in reply.get("kvs", [])]

    def close(self) -> None:
        """Cancel watches and drop HTTP sessions (idempotent; later calls reconnect)."""
        if self._pid != os.getpid():
            return  # a forked child that never used the store: the connections are the parent's
        with self._lock:
            watches, self._watches = self._watches, []
            clients, self._clients = self._clients, []
            self._local = threading.local()
        for watch in watches:
            watch.cancel()
        for client in clients:
            client.session.close()

    def __repr__(self) -> str:
        return f"EtcdStore({self.url!r})"

    # -- watch ---------------------------------------------------------------

    def watch(self, prefix: str, callback: Callable[[WatchEvent], None]) -> Watch:
        """Every change under ``prefix`` after this call, exactly and in revision order."""
        check_prefix(prefix)
        reply = self._call(f"watch {prefix!r}", "kv/range", {**self._range(prefix), "count_only": True})
        start = int(reply["header"]["revision"]) + 1
        watch = Watch(self.url, prefix, callback)
        stream = _WatchStream(self, watch, start)
        watch.on_cancel = stream.cancel
        with self._lock:
            self._watches.append(watch)
        stream.thread.start()
        return watch


class _WatchStream:
    """One watch's HTTP stream, re-created from the next revision when it breaks."""

    def __init__(self, store: EtcdStore, watch: Watch, start_revision: int) -> None:
        self.store = store
        self.watch = watch
        self.next_revision = start_revision
        self._conn: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, name=f"netsim-etcd-watch {watch.prefix!r}", daemon=True)

    def cancel(self) -> None:
        with self._lock:
            conn = self._conn
        if conn is not None and conn.sock is not None:
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked read

    def _run(self) -> None:
        store, watch = self.store, self.watch
        broken_since: str | None = None
        delay = 0.1
        index = store._current
        while not watch.cancelled:
            host, port = store.endpoints[index]
            try:
                self._stream(host, port, broken_since)
                broken_since = None if watch.cancelled else "the server closed the stream"
            except (OSError, http.client.HTTPException, ValueError, KeyError) as exc:
                broken_since = f"{type(exc).__name__}: {exc}"
            if watch.cancelled:
                return
            log.warning(
                "watch %r on %s: stream to %s:%d lost (%s); re-establishing from revision %d",
                watch.prefix, store.url, host, port, broken_since, self.next_revision,
            )  # fmt: skip
            index = (index + 1) % len(store.endpoints)
            watch._cancelled.wait(delay)
            delay = min(delay * 2, 2.0)

    def _stream(self, host: str, port: int, broken_since: str | None) -> None:
        store, watch = self.store, self.watch
        request = {
            "create_request": {**store._range(watch.prefix), "start_revision": self.next_revision, "prev_kv": True}
        }
        conn = http.client.HTTPConnection(host, port, timeout=store.timeout)
        with self._lock:
            self._conn = conn
        try:
            conn.request("POST", "/v3/watch", body=json.dumps(request), headers={"Content-Type": "application/json"})
            reply = conn.getresponse()
            if reply.status != 200:
                raise OSError(f"HTTP {reply.status} from /v3/watch")
            assert conn.sock is not None
            conn.sock.settimeout(None)  # a quiet watch is not a dead one: block until data or close
            _keepalive(conn.sock)  # ... but a vanished peer is noticed within ~15 s
            if watch.cancelled:
                return
            while line := reply.readline():
                if not line.strip():
                    continue
                message = json.loads(line)
                if "error" in message:
                    raise OSError(f"watch error from etcd: {message['error']}")
                result = message.get("result", {})
                if result.get("created") and broken_since is not None:
                    log.warning(
                        "watch %r on %s: re-established on %s:%d from revision %d",
                        watch.prefix, store.url, host, port, self.next_revision,
                    )  # fmt: skip
                if result.get("canceled"):
                    compacted = int(result.get("compact_revision", 0))
                    log.error(
                        "watch %r on %s: revisions before %d were compacted; changes %d..%d are lost",
                        watch.prefix, store.url, compacted, self.next_revision, compacted - 1,
                    )  # fmt: skip
                    self.next_revision = max(self.next_revision, compacted)
                    return
                for event in result.get("events", []):
                    self._deliver(event)
        finally:
            with self._lock:
                self._conn = None
            conn.close()

    def _deliver(self, event: dict[str, Any]) -> None:
        kv = event["kv"]
        revision = int(kv["mod_revision"])
        key = _unb64(kv["key"])[len(self.store._root_raw) :].decode()
        self.next_revision = revision + 1
        if event.get("type") == "DELETE":
            old = event.get("prev_kv")
            self.watch.deliver(WatchEvent("delete", key, None, int(old["mod_revision"]) if old else revision))
        else:
            self.watch.deliver(WatchEvent("put", key, _unb64(kv.get("value")).decode(), revision))


def _keepalive(sock: socket.socket) -> None:
    """TCP keepalive probes after 5 s of silence, every 3 s, 3 tries."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for option, value in (("TCP_KEEPIDLE", 5), ("TCP_KEEPINTVL", 3), ("TCP_KEEPCNT", 3)):
        if hasattr(socket, option):  # Linux names; other systems keep their defaults
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)
