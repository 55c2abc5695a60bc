"""Store URLs (libkv's style): parse them, refuse bad ones clearly, open the store.

==========================================  ===================================
``memory://``                               embedded, in-process (the default)
``sqlite:///abs/state.db``                  one file, local scope (boltdb's role)
``sqlite://state.db``                       relative to the current directory
``etcd://host:port[,host:port][/prefix]``   etcd v3 (port defaults to 2379)
``zk://host:port[,host:port][/chroot]``     ZooKeeper (port defaults to 2181)
==========================================  ===================================

Every URL takes ``?timeout=SECONDS`` (how long one call may wait for its
server, default 2); ``sqlite://`` also takes ``?poll=SECONDS`` (how often its
watches read the change log, default 0.05).

>>> parse_store_url("etcd://127.0.0.1:2379,10.0.0.2/netsim?timeout=1.5")
StoreURL(scheme='etcd', endpoints=(('127.0.0.1', 2379), ('10.0.0.2', 2379)), path='netsim', timeout=1.5, poll=0.05)
>>> parse_store_url("consul://127.0.0.1:8500")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
netsim.errors.InvalidParameterError: store URL 'consul://127.0.0.1:8500': unsupported store scheme 'consul': ...
"""

from __future__ import annotations

import ipaddress
import math
import re
from dataclasses import dataclass

from netsim.errors import InvalidParameterError
from netsim.store.base import KVStore

DEFAULT_PORTS = {"etcd": 2379, "zk": 2181}
DEFAULT_TIMEOUT = 2.0
DEFAULT_POLL = 0.05

_UNSUPPORTED = {
    "consul": "no Consul server can be installed on netsim's machines, so netsim ships no untested Consul store"
    " (use etcd:// or zk://)",
    "boltdb": "netsim's local store is sqlite:// (one file, like boltdb)",
}
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
_PATH_SEGMENT = re.compile(r"^[A-Za-z0-9._-]+$")


@dataclass(frozen=True)
class StoreURL:
    """A parsed store URL. ``path`` is the sqlite file, or the etcd prefix /
    ZooKeeper chroot without its leading slash ("" when none)."""

    scheme: str
    endpoints: tuple[tuple[str, int], ...]
    path: str
    timeout: float = DEFAULT_TIMEOUT
    poll: float = DEFAULT_POLL


def _bad(url: str, why: str) -> InvalidParameterError:
    return InvalidParameterError(f"store URL {url!r}: {why}")


def parse_store_url(url: str) -> StoreURL:
    """Parse ``url``; anything malformed raises :class:`InvalidParameterError`
    naming the URL and the problem (never another exception)."""
    if not isinstance(url, str):
        raise InvalidParameterError(f"store URL must be a string, got {type(url).__name__}")
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise _bad(
            url, "expected scheme://..., e.g. memory://, sqlite:///path/state.db, etcd://host:port, zk://host:port"
        )
    scheme = scheme.lower()
    if scheme in _UNSUPPORTED:
        raise _bad(url, f"unsupported store scheme {scheme!r}: {_UNSUPPORTED[scheme]}")
    if scheme not in ("memory", "sqlite", "etcd", "zk"):
        raise _bad(url, f"unsupported store scheme {scheme!r}: expected memory, sqlite, etcd or zk")
    rest, _, query = rest.partition("?")
    timeout, poll = _parse_query(url, scheme, query)
    if scheme == "memory":
        if rest:
            raise _bad(url, "memory:// takes nothing after the scheme")
        return StoreURL("memory", (), "", timeout, poll)
    if scheme == "sqlite":
        return StoreURL("sqlite", (), _sqlite_path(url, rest), timeout, poll)
    authority, _, path = rest.partition("/")
    endpoints = tuple(_endpoint(url, part, DEFAULT_PORTS[scheme]) for part in authority.split(","))
    return StoreURL(scheme, endpoints, _prefix_path(url, path), timeout, poll)


def _parse_query(url: str, scheme: str, query: str) -> tuple[float, float]:
    values = {"timeout": DEFAULT_TIMEOUT, "poll": DEFAULT_POLL}
    if not query:
        return values["timeout"], values["poll"]
    for item in query.split("&"):
        name, eq, text = item.partition("=")
        if name not in values or (name == "poll" and scheme != "sqlite"):
            allowed = "timeout, poll" if scheme == "sqlite" else "timeout"
            raise _bad(url, f"unknown option {name!r} (allowed: {allowed})")
        try:
            number = float(text) if eq else math.nan
        except ValueError:
            number = math.nan
        if not (0 < number <= 3600):
            raise _bad(url, f"option {name} must be a number of seconds in (0, 3600], got {text!r}")
        values[name] = number
    return values["timeout"], values["poll"]


def _sqlite_path(url: str, rest: str) -> str:
    if not rest or rest == "/":
        raise _bad(url, "sqlite needs a file: sqlite:///abs/path.db or sqlite://relative.db")
    if "\x00" in rest:
        raise _bad(url, "the file name contains a NUL byte")
    if rest.endswith("/"):
        raise _bad(url, "the sqlite path names a directory, not a file")
    return rest


def _endpoint(url: str, part: str, default_port: int) -> tuple[str, int]:
    if not part:
        raise _bad(url, "empty host (expected host[:port][,host[:port]])")
    if part.startswith("["):
        host, bracket, after = part[1:].partition("]")
        if not bracket or (after and not after.startswith(":")):
            raise _bad(url, f"malformed IPv6 endpoint {part!r} (expected [addr]:port)")
        port_text = after[1:] if after else ""
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise _bad(url, f"{host!r} is not an IPv6 address") from None
    else:
        host, colon, port_text = part.partition(":")
        if not _HOSTNAME.match(host):
            raise _bad(url, f"invalid host {host!r}")
        if colon and not port_text:
            raise _bad(url, f"empty port after {host!r}")
    if not port_text:
        return host, default_port
    if not port_text.isascii() or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise _bad(url, f"invalid port {port_text!r} (expected 1-65535)")
    return host, int(port_text)


def _prefix_path(url: str, path: str) -> str:
    path = path.rstrip("/")
    if not path:
        return ""
    for segment in path.split("/"):
        if not _PATH_SEGMENT.match(segment) or segment in (".", ".."):
            raise _bad(url, f"invalid prefix segment {segment!r} (letters, digits, '.', '_', '-')")
    return path


def open_store(url: str) -> KVStore:
    """Open the store ``url`` names (see the module docstring for the forms)."""
    parsed = parse_store_url(url)
    if parsed.scheme == "memory":
        from netsim.store.memory import MemoryStore

        return MemoryStore(url)
    if parsed.scheme == "sqlite":
        from netsim.store.sqlite import SqliteStore

        return SqliteStore(url, parsed)
    if parsed.scheme == "etcd":
        from netsim.store.etcd import EtcdStore

        return EtcdStore(url, parsed)
    from netsim.store.zookeeper import ZooKeeperStore

    return ZooKeeperStore(url, parsed)
