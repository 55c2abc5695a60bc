"""Restart: a controller that dies and is opened again on its store rebuilds
the driver by calling it again with every recorded network, endpoint and join
(netsim.controller.recovery). A driver passes when those calls, on a kernel
that changes nothing, lead it to exactly the kernel objects it made the
first time: the same link names from the same ids, no randomness, no state
it cannot rebuild from its inputs. Then nothing needs repairing, the
containers keep their interfaces, and the driver keeps working."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from netsim.conformance.harness import assert_unchanged, build
from netsim.conformance.target import DriverTarget
from netsim.kernel.base import Kernel
from netsim.store import MemoryStore


@pytest.mark.kernel_effects
def test_restart_rebuilds_the_driver_exactly(
    target: DriverTarget, netsim_kernel_factory: Callable[[str], Kernel]
) -> None:
    if target.kind in ("process", "remote", "plugin"):
        pytest.skip("a plugin keeps its own state across a daemon restart: nothing is replayed to it")
    kernel = netsim_kernel_factory(target.kernel)
    baseline = kernel.snapshot()
    store = MemoryStore()
    first = build(target, kernel, host="rs", store=store)
    network = first.create_network("conf-restart")
    first.ctrl.connect("conf-a", network.id)
    first.ctrl.connect("conf-b", network.id)
    interfaces = {c: _links(kernel, first.ctrl.sandbox(c).namespace) for c in ("conf-a", "conf-b")}
    # The first controller dies here: no close, no cleanup, its objects stay in the kernel.
    second = build(target, kernel, host="rs", store=store)
    try:
        report = second.ctrl.recovery
        assert report is not None, "the restarted controller found nothing to recover"
        assert report.clean, (
            "replaying the driver's calls did not lead to the kernel objects it made the first time "
            f"(removed: {report.removed}; swept: {report.swept}; released: {report.released})"
        )
        for container, links in interfaces.items():
            assert _links(kernel, second.ctrl.sandbox(container).namespace) == links, f"{container} lost interfaces"
        second.ctrl.connect("conf-c", network.id)
        second.ctrl.disconnect("conf-a", network.id)
    finally:
        second.close()
        for cleanup in reversed(first.cleanups):
            cleanup()
    assert_unchanged(kernel, baseline, "the restarted controller's close left the kernel changed")


def _links(kernel: Kernel, namespace: str) -> list[str]:
    return sorted(link.name for link in kernel.links(namespace))
