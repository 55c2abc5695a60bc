"""Rounds of BASE and HEAD measured side by side, so both see the same machine.

A round is one pytest-benchmark run of the selection on each side, the two
runs in lockstep (:mod:`.lockstep`): benchmark by benchmark, BASE's and
HEAD's measurements of it are taken at the same moment (CPU timer) or back
to back, the side going first alternating (wall timer). A load that comes
and goes then falls on both sides alike. Samples are kept per round, because
the statistics pair each round's BASE figure with the HEAD figure measured
beside it.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netsim.benchcmp.gitwork import Tree
from netsim.benchcmp.lockstep import Worker, accept, drive, stop
from netsim.benchcmp.selection import PLUGIN_MODULE, inherited_environment, output_tail, python_path, write_plugin
from netsim.errors import UnavailableError

#: What a sample measures. ``cpu``: the process's CPU time (all its threads),
#: blind to time spent descheduled while others use the machine, the largest
#: noise on a shared one; blind as well to sleeping and to other processes'
#: work. ``wall``: elapsed time, for benchmarks that wait on the kernel or on
#: another process.
TIMERS = {"cpu": "time.process_time", "wall": "time.perf_counter"}
#: pytest's exit statuses that still leave usable results: all passed, some failed.
_USABLE_EXIT = {0, 1}


@dataclass(frozen=True)
class Side:
    tree: Tree
    python: Path


@dataclass
class RoundResult:
    """One pytest run of one side: each benchmark's timing samples (seconds)."""

    samples: dict[str, list[float]]
    failed: set[str]
    skipped: set[str]
    seconds: float
    info: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class Measurements:
    base: list[RoundResult] = field(default_factory=list)
    head: list[RoundResult] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return sum(r.seconds for r in self.base + self.head)


def start_worker(
    side: Side, nodeids: list[str], workdir: Path, name: str, sock: Path, timer: str = "cpu", max_time: float = 0.2
) -> Worker:
    """Start ``side``'s pytest on ``nodeids``; it connects to ``sock`` and waits for its turns."""
    out, outcomes, log = (workdir / f"{name}{ext}" for ext in (".json", ".outcomes", ".log"))
    for stale in (out, outcomes):
        stale.unlink(missing_ok=True)
    plugin_dir = write_plugin(workdir)
    env = {
        **inherited_environment(),
        "PYTHONPATH": python_path(plugin_dir, side.tree),
        "NETSIM_BENCHCMP_OUTCOMES": str(outcomes),
        "NETSIM_BENCHCMP_SOCKET": str(sock),
        # Same hash seed both sides: dict and set layouts, hence timings, stop differing by chance.
        "PYTHONHASHSEED": "0",
    }
    command = [
        str(side.python),
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        PLUGIN_MODULE,
        "--benchmark-only",
        f"--benchmark-json={out}",
        "--benchmark-columns=median",
        f"--benchmark-timer={TIMERS[timer]}",
        # Only for benchmarks that leave their rounds to pytest-benchmark (default 1 s each):
        # rounds are what the comparison repeats; time inside one buys little.
        f"--benchmark-max-time={max_time}",
        *nodeids,
    ]
    with open(log, "wb") as log_file:
        process = subprocess.Popen(command, cwd=side.tree.path, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    return Worker(label=side.tree.label, process=process, log=log)


def run_round(
    base: Side, head: Side, nodeids: list[str], workdir: Path, index: int, timer: str = "cpu", max_time: float = 0.2
) -> dict[str, RoundResult]:
    """One round: both sides' pytest runs in lockstep, one benchmark at a time.

    With the CPU timer both sides measure each benchmark at the same moment
    (on a 2-core machine whose speed changes within seconds, the only way
    to see the same machine); CPU time does not count the time each spends
    waiting for the other. With the wall timer they take turns instead."""
    workers: dict[str, Worker] = {}
    started = time.monotonic()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        # A short path: unix socket paths are limited to ~100 bytes.
        sock_dir = Path(tempfile.mkdtemp(prefix="nsbc", dir="/tmp"))
        sock = sock_dir / "s"
        try:
            server.bind(str(sock))
            server.listen(2)
            for side in (base, head):
                label = side.tree.label
                name = f"round{index + 1:02d}-{label}"
                workers[label] = start_worker(side, nodeids, workdir, name, sock, timer, max_time)
                accept(server, workers[label])
            drive(workers, index, together=timer == "cpu")
        finally:
            stop(workers)
            shutil.rmtree(sock_dir, ignore_errors=True)
    seconds = time.monotonic() - started
    results = {}
    for label, worker in workers.items():
        name = f"round{index + 1:02d}-{label}"
        out = workdir / f"{name}.json"
        if worker.process.returncode not in _USABLE_EXIT or not out.exists():
            tail = output_tail(worker.log.read_text(errors="replace"))
            raise UnavailableError(
                f"benchmarks of {label} did not run (pytest exit {worker.process.returncode}):\n  {tail}"
            )
        results[label] = parse_round(out, workdir / f"{name}.outcomes", seconds / 2)
    return results


def parse_round(out: Path, outcomes: Path, seconds: float) -> RoundResult:
    failed: set[str] = set()
    skipped: set[str] = set()
    if outcomes.exists():
        for line in outcomes.read_text().splitlines():
            row = json.loads(line)
            if row["outcome"] == "failed":
                failed.add(row["nodeid"])
            elif row["outcome"] == "skipped":
                skipped.add(row["nodeid"])
    samples: dict[str, list[float]] = {}
    info: dict[str, dict[str, Any]] = {}
    for bench in json.loads(out.read_text())["benchmarks"]:
        nodeid = bench["fullname"]
        if nodeid in failed or nodeid in skipped:
            continue
        samples[nodeid] = [float(x) for x in bench["stats"]["data"]]
        info[nodeid] = {"group": bench.get("group"), "extra_info": bench.get("extra_info", {})}
    return RoundResult(samples=samples, failed=failed, skipped=skipped, seconds=seconds, info=info)


def interleave(
    base: Side,
    head: Side,
    nodeids: list[str],
    rounds: int,
    workdir: Path,
    progress: Callable[[str], None] | None = None,
    timer: str = "cpu",
    max_time: float = 0.2,
) -> Measurements:
    """``rounds`` rounds; in each, every benchmark runs on BASE and HEAD back to back."""
    say = progress or (lambda line: print(line, file=sys.stderr, flush=True))
    measured = Measurements()
    for index in range(rounds):
        results = run_round(base, head, nodeids, workdir, index, timer, max_time)
        measured.base.append(results["base"])
        measured.head.append(results["head"])
        failed = len(results["base"].failed) + len(results["head"].failed)
        say(f"round {index + 1}/{rounds}: {2 * results['base'].seconds:.0f} s, {failed} failed")
    return measured
