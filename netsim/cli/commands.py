"""The work behind each ``netsim`` subcommand; ``__init__`` only parses argv.

Every command returns its exit status: 0 success, 1 a failed expectation or a
leak, 2 invalid input. Library errors propagate as NetsimError and become a
one-line message with status 2 in :func:`netsim.cli.main`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from typing import Any

from netsim.errors import InvalidParameterError, ScenarioError
from netsim.scenario.inspect import inspect_networks
from netsim.scenario.model import Expectation, Scenario, StoreChoice, host_target, outside_host
from netsim.scenario.observe import translation_line
from netsim.scenario.parallel import run_scenarios
from netsim.scenario.plugins import refuse_unreachable
from netsim.scenario.progress import ProgressPrinter
from netsim.scenario.render import render
from netsim.scenario.report import format_table, write_json, write_junit
from netsim.scenario.runner import Backend, built
from netsim.scenario.schema import load_scenario, parse_expectation, scenario_files
from netsim.store import parse_store_url

_PROTO_SUFFIX = re.compile(r"^(?P<rest>.+)/(?P<proto>tcp|udp|icmp)$")
_BRACKETED_V6 = re.compile(r"^\[(?P<ip>[^\]]+)\](?::(?P<port>[^:]+))?$")


def check_kernel(kind: str) -> None:
    """Refuse ``--kernel linux`` up front where the real kernel cannot run."""
    if kind == "linux":
        from netsim.safety import linux_unavailable_reason

        reason = linux_unavailable_reason()
        if reason is not None:
            raise InvalidParameterError(f"--kernel linux is not possible here: {reason}")


def with_stores(args: argparse.Namespace, backend: Backend | None) -> Backend | None:
    """``--local-store`` / ``--global-store`` over whatever the files say (URLs checked now)."""
    local, shared = getattr(args, "local_store", None), getattr(args, "global_store", None)
    if local is None and shared is None:
        return backend
    for flag, url in (("--local-store", local), ("--global-store", shared)):
        if url is not None:
            try:
                parse_store_url(url.replace("{host}", "h1"))
            except InvalidParameterError as exc:
                raise InvalidParameterError(f"{flag}: {exc}") from None
    return dataclasses.replace(backend or Backend(), stores=StoreChoice(local=local, global_=shared))


def cmd_run(args: argparse.Namespace, backend: Backend | None = None) -> int:
    backend = with_stores(args, backend)
    scenarios = [load_scenario(path) for path in scenario_files(args.scenarios)]
    check_kernel(args.kernel)
    for scenario in scenarios:  # a plugin program cannot drive the fake kernel: refused before anything runs
        refuse_unreachable(scenario, args.kernel)
    progress = ProgressPrinter(sys.stderr, total=len(scenarios), quiet=args.quiet)
    results = run_scenarios(  # -j N: N processes, results in file order (netsim.scenario.parallel)
        scenarios,
        args.kernel,
        jobs=getattr(args, "jobs", 1),
        backend=backend,
        progress=progress,
        timeout=args.timeout,
        pcap_dir=args.pcap,
    )
    print(format_table(results))
    if args.json:
        write_json(results, args.json)
    if args.junit:
        write_junit(results, args.junit)
    return 0 if all(r.passed for r in results) else 1


def cmd_show(args: argparse.Namespace) -> int:
    print(render(load_scenario(args.scenario), args.format))
    return 0


def parse_trace_target(text: str) -> dict[str, Any]:
    """``B[:PORT][/PROTO]`` → expectation fields (``to``, ``proto``, ``port``).

    >>> parse_trace_target("web:80/tcp")
    {'to': 'web', 'proto': 'tcp', 'port': '80'}
    >>> parse_trace_target("[fd00::2]:53/udp")
    {'to': 'fd00::2', 'proto': 'udp', 'port': '53'}
    >>> parse_trace_target("published:8080")
    {'to': 'published:8080', 'proto': 'tcp'}
    """
    proto = None
    suffix = _PROTO_SUFFIX.match(text)
    if suffix:
        text, proto = suffix["rest"], suffix["proto"]
    if text.startswith("published:"):
        return {"to": text, "proto": proto or "tcp"}
    port: str | None = None
    bracketed = _BRACKETED_V6.match(text)
    if bracketed:
        text, port = bracketed["ip"], bracketed["port"]
    elif text.count(":") == 1:
        text, port = text.split(":")
    out: dict[str, Any] = {"to": text, "proto": proto or ("tcp" if port else "icmp")}
    if port is not None:
        out["port"] = port
    return out


def trace_expectation(scenario: Scenario, source: str, target: str) -> Expectation:
    exp = parse_expectation({"from": source, **parse_trace_target(target)}, file=scenario.file, path="--to")
    names = {c.name for c in scenario.containers}
    for flag, end in (("--from", exp.source), ("--to", exp.target)):
        pinned = outside_host(end) or host_target(end)
        if pinned and pinned not in scenario.hosts:
            raise ScenarioError(f"unknown host {pinned!r} in {end!r}", file=scenario.file, path=flag)
    if outside_host(exp.source) is None and exp.source not in names:
        raise ScenarioError(f"unknown container {exp.source!r}", file=scenario.file, path="--from")
    plain_name = (
        outside_host(exp.target) is None
        and host_target(exp.target) is None
        and exp.published_port is None
        and ":" not in exp.target
    )
    if plain_name and not exp.target.replace(".", "").isdigit() and exp.target not in names:
        raise ScenarioError(f"unknown container {exp.target!r}", file=scenario.file, path="--to")
    return exp


def _short_ns(ns: str, prefix: str) -> str:
    return ns[len(prefix) :] if ns.startswith(prefix) else ns


def _crossing_lines(scenario: Scenario, exp: Expectation, trace: list[Any], prefix: str) -> list[str]:
    """Multi-host: which hosts the two ends are on and, from the hop table,
    each distinct VXLAN encapsulation (the frames that rode the underlay)."""
    if not scenario.multi_host:
        return []
    ends = []
    for end in (exp.source, exp.target):
        if end in {c.name for c in scenario.containers}:
            ends.append(f"{end} on {scenario.container(end).host}")
    lines = [f"hosts: {', '.join(ends)}"] if ends else []
    tunnels: dict[tuple[str, str], None] = {}
    for hop in trace:
        if hop.action == "encap":
            tunnels[(_short_ns(hop.namespace, prefix), hop.detail)] = None
    lines += [f"underlay: {ns} {detail}" for ns, detail in tunnels]
    return lines


def cmd_trace(args: argparse.Namespace, backend: Backend | None = None) -> int:
    backend = with_stores(args, backend)
    scenario = load_scenario(args.scenario)
    exp = trace_expectation(scenario, args.source, args.target)
    check_kernel(args.kernel)
    leaks: list[str] = []
    with built(scenario, args.kernel, backend=backend, timeout=args.timeout, pcap_dir=args.pcap, leaks=leaks) as world:
        result = world.probe(exp, "trace", retry=False, observe=True)
        prefix = world.kernel.prefix
    where = f"{exp.target} ({result.dst or 'no address'})"
    print(f"trace {exp.source} -> {where} {exp.proto_port} on the {args.kernel} kernel")
    rows = [("#", "namespace", "iface", "action", "detail", "packet")]
    for i, hop in enumerate(result.trace, 1):
        rows.append((str(i), _short_ns(hop.namespace, prefix), hop.iface or "-", hop.action, hop.detail, hop.summary))
    if len(rows) > 1:
        widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
        for row in rows:
            print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    else:
        print("(no hop-by-hop trace from this kernel: the probe's outcome is all it reports; use --pcap DIR)")
    for line in _crossing_lines(scenario, exp, result.trace, prefix):
        print(line)
    translation = translation_line(result.sent_from, result.far_end, result.seen, prefix)
    if translation is not None:
        print(translation)
    verdict = "reachable" if result.reachable else "unreachable"
    print(f"outcome: {result.outcome} ({verdict})")
    if not result.reachable:
        # every drop on the way: the probe's own and those of the frames it caused (ARP floods...)
        for hop in (h for h in result.trace if h.action == "drop"):
            where = f"{_short_ns(hop.namespace, prefix)} at {hop.iface or '-'}"
            print(f"dropped in {where}: {hop.detail or 'no reason given'}")
    for leak in leaks:
        print(f"leak: {leak}", file=sys.stderr)
    return 1 if leaks else 0


def cmd_inspect(args: argparse.Namespace, backend: Backend | None = None) -> int:
    backend = with_stores(args, backend)
    scenario = load_scenario(args.scenario)
    check_kernel(args.kernel)
    leaks: list[str] = []
    with built(scenario, args.kernel, backend=backend, leaks=leaks) as world:
        data = inspect_networks(world)
    print(json.dumps(data, indent=2, default=str))
    for leak in leaks:
        print(f"leak: {leak}", file=sys.stderr)
    return 1 if leaks else 0


def cmd_clean(args: argparse.Namespace) -> int:
    from netsim.kernel.linux.clean import clean

    removed = clean(prefix="netsim-", dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    for name in removed:
        print(f"{verb} {name}")
    if not removed:
        print("nothing to clean")
    return 0


def cmd_plugin_serve(args: argparse.Namespace) -> int:
    from netsim.plugin.cli import serve

    return serve(args)
