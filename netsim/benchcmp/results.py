"""Saved comparisons: one directory per machine and interpreter, never the baseline.

A result only means something beside figures from the same machine, so the
directory name says which machine (processor model, core count, a hash of
the host's identity) and which interpreter measured it:
``benchmarks/.results/compare/<machine>/<utc time>-<base>-<head>.json``,
git-ignored. The committed ``benchmarks/baseline/`` is for the README's
table only; nothing here writes into it, and a save directory inside it is
refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from pathlib import Path
from typing import Any

from netsim.benchcmp.compare import Comparison
from netsim.benchcmp.report import to_json
from netsim.errors import InvalidParameterError

BASELINE = Path("benchmarks") / "baseline"
RESULTS = Path("benchmarks") / ".results" / "compare"


def machine_key(interpreter: str) -> str:
    """``intel-xeon-platinum-8375c-2cpu-3f2a9c1d-cpython-3.11.7-x86_64``: what must match for figures to compare."""
    model = "unknown-cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1]
                break
    except OSError:
        pass
    slug = re.sub(r"[^a-z0-9]+", "-", re.sub(r"\(r\)|\(tm\)|cpu|@.*", "", model.lower())).strip("-")
    host = ""
    for source in (Path("/etc/machine-id"), Path("/var/lib/dbus/machine-id")):
        if source.exists():
            host = source.read_text().strip()
            break
    host = host or os.uname().nodename
    return f"{slug}-{os.cpu_count()}cpu-{hashlib.sha1(host.encode()).hexdigest()[:8]}-{interpreter}"


def results_dir(repo: Path, interpreter: str, root: Path | None = None) -> Path:
    """Where this machine's comparisons go; refuses anything under the committed baseline."""
    base = (root or repo / RESULTS).resolve()
    baseline = (repo / BASELINE).resolve()
    if base == baseline or baseline in base.parents:
        raise InvalidParameterError(f"{base}: results never go into the committed baseline ({BASELINE})")
    return base / machine_key(interpreter)


def save(comparison: Comparison, repo: Path, root: Path | None = None) -> Path:
    where = results_dir(repo, comparison.interpreter, root)
    where.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    path = where / f"{stamp}-{comparison.base.short}-{comparison.head.short}.json"
    path.write_text(json.dumps({**to_json(comparison), "saved_at": stamp}, indent=2) + "\n")
    return path


def load(where: Path) -> list[dict[str, Any]]:
    """The saved comparisons in ``where`` (one machine's directory), oldest first."""
    if not where.is_dir():
        raise InvalidParameterError(f"{where}: no saved comparisons here")
    runs = []
    for path in sorted(where.glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise InvalidParameterError(f"{path}: not a saved comparison ({exc})") from exc
        if data.get("format") == "netsim-bench-compare/1":
            runs.append(data)
    return runs
