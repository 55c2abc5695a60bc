"""Racing compare-and-set: threads on every backend, processes on the shared
ones. Each increment is read, add one, CAS, retry on conflict: a lost update
or a double win would make the final count wrong."""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable

import pytest

from netsim.errors import ConflictError
from netsim.store import MUST_NOT_EXIST, KVStore, WatchEvent, open_store
from netsim.store.testing import cas_increment

# The backends several processes can share.
SHARED = ["sqlite", pytest.param("etcd", marks=pytest.mark.stores), pytest.param("zk", marks=pytest.mark.stores)]


def test_threads_racing_cas_increments(store_url: str, store: KVStore) -> None:
    threads, each = 4, 15
    conflicts: list[int] = []

    def increment() -> None:
        if store_url == "memory://":  # a MemoryStore is shared only as one object
            conflicts.append(_increment_in(store, "counter", each))
        else:  # a store object per thread, as separate clients would have
            conflicts.append(cas_increment(store_url, "counter", each))

    workers = [threading.Thread(target=increment) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert len(conflicts) == threads
    assert store.get("counter").value == str(threads * each)


def _increment_in(store: KVStore, key: str, count: int) -> int:
    conflicts = 0
    for _ in range(count):
        while True:
            try:
                if store.exists(key):
                    pair = store.get(key)
                    store.put(key, str(int(pair.value) + 1), previous_version=pair.version)
                else:
                    store.put(key, "1", previous_version=MUST_NOT_EXIST)
                break
            except ConflictError:
                conflicts += 1
    return conflicts


def test_exactly_one_creator_wins(store: KVStore) -> None:
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def create(n: int) -> None:
        barrier.wait()
        try:
            store.put("lock", str(n), previous_version=MUST_NOT_EXIST)
            outcomes.append("won")
        except ConflictError:
            outcomes.append("conflict")

    workers = [threading.Thread(target=create, args=(n,)) for n in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert sorted(outcomes) == ["conflict", "conflict", "conflict", "won"]


@pytest.mark.parametrize("kind", SHARED)
def test_processes_racing_cas_increments(kind: str, server_store_url: Callable[[str], str]) -> None:
    url = server_store_url(kind)
    processes, each = 3, 20
    context = multiprocessing.get_context("spawn")  # no inherited threads or sockets
    with context.Pool(processes) as pool:
        conflicts = pool.starmap(cas_increment, [(url, "counter", each)] * processes, chunksize=1)
    store = open_store(url)
    try:
        assert store.get("counter").value == str(processes * each), conflicts
    finally:
        store.close()


@pytest.mark.parametrize("kind", SHARED)
def test_a_watch_sees_another_process_writes(kind: str, server_store_url: Callable[[str], str]) -> None:
    url = server_store_url(kind)
    store = open_store(url)
    seen: list[WatchEvent] = []
    done = threading.Event()

    def collect(event: WatchEvent) -> None:
        seen.append(event)
        if event.value == "40":
            done.set()

    try:
        with store.watch("counter", collect):
            context = multiprocessing.get_context("spawn")
            with context.Pool(2) as pool:
                pool.starmap(cas_increment, [(url, "counter", 20)] * 2, chunksize=1)
            assert done.wait(10), seen
        values = [int(e.value or 0) for e in seen]
        versions = [e.version for e in seen]
        assert versions == sorted(versions) and values[-1] == 40
        if kind != "zk":  # exact feeds: every increment, in order
            assert values == list(range(1, 41))
    finally:
        store.close()


def _put_in_child(store: KVStore, key: str) -> None:
    store.close()  # nothing of the child's yet: must leave the parent's connections alone
    store.put(key, "from the child")
    store.close()


@pytest.mark.parametrize("kind", SHARED)
def test_a_store_opened_before_fork_works_in_the_child(kind: str, server_store_url: Callable[[str], str]) -> None:
    store = open_store(server_store_url(kind))
    try:
        before = store.put("parent", "before the fork")  # connections exist before the fork
        child = multiprocessing.get_context("fork").Process(target=_put_in_child, args=(store, "child"))
        child.start()
        child.join(timeout=60)
        assert child.exitcode == 0
        written = store.get("child")
        assert written.value == "from the child" and written.version > before
        assert store.put("parent", "after") > written.version  # the parent's connections still work
    finally:
        store.close()
