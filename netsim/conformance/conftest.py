"""Fixtures of the conformance suite (options come from netsim.pytest_plugin)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from netsim.conformance.harness import DriverUnderTest, build, kernel_changes
from netsim.conformance.target import DriverTarget
from netsim.kernel.base import Kernel
from netsim.pytest_plugin import conformance_target

#: Why a kernel-effect check cannot run for a plugin in its own process on the fake kernel.
OUT_OF_PROCESS_ON_FAKE = "needs --netsim-kernel=linux: the plugin runs in its own process"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "kernel_effects: the check looks at what the driver did to the kernel (skipped for a plugin "
        "in another process on the fake kernel, which it cannot reach)",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tag each check with its contract area (its module) for the summary and JUnit."""
    for item in items:
        module = getattr(getattr(item, "module", None), "__name__", "")
        if module.startswith("netsim.conformance.test_"):
            item.user_properties.append(("netsim_area", module.rsplit(".test_", 1)[1]))


@pytest.fixture(scope="session")
def target(request: pytest.FixtureRequest) -> DriverTarget:
    return conformance_target(request.config)


@pytest.fixture
def dut(
    request: pytest.FixtureRequest, target: DriverTarget, netsim_kernel_factory: Callable[[str], Kernel]
) -> Iterator[DriverUnderTest]:
    """The driver under test in a fresh controller; after the check, the
    controller is closed and the kernel must equal its state before."""
    if target.out_of_process and target.kernel == "fake" and request.node.get_closest_marker("kernel_effects"):
        pytest.skip(OUT_OF_PROCESS_ON_FAKE)
    kernel = netsim_kernel_factory(target.kernel)
    baseline = kernel.snapshot()
    under_test = build(target, kernel)
    try:
        yield under_test
    finally:
        under_test.close()
    left = kernel.snapshot()
    assert left == baseline, f"the kernel is not as it was before the check:{kernel_changes(baseline, left)}"
