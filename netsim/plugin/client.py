"""A client of Docker's plugin protocol: JSON over HTTP on a unix socket or TCP.

Unlike Docker's client (which retries for ~15 s and has no timeout on legacy
plugins), every call here has a deadline (default 5 s) and connection
attempts are retried a bounded number of times with exponential backoff. Only
a failure to *connect* is retried: once a request may have reached the plugin
it is never sent again, since most plugin calls are not idempotent.

Idle keep-alive connections are reused; one the plugin closed meanwhile is
noticed before use (it polls readable) and replaced, which is the one case a
request is known not to have been received.
"""

from __future__ import annotations

import ctypes
import json
import os
import socket
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from netsim.errors import InvalidParameterError, PluginProtocolError, PluginUnavailableError
from netsim.plugin.codec import ACCEPT, ACTIVATE, Fields
from netsim.plugin.errors import KIND_FIELD, reply_error
from netsim.plugin.wire import BodyTooLarge, Connection

MIB = 1024 * 1024
_CLONE_NEWNET = 0x40000000
# Keep this many idle connections per plugin; more are closed after use.
_MAX_IDLE = 4


@dataclass(frozen=True)
class ClientConfig:
    """Timeouts and limits of one plugin client (all seconds / bytes)."""

    timeout: float = 5.0
    retries: int = 3
    backoff: float = 0.05
    max_backoff: float = 1.0
    max_body: int = 4 * MIB

    def __post_init__(self) -> None:
        if not self.timeout > 0:
            raise InvalidParameterError(f"plugin timeout must be positive, got {self.timeout!r}")
        if self.retries < 0 or self.backoff < 0 or self.max_backoff < 0:
            raise InvalidParameterError("plugin retries and backoff must not be negative")
        if self.max_body < 1:
            raise InvalidParameterError(f"plugin max_body must be positive, got {self.max_body!r}")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> ClientConfig:
        """From a config mapping such as ``{"timeout": 2, "retries": 1}``."""
        if not data:
            return cls()
        known = {"timeout", "retries", "backoff", "max_backoff", "max_body"}
        unknown = set(data) - known
        if unknown:
            raise InvalidParameterError(f"unknown plugin client option(s) {sorted(unknown)}: expected {sorted(known)}")
        try:
            values = {key: (int if key in ("retries", "max_body") else float)(value) for key, value in data.items()}
        except (TypeError, ValueError) as exc:
            raise InvalidParameterError(f"invalid plugin client option: {exc}") from exc
        return cls(**values)  # type: ignore[arg-type]


@dataclass(frozen=True)
class PluginAddress:
    """Where a plugin listens: ``unix:///path.sock`` or ``tcp://host:port``.

    >>> PluginAddress.parse("unix:///run/docker/plugins/weave.sock").path
    '/run/docker/plugins/weave.sock'
    >>> str(PluginAddress.parse("tcp://127.0.0.1:8080"))
    'tcp://127.0.0.1:8080'
    """

    scheme: str
    path: str = ""
    host: str = ""
    port: int = 0
    #: for tcp: the network namespace file to connect from (a plugin listening
    #: on a simulated host's loopback); empty: this process's namespace
    netns: str = ""

    @classmethod
    def parse(cls, text: str) -> PluginAddress:
        if not isinstance(text, str) or "://" not in text:
            raise InvalidParameterError(f"invalid plugin address {text!r}: expected unix:///path or tcp://host:port")
        parts = urlsplit(text)
        if parts.scheme == "unix":
            path = parts.netloc + parts.path  # unix://relative/path is tolerated like Docker does
            if not path:
                raise InvalidParameterError(f"invalid plugin address {text!r}: no socket path")
            return cls("unix", path=path)
        if parts.scheme in ("tcp", "http"):
            try:
                port = parts.port
            except ValueError as exc:
                raise InvalidParameterError(f"invalid plugin address {text!r}: {exc}") from exc
            if not parts.hostname or not port:
                raise InvalidParameterError(f"invalid plugin address {text!r}: expected tcp://host:port")
            return cls("tcp", host=parts.hostname, port=port)
        raise InvalidParameterError(f"unsupported plugin address scheme {parts.scheme!r} in {text!r} (unix or tcp)")

    def __str__(self) -> str:
        return f"unix://{self.path}" if self.scheme == "unix" else f"tcp://{self.host}:{self.port}"


class _ConnectFailed(Exception):
    """Raised inside the client when no connection could be made (retryable)."""


class PluginConnectError(PluginUnavailableError):
    """No connection could be made: the request was certainly not sent."""


class PluginClient:
    """Calls one plugin. Thread-safe; each call uses its own connection.

    ``call`` costs one HTTP round trip on a kept-alive connection; connect
    failures cost at most ``retries`` extra attempts and the sum of their
    backoffs, always within the call's timeout.
    """

    def __init__(self, name: str, address: str | PluginAddress, config: ClientConfig | None = None) -> None:
        self.name = name
        self.address = address if isinstance(address, PluginAddress) else PluginAddress.parse(address)
        self.config = config or ClientConfig()
        self._idle: list[Connection] = []
        self._lock = threading.Lock()
        # Docker's client names every unix-socket plugin host "plugin.sock"
        self._host = "plugin.sock" if self.address.scheme == "unix" else f"{self.address.host}:{self.address.port}"
        #: what /Plugin.Activate answered, once it has been called (Docker activates once)
        self.implements: tuple[str, ...] | None = None

    def __repr__(self) -> str:
        return f"PluginClient({self.name!r}, {str(self.address)!r})"

    # -- public -------------------------------------------------------------

    def activate(self) -> list[str]:
        """``/Plugin.Activate``: the subsystems the plugin implements."""
        reply = self.call(ACTIVATE)
        assert reply is not None  # not optional: a 404 raised already
        try:
            implements = Fields(reply, "Activate reply").items("Implements")
            if not all(isinstance(item, str) for item in implements):
                raise InvalidParameterError("Activate reply: Implements must be a list of strings")
        except InvalidParameterError as exc:
            raise PluginProtocolError(str(exc), plugin=self.name, call=ACTIVATE) from exc
        self.implements = tuple(implements)
        return implements

    def require(self, subsystem: str, implements: Sequence[str] | None = None) -> None:
        """Activate (unless ``implements`` is given or this client activated
        already) and insist on ``subsystem``."""
        if implements is None:
            implements = self.implements if self.implements is not None else self.activate()
        if subsystem not in implements:
            raise PluginProtocolError(
                f"plugin implements {list(implements)}, not {subsystem}", plugin=self.name, call=ACTIVATE
            )

    def call(
        self, method: str, args: Mapping[str, Any] | None = None, *, optional: bool = False
    ) -> dict[str, Any] | None:
        """POST ``/<method>`` with ``args`` as JSON (an empty body when None).

        Returns the decoded reply object, or None when ``optional`` and the
        plugin answers 404 (the call is not implemented). Raises
        PluginUnavailableError (unreachable, timed out, died mid-call),
        PluginProtocolError (reply not a JSON object, too big) or a
        PluginReplyError (the plugin reported an error).
        """
        body = b"" if args is None else self._encode(method, args)
        deadline = time.monotonic() + self.config.timeout
        conn = self._checkout(method, deadline)
        try:
            status, raw = self._exchange(conn, method, body, deadline)
        except BaseException:
            conn.close()
            raise
        return self._interpret(method, status, raw, optional)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    # -- internals ----------------------------------------------------------

    def _encode(self, method: str, args: Mapping[str, Any]) -> bytes:
        try:
            return json.dumps(args, separators=(",", ":")).encode()
        except (TypeError, ValueError) as exc:
            raise InvalidParameterError(f"{self.name}/{method}: arguments are not JSON-serializable: {exc}") from exc

    def _connect(self, timeout: float) -> Connection:
        if self.address.scheme == "tcp":
            if self.address.netns:
                sock = _connect_in_namespace(self.address, timeout)
            else:
                sock = socket.create_connection((self.address.host, self.address.port), timeout=timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return Connection(sock)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect(self.address.path)
        except BaseException:
            sock.close()
            raise
        return Connection(sock)

    def _reuse_idle(self) -> Connection | None:
        while True:
            with self._lock:
                if not self._idle:
                    return None
                conn = self._idle.pop()
            if not conn.closed_by_peer():
                return conn
            conn.close()

    def _checkout(self, method: str, deadline: float) -> Connection:
        reused = self._reuse_idle()
        if reused is not None:
            return reused
        delay = self.config.backoff
        attempt = 0
        while True:
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise _ConnectFailed("timed out")
                return self._connect(remaining)
            except (OSError, _ConnectFailed) as exc:
                attempt += 1
                if attempt > self.config.retries or time.monotonic() + delay >= deadline:
                    raise PluginConnectError(
                        f"cannot connect to {self.address} after {attempt} attempt(s): {exc}",
                        plugin=self.name,
                        call=method,
                    ) from exc
                time.sleep(delay)
                delay = min(delay * 2, self.config.max_backoff)

    def _exchange(self, conn: Connection, method: str, body: bytes, deadline: float) -> tuple[int, bytes]:
        # headers and body in one write: the plugin wakes once per request
        head = (
            f"POST /{method} HTTP/1.1\r\nHost: {self._host}\r\nAccept: {ACCEPT}\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        try:
            reply = conn.exchange(head.encode() + body, deadline, self.config.max_body)
        except BodyTooLarge as exc:
            raise PluginProtocolError(str(exc), plugin=self.name, call=method) from exc
        except TimeoutError as exc:
            raise PluginUnavailableError(
                f"no reply within {self.config.timeout:g} s (timed out)", plugin=self.name, call=method
            ) from exc
        except OSError as exc:
            raise PluginUnavailableError(
                f"connection lost mid-call: {type(exc).__name__}: {exc}", plugin=self.name, call=method
            ) from exc
        if reply.will_close:
            conn.close()
        else:
            self._checkin(conn)
        return reply.status, reply.body

    def _checkin(self, conn: Connection) -> None:
        with self._lock:
            if len(self._idle) < _MAX_IDLE:
                self._idle.append(conn)
                return
        conn.close()

    def _interpret(self, method: str, status: int, raw: bytes, optional: bool) -> dict[str, Any] | None:
        if status == 404 and optional:
            return None
        try:
            reply = json.loads(raw) if raw.strip() else None
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            problem = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
            if status == 200:
                raise PluginProtocolError(f"reply is not valid JSON: {problem}", plugin=self.name, call=method) from exc
            reply = None
        if status != 200:
            message = _error_text(reply) or raw[:200].decode(errors="replace").strip() or "(empty body)"
            kind = "not-implemented" if status == 404 else _kind_of(reply)
            raise reply_error(f"HTTP {status}: {message}", kind=kind, plugin=self.name, call=method)
        if not isinstance(reply, dict):
            got = "an empty body" if reply is None else f"JSON {type(reply).__name__}"
            raise PluginProtocolError(f"reply must be a JSON object, got {got}", plugin=self.name, call=method)
        message = _error_text(reply)
        if message:
            raise reply_error(message, kind=_kind_of(reply), plugin=self.name, call=method)
        return reply


def _error_text(reply: object) -> str:
    """A reply's error text: ``Err`` (network drivers) or ``Error`` (IPAM)."""
    if not isinstance(reply, dict):
        return ""
    for key in ("Err", "Error"):
        value = reply.get(key)
        if isinstance(value, str) and value:
            return value
        if value not in (None, ""):
            return json.dumps(value)[:200]
    return ""


def _kind_of(reply: object) -> str:
    kind = reply.get(KIND_FIELD) if isinstance(reply, dict) else None
    return kind if isinstance(kind, str) else ""


def _connect_in_namespace(address: PluginAddress, timeout: float) -> socket.socket:
    """A TCP connection made from inside ``address.netns``.

    A socket belongs to the network namespace it was created in, so a short
    thread joins the namespace (``setns`` affects only that thread), creates
    and connects the socket, and hands it back; the caller's thread and the
    rest of the process stay where they are.
    """
    made: list[socket.socket] = []
    failed: list[BaseException] = []

    def inside() -> None:
        try:
            fd = os.open(address.netns, os.O_RDONLY)
            try:
                if ctypes.CDLL(None, use_errno=True).setns(fd, _CLONE_NEWNET) != 0:
                    code = ctypes.get_errno()
                    raise OSError(code, f"setns into {address.netns}: {os.strerror(code)}")
            finally:
                os.close(fd)
            made.append(socket.create_connection((address.host, address.port), timeout=timeout))
        except BaseException as exc:  # handed back to the caller's thread
            failed.append(exc)

    thread = threading.Thread(target=inside, name="netsim-plugin-connect", daemon=True)
    thread.start()
    thread.join()
    if failed:
        raise failed[0]
    return made[0]


# Activated clients per registry (a controller's): Docker keeps one activated
# plugin per daemon and hands it to every subsystem it implements. netsim's
# remote network and IPAM init functions run one after the other on the same
# registry; this memo lets the second reuse the first's activation. Entries
# live exactly as long as their registry (weak keys), so controllers never
# share a client and nothing outlives a controller.
_ACTIVATED: weakref.WeakKeyDictionary[object, dict[tuple[str, str], PluginClient]] = weakref.WeakKeyDictionary()
_ACTIVATED_LOCK = threading.Lock()


def shared_client(registry: object, name: str, address: PluginAddress, config: ClientConfig) -> PluginClient:
    """The client of plugin ``name`` at ``address`` for ``registry``: the one
    already made (and activated) for the plugin's other subsystem if there is
    one, else a new one remembered for it. One ``/Plugin.Activate`` per
    plugin per controller, as Docker."""
    key = (name, str(address))
    with _ACTIVATED_LOCK:
        try:
            clients = _ACTIVATED.setdefault(registry, {})
        except TypeError:  # a registry that cannot be weakly referenced: no sharing
            return PluginClient(name, address, config)
        client = clients.get(key)
        if client is None or client.config != config:
            client = clients[key] = PluginClient(name, address, config)
        return client
