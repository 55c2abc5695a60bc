"""Watches on every backend: order, prefix filter, cancel, callbacks off the
caller's thread, callback errors; and two store objects (as two processes
would) seeing each other's writes."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import pytest

from netsim.store import KVStore, WatchEvent, open_store

WAIT = 10.0


class Collector:
    def __init__(self) -> None:
        self.events: list[WatchEvent] = []
        self.threads: set[int] = set()
        self.changed = threading.Condition()

    def __call__(self, event: WatchEvent) -> None:
        with self.changed:
            self.events.append(event)
            self.threads.add(threading.get_ident())
            self.changed.notify_all()

    def wait_for(self, done: Callable[[list[WatchEvent]], bool]) -> list[WatchEvent]:
        with self.changed:
            assert self.changed.wait_for(lambda: done(self.events), timeout=WAIT), self.events
            return list(self.events)


def final_state(events: list[WatchEvent]) -> dict[str, tuple[str | None, int]]:
    state: dict[str, tuple[str | None, int]] = {}
    for event in events:
        state[event.key] = (event.value, event.version)
    return {key: value for key, value in state.items() if value[0] is not None}


def test_events_in_order(store: KVStore, store_kind: str) -> None:
    seen = Collector()
    watch = store.watch("net/", seen)
    v1 = store.put("net/a", "1")
    v2 = store.put("net/a", "2", previous_version=v1)
    store.put("other/x", "not watched")
    v3 = store.put("net/b/c", "3")
    store.delete("net/a")
    v4 = store.put("net/z", "last")
    events = seen.wait_for(lambda evs: any(e.key == "net/z" for e in evs))
    exact = [
        WatchEvent("put", "net/a", "1", v1),
        WatchEvent("put", "net/a", "2", v2),
        WatchEvent("put", "net/b/c", "3", v3),
        WatchEvent("delete", "net/a", None, v2),
        WatchEvent("put", "net/z", "last", v4),
    ]
    if store_kind == "zk":
        # ZooKeeper watches read current state: quick writes to one key may be
        # coalesced, but each key's events keep their order and the last one arrives.
        assert all(e in exact for e in events), events
        for key in {e.key for e in events}:
            mine = [e for e in exact if e.key == key and e in events]
            assert [e for e in events if e.key == key] == mine
        assert final_state(events) == final_state(exact)
    else:
        assert events == exact
    assert threading.get_ident() not in seen.threads
    watch.cancel()
    watch.cancel()
    store.put("net/after", "x")
    time.sleep(0.3)
    assert all(e.key != "net/after" for e in seen.events)


def test_a_failing_callback_does_not_end_the_watch(store: KVStore, caplog: pytest.LogCaptureFixture) -> None:
    seen = Collector()

    def callback(event: WatchEvent) -> None:
        if event.key == "w/bad":
            raise RuntimeError("callback bug")
        seen(event)

    with caplog.at_level(logging.ERROR, logger="netsim.store"), store.watch("w/", callback):
        store.put("w/bad", "1")
        store.put("w/good", "2")
        seen.wait_for(lambda evs: [e.key for e in evs] == ["w/good"])
    assert "callback bug" in caplog.text


def test_a_callback_may_write_to_the_store(store: KVStore) -> None:
    seen = Collector()

    def echo(event: WatchEvent) -> None:
        if event.key == "in/ping":
            store.put("out/pong", event.value or "")

    with store.watch("in/", echo), store.watch("out/", seen):
        store.put("in/ping", "hello")
        assert seen.wait_for(lambda evs: len(evs) == 1)[0].value == "hello"


def test_another_store_object_sees_the_writes(store_url: str, store_kind: str) -> None:
    if store_kind == "memory":
        pytest.skip("memory:// is per-process by design")
    writer, reader = open_store(store_url), open_store(store_url)
    seen = Collector()
    try:
        with reader.watch("peer/", seen):
            versions = [writer.put(f"peer/{n}", str(n)) for n in range(5)]
            events = seen.wait_for(lambda evs: any(e.key == "peer/4" for e in evs))
            assert [(e.key, e.version) for e in events] == [(f"peer/{n}", v) for n, v in enumerate(versions)]
    finally:
        writer.close()
        reader.close()


def test_close_cancels_watches(store: KVStore) -> None:
    seen = Collector()
    store.watch("c/", seen)
    store.close()
    store.put("c/x", "1")  # a closed store still works (reopens) but old watches are gone
    time.sleep(0.3)
    assert seen.events == []
