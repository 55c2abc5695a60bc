"""Shared fixtures: ``kernel`` runs a test on both kernels; a session guard
fails the run if the root namespace changed or a netsim namespace is left."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from netsim.kernel.base import Kernel
from netsim.pytest_plugin import session_run_prefix
from netsim.safety import diff_states, linux_unavailable_reason, namespaces_with_prefix, root_namespace_state

# netsim.store.testing: etcd_server, zk_server, store_url, store (every backend).
pytest_plugins = ["pytester", "netsim.store.testing"]

KERNEL_PARAMS = [pytest.param("fake", id="fake"), pytest.param("linux", id="linux", marks=pytest.mark.linux)]


@pytest.fixture(params=KERNEL_PARAMS)
def kernel_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def kernel(kernel_kind: str, netsim_kernel_factory: Callable[[str], Kernel]) -> Kernel:
    """A fresh kernel of each kind, closed after the test."""
    return netsim_kernel_factory(kernel_kind)


@pytest.fixture(scope="session", autouse=True)
def _root_namespace_guard(request: pytest.FixtureRequest) -> Iterator[None]:
    if linux_unavailable_reason() is not None:
        yield
        return
    before = root_namespace_state()
    yield
    problems = diff_states(before, root_namespace_state())
    left = namespaces_with_prefix(f"netsim-{session_run_prefix(request.config)}")
    if left:
        problems.append(f"netsim namespaces left after the run: {left}")
    if problems:
        pytest.fail("real-kernel safety: " + "; ".join(problems), pytrace=False)
