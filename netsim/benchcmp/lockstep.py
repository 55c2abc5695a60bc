"""The coordinator's end of lockstep: two pytest runs, one benchmark at a time.

Both sides' pytest processes start together and collect the same node ids
in the same order. Before each test a worker says ``ready <nodeid>`` and
blocks; the coordinator then lets one side run the test, waits for its
``done``, lets the other run it, and goes on. Which side goes first
alternates from benchmark to benchmark (and round to round), so neither is
systematically the one that runs right after a module's setup, or first
into a load that has just started.

Why: on a machine shared with others (and on virtual CPUs that share a
physical core) the speed of the whole machine changes within seconds; two
measurements of one benchmark a whole suite apart (~30 s) then differ by up
to 2x. Seconds apart, they see the same machine.
"""

from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from netsim.errors import UnavailableError

_CONNECT_TIMEOUT_S = 300.0
_TEST_TIMEOUT_S = 1800.0


@dataclass
class Worker:
    """One side's pytest process and its end of the socket."""

    label: str
    process: subprocess.Popen[bytes]
    log: Path
    conn: socket.socket | None = None
    buffer: bytes = b""
    finished: bool = False  # the worker closed its socket: its session is over
    waiting: str | None = None  # the node id it said ``ready`` for
    ran: list[str] = field(default_factory=list)

    def read_line(self, deadline: float) -> str | None:
        """The next line from the worker, or None once it closed the socket."""
        assert self.conn is not None
        while b"\n" not in self.buffer:
            if time.monotonic() > deadline:
                raise UnavailableError(f"{self.label}: no word from its pytest run in {_TEST_TIMEOUT_S:.0f} s")
            try:
                chunk = self.conn.recv(4096)
            except TimeoutError:
                continue
            if not chunk:
                return None
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.decode()

    def next_ready(self) -> None:
        """Wait for ``ready <nodeid>`` (or the end of the session)."""
        line = self.read_line(time.monotonic() + _TEST_TIMEOUT_S)
        if line is None:
            self.finished, self.waiting = True, None
            return
        verb, _, nodeid = line.partition(" ")
        if verb != "ready":
            raise UnavailableError(f"{self.label}: expected 'ready', got {line!r}")
        self.waiting = nodeid

    def run_one(self) -> None:
        """Let the waiting test run and wait for its ``done``."""
        self.go()
        self.wait_done()

    def go(self) -> None:
        assert self.conn is not None and self.waiting is not None
        self.conn.sendall(b"go\n")

    def wait_done(self) -> None:
        line = self.read_line(time.monotonic() + _TEST_TIMEOUT_S)
        if line != f"done {self.waiting}":
            raise UnavailableError(f"{self.label}: {self.waiting} ended without 'done' ({line!r}); see {self.log}")
        self.ran.append(line.removeprefix("done "))
        self.waiting = None


def accept(server: socket.socket, worker: Worker) -> None:
    """Wait for ``worker`` to connect; fail early if its pytest dies first."""
    deadline = time.monotonic() + _CONNECT_TIMEOUT_S
    server.settimeout(0.5)
    while True:
        try:
            conn, _ = server.accept()
            conn.settimeout(1.0)
            worker.conn = conn
            return
        except TimeoutError:
            if worker.process.poll() is not None:
                raise UnavailableError(
                    f"{worker.label}: pytest exited ({worker.process.returncode}) before starting; see {worker.log}"
                ) from None
            if time.monotonic() > deadline:
                raise UnavailableError(f"{worker.label}: pytest did not start in {_CONNECT_TIMEOUT_S:.0f} s") from None


def drive(workers: dict[str, Worker], round_index: int, together: bool = False) -> None:
    """Run the two workers' tests one benchmark at a time: both at once
    (``together``), or one after the other, alternating who goes first."""
    for worker in workers.values():
        worker.next_ready()
    step = 0
    while not all(w.finished for w in workers.values()):
        active = [w for w in workers.values() if not w.finished]
        names = {w.waiting for w in active}
        if len(active) == 2 and len(names) != 1:
            base, head = workers["base"].waiting, workers["head"].waiting
            raise UnavailableError(f"the two sides went out of step: base at {base}, head at {head}")
        if len(active) == 2 and (round_index + step) % 2 == 1:
            active.reverse()
        if together:
            for worker in active:
                worker.go()
            for worker in active:
                worker.wait_done()
        else:
            for worker in active:
                worker.run_one()
        for worker in active:
            worker.next_ready()
        step += 1


def stop(workers: dict[str, Worker]) -> None:
    """Close the sockets; a worker that is still running is ended (we started it)."""
    for worker in workers.values():
        if worker.conn is not None:
            worker.conn.close()
        if worker.process.poll() is None:
            try:
                worker.process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait()
