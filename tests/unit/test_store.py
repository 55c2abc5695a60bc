"""MemoryStore: compare-and-set semantics, prefix listing, and a model-based
check against a plain dict."""

from __future__ import annotations

import doctest

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import netsim.store.memory
from netsim.errors import ConflictError, InvalidParameterError, NotFoundError
from netsim.store import MUST_NOT_EXIST, MemoryStore, get_json, list_json, put_json


def test_doctests() -> None:
    assert doctest.testmod(netsim.store.memory).failed == 0


def test_compare_and_set() -> None:
    store = MemoryStore()
    v1 = store.put("network/a", "1", previous_version=MUST_NOT_EXIST)
    with pytest.raises(ConflictError, match="exists already"):
        store.put("network/a", "2", previous_version=MUST_NOT_EXIST)
    with pytest.raises(ConflictError, match="version"):
        store.put("network/a", "2", previous_version=v1 + 100)
    assert store.get("network/a").value == "1"
    v2 = store.put("network/a", "2", previous_version=v1)
    assert v2 > v1 and store.get("network/a").version == v2
    with pytest.raises(ConflictError):
        store.delete("network/a", previous_version=v1)
    with pytest.raises(NotFoundError):
        store.put("network/b", "x", previous_version=5)
    store.delete("network/a", previous_version=v2)
    with pytest.raises(NotFoundError, match="network/a"):
        store.get("network/a")
    with pytest.raises(NotFoundError):
        store.delete("network/a")
    # A recreated key never reuses an old version.
    assert store.put("network/a", "3") > v2
    store._check()


@pytest.mark.parametrize("key", ["", "/abs", "a//b"])
def test_bad_keys_refused(key: str) -> None:
    store = MemoryStore()
    with pytest.raises(InvalidParameterError, match="key"):
        store.put(key, "x")
    assert len(store) == 0


def test_bad_value_refused() -> None:
    store = MemoryStore()
    with pytest.raises(InvalidParameterError, match="string"):
        store.put("a", 5)  # type: ignore[arg-type]
    assert len(store) == 0


def test_prefix_listing_and_json() -> None:
    store = MemoryStore()
    put_json(store, "endpoint/n1/e1", {"b": 1, "a": 2})
    put_json(store, "endpoint/n1/e2", {"x": 1})
    put_json(store, "endpoint/n10/e3", {"y": 1})
    put_json(store, "network/n1", {"name": "front"})
    assert [p.key for p in store.list("endpoint/n1/")] == ["endpoint/n1/e1", "endpoint/n1/e2"]
    assert store.get("endpoint/n1/e1").value == '{"a":2,"b":1}'  # canonical: equal records, equal text
    assert get_json(store, "network/n1") == {"name": "front"}
    assert list_json(store, "network/") == [{"name": "front"}]
    store.put("weird", "[1]")
    with pytest.raises(InvalidParameterError, match="JSON object"):
        get_json(store, "weird")


keys = st.sampled_from(["network/a", "network/b", "endpoint/a/1", "endpoint/a/2", "sandbox/x", "netw"])
ops = st.lists(st.tuples(st.sampled_from(["put", "cas", "delete", "list"]), keys, st.text(max_size=3)), max_size=40)


@settings(max_examples=150, deadline=None)
@given(ops)
def test_model(operations: list[tuple[str, str, str]]) -> None:
    store, model = MemoryStore(), {}
    versions: dict[str, int] = {}
    for op, key, value in operations:
        if op == "put":
            versions[key] = store.put(key, value)
            model[key] = value
        elif op == "cas":
            expected = versions.get(key, MUST_NOT_EXIST) if key in model else MUST_NOT_EXIST
            versions[key] = store.put(key, value, previous_version=expected)
            model[key] = value
        elif op == "delete":
            if key in model:
                store.delete(key, previous_version=versions[key])
                del model[key]
            else:
                with pytest.raises(NotFoundError):
                    store.delete(key)
        else:
            prefix = key[:4]
            assert [(p.key, p.value) for p in store.list(prefix)] == sorted(
                (k, v) for k, v in model.items() if k.startswith(prefix)
            )
        store._check()
    assert {p.key: p.value for p in store.list("")} == model
