"""``netsim new-driver NAME [--dir DIR]``: write a driver project that passes.

The template lives in ``netsim/templates/driver`` as package data: ``*.tmpl``
files whose ``{{name}}``, ``{{package}}`` and ``{{project}}`` placeholders are
filled in here. ``package/`` becomes the Python package, ``NAME`` in a file
name becomes the driver's name. The result passes the whole conformance suite
on both kernels as generated (netsim's own tests generate it and run the suite).
"""

from __future__ import annotations

import argparse
import keyword
import re
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from netsim.errors import ConflictError, InvalidParameterError

TEMPLATE_PACKAGE = "netsim.templates"
TEMPLATE_DIR = "driver"
SUFFIX = ".tmpl"
#: a driver name that is also a usable Python identifier once '-' is '_'
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,30}$")


@dataclass(frozen=True)
class DriverNames:
    """The names one driver name gives the generated project."""

    #: the registry name (``--netsim-driver=NAME``, ``driver: NAME`` in scenarios)
    name: str
    #: the Python package
    package: str
    #: the distribution name in pyproject.toml
    project: str

    @classmethod
    def from_name(cls, name: str) -> DriverNames:
        if not _NAME.match(name):
            raise InvalidParameterError(
                f"invalid driver name {name!r}: lowercase letters, digits, '-' and '_', starting with a letter"
            )
        package = f"{name.replace('-', '_')}_driver"
        if keyword.iskeyword(package):  # cannot happen with the suffix, kept as the rule it is
            raise InvalidParameterError(f"invalid driver name {name!r}: {package} is a Python keyword")
        return cls(name=name, package=package, project=f"netsim-{name}")

    def fill(self, text: str) -> str:
        return (
            text.replace("{{name}}", self.name)
            .replace("{{package}}", self.package)
            .replace("{{project}}", self.project)
        )

    def target_path(self, relative: str) -> str:
        """``package/driver.py.tmpl`` → ``<package>/driver.py``; ``NAME`` → the driver name."""
        parts = relative[: -len(SUFFIX)].split("/")
        if parts[0] == "package":
            parts[0] = self.package
        return "/".join(part.replace("NAME", self.name) for part in parts)


def _template_files(root: Traversable, prefix: str = "") -> list[tuple[str, Traversable]]:
    """``(relative path, file)`` for every ``*.tmpl`` under ``root``, sorted."""
    found: list[tuple[str, Traversable]] = []
    for entry in root.iterdir():
        relative = f"{prefix}{entry.name}"
        if entry.is_dir():
            found.extend(_template_files(entry, f"{relative}/"))
        elif entry.name.endswith(SUFFIX):
            found.append((relative, entry))
    return sorted(found, key=lambda item: item[0])


def render(name: str, directory: Path) -> list[Path]:
    """Write the project for driver ``name`` into ``directory`` (created; it
    must be empty or absent). Returns the files written, sorted."""
    names = DriverNames.from_name(name)
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise ConflictError(f"{directory} exists and is not an empty directory: choose another with --dir")
    files = _template_files(resources.files(TEMPLATE_PACKAGE).joinpath(TEMPLATE_DIR))
    if not files:
        raise InvalidParameterError(f"the driver template is missing from {TEMPLATE_PACKAGE} (a broken install?)")
    written = []
    for relative, source in files:
        target = directory / names.target_path(relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(names.fill(source.read_text(encoding="utf-8")), encoding="utf-8")
        written.append(target)
    return sorted(written)


def add_parser(sub: argparse._SubParsersAction[Any]) -> None:
    """The ``new-driver`` subcommand's arguments."""
    parser = sub.add_parser(
        "new-driver",
        help="write a driver project (package, entry point, scenario, tests) that passes the conformance suite",
    )
    parser.add_argument("name", help="the driver's name: lowercase letters, digits, '-' and '_'")
    parser.add_argument("--dir", metavar="DIR", help="where to write it (default: ./NAME); must be empty or absent")


def cmd_new_driver(args: argparse.Namespace) -> int:
    directory = Path(args.dir) if args.dir else Path(args.name)
    written = render(args.name, directory)
    names = DriverNames.from_name(args.name)
    for path in written:
        print(path)
    print(
        f"\nnext: cd {directory} && pip install -e '.[test]' && pytest\n"
        f"      (the conformance suite alone: pytest --pyargs netsim.conformance --netsim-driver={names.name})"
    )
    return 0
