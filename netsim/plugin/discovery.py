"""Find plugins the way Docker's legacy plugin registry does, in directories
of our choosing (Docker's are /run/docker/plugins, /etc/docker/plugins and
/usr/lib/docker/plugins; netsim never looks there unless told to).

For a plugin ``name`` in a directory ``dir`` the candidates are, in order:
``dir/name.sock`` and ``dir/name/name.sock`` (a unix socket),
``dir/name.spec`` and ``dir/name/name.spec`` (one URL, scheme required),
``dir/name.json`` and ``dir/name/name.json`` (``{"Name","Addr","TLSConfig"}``).
Sockets in any directory win over spec files, as in Docker. The plugin's
name is always the file's name, never the ``Name`` field of a ``.json``.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from netsim.errors import InvalidParameterError, NotFoundError
from netsim.plugin.client import ClientConfig, PluginAddress


@dataclass(frozen=True)
class PluginSpec:
    """A plugin to use: its name, where it listens, and where we learnt it."""

    name: str
    address: PluginAddress
    source: str = "config"


def _candidates(directory: Path, name: str, ext: str) -> list[Path]:
    return [directory / f"{name}{ext}", directory / name / f"{name}{ext}"]


def _is_socket(path: Path) -> bool:
    try:
        return stat.S_ISSOCK(path.stat().st_mode)
    except OSError:
        return False


def read_spec_file(path: Path) -> PluginAddress:
    """Read a ``.spec`` (one URL) or ``.json`` (``{"Addr": URL}``) file."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise InvalidParameterError(f"plugin spec {path}: cannot read: {exc}") from exc
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise InvalidParameterError(f"plugin spec {path}: invalid JSON: {exc}") from exc
        if not isinstance(data, dict) or not isinstance(data.get("Addr"), str):
            raise InvalidParameterError(f"plugin spec {path}: expected an object with a string Addr")
        if data.get("TLSConfig"):
            raise InvalidParameterError(f"plugin spec {path}: TLSConfig is not supported by netsim")
        url = data["Addr"]
    else:
        url = text.strip()
    if "://" not in url:
        raise InvalidParameterError(f"plugin spec {path}: {url!r} has no scheme (unknown protocol)")
    try:
        return PluginAddress.parse(url)
    except InvalidParameterError as exc:
        raise InvalidParameterError(f"plugin spec {path}: {exc}") from exc


def find_plugin(name: str, directories: Sequence[str | os.PathLike[str]]) -> PluginSpec:
    """Look one plugin up by name; NotFoundError when no directory has it."""
    if not name or "/" in name or name in (".", ".."):
        raise InvalidParameterError(f"invalid plugin name {name!r}")
    dirs = [Path(d) for d in directories]
    for directory in dirs:
        for path in _candidates(directory, name, ".sock"):
            if _is_socket(path):
                return PluginSpec(name, PluginAddress("unix", path=str(path)), str(path))
    for directory in dirs:
        for ext in (".spec", ".json"):
            for path in _candidates(directory, name, ext):
                if path.is_file():
                    return PluginSpec(name, read_spec_file(path), str(path))
    raise NotFoundError(f"plugin {name!r} not found in {[str(d) for d in dirs]}")


def _names_in(directory: Path) -> Iterable[str]:
    try:
        entries = sorted(directory.iterdir())
    except OSError:
        return []
    names = []
    for entry in entries:
        if entry.suffix in (".sock", ".spec", ".json") and not entry.is_dir():
            names.append(entry.stem)
        elif entry.is_dir() and any((entry / f"{entry.name}{ext}").exists() for ext in (".sock", ".spec", ".json")):
            names.append(entry.name)
    return names


def scan(directories: Sequence[str | os.PathLike[str]]) -> list[PluginSpec]:
    """Every plugin the directories hold, each name once, sorted by name.

    A directory that does not exist holds nothing; a broken spec file raises
    InvalidParameterError naming the file.
    """
    names = sorted({name for directory in directories for name in _names_in(Path(directory))})
    found = []
    for name in names:
        try:
            found.append(find_plugin(name, directories))
        except NotFoundError:
            continue  # e.g. a stray name.sock that is a plain file, not a socket
    return found


def plugins_from_config(config: Mapping[str, Any]) -> tuple[list[PluginSpec], ClientConfig]:
    """The plugins a registry config names: ``plugins`` (explicit
    ``{"name", "address"}`` entries) then everything found in ``plugin_dirs``
    not named already; plus the client settings under ``plugin_client``.

    Keys are read from ``config`` itself or from ``config["options"]``.
    """
    options = config.get("options")
    merged: dict[str, Any] = dict(options) if isinstance(options, Mapping) else {}
    merged.update({k: v for k, v in config.items() if k in ("plugins", "plugin_dirs", "plugin_client")})
    client = ClientConfig.from_mapping(merged.get("plugin_client"))
    specs: list[PluginSpec] = []
    for index, entry in enumerate(merged.get("plugins") or []):
        if not isinstance(entry, Mapping) or not isinstance(entry.get("address"), str | PluginAddress):
            raise InvalidParameterError(f"plugins[{index}]: expected {{'name': ..., 'address': 'unix:///...'}}")
        given = entry["address"]
        # a PluginAddress may carry what a URL cannot (the namespace to connect from)
        address = given if isinstance(given, PluginAddress) else PluginAddress.parse(given)
        name = entry.get("name") or default_name(address)
        if not isinstance(name, str):
            raise InvalidParameterError(f"plugins[{index}]: name must be a string")
        specs.append(PluginSpec(name, address))
    dirs = merged.get("plugin_dirs") or []
    if isinstance(dirs, str) or not all(isinstance(d, str | os.PathLike) for d in dirs):
        raise InvalidParameterError(f"plugin_dirs must be a list of directories, got {dirs!r}")
    named = {spec.name for spec in specs}
    specs.extend(spec for spec in scan(dirs) if spec.name not in named)
    return specs, client


def default_name(address: PluginAddress | str) -> str:
    """A plugin's name when none is given: the socket file's stem, or host:port.

    >>> default_name("unix:///run/plugins/weave.sock")
    'weave'
    """
    parsed = address if isinstance(address, PluginAddress) else PluginAddress.parse(address)
    if parsed.scheme == "unix":
        return Path(parsed.path).stem or parsed.path
    return f"{parsed.host}:{parsed.port}"
