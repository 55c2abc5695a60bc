"""A store server that stops in the middle of a controller call: the call
fails with an unavailable error naming the store, nothing is silently half
applied, and a controller opened once the server is back converges. Both
kernels, a real etcd as the local store (held in memory and written through
at the end of each call: netsim.store.cached)."""

from __future__ import annotations

from typing import Any

import pytest

from netsim.controller import Controller, ControllerConfig
from netsim.controller.crashtest import check_converged
from netsim.errors import UnavailableError
from netsim.kernel.base import Kernel
from netsim.netlabel import PortBinding
from netsim.store.cached import CachedStore
from netsim.store.servers import EtcdServer

pytestmark = pytest.mark.stores


@pytest.mark.parametrize("at", [1, 2, 4])
def test_server_stopped_mid_connect(
    kernel: Kernel, etcd_server: EtcdServer, at: int, request: pytest.FixtureRequest
) -> None:
    url = f"{etcd_server.url}/outage{at}{request.node.callspec.id.replace('-', '')}"
    before = kernel.snapshot()
    ctrl = Controller(kernel, ControllerConfig(local_store=url, entry_points=False))
    ctrl.create_network("front", "bridge")
    ctrl.connect("web", "front", ports=[PortBinding("tcp", 80, 8080)])
    store = ctrl.store
    assert isinstance(store, CachedStore)
    backing: Any = store.backing
    real_put, writes = backing.put, [0]

    def put(key: str, value: str, previous_version: int | None = None) -> int:
        writes[0] += 1
        if writes[0] == at:
            etcd_server.stop(kill=True)  # the server dies in the middle of the call's writes
        return int(real_put(key, value, previous_version))

    backing.put = put
    try:
        with pytest.raises(UnavailableError) as failure:
            ctrl.connect("db", "front")
        assert "etcd://" in str(failure.value)
    finally:
        etcd_server.start()
    assert writes[0] >= at
    # The call's later writes never reached etcd: a controller opened now finds
    # the state as of the last complete write and converges with the kernel.
    again = Controller(kernel, ControllerConfig(local_store=url, entry_points=False))
    try:
        assert check_converged(again) == []
        assert "web" in {s.container for s in again.sandboxes()}
        if "db" in {s.container for s in again.sandboxes()}:
            again.delete_sandbox("db")
        again.connect("db", "front")
        assert check_converged(again) == []
    finally:
        again.close()
    assert kernel.snapshot() == before
