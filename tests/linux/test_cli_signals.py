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
from dataclasses import dataclass
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
#: how long a signalled run may take to tear down and exit
STOP_WITHIN_S = 120


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


@dataclass
class _Run:
    run_id: str
    sig: signal.Signals
    delay: float
    process: subprocess.Popen[str]
    started: float
    signalled: float | None = None

    def __str__(self) -> str:
        return f"{self.run_id}: {self.sig.name} at {self.delay:.2f} s"


def _step(run: _Run, problems: list[str]) -> bool:
    """Signal ``run`` once its moment has come; True once it has ended."""
    if run.process.poll() is not None:
        return True  # ended: after its signal, or before its moment (nothing to interrupt: checked below)
    now = time.monotonic()
    if run.signalled is None:
        if now >= run.started + run.delay:
            if run.sig == signal.SIGINT:
                os.killpg(run.process.pid, signal.SIGINT)
            else:
                run.process.send_signal(signal.SIGTERM)
            run.signalled = now
        return False
    if now - run.signalled > STOP_WITHIN_S:
        os.killpg(run.process.pid, signal.SIGKILL)
        run.process.wait()
        problems.append(f"{run} did not stop it within {STOP_WITHIN_S} s")
        return True
    return False


def _check(run: _Run, problems: list[str], outcomes: list[int]) -> None:
    """Record an ended run's exit, last message and leftovers."""
    _, err = run.process.communicate()
    code = run.process.returncode
    lines = err.strip().splitlines()
    # 128 + n: netsim stopped it and tore down; -n: the signal came during Python's
    # imports, before netsim's handlers (nothing was built yet); 0 / 1: it finished first
    handled = code == 128 + run.sig and lines[-1:] == [f"netsim run: interrupted by {run.sig.name}"]
    if not handled and code not in (-run.sig, 0, 1):
        # the head too: it names the hook that printed a traceback
        shown = err if len(err) <= 2000 else f"{err[:600]} [...] {err[-1400:]}"
        problems.append(f"{run}: exit {code}: {shown!r}")
    outcomes.append(code)
    left = namespaces_with_prefix(run_prefix(run.run_id))
    if left:
        problems.append(f"{run} left {left}")
        clean(prefix=run_prefix(run.run_id))  # the run is over: its leftovers must not fail later tests


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
    # PARALLEL runs at a time, each signalled at its own moment; an ended run's
    # place goes to the next one at once (batches of four waited for their
    # latest moment, ~8 s, every time).
    running: list[_Run] = []
    while plan or running:
        while plan and len(running) < PARALLEL:
            run_id, sig, delay = plan.pop(0)
            running.append(_Run(run_id, sig, delay, _start(run_id), time.monotonic()))
        for run in [run for run in running if _step(run, problems)]:
            running.remove(run)
            _check(run, problems, outcomes)
        time.sleep(0.005)
    assert not problems, "\n".join(problems)
    assert sum(code in (130, 143) for code in outcomes) >= RUNS // 2, outcomes  # most land mid-run
