"""``netsim``: run scenarios, draw them, trace a packet, inspect, clean up.

    netsim run scenarios/ [--kernel fake|linux] [--json FILE] [--junit FILE] [--pcap DIR] [-q] [-j N]
    netsim show SCENARIO [--format text|dot|svg|mermaid]
    netsim trace SCENARIO --from A --to B[:PORT/PROTO] [--kernel fake|linux]
    netsim inspect SCENARIO [--kernel fake|linux]
    netsim clean [--dry-run]
    netsim plugin serve MODULE:CLASS|--builtin NAME --socket PATH
    netsim bench compare [BASE [HEAD]] [--fake-only] [--rounds N] [--json FILE]
    netsim new-driver NAME [--dir DIR]
    netsim schema [--report] [-o FILE]
    netsim generate --containers N [--networks M] [-o FILE]

Exit status: 0 all good, 1 an expectation failed (or something leaked),
2 invalid input (one line on stderr, never a traceback), 130 / 143 stopped
by SIGINT / SIGTERM (after tearing down what was built).
"""

from __future__ import annotations

import argparse
import sys

from netsim.errors import NetsimError
from netsim.interrupts import exit_status, interrupt_pending, signals_interrupt
from netsim.kernel import KERNEL_KINDS
from netsim.scenario.render import FORMATS


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and still exit status 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _kernel_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kernel", choices=KERNEL_KINDS, default="fake", help="fake (default) or linux (root)")


def _store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--local-store",
        metavar="URL",
        help="each host's local store, e.g. sqlite:///tmp/{host}.db ({host}: the host's name); default memory",
    )
    parser.add_argument(
        "--global-store", metavar="URL", help="the store hosts share: etcd://H:P, zk://H:P/chroot, sqlite:///FILE"
    )


def _timeout_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--timeout", type=float, default=1.0, help="seconds to wait for each probe's answer")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="netsim",
        description="Container networks in libnetwork's model, on a fake or the real Linux kernel.",
        epilog="exit status: 0 every expectation holds, 1 one failed (or state leaked), 2 invalid input",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="build scenarios, check their expectations, tear down, check for leaks")
    run.add_argument("scenarios", nargs="+", metavar="SCENARIO_OR_DIR")
    _kernel_option(run)
    _store_options(run)
    _timeout_option(run)
    run.add_argument("--json", metavar="FILE", help="write results as JSON")
    run.add_argument("--junit", metavar="FILE", help="write results as JUnit XML")
    run.add_argument("--pcap", metavar="DIR", help="capture each probe to DIR/<scenario>-<n>-...pcap")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")
    run.add_argument(
        "-j", "--jobs", type=int, default=1, metavar="N", help="run N scenarios at once, in processes (0: one per CPU)"
    )

    show = sub.add_parser("show", help="draw a scenario's topology")
    show.add_argument("scenario")
    show.add_argument("--format", choices=FORMATS, default="text")

    trace = sub.add_parser("trace", help="one packet's path, hop by hop, and why it was dropped")
    trace.add_argument("scenario")
    trace.add_argument("--from", dest="source", required=True, metavar="A", help="a container or outside[@HOST]")
    to_help = "container, IP, outside[@HOST] or published:PORT"
    trace.add_argument("--to", dest="target", required=True, metavar="B[:PORT/PROTO]", help=to_help)
    _kernel_option(trace)
    _store_options(trace)
    _timeout_option(trace)
    trace.add_argument("--pcap", metavar="DIR", help="also capture the probe to a pcap file in DIR")

    inspect = sub.add_parser("inspect", help="docker network inspect-like JSON of the built networks")
    inspect.add_argument("scenario")
    _kernel_option(inspect)
    _store_options(inspect)

    clean = sub.add_parser("clean", help="remove leftovers of crashed real-kernel runs (netsim- prefix only)")
    clean.add_argument("--dry-run", action="store_true", help="only list what would be removed")

    plugin = sub.add_parser("plugin", help="remote driver plugins")
    plugin_sub = plugin.add_subparsers(dest="plugin_command", required=True, parser_class=_Parser)
    from netsim.plugin.cli import DESCRIPTION as SERVE_DESCRIPTION
    from netsim.plugin.cli import add_serve_arguments

    serve = plugin_sub.add_parser(
        "serve", help="serve a Python or built-in driver over the Docker plugin protocol", description=SERVE_DESCRIPTION
    )
    add_serve_arguments(serve)
    from netsim.cli import bench

    bench.add_parser(sub, _Parser)
    from netsim.cli import new_driver

    new_driver.add_parser(sub)
    from netsim.scenario import json_schema

    json_schema.add_parser(sub)
    from netsim.scenario import generate

    generate.add_parser(sub)
    return parser


def _new_driver_command(args: argparse.Namespace) -> int:
    from netsim.cli.new_driver import cmd_new_driver

    return cmd_new_driver(args)


def main(argv: list[str] | None = None) -> int:
    """The console script. Returns the exit status (see the module docstring)."""
    from netsim.cli import commands

    args = build_parser().parse_args(argv)
    handlers = {
        "run": commands.cmd_run,
        "show": commands.cmd_show,
        "trace": commands.cmd_trace,
        "inspect": commands.cmd_inspect,
        "clean": commands.cmd_clean,
        "plugin": commands.cmd_plugin_serve,
        "bench": _bench_command,
        "new-driver": _new_driver_command,
        "schema": _schema_command,
        "generate": _generate_command,
    }
    try:
        with signals_interrupt():  # SIGTERM (CI runners, timeout) unwinds like Ctrl-C: every finally runs
            status = handlers[args.command](args)
            swallowed = interrupt_pending()  # a signal Python ignored in a __del__: the command ran on
            if swallowed is not None:
                raise swallowed
            return status
    except NetsimError as exc:
        print(f"netsim {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except (ImportError, OSError) as exc:  # a part of netsim is missing; an output file cannot be written
        print(f"netsim {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print(f"netsim {args.command}: {str(exc) or 'interrupted'}", file=sys.stderr)
        return exit_status(exc)


def _generate_command(args: argparse.Namespace) -> int:
    from netsim.scenario.generate import cmd_generate

    return cmd_generate(args)


def _schema_command(args: argparse.Namespace) -> int:
    from netsim.scenario.json_schema import cmd_schema

    return cmd_schema(args)


def _bench_command(args: argparse.Namespace) -> int:
    from netsim.cli import bench  # imported on use: the other commands never need it

    return bench.cmd_bench(args)


if __name__ == "__main__":
    sys.exit(main())
