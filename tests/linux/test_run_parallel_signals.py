"""``netsim run -j 4 --kernel linux``: four worker processes building real
namespaces at once. SIGINT to the whole process group (Ctrl-C) or SIGTERM to
the parent (``timeout``, CI runners) stops every worker and leaves no
namespace of the run; so does SIGKILL of the parent (the workers get SIGTERM
as their parent dies, and tear down). The session guard in tests/conftest.py
checks that the root namespace did not change."""

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
from netsim.pytest_plugin import session_run_prefix, skip_unless_linux
from netsim.safety import namespaces_with_prefix

pytestmark = pytest.mark.linux

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
JOBS = 4


def _start(run_id: str, scenarios: list[str] | None = None, timeout: float = 0.5) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "netsim.cli", "run", *(scenarios or [str(SCENARIOS)]), "--kernel", "linux", "-q"]
    return subprocess.Popen(
        [*argv, "-j", str(JOBS), "--timeout", str(timeout)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NETSIM_RUN_ID": run_id},
        start_new_session=True,  # its own process group: a Ctrl-C-like SIGINT reaches only it
    )


def _wait_for_namespaces(prefix: str, seconds: float = 60.0) -> None:
    """Block until the run has built something (so the signal lands mid-run)."""
    deadline = time.monotonic() + seconds
    while not namespaces_with_prefix(prefix):
        assert time.monotonic() < deadline, f"no namespace {prefix}* appeared within {seconds} s"
        time.sleep(0.05)


def _left_after(prefix: str, seconds: float) -> list[str]:
    deadline = time.monotonic() + seconds
    while (left := namespaces_with_prefix(prefix)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_every_worker_and_leaves_nothing(pytestconfig: pytest.Config, sig: signal.Signals) -> None:
    skip_unless_linux()
    rng = random.Random(f"{sig.name}-jobs")
    problems = []
    for attempt in range(2):
        run_id = f"{session_run_prefix(pytestconfig)}q{sig.value:x}{attempt}"  # workers: <run_id>j0..j3
        prefix = f"netsim-{run_id}"
        process = _start(run_id)
        try:
            _wait_for_namespaces(prefix)
            time.sleep(rng.uniform(0.0, 1.5))  # somewhere in the first scenarios' builds and probes
            if sig == signal.SIGINT:
                os.killpg(process.pid, signal.SIGINT)
            else:
                process.send_signal(signal.SIGTERM)
            _, err = process.communicate(timeout=120)
        except BaseException:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise
        finally:
            left = _left_after(prefix, 0)
            if left:
                problems.append(f"attempt {attempt}: left {left}")
                clean(prefix=prefix)  # the run is over: its leftovers must not fail later tests
        last = err.strip().splitlines()[-1:]
        if process.returncode != 128 + sig.value or last != [f"netsim run: interrupted by {sig.name}"]:
            problems.append(f"attempt {attempt}: exit {process.returncode}: {err[-800:]!r}")
    assert not problems, "\n".join(problems)


#: each has expectations of "unreachable": with --timeout 30 a worker waits 30 s on each such probe
BLOCKED = ["isolated-bridges", "icc-disabled", "internal-network", "icc-disabled-published"]


def test_workers_tear_down_when_their_parent_is_killed(pytestconfig: pytest.Config) -> None:
    skip_unless_linux()
    run_id = f"{session_run_prefix(pytestconfig)}k"
    prefix = f"netsim-{run_id}"
    process = _start(run_id, [str(SCENARIOS / f"{name}.yaml") for name in BLOCKED], timeout=30)
    try:
        _wait_for_namespaces(prefix)
        time.sleep(2)  # built, waiting on probes that will not be answered
        process.kill()  # SIGKILL: the parent runs nothing; the workers must stop by themselves
        process.wait(timeout=30)  # (not communicate: the workers hold its stderr until they exit)
        # sooner than one 30 s probe: the workers were told (SIGTERM as their parent died)
        left = _left_after(prefix, 25)
    finally:
        if process.stderr is not None:
            process.stderr.close()
        if namespaces_with_prefix(prefix):
            time.sleep(1)  # give the workers a last moment, then take it down ourselves
            clean(prefix=prefix)
    assert left == [], f"the workers left {left} after their parent was killed"
