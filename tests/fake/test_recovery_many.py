"""1,000 crash-and-restart runs on the fake kernel (random lifecycle, random
crash point among every kernel, driver, IPAM and store call): 0 leaked
addresses, 0 orphan records, 0 orphan kernel objects."""

from __future__ import annotations

import random
from collections import Counter

from netsim.controller import Controller, ControllerConfig
from netsim.controller.crashtest import Crashed, CrashInjector, check_converged, crashing_controller, random_lifecycle
from netsim.kernel.fake import FakeKernel
from netsim.store import MemoryStore

RUNS = 1000


def test_thousand_crashes_converge() -> None:
    failures: list[str] = []
    seen: Counter[str] = Counter()
    for seed in range(RUNS):
        injector = CrashInjector()
        random_lifecycle(crashing_controller(FakeKernel(), MemoryStore(), injector), seed)
        total = injector.calls
        kernel, store = FakeKernel(), MemoryStore()
        before = kernel.snapshot()
        injector = CrashInjector()
        injector.arm(random.Random(seed).randint(1, total))
        try:
            random_lifecycle(crashing_controller(kernel, store, injector), seed)
        except Crashed:
            seen[str(injector.fired).split("(")[0].split(" ")[0]] += 1
        new = Controller(kernel, ControllerConfig(store=store, entry_points=False))
        problems = check_converged(new)
        report = new.recovery
        if report is not None and not report.clean:
            seen["recovery repaired something"] += 1
        new.close()
        if kernel.snapshot() != before:
            problems.append("kernel objects left after close")
        if problems:
            failures.append(f"seed {seed} crash at {injector.fired}: {problems[:3]}")
    assert not failures, "\n".join(failures[:10])
    # The crash points really spread over every layer, and recovery had work to do.
    for layer in ("kernel.add_veth", "store.put", "store.delete", "driver.join", "ipam.request_address"):
        assert seen[layer] > 0, (layer, seen)
    assert seen["recovery repaired something"] > RUNS // 5, seen
