"""kill -9 with an overlay network, real kernel: the overlay's network sandbox
(``<host>-ov-<nid>``, holding br0 and vxlan0) and the docker_gwbridge
endpoint survive the process; a new process adopts the namespaces, recovers
clean, keeps traffic flowing, and removes everything at close."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from netsim.controller import Controller, ControllerConfig
from netsim.controller.crashtest import check_converged
from netsim.kernel.base import Kernel
from netsim.safety import namespaces_with_prefix

pytestmark = pytest.mark.linux

WORKER = textwrap.dedent(
    """
    import sys, time
    from netsim.controller import Controller, ControllerConfig
    from netsim.kernel.linux import LinuxKernel

    run_id, url = sys.argv[1], sys.argv[2]
    kernel = LinuxKernel(run_id)
    ctrl = Controller(kernel, ControllerConfig(local_store=url, entry_points=False, experimental=True))
    ctrl.create_network("ov", "overlay")
    ctrl.connect("a", "ov")
    ctrl.connect("b", "ov")
    print("ready", flush=True)
    time.sleep(600)
    """
)


def test_an_overlay_host_killed_and_restarted_recovers_clean(
    tmp_path: Path, netsim_kernel_factory: Callable[[str], Kernel]
) -> None:
    kernel = netsim_kernel_factory("linux")  # only for its run id; the worker shares it
    url = f"sqlite:///{tmp_path}/h1.db"
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, kernel.run_id, url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert worker.stdout is not None
        line = worker.stdout.readline()
        assert line.strip() == "ready", (line, worker.stderr.read() if worker.stderr else "")
    finally:
        os.killpg(worker.pid, signal.SIGKILL)  # only the worker's own session
        worker.wait(timeout=10)
    ctrl = Controller(kernel, ControllerConfig(local_store=url, entry_points=False, experimental=True))
    try:
        assert ctrl.recovery is not None and ctrl.recovery.clean, ctrl.recovery
        assert any("-ov-" in ns for ns in kernel.namespaces()), "the overlay's sandbox was adopted"
        a_ns = ctrl.sandbox("a").namespace
        b = ctrl.records.endpoints(ctrl.network("ov").id)
        b_ip = next(e["address"] for e in b if e["name"] == "b").split("/")[0]
        assert kernel.probe(a_ns, b_ip).reachable
        assert kernel.probe(a_ns, ctrl.host.outside_address).reachable  # through docker_gwbridge
        assert check_converged(ctrl) == []
    finally:
        ctrl.close()
    assert namespaces_with_prefix(kernel.prefix) == []
