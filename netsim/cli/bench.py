"""``netsim bench``: compare two commits' benchmarks on this machine; plot saved runs.

Exit status of ``compare``: 0 no confirmed regression, 1 a gated benchmark
is slower beyond the tolerance (or broken on HEAD), 2 invalid input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from netsim.benchcmp import CompareOptions, compare
from netsim.benchcmp import report as bench_report
from netsim.benchcmp import results as bench_results


def add_parser(sub: argparse._SubParsersAction, parser_class: type[argparse.ArgumentParser]) -> None:  # type: ignore[type-arg]
    bench = sub.add_parser("bench", help="compare two commits' benchmarks on this machine")
    bench_sub = bench.add_subparsers(dest="bench_command", required=True, parser_class=parser_class)
    cmp = bench_sub.add_parser(
        "compare",
        help="run BASE and HEAD benchmarks interleaved and gate on a confirmed slowdown",
        epilog="exit status: 0 no regression, 1 a gated benchmark is slower (or broken), 2 invalid input",
    )
    cmp.add_argument("base", nargs="?", help="commit-ish (default: the merge base of HEAD with main)")
    cmp.add_argument("head", nargs="?", help="commit-ish (default: the working tree, uncommitted changes included)")
    cmp.add_argument("--fake-only", action="store_true", help="leave out real-kernel benchmarks (no root needed)")
    cmp.add_argument(
        "-k", "--select", action="append", default=[], metavar="TEXT", help="only node ids containing TEXT (repeatable)"
    )
    cmp.add_argument(
        "--timer", choices=["cpu", "wall"], default="cpu", help="cpu: process CPU time (default); wall: elapsed"
    )
    cmp.add_argument(
        "--exclude", action="append", default=[], metavar="TEXT", help="leave out node ids containing TEXT"
    )
    cmp.add_argument("--rounds", type=int, default=9, help="rounds, each running both sides (default 9)")
    cmp.add_argument("--max-time", type=float, default=0.2, help="seconds per benchmark and round where not fixed")
    cmp.add_argument("--confidence", type=float, default=0.95, help="of the ratio's interval (default 0.95)")
    cmp.add_argument("--tolerance", type=float, default=0.05, help="slowdown never called a regression (default 0.05)")
    cmp.add_argument(
        "--path", action="append", dest="paths", metavar="DIR", help="benchmark paths (default benchmarks)"
    )
    cmp.add_argument("--json", metavar="FILE", help="also write the result as JSON")
    cmp.add_argument("--no-save", action="store_true", help="do not save the result under benchmarks/.results/compare")
    cmp.add_argument("--cache", metavar="DIR", help="worktrees and venvs (default ~/.cache/netsim/bench)")
    cmp.add_argument("--python", default=sys.executable, help="interpreter for both venvs (default: this one)")
    cmp.add_argument("--repo", default=".", help="the git checkout (default: the current directory)")
    cmp.add_argument(
        "--no-venv", action="store_true", help="use --python as it is for both trees (same dependencies only)"
    )

    trend = bench_sub.add_parser("trend", help="an SVG trend of this machine's saved comparisons")
    trend.add_argument("--dir", help="a machine's results directory (default: this machine and interpreter's)")
    trend.add_argument("--out", default="bench-trend.svg", help="the SVG to write (default bench-trend.svg)")
    trend.add_argument("-k", "--select", action="append", default=[], metavar="TEXT", help="only node ids with TEXT")
    trend.add_argument("--references", action="store_true", help="draw the references too")
    trend.add_argument("--python", default=sys.executable, help="the interpreter whose results to draw")


def cmd_bench(args: argparse.Namespace) -> int:
    return cmd_bench_trend(args) if args.bench_command == "trend" else cmd_bench_compare(args)


def cmd_bench_trend(args: argparse.Namespace) -> int:
    from netsim.benchcmp import trend
    from netsim.benchcmp.gitwork import repo_root
    from netsim.benchcmp.venvs import interpreter_tag

    where = (
        Path(args.dir) if args.dir else bench_results.results_dir(repo_root(Path.cwd()), interpreter_tag(args.python))
    )
    runs = bench_results.load(where)
    drawn = trend.render(runs, Path(args.out), references=args.references, patterns=list(args.select))
    print(f"{args.out}: {drawn} benchmarks over {len(runs)} saved comparisons from {where}")
    return 0


def cmd_bench_compare(args: argparse.Namespace) -> int:
    options = CompareOptions(
        base=args.base,
        head=args.head,
        repo=Path(args.repo).resolve(),
        rounds=args.rounds,
        confidence=args.confidence,
        tolerance=args.tolerance,
        fake_only=args.fake_only,
        timer=args.timer,
        max_time=args.max_time,
        excludes=list(args.exclude),
        patterns=list(args.select),
        paths=args.paths or ["benchmarks"],
        cache=Path(args.cache) if args.cache else None,
        python=args.python,
        venv=not args.no_venv,
    )
    comparison = compare(options)
    print(bench_report.table(comparison))
    if args.json:
        bench_report.write_json(comparison, Path(args.json))
    if not args.no_save:
        saved = bench_results.save(comparison, comparison.repo)
        print(f"saved: {saved}", file=sys.stderr)
    print(bench_report.summary(comparison))
    return comparison.exit_status
