"""nox sessions. Each docstring's first line says what privilege it needs."""

from __future__ import annotations

import os
import time
from pathlib import Path

import nox

nox.options.sessions = ["tests"]
nox.options.default_venv_backend = "venv"

PACKAGES = ["netsim", "drivers", "ipam"]
RESULTS = Path("benchmarks/.results")


@nox.session
def tests(session: nox.Session) -> None:
    """Any user; as root the real-kernel tests run too (unit, fake, linux)."""
    session.install("-e", ".[test]")
    session.run(
        "python",
        "-m",
        "pytest",
        *session.posargs,
        env={"NETSIM_REQUIRE_LINUX": os.environ.get("NETSIM_REQUIRE_LINUX", "")},
    )


@nox.session
def explore(session: nox.Session) -> None:
    """Root for the kernel agreement machine; fresh random examples each round.

    The suite's hypothesis tests draw the same examples every run (CI stays
    repeatable); this runs the state machines and property tests with new
    random ones, ``--rounds N`` times (default 5), to find what CI cannot.
    """
    session.install("-e", ".[test]")
    rounds, args = 5, list(session.posargs)
    if "--rounds" in args:
        at = args.index("--rounds")
        rounds = int(args[at + 1])
        del args[at : at + 2]
    targets = args or [
        "tests/linux/test_kernel_agreement.py",
        "tests/fake/test_fake_kernel_stateful.py",
        "tests/stores/test_store_machine.py",
        "tests/unit/test_ipam_model.py",
        "tests/unit/test_bitmap.py",
        "tests/unit/test_bitmap_run.py",
        "tests/unit/test_bitmap_hints.py",
        "tests/linux/test_dns.py",
        "tests/linux/test_driver_agreement.py",
    ]
    for _ in range(rounds):
        session.run("python", "-m", "pytest", "-q", "-n0", *targets, env={"NETSIM_HYPOTHESIS": "explore"})


@nox.session
def lint(session: nox.Session) -> None:
    """Any user: ruff check and ruff format --check."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """Any user: mypy --strict on netsim, drivers and ipam."""
    session.install("-e", ".[test,dev]")
    session.run("mypy")


@nox.session
def bench(session: nox.Session) -> None:
    """Any user (real-kernel benchmarks need root): run benchmarks/, save JSON for this machine only.

    Nothing is compared here: figures from another machine (or the committed
    baseline, which only feeds the README's table) say nothing about this one.
    The regression gate is ``nox -s bench_compare``. Arguments go to pytest
    (``-- --fake-only``, ``-- -k bitmap``)."""
    session.install("-e", ".[test]")
    key = session.run(
        "python",
        "-c",
        "from netsim.benchcmp.results import machine_key; from netsim.benchcmp.venvs import interpreter_tag;"
        "import sys; print(machine_key(interpreter_tag(sys.executable)))",
        silent=True,
    )
    where = RESULTS / "runs" / str(key).strip()
    where.mkdir(parents=True, exist_ok=True)
    session.run(
        "python",
        "-m",
        "pytest",
        "benchmarks",
        "--benchmark-only",
        f"--benchmark-json={where / time.strftime('%Y%m%d-%H%M%S')}.json",
        "--benchmark-columns=min,median,mean,rounds",
        *session.posargs,
    )


@nox.session
def bench_compare(session: nox.Session) -> None:
    """Any user with --fake-only (the default here), root otherwise: the CI regression gate.

    ``netsim bench compare``: BASE (default: the merge base with main) and
    HEAD (default: the working tree) measured on this machine in one run;
    exit 1 on a confirmed slowdown. Arguments replace the default
    ``--fake-only``: ``nox -s bench_compare -- origin/main HEAD --fake-only``."""
    session.install("-e", ".[test]")
    session.run("netsim", "bench", "compare", *(session.posargs or ["--fake-only"]))


@nox.session
def conformance(session: nox.Session) -> None:
    """Any user on the fake kernel; root for --netsim-kernel=linux. Runs the suite on every built-in driver."""
    session.install("-e", ".[test]")
    drivers = session.posargs or ["null", "host", "bridge", "macvlan", "overlay"]
    kernels = ["fake", "linux"] if os.geteuid() == 0 else ["fake"]
    for kernel in kernels:
        for name in drivers:
            session.run(
                "python",
                "-m",
                "pytest",
                "--pyargs",
                "netsim.conformance",
                f"--netsim-driver={name}",
                f"--netsim-kernel={kernel}",
                "-q",
                f"--junitxml=conformance-{name}-{kernel}.xml",
            )


@nox.session
def docs(session: nox.Session) -> None:
    """Any user: the API reference and guides with Sphinx, warnings as errors (docs/_build/html)."""
    session.install("-e", ".[docs]")
    session.run("sphinx-build", "-W", "--keep-going", "-n", "-b", "html", "docs", "docs/_build/html", *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
    """Any user: the main job, every scenario on the fake kernel with a results table."""
    session.install("-e", ".")
    session.run("netsim", "run", "scenarios/", *session.posargs)
