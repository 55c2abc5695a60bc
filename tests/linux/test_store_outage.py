"""A store server that stops in the middle of a controller call: the call
fails with an unavailable error naming the store, nothing is silently half
applied, and a controller opened once the server is back converges. Both
kernels, a real etcd."""

from __future__ import annotations

from typing import Any

import pytest

from netsim.controller import Controller, ControllerConfig
from netsim.controller.crashtest import check_converged
from netsim.errors import UnavailableError
from netsim.kernel.base import Kernel
from netsim.netlabel import PortBinding
from netsim.store import KVPair, KVStore, open_store
from netsim.store.servers import EtcdServer

pytestmark = pytest.mark.stores


class StopsServer:
    """A store proxy that stops the server just before its ``at``-th write."""

    def __init__(self, inner: KVStore, server: EtcdServer, at: int) -> None:
        self.inner, self.server, self.at, self.writes = inner, server, at, 0
        self.url = inner.url

    def _write(self) -> None:
        self.writes += 1
        if self.writes == self.at:
            self.server.stop(kill=True)

    def put(self, key: str, value: str, previous_version: int | None = None) -> int:
        self._write()
        return self.inner.put(key, value, previous_version)

    def delete(self, key: str, previous_version: int | None = None) -> None:
        self._write()
        self.inner.delete(key, previous_version)

    def get(self, key: str) -> KVPair:
        return self.inner.get(key)

    def list(self, prefix: str) -> list[KVPair]:
        return self.inner.list(prefix)

    def exists(self, key: str) -> bool:
        return self.inner.exists(key)

    def watch(self, prefix: str, callback: Any) -> Any:
        return self.inner.watch(prefix, callback)

    def close(self) -> None:
        self.inner.close()


@pytest.mark.parametrize("at", [1, 2, 3, 5])
def test_server_stopped_mid_connect(
    kernel: Kernel, etcd_server: EtcdServer, at: int, request: pytest.FixtureRequest
) -> None:
    url = f"{etcd_server.url}/outage{at}{request.node.callspec.id.replace('-', '')}"
    before = kernel.snapshot()
    ctrl = Controller(kernel, ControllerConfig(local_store=url, entry_points=False))
    ctrl.create_network("front", "bridge")
    ctrl.connect("web", "front", ports=[PortBinding("tcp", 80, 8080)])
    proxy = StopsServer(open_store(url), etcd_server, at)
    ctrl.stores.local = ctrl.store = ctrl.records.store = proxy  # type: ignore[assignment]
    ctrl._batch = None
    try:
        with pytest.raises(UnavailableError) as failure:
            ctrl.connect("db", "front")
        assert "etcd://" in str(failure.value)
    finally:
        etcd_server.start()
    # The dead server took the rest of that call's writes (its undo's too): a
    # controller opened now finds whatever was left and converges.
    again = Controller(kernel, ControllerConfig(local_store=url, entry_points=False))
    try:
        assert check_converged(again) == []
        assert "web" in {s.container for s in again.sandboxes()}
        again.connect("db", "front")
        assert check_converged(again) == []
    finally:
        again.close()
    assert kernel.snapshot() == before
