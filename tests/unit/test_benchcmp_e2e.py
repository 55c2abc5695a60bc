"""The gate on real git commits of a tiny project: it catches a slowdown and
stays quiet on unchanged code, in one comparison.

The project has two gated benchmarks, each a fixed amount of CPU work, and a
same-run reference. Its second commit makes ``work`` do twice as much and
leaves ``steady`` alone. (Twice, not the +25-30 % the gate is built for: with
both sides running at once on a 2-core CI machine, a dozen rounds of a
millisecond-sized toy spread the interval too wide to decide 30 % every time;
the 18-30 % catches are measured on netsim's own benchmarks, docs/benchmarks.md.)
The comparison runs the real pipeline (worktrees,
collection, lockstep rounds, statistics, report), without venvs
(``venv=False``) and without heavy pytest plugins, so it takes seconds.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from netsim.benchcmp import CompareOptions, compare
from netsim.benchcmp.report import summary, table, to_json

WORK = """
def work(n: int = {n}) -> int:
    total = 0
    for i in range(n):
        total += i * i
    return total


def steady(n: int = 100_000) -> int:
    return work(n)
"""

BENCH = """
import pytest

from tinybench import steady, work


def test_work(benchmark):
    assert benchmark.pedantic(work, rounds=15, iterations=1, warmup_rounds=1) > 0


def test_steady(benchmark):
    assert benchmark.pedantic(steady, rounds=15, iterations=1, warmup_rounds=1) > 0


@pytest.mark.reference
def test_loop(benchmark):
    benchmark.pedantic(sum, args=(range(20_000),), rounds=15, iterations=1)
"""

CONFTEST = """
def pytest_configure(config):
    config.addinivalue_line("markers", "reference: measured, never gated")
"""

# This interpreter's heavy plugins (hypothesis, netsim's own) would cost seconds per run.
PYTEST_INI = "[pytest]\naddopts = -p no:hypothesispytest -p no:netsim\n"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def tiny_repo(repo: Path) -> dict[str, str]:
    git(repo, "init", "-q", "-b", "main")
    (repo / "tinybench").mkdir()
    (repo / "benchmarks").mkdir()
    (repo / "benchmarks" / "test_bench_tiny.py").write_text(BENCH)
    (repo / "benchmarks" / "conftest.py").write_text(CONFTEST)
    (repo / "pytest.ini").write_text(PYTEST_INI)
    commits = {}
    for name, n in (("fast", 100_000), ("slow", 200_000)):
        (repo / "tinybench" / "__init__.py").write_text(WORK.format(n=n))
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", name)
        commits[name] = git(repo, "rev-parse", "HEAD")
    return commits


def test_the_gate_catches_a_slowdown_and_passes_unchanged_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Under pytest-xdist this test runs in a worker: the comparison must not hand
    # PYTEST_XDIST_WORKER to its own pytest runs (pytest-benchmark would read it
    # as "xdist is active" and measure nothing). Set it, so the test says so even
    # when the suite runs in one process.
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw9")
    repo = tmp_path / "tiny"
    repo.mkdir()
    commits = tiny_repo(repo)
    options = CompareOptions(
        base=commits["fast"],
        head=commits["slow"],
        repo=repo,
        # 8 rounds: the 90 % sign-test interval then drops the most extreme ratio
        # at each end, so one disturbed round on a busy machine cannot blur it (a
        # doubling shows in every round alone; 12 rounds only made the suite slower).
        rounds=8,
        confidence=0.90,
        cache=tmp_path / "cache",
        python=sys.executable,
        venv=False,
    )
    result = compare(options, progress=lambda line: None)
    rows = {row.nodeid.split("::")[1]: row for row in result.rows}
    work, steady, loop = rows["test_work"], rows["test_steady"], rows["test_loop"]
    assert work.verdict == "slower", table(result)
    assert work.decision is not None and 1.5 < work.decision.estimate < 2.8
    assert steady.verdict in ("same", "unsure"), table(result)
    assert loop.reference and not loop.gated
    assert result.exit_status == 1
    assert summary(result).startswith("REGRESSION")
    assert to_json(result)["regressions"] == ["benchmarks/test_bench_tiny.py::test_work"]
