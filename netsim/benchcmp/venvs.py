"""One virtual environment per tree and interpreter, with the same pinned tools.

``python -m venv`` then ``pip install -e <tree>[test]`` plus the pinned
pytest and pytest-benchmark, so both sides are measured by the same harness
whatever their own pyproject says. A venv is cached under
``<cache>/venvs/<interpreter>/<commit>`` and reused while a marker file
records the same pyproject and pins: a second comparison of a commit skips
the install entirely. A failed install leaves no marker, so it is redone.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

from netsim.benchcmp.gitwork import Tree, tree_key
from netsim.errors import UnavailableError

#: The measuring harness, identical on both sides (pyproject's test extra pins the same).
TOOL_PINS = ("pytest==9.0.3", "pytest-benchmark==5.2.3")
_READY = ".netsim-bench-ready"
_INSTALL_TIMEOUT_S = 900


def interpreter_tag(python: str) -> str:
    """``cpython-3.11.7-x86_64`` for the interpreter at ``python``."""
    code = "import platform,sys;print(f'{sys.implementation.name}-{platform.python_version()}-{platform.machine()}')"
    try:
        done = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    except (FileNotFoundError, PermissionError) as exc:
        raise UnavailableError(f"interpreter {python!r} cannot be run: {exc}") from exc
    if done.returncode != 0:
        raise UnavailableError(f"interpreter {python!r} failed: {done.stderr.strip()[-300:]}")
    return done.stdout.strip()


def _fingerprint(tree: Tree) -> str:
    pyproject = tree.path / "pyproject.toml"
    content = pyproject.read_bytes() if pyproject.exists() else b""
    return hashlib.sha256(content + "\n".join(TOOL_PINS).encode()).hexdigest()


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def ensure_venv(tree: Tree, cache: Path, python: str = sys.executable) -> Path:
    """The python of ``tree``'s venv, built (or rebuilt) if its marker is stale."""
    venv = cache / "venvs" / interpreter_tag(python) / tree_key(tree)
    marker = venv / _READY
    fingerprint = _fingerprint(tree)
    if marker.exists() and marker.read_text() == fingerprint and venv_python(venv).exists():
        return venv_python(venv)
    shutil.rmtree(venv, ignore_errors=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    _step([python, "-m", "venv", str(venv)], f"creating a venv for {tree.label} ({tree.short})")
    install = [
        str(venv_python(venv)),
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "-e",
        f"{tree.path}[test]",
        *TOOL_PINS,
    ]
    _step(install, f"installing {tree.label} ({tree.short}) into its venv")
    marker.write_text(fingerprint)
    return venv_python(venv)


def _step(command: list[str], what: str) -> None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=_INSTALL_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise UnavailableError(f"{what}: no end after {_INSTALL_TIMEOUT_S} s") from exc
    if done.returncode != 0:
        tail = (done.stderr.strip() or done.stdout.strip())[-600:]
        raise UnavailableError(f"{what} failed (exit {done.returncode}): {tail}")
