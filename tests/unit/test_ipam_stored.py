"""The default IPAM with its pools in a store: survives a restart, shares a
global pool between controllers without handing an address out twice, and
fails cleanly when the store does."""

from __future__ import annotations

import ipaddress
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipam.default import DefaultIpam
from ipam.stored import StoredIpam, pool_key
from netsim.errors import ConflictError, InvalidParameterError, NoSpaceError, UnavailableError
from netsim.store import KVStore, MemoryStore, open_store


def _stored(store: KVStore, space: str = "LocalDefault") -> StoredIpam:
    return StoredIpam({space: store})


def test_pools_and_addresses_survive_a_restart() -> None:
    store = MemoryStore()
    first = _stored(store)
    pool_id, _, _ = first.request_pool("LocalDefault", "10.9.0.0/24", "10.9.0.128/25", {}, False)
    dynamic, network, _ = first.request_pool("LocalDefault", "", "", {}, False)
    taken = [first.request_address(pool_id, None, {})[0] for _ in range(3)]
    first.release_address(pool_id, taken[1].ip)
    again = _stored(store)
    assert again.pool_ids("LocalDefault") == sorted([pool_id, dynamic])
    assert again.allocated(pool_id) == {taken[0].ip, taken[2].ip}
    assert again.request_address(pool_id, None, {})[0] == taken[1]  # first fit: the hole
    # A dynamic pool is not chosen twice after the restart.
    assert again.request_pool("LocalDefault", "", "", {}, False)[1] != network
    assert again.to_json() != first.to_json()  # the second one moved on; the store follows it
    assert _stored(store).to_json() == again.to_json()


def test_releasing_the_last_hold_deletes_the_record() -> None:
    store = MemoryStore()
    ipam = _stored(store)
    pool_id, network, _ = ipam.request_pool("LocalDefault", "10.9.1.0/24", "", {}, False)
    assert store.exists(pool_key("LocalDefault", network))
    ipam.release_pool(pool_id)
    assert not store.exists(pool_key("LocalDefault", network))
    assert store.list("ipam/") == []


def test_two_controllers_share_a_global_pool() -> None:
    store = MemoryStore()
    a, b = _stored(store, "GlobalDefault"), _stored(store, "GlobalDefault")
    pool_id, _, _ = a.request_pool("GlobalDefault", "10.20.0.0/28", "", {}, False)
    got = set()
    for turn in range(14):  # 16 addresses - network - broadcast
        ipam = a if turn % 3 else b  # b learns of the pool and of a's writes by losing races
        got.add(ipam.request_address(pool_id, None, {})[0].ip)
    assert len(got) == 14
    with pytest.raises(NoSpaceError):
        b.request_address(pool_id, None, {})
    with pytest.raises(ConflictError, match="already allocated"):
        a.request_address(pool_id, ipaddress.ip_address("10.20.0.5"), {})


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_concurrent_controllers_never_hand_out_an_address_twice(backend: str, tmp_path: Path) -> None:
    store: KVStore = MemoryStore() if backend == "memory" else open_store(f"sqlite:///{tmp_path}/ipam.db")
    creator = _stored(store, "GlobalDefault")
    pool_id, _, _ = creator.request_pool("GlobalDefault", "10.30.0.0/22", "", {}, False)
    results: list[list[Any]] = [[] for _ in range(4)]

    def work(slot: int) -> None:
        ipam = _stored(store, "GlobalDefault")
        for _ in range(100):
            results[slot].append(ipam.request_address(pool_id, None, {})[0].ip)

    threads = [threading.Thread(target=work, args=(slot,)) for slot in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [ip for got in results for ip in got]
    assert len(everything) == 400 and len(set(everything)) == 400
    assert _stored(store, "GlobalDefault").allocated(pool_id) == set(everything)
    store.close()


def test_a_corrupt_record_is_named() -> None:
    store = MemoryStore()
    store.put("ipam/LocalDefault/10.0.0.0-24", '{"network": "10.0.0.0/24"}')
    with pytest.raises(InvalidParameterError, match=r"ipam/LocalDefault/10\.0\.0\.0-24"):
        _stored(store)
    store.put("ipam/LocalDefault/10.0.0.0-24", "not json")
    with pytest.raises(InvalidParameterError, match="not JSON"):
        _stored(store)


class FlakyStore(MemoryStore):
    """A store whose writes fail while ``down`` (a server that went away)."""

    down = False

    def put(self, key: str, value: str, previous_version: int | None = None) -> int:
        if self.down:
            raise UnavailableError(f"store down: put {key}")
        return super().put(key, value, previous_version)


def test_a_store_failure_applies_nothing_and_work_resumes() -> None:
    store = FlakyStore()
    ipam = _stored(store)
    pool_id, _, _ = ipam.request_pool("LocalDefault", "10.9.2.0/24", "", {}, False)
    first = ipam.request_address(pool_id, None, {})[0]
    store.down = True
    with pytest.raises(UnavailableError):
        ipam.request_address(pool_id, None, {})
    store.down = False
    # The failed request left no trace: the next one gets the address it would have.
    assert ipam.request_address(pool_id, None, {})[0].ip == first.ip + 1
    assert ipam.allocated(pool_id) == {first.ip, first.ip + 1}


operations = st.lists(
    st.one_of(
        st.tuples(st.just("request"), st.integers(0, 2), st.none()),
        st.tuples(st.just("preferred"), st.integers(0, 2), st.integers(1, 30)),
        st.tuples(st.just("release"), st.integers(0, 2), st.integers(1, 30)),
        st.tuples(st.just("restart"), st.just(0), st.none()),
    ),
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(operations)
def test_behaves_as_the_in_memory_driver_across_restarts(ops: list[tuple[str, int, int | None]]) -> None:
    """Same answers as DefaultIpam for any sequence, with restarts in between."""
    store = MemoryStore()
    model, stored = DefaultIpam(), _stored(store)
    subnets = ["10.40.0.0/27", "10.40.1.0/27", "10.40.2.0/27"]
    pools = [model.request_pool("LocalDefault", s, "", {}, False)[0] for s in subnets]
    assert [stored.request_pool("LocalDefault", s, "", {}, False)[0] for s in subnets] == pools

    def outcome(ipam: DefaultIpam, op: str, pool: str, n: int | None) -> object:
        network = ipaddress.ip_network(pool.split("/", 1)[1])
        try:
            if op == "request":
                return ipam.request_address(pool, None, {})[0]
            if op == "preferred":
                return ipam.request_address(pool, network[n or 1], {})[0]
            return ipam.release_address(pool, network[n or 1])
        except (ConflictError, NoSpaceError) as exc:
            return type(exc).__name__

    for op, index, n in ops:
        if op == "restart":
            stored = _stored(store)
            continue
        assert outcome(stored, op, pools[index], n) == outcome(model, op, pools[index], n)
    assert _stored(store).to_json() == model.to_json()
