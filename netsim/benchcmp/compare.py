"""``netsim bench compare``: build both trees, measure them interleaved, decide.

The steps, each in its own module: the trees (:mod:`.gitwork`), their venvs
(:mod:`.venvs`), the selection (:mod:`.selection`), the interleaved rounds
(:mod:`.runner`), the decision (:mod:`.stats`), the report (:mod:`.report`)
and the saved result (:mod:`.results`). A lock on the cache directory keeps
two comparisons from measuring at once on one machine, where each would be
the other's noise.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from netsim.benchcmp import gitwork, selection, stats
from netsim.benchcmp.runner import TIMERS, Measurements, RoundResult, Side, interleave
from netsim.benchcmp.venvs import ensure_venv, interpreter_tag
from netsim.errors import InvalidParameterError


@dataclass
class CompareOptions:
    base: str | None = None  # None: the merge base of HEAD with main
    head: str | None = None  # None: the working tree as it is
    repo: Path = field(default_factory=Path.cwd)
    rounds: int = 9
    confidence: float = 0.95
    tolerance: float = 0.05
    fake_only: bool = False
    timer: str = "cpu"  # runner.TIMERS
    max_time: float = 0.2  # pytest-benchmark's --benchmark-max-time, per benchmark and round
    excludes: list[str] = field(default_factory=list)
    patterns: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=lambda: ["benchmarks"])
    cache: Path | None = None
    python: str = sys.executable
    # False: run both trees with ``python`` as it is, each tree first on PYTHONPATH. Quick,
    # and right only when both sides' dependencies (and the harness) are the same.
    venv: bool = True
    main_branch: str = "main"


@dataclass
class Row:
    """One benchmark's outcome. ``verdict`` is a stats verdict (decided on the
    rounds where both sides passed), or ``broken`` (fails on HEAD in every
    round, never on BASE), ``failed`` (fails on both in every round) or
    ``not measured`` (too few rounds where both sides passed: skipped...)."""

    nodeid: str
    reference: bool
    base_rounds: list[float | None]
    head_rounds: list[float | None]
    decision: stats.Decision | None
    verdict: str
    failures: tuple[int, int] = (0, 0)  # rounds failed on (base, head): flaky if not all

    @property
    def gated(self) -> bool:
        return not self.reference

    @property
    def base_median(self) -> float | None:
        values = [v for v in self.base_rounds if v is not None]
        return statistics.median(values) if values else None

    @property
    def head_median(self) -> float | None:
        values = [v for v in self.head_rounds if v is not None]
        return statistics.median(values) if values else None


@dataclass
class Comparison:
    base: gitwork.Tree
    head: gitwork.Tree
    repo: Path  # the checkout compared in (results are saved under it)
    options: CompareOptions
    rows: list[Row]
    only_head: list[str]
    only_base: list[str]
    interpreter: str
    seconds: float  # wall time of the whole comparison, builds included
    measure_seconds: float  # of which running benchmarks

    @property
    def regressions(self) -> list[Row]:
        return [r for r in self.rows if r.gated and r.verdict in ("slower", "broken")]

    @property
    def exit_status(self) -> int:
        return 1 if self.regressions else 0


def default_cache() -> Path:
    explicit = os.environ.get("NETSIM_BENCH_CACHE")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "netsim" / "bench"


def validate(options: CompareOptions) -> None:
    stats.check_confidence(options.confidence)
    needed = stats.min_rounds(options.confidence)
    if options.rounds < needed:
        raise InvalidParameterError(
            f"--rounds {options.rounds} is too few for a {options.confidence:.0%} interval: at least {needed}"
        )
    if options.timer not in TIMERS:
        raise InvalidParameterError(f"--timer {options.timer!r}: choose one of {', '.join(TIMERS)}")
    if not 0 <= options.tolerance < 1:
        raise InvalidParameterError(f"--tolerance {options.tolerance} must be in [0, 1)")


@contextmanager
def cache_lock(cache: Path, say: Callable[[str], None]) -> Iterator[None]:
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / "lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"waiting for another comparison using {cache} to finish")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def compare(options: CompareOptions, progress: Callable[[str], None] | None = None) -> Comparison:
    """Run the whole comparison; errors are NetsimErrors naming what was wrong."""
    say = progress or (lambda line: print(line, file=sys.stderr, flush=True))
    validate(options)
    started = time.monotonic()
    repo = gitwork.repo_root(options.repo)
    cache = options.cache or default_cache()
    with cache_lock(cache, say):
        head = (
            gitwork.working_tree(repo) if options.head is None else gitwork.checkout(repo, options.head, cache, "head")
        )
        base_spec = options.base or gitwork.default_base(repo, head.commit, options.main_branch)
        base = gitwork.checkout(repo, base_spec, cache, "base")
        say(f"base {base.short} ({base.spec}), head {head.short} ({head.spec})")
        sides = {
            tree.label: Side(tree, ensure_venv(tree, cache, options.python) if options.venv else Path(options.python))
            for tree in (base, head)
        }
        workdir = Path(tempfile.mkdtemp(prefix="run-", dir=cache))
        try:
            chosen = selection.select(
                selection.collect(head, sides["head"].python, options.paths, workdir),
                selection.collect(base, sides["base"].python, options.paths, workdir),
                fake_only=options.fake_only,
                patterns=options.patterns,
                excludes=options.excludes,
            )
            if not chosen.benchmarks:
                raise InvalidParameterError("no benchmark is selected on both sides: check the paths and filters")
            say(f"{len(chosen.benchmarks)} benchmarks, {options.rounds} interleaved rounds")
            measured = interleave(
                sides["base"],
                sides["head"],
                chosen.nodeids,
                options.rounds,
                workdir,
                say,
                timer=options.timer,
                max_time=options.max_time,
            )
        except BaseException:
            say(f"the runs' logs are kept in {workdir}")
            raise
        if any(r.failed for r in measured.base + measured.head):
            say(f"some benchmarks failed: the runs' logs are kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    rows = [_row(bench, measured, options) for bench in chosen.benchmarks]
    return Comparison(
        base=base,
        head=head,
        repo=repo,
        options=options,
        rows=rows,
        only_head=chosen.only_head,
        only_base=chosen.only_base,
        interpreter=interpreter_tag(options.python),
        seconds=time.monotonic() - started,
        measure_seconds=measured.seconds,
    )


def _row(bench: selection.Benchmark, measured: Measurements, options: CompareOptions) -> Row:
    def figures(results: list[RoundResult]) -> list[float | None]:
        return [stats.round_figure(r.samples[bench.nodeid]) if r.samples.get(bench.nodeid) else None for r in results]

    base_rounds, head_rounds = figures(measured.base), figures(measured.head)
    failures = (
        sum(bench.nodeid in r.failed for r in measured.base),
        sum(bench.nodeid in r.failed for r in measured.head),
    )
    row = Row(bench.nodeid, bench.reference, base_rounds, head_rounds, None, "not measured", failures)
    rounds = len(measured.head)
    if failures[1] == rounds:
        # One flaky failure proves nothing; a benchmark HEAD never gets through does.
        row.verdict = "broken" if failures[0] == 0 else "failed"
        return row
    ratios = stats.paired_ratios(base_rounds, head_rounds)
    if stats.interval_rank(len(ratios), options.confidence) is None:
        return row  # skipped on a side (a tool missing there), or failing too often to decide
    row.decision = stats.decide(ratios, confidence=options.confidence, tolerance=options.tolerance)
    row.verdict = row.decision.verdict
    return row
