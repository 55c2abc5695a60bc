"""Real-kernel safety checks: is Linux mode possible, did anything leak,
did the root namespace change? Commands are argument lists, read-only."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

NETNS_DIR = Path("/run/netns")


def linux_unavailable_reason() -> str | None:
    """None when real-kernel mode can run here, else why not."""
    if os.name != "posix" or not Path("/proc/self/ns/net").exists():
        return "not Linux (no /proc/self/ns/net)"
    if os.geteuid() != 0:
        return "real-kernel mode needs root"
    if shutil.which("nft") is None:
        return "the nft command (Debian package nftables) is not installed"
    try:
        import pyroute2  # noqa: F401
    except ImportError:
        return "pyroute2 is not installed"
    return None


def namespaces_with_prefix(prefix: str) -> list[str]:
    if not NETNS_DIR.is_dir():
        return []
    return sorted(p.name for p in NETNS_DIR.iterdir() if p.name.startswith(prefix))


def _run_json(args: list[str]) -> Any:
    out = subprocess.run(args, capture_output=True, text=True, check=False, timeout=30)
    if out.returncode != 0 or not out.stdout.strip():
        return None
    return json.loads(out.stdout)


def root_namespace_state() -> dict[str, Any]:
    """Links, addresses, routes and the nft ruleset of the root namespace,
    without counters, so two readings compare equal unless something changed."""
    links = _run_json(["ip", "-j", "link", "show"]) or []
    addrs = _run_json(["ip", "-j", "addr", "show"]) or []
    routes4 = _run_json(["ip", "-j", "-4", "route", "show", "table", "all"]) or []
    routes6 = _run_json(["ip", "-j", "-6", "route", "show", "table", "all"]) or []
    state: dict[str, Any] = {
        "links": sorted(
            (
                link.get("ifname", ""),
                link.get("link_type", ""),
                link.get("address", ""),
                link.get("mtu", 0),
                link.get("master", ""),
            )
            for link in links
        ),
        "addresses": sorted(
            (a.get("ifname", ""), info.get("local", ""), info.get("prefixlen", 0))
            for a in addrs
            for info in a.get("addr_info", [])
        ),
        "routes": sorted(
            (r.get("table", "main"), r.get("dst", ""), r.get("gateway", ""), r.get("dev", ""), r.get("type", ""))
            for r in routes4 + routes6
        ),
    }
    if shutil.which("nft"):
        nft = _run_json(["nft", "-j", "list", "ruleset"]) or {}
        state["nft"] = [
            {k: v for k, v in item.items() if k != "metainfo"}
            for item in nft.get("nftables", [])
            if "metainfo" not in item
        ]
    return state


def diff_states(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    problems = []
    for key in sorted(set(before) | set(after)):
        if before.get(key) != after.get(key):
            problems.append(f"root namespace {key} changed: before={before.get(key)!r} after={after.get(key)!r}")
    return problems
