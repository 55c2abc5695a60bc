"""Run scenarios in parallel worker processes (``netsim run -j N``).

:func:`run_scenarios` runs each scenario with
:func:`netsim.scenario.runner.run_scenario` and returns the results in the
order of the scenarios, whatever order they finished in, so the text table,
``--json`` and ``--junit`` are the same as a sequential run's.

With ``jobs > 1`` the scenarios go to up to ``jobs`` worker processes
(forked, so a test's :class:`~netsim.scenario.runner.Backend` doubles come
along), one scenario at a time each, the next to whichever is free.

* Real-kernel runs stay apart: each kernel has its own run id, so its own
  namespace prefix. Under ``NETSIM_RUN_ID=R`` (one prefix for a whole run)
  worker ``k`` uses ``R`` + ``j<k>``: ``netsim clean`` and leak checks by
  the prefix ``netsim-R`` still find everything of the run.
* Signals: workers sit in their own process group, so a terminal's Ctrl-C
  reaches the parent only; the parent forwards each SIGINT/SIGTERM it gets
  to every worker, which tears its scenario down as a sequential run does,
  and waits for them all before it raises :class:`~netsim.interrupts.Interrupted`.
  A worker whose parent dies gets SIGTERM (Linux's parent-death signal).
* A worker that dies (killed, crashed) fails its scenario with the reason;
  the others carry on.
* Progress (stderr) is printed per scenario as it finishes, its phases
  together, never interleaved with another scenario's.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import importlib
import multiprocessing
import os
import signal
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

from netsim.errors import InvalidParameterError
from netsim.interrupts import Interrupted, interrupting_handler, raise_if_interrupted, signals_held
from netsim.scenario.model import Scenario
from netsim.scenario.results import PhaseResult, ScenarioResult
from netsim.scenario.runner import Backend, Progress, run_scenario

_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_PR_SET_PDEATHSIG = 1
#: NETSIM_RUN_ID's longest accepted form (netsim.naming)
_MAX_RUN_ID = 12
#: how often the parent looks at signals that arrived while it waits
_POLL_S = 0.2


def run_scenarios(
    scenarios: Sequence[Scenario],
    kernel_kind: str = "fake",
    *,
    jobs: int = 1,
    backend: Backend | None = None,
    progress: Progress | None = None,
    timeout: float = 1.0,
    pcap_dir: str | None = None,
) -> list[ScenarioResult]:
    """Every scenario's result, in the order given. ``jobs`` processes at
    most (0: one per CPU); 1 runs them here, one after the other."""
    if jobs < 0:
        raise InvalidParameterError(f"-j/--jobs must be 0 (one per CPU) or more, not {jobs}")
    if jobs == 0:
        jobs = os.cpu_count() or 1
    workers = min(jobs, len(scenarios))
    if workers <= 1:
        results = []
        for scenario in scenarios:
            raise_if_interrupted()  # a signal Python swallowed in a weakref callback still stops the run
            results.append(
                run_scenario(
                    scenario, kernel_kind, backend=backend, progress=progress, timeout=timeout, pcap_dir=pcap_dir
                )
            )
        return results
    _import_before_forking(kernel_kind)
    pool = _Pool(list(scenarios), kernel_kind, backend, timeout, pcap_dir, worker_run_ids(workers))
    return pool.run(progress)


def worker_run_ids(workers: int, forced: str | None = None) -> list[str | None]:
    """The run id each worker's kernels take: ``forced`` (``NETSIM_RUN_ID``
    by default) + ``j<k>``, or None without one (a fresh random id per kernel).

    >>> worker_run_ids(3, "ci42")
    ['ci42j0', 'ci42j1', 'ci42j2']
    >>> worker_run_ids(11, "abcdefghij")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    netsim.errors.InvalidParameterError: NETSIM_RUN_ID='abcdefghij' leaves no room ... use at most 9 characters
    """
    forced = forced if forced is not None else os.environ.get("NETSIM_RUN_ID")
    if not forced:
        return [None] * workers
    longest = f"j{workers - 1}"
    if len(forced) + len(longest) > _MAX_RUN_ID:
        raise InvalidParameterError(
            f"NETSIM_RUN_ID={forced!r} leaves no room for -j {workers}'s worker suffix ({longest}): "
            f"use at most {_MAX_RUN_ID - len(longest)} characters"
        )
    return [f"{forced}j{k}" for k in range(workers)]


def _import_before_forking(kernel_kind: str) -> None:
    """Import what every run needs once, here: forked workers share it
    instead of each spending a second on scapy and the controller."""
    kernel_module = "netsim.kernel.linux" if kernel_kind == "linux" else "netsim.kernel.fake"
    for module in ("netsim.controller", "netsim.probe", "netsim.cluster", kernel_module):
        importlib.import_module(module)


# --- inside a worker ---------------------------------------------------------------


@dataclass
class _Recorder:
    """A worker's Progress: phases kept to be replayed by the parent."""

    phases: list[tuple[str, list[PhaseResult]]] = field(default_factory=list)

    def scenario_started(self, scenario: Scenario, kernel: str) -> None:
        self.phases.clear()

    def phase_done(self, scenario: Scenario, phase: str, results: list[PhaseResult]) -> None:
        self.phases.append((phase, results))

    def scenario_done(self, result: ScenarioResult) -> None:
        pass


def _die_with_parent(parent: int) -> None:
    """SIGTERM this process when its parent dies, so a killed ``netsim run``
    never leaves a worker building namespaces nobody waits for."""
    libc_name = ctypes.util.find_library("c")
    if libc_name is not None:
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(libc_name, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    if os.getppid() != parent:  # it died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _worker_main(
    conn: Connection,
    parent: int,
    scenarios: list[Scenario],
    kernel_kind: str,
    backend: Backend | None,
    timeout: float,
    pcap_dir: str | None,
    run_id: str | None,
) -> None:
    # this process's own handler: the inherited one exits at once in a fork (netsim.interrupts)
    handler = interrupting_handler()
    for sig in _SIGNALS:
        signal.signal(sig, handler)
    os.setpgid(0, 0)  # a terminal's Ctrl-C reaches the parent only, which forwards it once
    _die_with_parent(parent)
    if run_id is not None:
        os.environ["NETSIM_RUN_ID"] = run_id
    try:
        while (index := conn.recv()) is not None:
            raise_if_interrupted()
            recorder = _Recorder()
            result = run_scenario(
                scenarios[index], kernel_kind, backend=backend, progress=recorder, timeout=timeout, pcap_dir=pcap_dir
            )
            conn.send((index, recorder.phases, result))
    except Interrupted as exc:
        raise SystemExit(128 + exc.signum) from None
    except KeyboardInterrupt:
        raise SystemExit(128 + signal.SIGINT) from None
    except EOFError:  # the parent is gone
        raise SystemExit(1) from None


# --- in the parent -------------------------------------------------------------------


@dataclass
class _Worker:
    number: int
    process: BaseProcess
    conn: Connection
    #: the scenario it runs now
    index: int | None = None


class _Pool:
    def __init__(
        self,
        scenarios: list[Scenario],
        kernel_kind: str,
        backend: Backend | None,
        timeout: float,
        pcap_dir: str | None,
        run_ids: list[str | None],
    ) -> None:
        self.scenarios = scenarios
        self.kernel_kind = kernel_kind
        self.backend = backend
        self.timeout = timeout
        self.pcap_dir = pcap_dir
        self.run_ids = run_ids
        self.pending = deque(range(len(scenarios)))
        self.results: dict[int, ScenarioResult] = {}
        self.workers: list[_Worker] = []
        #: signals that arrived while the pool ran, in order; the first is re-raised at the end
        self.arrived: list[int] = []
        self.forwarded = 0

    def run(self, progress: Progress | None) -> list[ScenarioResult]:
        # signals are only recorded: the wait loop forwards them; raising mid-bookkeeping could lose a worker
        with signals_held(self.arrived):
            try:
                for number, run_id in enumerate(self.run_ids):
                    self.workers.append(self._start(number, run_id))
                    self._feed(self.workers[-1])
                while self.workers:
                    self._forward_signals()
                    self._collect(progress)
            finally:
                self._stop_all()
        if self.arrived:
            raise Interrupted(self.arrived[0])
        return [self.results[i] for i in range(len(self.scenarios))]

    def _start(self, number: int, run_id: str | None) -> _Worker:
        context = multiprocessing.get_context("fork")
        ours, theirs = context.Pipe()
        args = (theirs, os.getpid(), self.scenarios, self.kernel_kind, self.backend, self.timeout, self.pcap_dir)
        process = context.Process(
            target=_worker_main, args=(*args, run_id), name=f"netsim-run-worker-{number}", daemon=False
        )
        process.start()
        theirs.close()
        return _Worker(number, process, ours)

    def _feed(self, worker: _Worker) -> None:
        """The next scenario to a free worker, or None (stop) when none is left."""
        worker.index = self.pending.popleft() if self.pending and not self.arrived else None
        with contextlib.suppress(OSError):  # it died: its sentinel says so next
            worker.conn.send(worker.index)

    def _forward_signals(self) -> None:
        while self.forwarded < len(self.arrived):
            signum = self.arrived[self.forwarded]
            self.forwarded += 1
            self.pending.clear()
            for worker in self.workers:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.process.pid or 0, signum)

    def _collect(self, progress: Progress | None) -> None:
        by_object: dict[Any, _Worker] = {}
        for worker in self.workers:
            by_object[worker.conn] = by_object[worker.process.sentinel] = worker
        for ready in wait(list(by_object), timeout=_POLL_S):
            worker = by_object[ready]
            if worker not in self.workers:
                continue
            if ready is worker.conn:
                try:
                    index, phases, result = worker.conn.recv()
                except (EOFError, OSError):
                    self._finished(worker)
                    continue
                self.results[index] = result
                _replay(progress, self.scenarios[index], self.kernel_kind, phases, result)
                self._feed(worker)
            else:
                self._finished(worker)

    def _finished(self, worker: _Worker) -> None:
        with contextlib.suppress(EOFError, OSError):  # a result sent just before it went
            while worker.conn.poll():
                index, _, result = worker.conn.recv()
                self.results[index] = result
        worker.process.join()
        worker.conn.close()
        self.workers.remove(worker)
        if worker.index is not None and worker.index not in self.results and not self.arrived:
            scenario = self.scenarios[worker.index]
            failed = ScenarioResult(scenario.name, self.kernel_kind, scenario.file)
            failed.error = f"internal error: worker process {worker.number} exited with {worker.process.exitcode}"
            self.results[worker.index] = failed
        if not self.workers and self.pending and not self.arrived:
            # every worker died: the rest cannot run (each has its reason above)
            for index in self.pending:
                scenario = self.scenarios[index]
                self.results[index] = ScenarioResult(scenario.name, self.kernel_kind, scenario.file)
                self.results[index].error = "internal error: no worker process left to run it"
            self.pending.clear()

    def _stop_all(self) -> None:
        """Only reached with live workers when the parent itself failed: stop
        them as a signal would (they tear down), and wait."""
        for worker in self.workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.process.pid or 0, signal.SIGTERM)
        for worker in self.workers:
            worker.process.join()
            worker.conn.close()
        self.workers.clear()


def _replay(
    progress: Progress | None,
    scenario: Scenario,
    kernel_kind: str,
    phases: list[tuple[str, list[PhaseResult]]],
    result: ScenarioResult,
) -> None:
    if progress is None:
        return
    progress.scenario_started(scenario, kernel_kind)
    for phase, done in phases:
        progress.phase_done(scenario, phase, done)
    progress.scenario_done(result)
