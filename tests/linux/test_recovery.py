"""Restart and recovery on both kernels: a controller opened on the store of
one that died (at any step, without cleaning up) converges, keeps traffic
flowing for what survived, and leaves nothing behind at close."""

from __future__ import annotations

import random

import pytest

from netsim.controller import Controller, ControllerConfig, IpamConfig, PoolConfig
from netsim.controller.crashtest import (
    Crashed,
    CrashInjector,
    check_converged,
    crashing_controller,
    random_lifecycle,
)
from netsim.kernel.base import Kernel, Listener
from netsim.kernel.fake import FakeKernel
from netsim.netlabel import PortBinding
from netsim.store import MemoryStore

# The real kernel pays ~60 ms per container operation: fewer runs there, the
# fake kernel carries the large count (tests/fake/test_recovery_many.py).
RUNS = {"fake": 120, "linux": 100}
#: the runs (seeds) are dealt to this many tests: the real kernel's 100 take ~25 s
#: under load, which one pytest-xdist worker would otherwise carry alone
SHARDS = 4
LINUX_STEPS = 5


def _config(store: MemoryStore) -> ControllerConfig:
    return ControllerConfig(store=store, entry_points=False)


def test_clean_restart_keeps_traffic_and_releases_everything(kernel: Kernel) -> None:
    before = kernel.snapshot()
    store = MemoryStore()
    old = Controller(kernel, _config(store))
    old.create_network("front", "bridge", ipam=IpamConfig(pools=[PoolConfig(subnet="10.61.0.0/24")]))
    old.create_network("back", "bridge", {"com.docker.network.bridge.enable_icc": "false"})
    web = old.connect("web", "front", ports=[PortBinding("tcp", 80, 8080)])
    old.connect("db", "front")
    old.connect("db", "back")
    web_ip = old.records.endpoint_view(web.network_id, web.id)["address"].split("/")[0]
    # The old controller dies: no close, its objects simply stop being used.
    new = Controller(kernel, _config(store))
    try:
        assert new.recovery is not None and new.recovery.clean, new.recovery
        assert [n.name for n in new.networks()] == ["back", "front"]
        assert {s.container for s in new.sandboxes()} == {"db", "web"}
        web_ns, db_ns = new.sandbox("web").namespace, new.sandbox("db").namespace
        kernel.add_listener(web_ns, Listener("tcp", 80))
        assert kernel.probe(db_ns, web_ip, "tcp", 80).reachable
        assert kernel.probe(new.host.outside_namespace, new.host.host_ip, "tcp", 8080).reachable
        # Addresses are not handed out twice after the restart.
        third = new.connect("cache", "front")
        taken = {new.records.endpoint_view(e.network_id, e.id)["address"] for e in (web, third)}
        assert len(taken) == 2
        new.disconnect("cache", "front")
        kernel.delete_listener(web_ns, Listener("tcp", 80))
        assert check_converged(new) == []
    finally:
        new.close()
    assert kernel.snapshot() == before


def test_restart_with_a_deleted_container_namespace_removes_its_endpoints(kernel: Kernel) -> None:
    before = kernel.snapshot()
    store = MemoryStore()
    old = Controller(kernel, _config(store))
    old.create_network("front", "bridge")
    old.connect("gone", "front", ports=[PortBinding("tcp", 80, 8081)])
    old.connect("stays", "front")
    kernel.delete_namespace(old.sandbox("gone").namespace)  # the container died with the daemon
    new = Controller(kernel, _config(store))
    try:
        report = new.recovery
        assert report is not None
        assert any("gone" in line for line in report.removed), report
        assert [s.container for s in new.sandboxes()] == ["stays"]
        assert check_converged(new) == []
        new.connect("gone", "front", ports=[PortBinding("tcp", 80, 8081)])  # its port is free again
    finally:
        new.close()
    assert kernel.snapshot() == before


def _crash_and_restart(kernel: Kernel, seed: int, steps: int) -> tuple[list[str], str | None]:
    """Count the lifecycle's steps on a scratch run (on a fake kernel: the
    controller and drivers make the same calls on either), crash a real run
    at a random one, restart, check, use, close. Returns (problems, crash point)."""
    injector = CrashInjector()
    random_lifecycle(crashing_controller(FakeKernel(), MemoryStore(), injector), seed, steps)
    total = injector.calls
    store = MemoryStore()
    injector = CrashInjector()
    injector.arm(random.Random(seed).randint(1, total))
    try:
        doomed = crashing_controller(kernel, store, injector)
        random_lifecycle(doomed, seed, steps)
    except Crashed:
        pass
    new = Controller(kernel, _config(store))
    try:
        problems = check_converged(new)
        random_lifecycle(new, seed + 7919, 3)  # the recovered controller keeps working
        problems += [f"after more work: {p}" for p in check_converged(new)]
    finally:
        new.close()
    return problems, injector.fired


@pytest.mark.parametrize("shard", range(SHARDS))
def test_crash_at_any_step_converges(kernel: Kernel, kernel_kind: str, shard: int) -> None:
    before = kernel.snapshot()
    steps = LINUX_STEPS if kernel_kind == "linux" else 8
    failures = []
    for seed in range(shard, RUNS[kernel_kind], SHARDS):
        problems, fired = _crash_and_restart(kernel, seed, steps)
        after = kernel.snapshot()
        if after != before:
            problems.append("kernel not back to its first state after close")
        if problems:
            failures.append(f"seed {seed}, crash at {fired}: {problems[:3]}")
            before = after
    assert not failures, "\n".join(failures[:10])


@pytest.mark.parametrize("point", ["store.put network", "kernel.add_bridge", "driver.join", "store.put sandbox"])
def test_named_crash_points(kernel: Kernel, point: str) -> None:
    """The crash points most likely to split kernel and store, named."""
    before = kernel.snapshot()
    store = MemoryStore()
    injector = CrashInjector()
    probe = crashing_controller(kernel, MemoryStore(), injector, host="s")
    injector.arm(10**9)
    random_lifecycle(probe, 3, 6)
    log = list(injector.log)
    probe.close()
    index = next(i for i, what in enumerate(log, 1) if what.startswith(point))
    injector = CrashInjector()
    injector.arm(index)
    with pytest.raises(Crashed):
        random_lifecycle(crashing_controller(kernel, store, injector), 3, 6)
    new = Controller(kernel, _config(store))
    try:
        assert check_converged(new) == []
    finally:
        new.close()
    assert kernel.snapshot() == before
