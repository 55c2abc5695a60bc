"""Shared fixtures: ``kernel`` runs a test on both kernels; a session guard
fails the run if the root namespace changed or a netsim namespace is left.

The suite runs in parallel by default (pytest-xdist, see
:func:`pytest_cmdline_main`); ``-n 0`` runs it in one process."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from netsim.kernel.base import Kernel
from netsim.pytest_plugin import session_run_prefix
from netsim.safety import diff_states, linux_unavailable_reason, namespaces_with_prefix, root_namespace_state

# netsim.store.testing: etcd_server, zk_server, store_url, store (every backend).
pytest_plugins = ["pytester", "netsim.store.testing"]

#: Hypothesis profiles. "repeatable" (the default): every run draws the same
#: examples for the same code, so a red suite means a change broke something,
#: never that this run's dice found an old divergence — the README's command and
#: CI agree. "explore" (NETSIM_HYPOTHESIS=explore, or ``nox -s explore``): fresh
#: random examples each run, the way new fake/real divergences are found; a
#: failure prints the blob that replays it.
settings.register_profile("repeatable", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False, print_blob=True)
settings.load_profile(os.environ.get("NETSIM_HYPOTHESIS", "repeatable"))

KERNEL_PARAMS = [pytest.param("fake", id="fake"), pytest.param("linux", id="linux", marks=pytest.mark.linux)]


#: workers per CPU under ``-n auto``: real-kernel tests mostly wait on Linux
#: (namespace teardown, probe timeouts), so more workers than cores overlap those waits
WORKERS_PER_CPU = 2


@pytest.hookimpl(tryfirst=True)  # registered after xdist's own tryfirst hook, so called before it
def pytest_cmdline_main(config: pytest.Config) -> None:
    """``python -m pytest`` (this suite, or a directory of it: the hook lives in
    its conftest, so ``pytest benchmarks/`` is never distributed, which would
    disable pytest-benchmark) runs under pytest-xdist with ``-n auto --dist
    worksteal``, unless the command line says ``-n``/``--dist`` or ``--pdb``.
    xdist's own hook runs after this one and turns these into workers
    (netsim's plugin keeps pytest-benchmark from warning in each of them)."""
    if not config.pluginmanager.hasplugin("xdist") or hasattr(config, "workerinput"):
        return
    if config.option.numprocesses is None and not config.getoption("usepdb") and _only_directories(config):
        config.option.numprocesses = "auto"
    if config.option.numprocesses and config.option.dist == "no":
        # idle workers take queued tests from busy ones: a few tests take a minute or
        # more under load, and a fixed share would leave the others idle at the end.
        # (No test here needs an xdist_group: with one, say --dist loadgroup.)
        config.option.dist = "worksteal"


def _only_directories(config: pytest.Config) -> bool:
    """The whole suite or directories of it; a file or a test id runs in one
    process (starting workers would cost more than it saves)."""
    return all(Path(config.invocation_params.dir, arg).is_dir() for arg in config.args)


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """``WORKERS_PER_CPU`` per usable CPU; PYTEST_XDIST_AUTO_NUM_WORKERS=N
    (xdist's own setting, read by its hook) or ``-n N`` choose another count."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    return WORKERS_PER_CPU * len(os.sched_getaffinity(0))


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
