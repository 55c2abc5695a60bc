"""The store contract (MemoryStore's semantics), run on every backend:
memory, sqlite, and real etcd and ZooKeeper servers."""

from __future__ import annotations

import pytest

from netsim.errors import ConflictError, InvalidParameterError, NotFoundError
from netsim.store import MUST_NOT_EXIST, KVStore, get_json, list_json, open_store, put_json


def test_compare_and_set(store: KVStore) -> None:
    v1 = store.put("network/a", "1", previous_version=MUST_NOT_EXIST)
    assert v1 >= 1
    with pytest.raises(ConflictError, match="exists already"):
        store.put("network/a", "2", previous_version=MUST_NOT_EXIST)
    with pytest.raises(ConflictError, match=f"is at version {v1}, not {v1 + 100}"):
        store.put("network/a", "2", previous_version=v1 + 100)
    assert store.get("network/a").value == "1"
    v2 = store.put("network/a", "2", previous_version=v1)
    assert v2 > v1 and store.get("network/a").version == v2
    with pytest.raises(ConflictError):
        store.delete("network/a", previous_version=v1)
    with pytest.raises(ConflictError, match="exists already"):
        store.delete("network/a", previous_version=MUST_NOT_EXIST)
    with pytest.raises(NotFoundError, match="expected version 5"):
        store.put("network/b", "x", previous_version=5)
    assert not store.exists("network/b")
    store.delete("network/a", previous_version=v2)
    with pytest.raises(NotFoundError, match="network/a"):
        store.get("network/a")
    with pytest.raises(NotFoundError):
        store.delete("network/a")
    with pytest.raises(NotFoundError):
        store.delete("network/a", previous_version=v2)


def test_versions_grow_and_are_never_reused(store: KVStore) -> None:
    seen = [store.put("k", "1"), store.put("other", "x"), store.put("k", "2")]
    store.delete("k")
    seen.append(store.put("k", "3"))
    store.delete("other")
    seen.append(store.put("other", "y", previous_version=MUST_NOT_EXIST))
    assert seen == sorted(seen) and len(set(seen)) == len(seen)
    assert store.get("k").version == seen[3] and store.get("other").version == seen[4]


def test_unconditional_put_and_delete(store: KVStore) -> None:
    first = store.put("sandbox/s", "")
    assert store.get("sandbox/s").value == "" and store.exists("sandbox/s")
    assert store.put("sandbox/s", "again") > first
    store.delete("sandbox/s")
    assert not store.exists("sandbox/s") and store.list("") == []


KEYS = ["a", "a/", "a/b", "a/b/c", "a/bc", "ab", "a.b", "b", "network/n1", "network/n10", "é/ü", "x%y", "sp ace"]


def test_listing_order_and_prefixes(store: KVStore) -> None:
    for index, key in enumerate(KEYS):
        store.put(key, f"v{index}")
    model = {key: f"v{index}" for index, key in enumerate(KEYS)}
    for prefix in ["", "a", "a/", "a/b", "a/b/", "ab", "b", "network/n1", "network/", "é", "é/", "x%", "zzz", "a/b/c/"]:
        expected = sorted((k, v) for k, v in model.items() if k.startswith(prefix))
        assert [(p.key, p.value) for p in store.list(prefix)] == expected, prefix


def test_delete_keeps_deeper_and_shallower_keys(store: KVStore) -> None:
    store.put("endpoint/n1", "parent")
    store.put("endpoint/n1/e1", "child")
    store.put("endpoint/n1/e1/x", "grandchild")
    store.delete("endpoint/n1/e1")
    assert [p.key for p in store.list("endpoint")] == ["endpoint/n1", "endpoint/n1/e1/x"]
    store.delete("endpoint/n1/e1/x")
    assert [p.key for p in store.list("endpoint")] == ["endpoint/n1"]
    version = store.put("endpoint/n1/e1", "back", previous_version=MUST_NOT_EXIST)
    assert store.get("endpoint/n1/e1").version == version


@pytest.mark.parametrize("key", ["", "/abs", "a//b", 5, None])
def test_bad_keys_refused(store: KVStore, key: object) -> None:
    with pytest.raises(InvalidParameterError, match="key"):
        store.put(key, "x")  # type: ignore[arg-type]
    assert store.list("") == []


def test_bad_values_refused(store: KVStore, store_kind: str) -> None:
    with pytest.raises(InvalidParameterError, match="string"):
        store.put("a", 5)  # type: ignore[arg-type]
    if store_kind != "memory":  # MemoryStore keeps any str (no encoding on its hot path)
        with pytest.raises(InvalidParameterError, match="Unicode"):
            store.put("a", "\ud800")
        with pytest.raises(InvalidParameterError, match="Unicode"):
            store.put("\udcff", "x")
    assert store.list("") == []


def test_json_helpers(store: KVStore) -> None:
    put_json(store, "endpoint/n1/e1", {"b": 1, "a": 2})
    put_json(store, "network/n1", {"name": "front"})
    assert store.get("endpoint/n1/e1").value == '{"a":2,"b":1}'
    assert get_json(store, "network/n1") == {"name": "front"}
    assert list_json(store, "network/") == [{"name": "front"}]


def test_url_and_close_are_idempotent(store: KVStore, store_url: str) -> None:
    assert store.url == store_url
    store.put("k", "v")
    store.close()
    store.close()


def test_state_survives_reopening(store_url: str, store_kind: str) -> None:
    if store_kind == "memory":
        pytest.skip("memory:// is per-process by design")
    first = open_store(store_url)
    version = first.put("network/n1", '{"name":"front"}')
    first.close()
    second = open_store(store_url)
    try:
        assert second.get("network/n1").version == version
        assert second.put("network/n1", "{}", previous_version=version) > version
    finally:
        second.close()


def test_oversized_values_are_refused_as_such(store: KVStore, store_kind: str) -> None:
    limits = {"etcd": 1_500_000, "zk": 1_000_000}
    if store_kind not in limits:
        pytest.skip(f"{store_kind} has no request size limit")
    store.put("big", "x" * limits[store_kind])
    with pytest.raises(InvalidParameterError, match=f"at most {limits[store_kind]}"):
        store.put("big", "x" * (limits[store_kind] + 1))
    assert len(store.get("big").value) == limits[store_kind]
