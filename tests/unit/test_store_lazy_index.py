"""MemoryStore's sorted key index, brought up to date at the next listing
(keys made and deleted between listings never reach it), its bulk load, and
the cached store's decode-once reads: listings, versions and text stay what
a plain dict-per-write store gives, in any order of operations."""

from __future__ import annotations

import gc
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netsim.errors import ConflictError, InvalidParameterError
from netsim.store import KVPair, MemoryStore, RecordPair
from netsim.store.cached import CachedStore

keys = st.sampled_from([f"{kind}/{name}" for kind in ("endpoint/n", "name", "network") for name in "abcd"])
operations = st.lists(
    st.tuples(st.sampled_from(["put", "put_record", "delete", "list"]), keys, st.integers(0, 9)), max_size=60
)


@settings(max_examples=150, deadline=None)
@given(ops=operations)
def test_listings_follow_every_write_in_key_order(ops: list[tuple[str, str, int]]) -> None:
    store, model = MemoryStore(), {}
    for op, key, value in ops:
        if op == "put":
            store.put(key, str(value))
            model[key] = str(value)
        elif op == "put_record":
            store.put_record(key, {"v": value})
            model[key] = json.dumps({"v": value}, separators=(",", ":"))
        elif op == "delete" and key in model:
            store.delete(key)
            del model[key]
        else:
            prefix = key.rsplit("/", 1)[0] + "/"
            listed = [(pair.key, pair.value) for pair in store.list(prefix)]
            assert listed == sorted((k, v) for k, v in model.items() if k.startswith(prefix))
        store._check()
    assert [(pair.key, pair.value) for pair in store.list("")] == sorted(model.items())
    store._check()


def test_a_key_made_and_deleted_between_listings_never_reaches_the_index() -> None:
    store = MemoryStore()
    store.put("network/a", "1")
    assert [p.key for p in store.list("")] == ["network/a"]
    store.put("endpoint/n/e", "2")
    store.delete("endpoint/n/e")
    assert "endpoint/n/e" not in store._sorted and not store._created and not store._deleted
    store.delete("network/a")
    store.put("network/a", "3")  # deleted and made again: still indexed once
    assert list(store._sorted) == ["network/a"] and not store._deleted
    assert [(p.key, p.value) for p in store.list("network/")] == [("network/a", "3")]
    store._check()


def test_load_fills_an_empty_store_as_puts_would() -> None:
    source = [KVPair("network/b", "{}", 7), KVPair("endpoint/n/e", '{"x":1}', 9), KVPair("name/a", "id", 2)]
    loaded, put = MemoryStore(), MemoryStore()
    loaded.load(source)
    for pair in source:
        put.put(pair.key, pair.value)
    assert loaded.list("") == put.list("")
    assert loaded.put("network/c", "{}") == put.put("network/c", "{}") == 4
    loaded._check()
    with pytest.raises(InvalidParameterError, match="empty store only"):
        loaded.load(source)
    with pytest.raises(InvalidParameterError, match="must be a string"):
        MemoryStore().load([KVPair("network/a", 3, 1)])  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="invalid store key"):
        MemoryStore().load([KVPair("/abs", "{}", 1)])


def test_a_text_record_is_decoded_once_and_reads_the_same() -> None:
    store = MemoryStore()
    version = store.put("network/a", '{"name": "front", "ports": [80]}')
    before = store.get("network/a")
    record = store.get_record("network/a")
    assert record == {"name": "front", "ports": [80]}
    assert store.get_record("network/a") is record  # decoded once, then shared
    after = store.get("network/a")
    assert isinstance(after, RecordPair) and after == before
    assert (after.value, after.version) == ('{"name": "front", "ports": [80]}', version)  # the text as written
    assert store.list_records("network/") == [record]
    store.put("network/a", '{"name": "back"}')  # a later write replaces the decoded pair
    assert store.get_record("network/a") == {"name": "back"}
    with pytest.raises(ConflictError):
        store.put("network/a", "{}", previous_version=version)


def test_the_cached_store_opens_with_the_collector_as_it_found_it() -> None:
    backing = MemoryStore()
    for n in range(5):
        backing.put(f"endpoint/n/e{n}", json.dumps({"n": n}))
    assert gc.isenabled()
    cached = CachedStore(backing)
    assert gc.isenabled()
    assert [p.key for p in cached.list("endpoint/")] == [f"endpoint/n/e{n}" for n in range(5)]
    assert cached.get_record("endpoint/n/e3") == {"n": 3}
    gc.disable()
    try:
        CachedStore(backing)
        assert not gc.isenabled()  # not switched on by a store that found it off
    finally:
        gc.enable()
