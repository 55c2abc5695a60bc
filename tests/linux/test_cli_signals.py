"""Signals against real-kernel runs (issue 16): ``netsim run scenarios/
--kernel linux`` stopped by SIGINT (to the whole process group, as Ctrl-C
does, so pyroute2's forked helpers get it too) or SIGTERM (to the process,
as ``timeout`` and CI runners do) at 20 random moments. Every run must stop
(exit 130 / 143, not carry on with the next scenario) and leave no namespace
of its run; the session guard in tests/conftest.py checks that the root
namespace did not change."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from netsim.kernel.linux.clean import clean
from netsim.naming import run_prefix
from netsim.pytest_plugin import session_run_prefix, skip_unless_linux
from netsim.safety import namespaces_with_prefix

pytestmark = pytest.mark.linux

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
RUNS = 20
#: runs at once: each mostly waits for probes, and 20 in a row would take minutes
PARALLEL = 4
#: the earliest and latest moment of the signal after the start (imports take ~1 s)
WINDOW_S = (0.3, 8.0)


def _start(run_id: str) -> subprocess.Popen[str]:
    env = {**os.environ, "NETSIM_RUN_ID": run_id}
    return subprocess.Popen(
        [sys.executable, "-m", "netsim.cli", "run", str(SCENARIOS), "--kernel", "linux", "-q", "--timeout", "0.5"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,  # its own process group: a Ctrl-C-like SIGINT reaches only it and its children
    )


def test_random_sigint_and_sigterm_leave_nothing(pytestconfig: pytest.Config) -> None:
    skip_unless_linux()
    rng = random.Random(16)
    plan = [
        (
            f"{session_run_prefix(pytestconfig)}s{i:02x}",
            rng.choice([signal.SIGINT, signal.SIGTERM]),
            rng.uniform(*WINDOW_S),
        )
        for i in range(RUNS)
    ]
    problems: list[str] = []
    outcomes: list[int] = []
    for batch in range(0, RUNS, PARALLEL):
        running = [(run_id, sig, delay, _start(run_id)) for run_id, sig, delay in plan[batch : batch + PARALLEL]]
        started = time.monotonic()
        for _, sig, delay, process in sorted(running, key=lambda r: r[2]):
            time.sleep(max(0.0, started + delay - time.monotonic()))
            if process.poll() is not None:
                continue  # finished before its moment: nothing to interrupt (checked below)
            if sig == signal.SIGINT:
                os.killpg(process.pid, signal.SIGINT)
            else:
                process.send_signal(signal.SIGTERM)
        for run_id, sig, delay, process in running:
            try:
                _, err = process.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                _, err = process.communicate()
                problems.append(f"{run_id}: {sig.name} at {delay:.2f} s did not stop it within 120 s")
            lines = err.strip().splitlines()
            # 128 + n: netsim stopped it and tore down; -n: the signal came during Python's
            # imports, before netsim's handlers (nothing was built yet); 0 / 1: it finished first
            handled = process.returncode == 128 + sig and lines[-1:] == [f"netsim run: interrupted by {sig.name}"]
            if not handled and process.returncode not in (-sig, 0, 1):
                # the head too: it names the hook that printed a traceback
                shown = err if len(err) <= 2000 else f"{err[:600]} [...] {err[-1400:]}"
                problems.append(f"{run_id}: {sig.name} at {delay:.2f} s: exit {process.returncode}: {shown!r}")
            outcomes.append(process.returncode)
            left = namespaces_with_prefix(run_prefix(run_id))
            if left:
                problems.append(f"{run_id}: {sig.name} at {delay:.2f} s left {left}")
                clean(prefix=run_prefix(run_id))  # the run is over: its leftovers must not fail later tests
    assert not problems, "\n".join(problems)
    assert sum(code in (130, 143) for code in outcomes) >= RUNS // 2, outcomes  # most land mid-run
