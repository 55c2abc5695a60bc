"""Pytest fixtures for store tests: real etcd / ZooKeeper servers and a store
URL parametrized over every backend.

Enable with ``pytest_plugins = ["netsim.store.testing"]`` in a conftest (netsim's
own tests/conftest.py does). Fixtures:

* ``etcd_server`` / ``zk_server`` (session): one real server each per test
  session (ZooKeeper's JVM is slow to start), on 127.0.0.1, removed at the end;
* ``store_kind`` / ``store_url`` / ``store``: each test runs on ``memory``,
  ``sqlite``, ``etcd`` and ``zk``; every test gets its own sqlite file, etcd
  prefix or ZooKeeper chroot, so tests sharing a server never see each other;
* ``server_store_url(kind)``: a fresh URL for ``"sqlite"``, ``"etcd"`` or ``"zk"``.

A missing server binary skips its tests with the reason, except under
``NETSIM_REQUIRE_SERVERS=1`` (CI), where it fails them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from netsim.store.base import KVStore
from netsim.store.servers import (
    EtcdServer,
    ServerStartError,
    ZooKeeperServer,
    etcd_missing_reason,
    zookeeper_missing_reason,
)
from netsim.store.url import open_store

REQUIRE_ENV = "NETSIM_REQUIRE_SERVERS"

STORE_KINDS = [
    pytest.param("memory", id="memory"),
    pytest.param("sqlite", id="sqlite"),
    pytest.param("etcd", id="etcd", marks=pytest.mark.stores),
    pytest.param("zk", id="zk", marks=pytest.mark.stores),
]


def _unavailable(reason: str) -> None:
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason}, and {REQUIRE_ENV}=1 forbids skipping", pytrace=False)
    pytest.skip(reason)


#: a server whose free port another process took first (pytest-xdist workers
#: start theirs at once) is started again on new ports, this many times in all
START_ATTEMPTS = 3

_S = TypeVar("_S", EtcdServer, ZooKeeperServer)


def _started(make: Callable[[], _S]) -> _S:
    """A started server. Its ports are free when picked, not reserved: another
    worker or program may bind one before the server does. Then it exits
    ("address already in use"), and a new one on new ports is tried."""
    for attempt in range(1, START_ATTEMPTS + 1):
        server = make()
        try:
            server.start()
        except ServerStartError:
            server.close()
            if attempt == START_ATTEMPTS:
                raise
            continue
        except BaseException:
            server.close()
            raise
        return server
    raise AssertionError("unreachable")


@pytest.fixture(scope="session")
def etcd_server() -> Iterator[EtcdServer]:
    """One real etcd for the session (``.url``, ``.stop()``, ``.start()``).
    Under pytest-xdist each worker has its own: a test that stops it stops
    only its own worker's, whose tests run one at a time."""
    reason = etcd_missing_reason()
    if reason is not None:
        _unavailable(reason)
    server = _started(EtcdServer)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def zk_server() -> Iterator[ZooKeeperServer]:
    """One real ZooKeeper for the session (``.url``, ``.stop()``, ``.start()``),
    one per pytest-xdist worker like :func:`etcd_server`."""
    reason = zookeeper_missing_reason()
    if reason is not None:
        _unavailable(reason)
    server = _started(ZooKeeperServer)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def server_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[str], str]:
    """``make(kind)``: a URL of a fresh, empty store of that kind."""

    def make(kind: str) -> str:
        unique = "t" + uuid.uuid4().hex[:12]
        if kind == "memory":
            return "memory://"
        if kind == "sqlite":
            return f"sqlite://{tmp_path / unique}.db"
        if kind == "etcd":
            return f"{request.getfixturevalue('etcd_server').url}/{unique}"
        if kind == "zk":
            return f"{request.getfixturevalue('zk_server').url}/{unique}"
        raise ValueError(f"unknown store kind {kind!r}")

    return make


@pytest.fixture(params=STORE_KINDS)
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_url(store_kind: str, server_store_url: Callable[[str], str]) -> str:
    """A fresh store URL of each kind: memory, sqlite, etcd, zk."""
    return server_store_url(store_kind)


@pytest.fixture
def store(store_url: str) -> Iterator[KVStore]:
    """An open store of each kind, closed after the test."""
    opened = open_store(store_url)
    try:
        yield opened
    finally:
        opened.close()


def cas_increment(url: str, key: str, count: int) -> int:
    """Add 1 to the integer at ``key`` ``count`` times by compare-and-set,
    retrying on conflict; returns the conflicts seen. (Top-level, so a
    spawned process can run it: the cross-process race tests use it.)"""
    from netsim.errors import ConflictError, NotFoundError
    from netsim.store.base import MUST_NOT_EXIST

    store = open_store(url)
    conflicts = 0
    try:
        for _ in range(count):
            while True:
                try:
                    pair = store.get(key)
                    store.put(key, str(int(pair.value) + 1), previous_version=pair.version)
                except NotFoundError:
                    try:
                        store.put(key, "1", previous_version=MUST_NOT_EXIST)
                    except ConflictError:
                        conflicts += 1
                        continue
                except ConflictError:
                    conflicts += 1
                    continue
                break
    finally:
        store.close()
    return conflicts
