"""The pytest plugin a comparison puts into each measured tree's pytest run.

It is copied next to the run (as ``netsim_benchcmp_worker.py``) and loaded
with ``-p``, never imported from the tree: the tree's own netsim may be any
version, older than this package. It uses only the standard library and
pytest. Each feature is switched on by an environment variable:

* ``NETSIM_BENCHCMP_MANIFEST``: after collection, each item's node id and
  its ``reference``, ``linux`` and ``stores`` markers, as JSON;
* ``NETSIM_BENCHCMP_OUTCOMES``: each test's outcome, one JSON line per report;
* ``NETSIM_BENCHCMP_SOCKET``: lockstep. Before each test the worker says
  ``ready <nodeid>`` on the unix socket and waits for ``go``; after it, it
  says ``done <nodeid>``. The comparison lets one side run a benchmark while
  the other waits blocked (no CPU), so BASE and HEAD measure the same
  benchmark seconds apart rather than a whole suite apart.
"""

from __future__ import annotations

import json
import os
import platform
import socket
from collections.abc import Generator
from typing import Any

import pytest

_LOCKSTEP = pytest.StashKey["Lockstep"]()


class Lockstep:
    """The worker's end of the lockstep socket."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.buffer = b""

    def say(self, line: str) -> None:
        self.sock.sendall(line.encode() + b"\n")

    def wait_go(self) -> None:
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(4096)
            if not chunk:
                pytest.exit("netsim bench compare: the coordinator went away", returncode=3)
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        if line != b"go":
            pytest.exit(f"netsim bench compare: unexpected {line!r} from the coordinator", returncode=3)


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_generate_machine_info(config: pytest.Config) -> dict[str, Any]:
    """pytest-benchmark's machine description without its CPU probe: py-cpuinfo
    costs ~1.4 CPU-seconds per pytest run, twice per comparison round, and the
    comparison reads none of it (``results.machine_key`` reads /proc/cpuinfo)."""
    return {
        "node": platform.node(),
        "machine": platform.machine(),
        "python_implementation": platform.python_implementation(),
        "python_version": platform.python_version(),
        "release": platform.release(),
        "system": platform.system(),
        "cpu": {},
    }


def pytest_configure(config: pytest.Config) -> None:
    path = os.environ.get("NETSIM_BENCHCMP_SOCKET")
    if path:
        config.stash[_LOCKSTEP] = Lockstep(path)


def pytest_collection_finish(session: pytest.Session) -> None:
    path = os.environ.get("NETSIM_BENCHCMP_MANIFEST")
    if not path:
        return
    rows = [
        {
            "nodeid": item.nodeid,
            "reference": item.get_closest_marker("reference") is not None,
            "linux": item.get_closest_marker("linux") is not None,
            "stores": item.get_closest_marker("stores") is not None,
        }
        for item in session.items
    ]
    with open(path, "w", encoding="utf-8") as out:
        json.dump(rows, out)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, Any, None]:
    lockstep = item.config.stash.get(_LOCKSTEP, None)
    if lockstep is not None:
        lockstep.say(f"ready {item.nodeid}")
        lockstep.wait_go()
    yield
    if lockstep is not None:
        lockstep.say(f"done {item.nodeid}")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    path = os.environ.get("NETSIM_BENCHCMP_OUTCOMES")
    if path and (report.failed or report.skipped or report.when == "call"):
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps({"nodeid": report.nodeid, "outcome": report.outcome}) + "\n")
