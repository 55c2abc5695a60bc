"""kill -9 across processes, real kernel: a process running container
lifecycles on a sqlite store is killed at a random moment; a new process
(this one) opens the same store and the same namespaces and converges."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from netsim.controller import Controller, ControllerConfig
from netsim.controller.crashtest import check_converged
from netsim.kernel.base import Kernel
from netsim.safety import namespaces_with_prefix

pytestmark = pytest.mark.linux

KILLS = 6

WORKER = textwrap.dedent(
    """
    import sys
    from netsim.controller import Controller, ControllerConfig
    from netsim.controller.crashtest import random_lifecycle
    from netsim.kernel.linux import LinuxKernel

    run_id, url, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
    kernel = LinuxKernel(run_id)
    ctrl = Controller(kernel, ControllerConfig(local_store=url, entry_points=False))
    print("ready", flush=True)
    for round in range(1000):
        random_lifecycle(ctrl, seed * 1000 + round, 6)
    """
)


def _kill_at_random(run_id: str, url: str, seed: int, delay: float) -> None:
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, run_id, url, str(seed)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert worker.stdout is not None
        line = worker.stdout.readline()
        assert line.strip() == "ready", (line, worker.stderr.read() if worker.stderr else "")
        time.sleep(delay)
        assert worker.poll() is None, worker.stderr.read() if worker.stderr else ""
    finally:
        os.killpg(worker.pid, signal.SIGKILL)  # only the worker's own session
        worker.wait(timeout=10)


def test_kill_nine_mid_lifecycle_then_restart_converges(
    tmp_path: Path, netsim_kernel_factory: Callable[[str], Kernel]
) -> None:
    kernel = netsim_kernel_factory("linux")  # only for its run id; the worker shares it
    url = f"sqlite:///{tmp_path}/h1.db"
    rng = random.Random(4)
    reports = []
    for kill in range(KILLS):
        _kill_at_random(kernel.run_id, url, kill, rng.uniform(0.05, 0.6))
        ctrl = Controller(kernel, ControllerConfig(local_store=url, entry_points=False))
        try:
            if ctrl.recovery is not None:  # None: killed before it wrote anything
                reports.append(ctrl.recovery)
            assert check_converged(ctrl) == []
        finally:
            ctrl.close()
        assert namespaces_with_prefix(kernel.prefix) == []
    # The kills landed mid-work: at least one recovery had something to repair.
    assert any(not report.clean for report in reports), reports
