"""MemoryStore's record path (put_record/get_record): the same versions, text and
errors as put/get with canonical JSON, without encoding on the hot path."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netsim.controller.records import Records, copy_record
from netsim.errors import ConflictError, InvalidParameterError, NotFoundError
from netsim.store import MUST_NOT_EXIST, KVPair, MemoryStore, RecordPair, canonical_json

json_leaf = st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=8)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)
json_record = st.dictionaries(st.text(max_size=6), json_value, max_size=6)


@settings(max_examples=150, deadline=None)
@given(record=json_record)
def test_record_text_equals_put_json_text(record: dict[str, Any]) -> None:
    by_record, by_text = MemoryStore(), MemoryStore()
    version = by_record.put_record("network/a", copy_record(record))
    assert version == by_text.put("network/a", canonical_json(record))
    assert by_record.get("network/a") == by_text.get("network/a")
    assert json.loads(by_record.get("network/a").value) == record
    assert by_record.get_record("network/a") == record
    assert by_record.list_records("network/") == [record]


def test_record_versions_and_compare_and_set() -> None:
    store = MemoryStore()
    first = store.put_record("endpoint/n/e", {"name": "a"}, previous_version=MUST_NOT_EXIST)
    with pytest.raises(ConflictError, match="exists already"):
        store.put_record("endpoint/n/e", {"name": "b"}, previous_version=MUST_NOT_EXIST)
    with pytest.raises(ConflictError, match="not 99"):
        store.put_record("endpoint/n/e", {"name": "b"}, previous_version=99)
    assert store.get_record("endpoint/n/e") == {"name": "a"}
    second = store.put_record("endpoint/n/e", {"name": "b"}, previous_version=first)
    assert second == first + 1
    assert store.get("endpoint/n/e") == KVPair("endpoint/n/e", '{"name":"b"}', second)
    assert KVPair("endpoint/n/e", '{"name":"b"}', second) == store.get("endpoint/n/e")


@pytest.mark.parametrize(
    ("key", "record", "error", "words"),
    [
        ("", {}, InvalidParameterError, "invalid store key"),
        ("/abs", {}, InvalidParameterError, "invalid store key"),
        ("a//b", {}, InvalidParameterError, "invalid store key"),
        ("network/a", ["not", "a", "dict"], InvalidParameterError, "must be a dict"),
    ],
)
def test_invalid_record_puts_change_nothing(key: str, record: Any, error: type[Exception], words: str) -> None:
    store = MemoryStore()
    store.put_record("network/keep", {"id": "keep"})
    with pytest.raises(error, match=words):
        store.put_record(key, record)
    assert [pair.key for pair in store.list("")] == ["network/keep"]
    assert len(store) == 1


def test_get_record_of_text_and_missing_keys() -> None:
    store = MemoryStore()
    store.put("network/t", '{"x":[1,2]}')
    store.put("network/s", '"scalar"')
    assert store.get_record("network/t") == {"x": [1, 2]}
    assert store.list_records("network/") == [{"x": [1, 2]}]
    with pytest.raises(InvalidParameterError, match="JSON object"):
        store.get_record("network/s")
    with pytest.raises(NotFoundError, match="does not exist"):
        store.get_record("network/missing")


def test_records_copies_protect_the_stored_record() -> None:
    records = Records(MemoryStore())
    records.put("sandbox/s", {"id": "s", "endpoints": [["n", "e"]]})
    private = records.sandbox("s")
    private["endpoints"].append(["n", "f"])
    shallow, before = records.load("sandbox/s", "sandbox")
    shallow["endpoints"] = []
    assert records.sandbox_view("s") == {"id": "s", "endpoints": [["n", "e"]]}
    assert before is records.sandbox_view("s")
    assert json.loads(records.store.get("sandbox/s").value) == {"id": "s", "endpoints": [["n", "e"]]}


class TextOnlyStore:
    """A KVStore with only the protocol's text methods (like an etcd or sqlite
    store would have): the controller must fall back to JSON text."""

    def __init__(self) -> None:
        self.inner = MemoryStore()

    def get(self, key: str) -> KVPair:
        return self.inner.get(key)

    def put(self, key: str, value: str, previous_version: int | None = None) -> int:
        return self.inner.put(key, value, previous_version)

    def delete(self, key: str, previous_version: int | None = None) -> None:
        self.inner.delete(key, previous_version)

    def list(self, prefix: str) -> list[KVPair]:
        return self.inner.list(prefix)

    def exists(self, key: str) -> bool:
        return self.inner.exists(key)


def test_controller_on_a_text_only_store_keeps_json_records() -> None:
    from netsim.controller import Controller, ControllerConfig, IpamConfig, PoolConfig, PortBinding
    from netsim.kernel import make_kernel

    store = TextOnlyStore()
    kernel = make_kernel("fake")
    try:
        ctrl = Controller(kernel, ControllerConfig(host="ts", store=store))
        try:
            ctrl.create_network("n", "bridge", ipam=IpamConfig(pools=[PoolConfig(subnet="10.77.0.0/24")]))
            ctrl.create_sandbox("c")
            ep = ctrl.create_endpoint("n", "e", ports=[PortBinding("tcp", 80, 8080)])
            ctrl.join(ep, "c")
            joined = [json.loads(p.value) for p in store.list("endpoint/")]
            assert [r["sandbox"] for r in joined] == [ctrl.sandbox("c").id]
            assert all(not isinstance(p, RecordPair) for p in store.list(""))
            ctrl.leave(ep, "c")
            ctrl.delete_endpoint(ep)
            assert store.list("endpoint/") == [] and ctrl.network("n").endpoints() == []
        finally:
            ctrl.close()
    finally:
        kernel.close()
