"""The store's own faults: a server stopped (politely or killed mid-load)
gives StoreUnavailableError naming the store and the call within the timeout;
the same store object and its watches work again once the server is back."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from netsim.errors import NetsimError, StoreUnavailableError
from netsim.store import KVStore, WatchEvent, open_store
from netsim.store.servers import EtcdServer, ZooKeeperServer

TIMEOUT = 1.0

SERVERS = [pytest.param("etcd", marks=pytest.mark.stores), pytest.param("zk", marks=pytest.mark.stores)]


@pytest.fixture(params=SERVERS)
def server(request: pytest.FixtureRequest) -> Iterator[EtcdServer | ZooKeeperServer]:
    running: EtcdServer | ZooKeeperServer = request.getfixturevalue(f"{request.param}_server")
    yield running
    running.start()  # whatever the test did, the session's server is up again


@pytest.fixture
def faulty_store(server: EtcdServer | ZooKeeperServer, server_store_url: Callable[[str], str]) -> Iterator[KVStore]:
    kind = "etcd" if isinstance(server, EtcdServer) else "zk"
    store = open_store(f"{server_store_url(kind)}?timeout={TIMEOUT}")
    yield store
    store.close()


def test_stopped_server_is_unavailable_then_recovers(
    server: EtcdServer | ZooKeeperServer, faulty_store: KVStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="netsim.store")
    store = faulty_store
    version = store.put("network/n1", "before")
    seen: list[WatchEvent] = []
    arrived = threading.Event()
    watch = store.watch("network/", lambda e: (seen.append(e), arrived.set()))
    server.stop()
    calls: list[tuple[str, Callable[[], object]]] = [
        ("get 'network/n1'", lambda: store.get("network/n1")),
        ("put 'network/n2'", lambda: store.put("network/n2", "x")),
        ("put 'network/n1'", lambda: store.put("network/n1", "y", previous_version=version)),
        ("delete 'network/n1'", lambda: store.delete("network/n1")),
        ("list 'network/'", lambda: store.list("network/")),
        ("exists 'network/n1'", lambda: store.exists("network/n1")),
    ]
    for operation, call in calls:
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError) as caught:
            call()
        assert time.monotonic() - started < TIMEOUT + 2.0, operation
        assert caught.value.url == store.url and caught.value.operation == operation
        assert store.url in str(caught.value) and operation in str(caught.value)
    server.start()
    deadline = time.monotonic() + 15
    while True:  # a reconnecting client may need a moment after the port opens
        try:
            assert store.get("network/n1").value == "before"
            break
        except StoreUnavailableError:
            assert time.monotonic() < deadline, "the store did not come back"
            time.sleep(0.2)
    after = store.put("network/n1", "after", previous_version=version)
    assert arrived.wait(15), "the watch did not resume after the restart"
    assert seen[-1] == WatchEvent("put", "network/n1", "after", after), seen
    said = "re-established" if isinstance(server, EtcdServer) else "reconnected; re-reading the tree"
    assert any(said in record.getMessage() and "'network/'" in record.getMessage() for record in caplog.records)
    watch.cancel()


def test_frozen_server_times_out_then_recovers(server: EtcdServer | ZooKeeperServer, faulty_store: KVStore) -> None:
    """A server that accepts connections but never answers (SIGSTOP): each
    call gives up within the timeout instead of hanging."""
    store = faulty_store
    store.put("network/n1", "before")
    server.pause()
    try:
        for _ in range(2):
            started = time.monotonic()
            with pytest.raises(StoreUnavailableError, match="get 'network/n1'"):
                store.get("network/n1")
            assert time.monotonic() - started < TIMEOUT + 2.0
    finally:
        server.resume()
    deadline = time.monotonic() + 20
    while True:
        try:
            assert store.get("network/n1").value == "before"
            break
        except StoreUnavailableError:
            assert time.monotonic() < deadline, "the store did not come back"
            time.sleep(0.2)


def test_server_killed_under_load(server: EtcdServer | ZooKeeperServer, faulty_store: KVStore) -> None:
    """Every call either succeeds or says unavailable; after the restart the
    data is whole (each acknowledged write is there)."""
    store = faulty_store
    acknowledged: dict[str, str] = {}
    other_errors: list[BaseException] = []
    stop = threading.Event()

    def load() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            try:
                store.put(f"load/{n % 20}", str(n))
                acknowledged[f"load/{n % 20}"] = str(n)
            except StoreUnavailableError:
                time.sleep(0.05)
            except NetsimError as exc:  # a conflict or anything else would be a bug here
                other_errors.append(exc)

    worker = threading.Thread(target=load)
    worker.start()
    time.sleep(0.3)
    server.stop(kill=True)
    time.sleep(0.5)
    server.start()
    time.sleep(0.5)
    stop.set()
    worker.join(timeout=30)
    assert other_errors == []
    deadline = time.monotonic() + 15
    while True:
        try:
            stored = {p.key: p.value for p in store.list("load/")}
            break
        except StoreUnavailableError:
            assert time.monotonic() < deadline
            time.sleep(0.2)
    # The last acknowledged write of each key survived the kill (a write that
    # failed as unavailable may or may not have landed, so only newer values).
    for key, value in acknowledged.items():
        assert int(stored[key]) >= int(value), (key, stored[key], value)


def test_sqlite_lock_held_too_long_is_unavailable(tmp_path: object) -> None:
    path = f"{tmp_path}/state.db"
    store = open_store(f"sqlite://{path}?timeout=0.3")
    store.put("k", "v")
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process holding the write lock
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError, match=r"put 'k'.*locked"):
            store.put("k", "w")
        assert time.monotonic() - started < 2.0
        assert store.get("k").value == "v"  # readers are not blocked (WAL)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert store.put("k", "w") > 0
    store.close()


def test_sqlite_unopenable_file_is_unavailable(tmp_path: object) -> None:
    with pytest.raises(StoreUnavailableError, match="open"):
        open_store(f"sqlite://{tmp_path}/no/such/dir/state.db")
    bogus = f"{tmp_path}/bogus.db"
    with open(bogus, "w") as handle:
        handle.write("this is not a database" * 100)
    with pytest.raises(StoreUnavailableError, match="not a database"):
        open_store(f"sqlite://{bogus}")


@pytest.mark.stores
def test_zookeeper_session_expiry_is_survived(zk_server: ZooKeeperServer, caplog: pytest.LogCaptureFixture) -> None:
    """The session expires (closed by another client holding its id, the
    usual way to expire one on purpose): the store gets a new session, and
    its watch re-reads the tree and reports what changed meanwhile."""
    from kazoo.client import KazooClient  # type: ignore[import-untyped]

    caplog.set_level(logging.WARNING, logger="netsim.store")
    store = open_store(f"{zk_server.url}/expiry{time.monotonic_ns()}?timeout={TIMEOUT}")
    try:
        seen: list[WatchEvent] = []
        store.put("network/gone", "x")
        watch = store.watch("network/", seen.append)
        session_id = store._client.client_id  # type: ignore[attr-defined]
        thief = KazooClient(hosts=f"127.0.0.1:{zk_server.port}", client_id=session_id)
        thief.start(timeout=10)
        thief.stop()  # closing the shared session expires it for the store
        thief.close()
        deadline = time.monotonic() + 20
        while "connection lost" not in caplog.text:
            assert time.monotonic() < deadline, caplog.text
            time.sleep(0.1)
        while True:
            try:
                store.delete("network/gone")
                version = store.put("network/n1", "after expiry")
                break
            except StoreUnavailableError:
                assert time.monotonic() < deadline, "no new session"
                time.sleep(0.2)
        assert store._client.client_id[0] != session_id[0]  # type: ignore[attr-defined]
        deadline = time.monotonic() + 10
        while WatchEvent("put", "network/n1", "after expiry", version) not in seen:
            assert time.monotonic() < deadline, seen
            time.sleep(0.1)
        assert [e.kind for e in seen if e.key == "network/gone"] == ["delete"]
        watch.cancel()
    finally:
        store.close()


@pytest.mark.parametrize("kind", ["etcd", "zk"])
@pytest.mark.stores
def test_a_dead_endpoint_in_the_url_is_skipped(kind: str, request: pytest.FixtureRequest) -> None:
    from netsim.store.servers import free_port

    live: EtcdServer | ZooKeeperServer = request.getfixturevalue(f"{kind}_server")
    dead = f"127.0.0.1:{free_port()}"  # nothing listens there
    store = open_store(f"{kind}://{dead},127.0.0.1:{live.port}/failover?timeout=3")
    try:
        version = store.put("k", "v")
        assert store.get("k").version == version
        assert [p.key for p in store.list("")] == ["k"]
    finally:
        store.close()


def test_unavailable_error_survives_pickling() -> None:
    import pickle

    error = StoreUnavailableError("no answer", url="etcd://h:1", operation="get 'k'")
    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), str(copy), copy.url, copy.operation) == (
        StoreUnavailableError,
        "store etcd://h:1 get 'k': no answer",
        "etcd://h:1",
        "get 'k'",
    )
