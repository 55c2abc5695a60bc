"""Which benchmarks a comparison runs, and which of them may fail it.

Each side is collected (``pytest --collect-only``) with the comparison's own
plugin (:mod:`.worker_plugin`, copied beside the run and put on PYTHONPATH),
so it works on any commit, even one older than this package. The plugin records each benchmark's node
id and its ``reference`` and ``linux`` markers. HEAD's view decides the roles;
node ids on one side only are reported, never measured.

* A **reference** (marker ``reference``, or ``reference`` in its node id) is
  measured and shown, never gated: it is the same-run yardstick, and a
  change to it is the machine's doing, not the code's.
* A **real-kernel** benchmark (marker ``linux``, or ``linux`` in its node id)
  and one against a real store server (marker ``stores``: etcd, ZooKeeper)
  are left out by ``fake_only``: what remains runs in-process, as any user.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from netsim.benchcmp.gitwork import Tree
from netsim.errors import UnavailableError

#: worker_plugin.py, copied beside each run under this name and loaded with ``-p``.
PLUGIN_MODULE = "netsim_benchcmp_worker"


@dataclass(frozen=True)
class Benchmark:
    nodeid: str
    reference: bool
    real_kernel: bool


@dataclass
class Selection:
    """What both sides run, in HEAD's order, and what exists on one side only."""

    benchmarks: list[Benchmark]
    only_head: list[str] = field(default_factory=list)
    only_base: list[str] = field(default_factory=list)

    @property
    def nodeids(self) -> list[str]:
        return [b.nodeid for b in self.benchmarks]


def output_tail(text: str, lines: int = 6) -> str:
    """The last lines of a tool's output: where the reason for a failure is."""
    kept = [line for line in text.strip().splitlines() if line.strip()][-lines:]
    return "\n  ".join(kept)


def python_path(plugin_dir: Path, tree: Tree) -> str:
    """The plugin, then the tree itself: without a venv (``--no-venv``) the
    tree's packages must win over whatever the interpreter has installed."""
    return os.pathsep.join(p for p in (str(plugin_dir), str(tree.path), os.environ.get("PYTHONPATH", "")) if p)


def write_plugin(workdir: Path) -> Path:
    """The directory to put on PYTHONPATH for ``-p netsim_benchcmp_worker``."""
    where = workdir / "plugin"
    where.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(Path(__file__).with_name("worker_plugin.py"), where / f"{PLUGIN_MODULE}.py")
    return where


def inherited_environment() -> dict[str, str]:
    """This process's environment for a child pytest, without pytest-xdist's
    worker variables: a comparison started from inside an xdist worker (the
    test suite) would otherwise make the child's pytest-benchmark believe it
    runs under xdist and switch itself off."""
    return {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_XDIST_")}


def collect(tree: Tree, python: Path, paths: list[str], workdir: Path) -> dict[str, Benchmark]:
    """Node id → Benchmark for everything pytest collects under ``paths`` in ``tree``."""
    manifest = workdir / f"collect-{tree.label}.json"
    manifest.unlink(missing_ok=True)
    plugin_dir = write_plugin(workdir)
    env = {
        **inherited_environment(),
        "PYTHONPATH": python_path(plugin_dir, tree),
        "NETSIM_BENCHCMP_MANIFEST": str(manifest),
    }
    command = [
        str(python),
        "-m",
        "pytest",
        "--collect-only",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        PLUGIN_MODULE,
        "--continue-on-collection-errors",
        *paths,
    ]
    done = subprocess.run(command, cwd=tree.path, env=env, capture_output=True, text=True, timeout=600, check=False)
    if not manifest.exists():
        tail = output_tail(done.stdout + done.stderr)
        raise UnavailableError(f"collecting benchmarks in {tree.label} ({tree.short}) failed:\n  {tail}")
    rows = json.loads(manifest.read_text())
    return {
        row["nodeid"]: Benchmark(
            nodeid=row["nodeid"],
            reference=bool(row["reference"]) or "reference" in row["nodeid"].lower(),
            real_kernel=bool(row["linux"]) or bool(row.get("stores")) or "linux" in row["nodeid"].lower(),
        )
        for row in rows
    }


def select(
    head: dict[str, Benchmark],
    base: dict[str, Benchmark],
    *,
    fake_only: bool,
    patterns: Sequence[str],
    excludes: Sequence[str] = (),
) -> Selection:
    """Benchmarks on both sides, filtered: ``fake_only`` drops real-kernel ones;
    ``patterns`` (substrings of the node id, any may match) narrow further;
    a node id containing any of ``excludes`` is left out."""

    def wanted(bench: Benchmark) -> bool:
        if fake_only and bench.real_kernel:
            return False
        if any(x in bench.nodeid for x in excludes):
            return False
        return not patterns or any(p in bench.nodeid for p in patterns)

    chosen_head = [b for b in head.values() if wanted(b)]
    chosen_base = {nodeid for nodeid, b in base.items() if wanted(b)}
    return Selection(
        benchmarks=[b for b in chosen_head if b.nodeid in chosen_base],
        only_head=[b.nodeid for b in chosen_head if b.nodeid not in chosen_base],
        only_base=sorted(chosen_base - set(head)),
    )
