"""Run third-party driver projects (the `netsim new-driver` template's output,
the guide's sample) in a subprocess as if they were pip-installed.

Nothing is installed: the project directory goes on PYTHONPATH and a
temporary ``*.dist-info`` directory beside it carries the entry points its
pyproject declares, which is all ``importlib.metadata`` (and so netsim's
registry) looks at. That tests the declared entry point itself, costs no
network and no build, and leaves the current environment untouched (an
editable ``pip install`` would stay registered in it for every later test).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

#: a fenced block of the guide whose first line is ``# file: PATH``
_FILE_BLOCK = re.compile(r"^```(?:python|toml)\n# file: (?P<path>\S+)\n(?P<body>.*?)^```", re.M | re.S)
GUIDE = Path(__file__).resolve().parents[2] / "docs" / "driver-authors.md"


def write_dist_info(pyproject: dict[str, Any], site: Path, default_name: str) -> Path:
    """A minimal installed-distribution record with the project's entry points."""
    project = pyproject.get("project", {})
    name = str(project.get("name", default_name))
    version = str(project.get("version", "0.0.0"))
    dist_info = site / f"{re.sub(r'[-.]+', '_', name)}-{version}.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = []
    for group, entries in project.get("entry-points", {}).items():
        lines.append(f"[{group}]")
        lines.extend(f"{key} = {value}" for key, value in entries.items())
    (dist_info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    return dist_info


def install_for_subprocess(project: Path, site: Path) -> None:
    """Register ``project``'s entry points for :func:`run_pytest` (reads its pyproject.toml)."""
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    write_dist_info(pyproject, site, project.name)


def extract_guide_sample(destination: Path, guide: Path = GUIDE) -> list[Path]:
    """Write every ``# file: PATH`` block of the guide under ``destination``."""
    written = []
    for match in _FILE_BLOCK.finditer(guide.read_text()):
        target = destination / match["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(match["body"])
        written.append(target)
    return written


def run_pytest(project: Path, site: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """``python -m pytest ARGS`` in ``project`` with it and ``site`` on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(project), str(site), env.get("PYTHONPATH", "")]))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def summary(result: subprocess.CompletedProcess[str]) -> dict[str, int]:
    """``{"passed": n, "failed": n, ...}`` from pytest's closing line."""
    lines = result.stdout.strip().splitlines()
    counts: dict[str, int] = {}
    if lines:
        for number, word in re.findall(r"(\d+) (\w+)", lines[-1]):
            counts[word] = int(number)
    return counts


def explain(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n{result.stdout[-6000:]}\n{result.stderr[-3000:]}"
