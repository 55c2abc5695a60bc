"""Per-operation cost of each store backend, with MemoryStore as the reference
measured in the same run (one benchmark group per operation, so each group
reads as ratios against ``memory``).

Operations: unconditional put, get, compare-and-set put, and ``list`` of a
100-key prefix (among 300 keys). etcd and ZooKeeper are real servers on
127.0.0.1 (started by the session fixtures); sqlite is a file with
``synchronous=NORMAL`` in WAL mode (a commit reaches the file, not the disk).

Run: ``python -m pytest benchmarks/test_bench_store.py --benchmark-only``.
Target (issue 12): report put/get/CAS per backend against MemoryStore.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from netsim.store import KVStore, open_store
from netsim.store.testing import etcd_server, server_store_url, zk_server  # noqa: F401 - fixtures

BACKENDS = [
    pytest.param("memory", id="memory"),
    pytest.param("sqlite", id="sqlite"),
    pytest.param("etcd", id="etcd", marks=pytest.mark.stores),
    pytest.param("zk", id="zk", marks=pytest.mark.stores),
]
VALUE = '{"id":"0123456789abcdef","name":"front","type":"bridge"}'


@pytest.fixture(params=BACKENDS)
def bench_store(request: pytest.FixtureRequest, server_store_url: Callable[[str], str]) -> Iterator[KVStore]:  # noqa: F811
    store = open_store(server_store_url(str(request.param)))
    try:
        yield store
    finally:
        store.close()


def _run(benchmark: Any, store: KVStore, operation: Callable[[], object]) -> None:
    kind = store.url.split(":", 1)[0]
    benchmark.extra_info["backend"] = kind
    if kind == "memory":  # sub-microsecond: batch calls so the timer does not dominate
        benchmark.pedantic(operation, rounds=200, iterations=200, warmup_rounds=2)
    else:
        benchmark.pedantic(operation, rounds=150, iterations=1, warmup_rounds=5)


@pytest.mark.benchmark(group="store-put")
def test_put(benchmark: Any, bench_store: KVStore) -> None:
    keys = (f"network/n{n % 100}" for n in itertools.count())
    _run(benchmark, bench_store, lambda: bench_store.put(next(keys), VALUE))


@pytest.mark.benchmark(group="store-get")
def test_get(benchmark: Any, bench_store: KVStore) -> None:
    bench_store.put("network/n1", VALUE)
    _run(benchmark, bench_store, lambda: bench_store.get("network/n1"))


@pytest.mark.benchmark(group="store-cas-put")
def test_compare_and_set_put(benchmark: Any, bench_store: KVStore) -> None:
    state = {"version": bench_store.put("network/n1", VALUE)}

    def cas() -> None:
        state["version"] = bench_store.put("network/n1", VALUE, previous_version=state["version"])

    _run(benchmark, bench_store, cas)


@pytest.mark.benchmark(group="store-list-100")
def test_list_100(benchmark: Any, bench_store: KVStore) -> None:
    for owner in ("a", "b", "c"):
        for n in range(100):
            bench_store.put(f"endpoint/{owner}/e{n:03}", VALUE)
    _run(benchmark, bench_store, lambda: bench_store.list("endpoint/b/"))
    assert len(bench_store.list("endpoint/b/")) == 100
