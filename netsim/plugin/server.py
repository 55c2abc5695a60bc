"""Serve a netsim Driver and/or Ipam as a Docker plugin over a unix socket
(or loopback TCP), answering what Docker's engine sends.

>>> from netsim.plugin.server import PluginServer
>>> # with PluginServer(driver=MyDriver(), socket_path="/run/docker/plugins/my.sock") as server:
>>> #     ...  # Docker (or drivers.remote) talks to server.address

The server is threaded (one thread per connection, HTTP/1.1 keep-alive) so
concurrent callers do not queue behind a slow call; the served objects must
be thread-safe if they are called concurrently. ``stop()`` closes every
open connection and removes the socket file it made (only that file).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import socket
import socketserver
import stat
import threading
import time
from http.server import BaseHTTPRequestHandler
from types import TracebackType
from typing import Any, cast

from netsim.driverapi import Capability, Driver
from netsim.errors import ConflictError, InvalidParameterError, UnavailableError
from netsim.ipamapi import Ipam
from netsim.plugin.codec import REPLY_CONTENT_TYPE
from netsim.plugin.handlers import PluginHandlers

LOG = logging.getLogger("netsim.plugin")

MAX_REQUEST_BODY = 4 * 1024 * 1024
#: A kept-alive connection with no request for this long is closed.
IDLE_TIMEOUT = 60.0
#: From a request's first byte to its last: a client trickling a byte at a time
#: is cut off here (a per-read timeout would let it hold a thread forever).
REQUEST_DEADLINE = 10.0
# sockaddr_un.sun_path is 108 bytes including the terminating NUL
_MAX_SOCKET_PATH = 107


class _DeadlineReader(io.RawIOBase):
    """The connection's reading side with two clocks: up to IDLE_TIMEOUT for a
    request to start, then REQUEST_DEADLINE for all of it (line, headers,
    body); each recv waits only for what is left. ``next_request()`` rearms."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__()
        self.sock = sock
        self.deadline: float | None = None

    def readable(self) -> bool:
        return True

    def next_request(self) -> None:
        self.deadline = None

    def readinto(self, buffer: Any) -> int:
        if self.deadline is None:
            self.sock.settimeout(IDLE_TIMEOUT)
        else:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"request not complete within {REQUEST_DEADLINE:g} s")
            self.sock.settimeout(left)
        count = self.sock.recv_into(buffer)
        if count and self.deadline is None:
            self.deadline = time.monotonic() + REQUEST_DEADLINE
        return count


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "netsim-plugin"
    timeout = IDLE_TIMEOUT
    # buffered: http.server flushes after each request, so a reply is one write
    wbufsize = 64 * 1024
    server: _Serving

    def setup(self) -> None:
        super().setup()
        self._reader = _DeadlineReader(self.connection)
        self.rfile = io.BufferedReader(self._reader)
        self.server.track(self.connection, True)

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        finally:
            self._reader.next_request()

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        if self.request_version == "HTTP/0.9":  # http.server would serve it: no status line, no headers
            self.send_error(400, "HTTP/0.9 requests are not supported")
            return False
        return True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (bad request line, HTTP/0.9 or 2.0, unknown
        method, oversized or too many headers) in Docker's JSON shape, not HTML."""
        if self.request_version not in ("HTTP/1.0", "HTTP/1.1"):
            self.request_version = "HTTP/1.1"  # 0.9 replies have no status line or headers
        with contextlib.suppress(OSError):
            self._reply(code, {"Err": message or self.responses.get(code, ("error",))[0]}, close=True)

    def finish(self) -> None:
        self.server.track(self.connection, False)
        with contextlib.suppress(OSError):
            super().finish()

    def do_POST(self) -> None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self._reply(411, {"Err": "chunked request bodies are not supported; send Content-Length"}, close=True)
            return
        lengths = self.headers.get_all("Content-Length") or []
        if len(lengths) > 1:  # which one frames the body? (request smuggling): malformed
            self._reply(400, {"Err": "more than one Content-Length header"}, close=True)
            return
        try:
            length = int(lengths[0]) if lengths and lengths[0].strip() else 0
        except ValueError:
            self._reply(400, {"Err": "invalid Content-Length"}, close=True)
            return
        if length < 0 or not lengths[0].strip().isdigit():
            self._reply(400, {"Err": f"invalid Content-Length {lengths[0]!r}"}, close=True)
            return
        if length > MAX_REQUEST_BODY:
            self._reply(413, {"Err": f"request body of {length} bytes exceeds {MAX_REQUEST_BODY}"}, close=True)
            return
        raw = self.rfile.read(length) if length else b""
        if len(raw) < length:
            self.close_connection = True  # the client went away mid-body: nobody to answer
            return
        try:
            body = json.loads(raw) if raw.strip() else None
        except (UnicodeDecodeError, ValueError) as exc:
            self._reply(400, {"Err": f"request body is not valid JSON: {exc}"})
            return
        except RecursionError:
            self._reply(400, {"Err": "request body is not valid JSON: nested too deeply"}, close=True)
            return
        status, reply = self.server.handlers.dispatch(self.path.lstrip("/").split("?", 1)[0], body)
        self._reply(status, reply)

    def _not_allowed(self) -> None:
        self._reply(405, {"Err": f"method {self.command} not allowed: plugin calls are POST"}, close=True)

    do_GET = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = do_PATCH = do_TRACE = do_CONNECT = _not_allowed

    def _reply(self, status: int, reply: dict[str, Any], *, close: bool = False) -> None:
        data = json.dumps(reply, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", REPLY_CONTENT_TYPE)
        self.send_header("Content-Length", str(len(data)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def address_string(self) -> str:
        return str(self.client_address or "unix-peer")

    def log_message(self, format: str, *args: Any) -> None:
        LOG.debug("plugin %s: " + format, self.server.name, *args)


class _Serving(socketserver.BaseServer):
    """What the handler needs from its server (mixed into both kinds)."""

    handlers: PluginHandlers
    name: str
    _open: set[socket.socket]
    _open_lock: threading.Lock

    def track(self, conn: socket.socket, alive: bool) -> None:
        with self._open_lock:
            if alive:
                self._open.add(conn)
            else:
                self._open.discard(conn)

    def drop_connections(self) -> None:
        with self._open_lock:
            conns = list(self._open)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


def system_backlog() -> int:
    """The largest listen backlog the system allows (``net.core.somaxconn``).

    Python's socketserver listens with a backlog of 5: 32 Docker clients
    connecting at once saw ~35 refusals (EAGAIN on a unix socket, each a 1 s
    retry in Docker's client). The kernel clamps any backlog to somaxconn, so
    asking for exactly that is "as many as the system allows".
    """
    try:
        with open("/proc/sys/net/core/somaxconn", encoding="ascii") as stream:
            return max(int(stream.read()), socket.SOMAXCONN)
    except (OSError, ValueError):
        return socket.SOMAXCONN


_BACKLOG = system_backlog()


class _UnixServer(_Serving, socketserver.ThreadingUnixStreamServer):
    daemon_threads = True
    request_queue_size = _BACKLOG


class _TCPServer(_Serving, socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = _BACKLOG


class PluginServer:
    """A Docker plugin serving ``driver`` (``/NetworkDriver.*``) and/or
    ``ipam`` (``/IpamDriver.*``); use as a context manager or start()/stop().

    ``capability`` is what GetCapabilities reports for the network driver
    (default local/local). Exactly one of ``socket_path`` (a unix socket
    path; a stale socket file there is replaced, a live one is a conflict)
    and ``tcp`` (``(host, port)``, port 0 for any) must be given.
    """

    def __init__(
        self,
        driver: Driver | None = None,
        ipam: Ipam | None = None,
        *,
        socket_path: str | os.PathLike[str] | None = None,
        tcp: tuple[str, int] | None = None,
        capability: Capability | None = None,
        name: str = "",
    ) -> None:
        if (socket_path is None) == (tcp is None):
            raise InvalidParameterError("give exactly one of socket_path and tcp")
        if socket_path is not None and len(os.fsencode(socket_path)) > _MAX_SOCKET_PATH:
            raise InvalidParameterError(f"socket path {str(socket_path)!r} is longer than {_MAX_SOCKET_PATH} bytes")
        self.handlers = PluginHandlers(driver, ipam, capability)
        self.socket_path = os.fspath(socket_path) if socket_path is not None else None
        self.tcp = tcp
        self.name = name or (os.path.basename(self.socket_path) if self.socket_path else "plugin")
        self._server: _UnixServer | _TCPServer | None = None
        self._thread: threading.Thread | None = None
        self._inode: int | None = None

    @property
    def address(self) -> str:
        """``unix:///path`` or ``tcp://host:port`` (the bound port once started)."""
        if self.socket_path is not None:
            return f"unix://{os.path.abspath(self.socket_path)}"
        if self._server is not None:
            host, port = cast(tuple[str, int], self._server.server_address)[:2]
            return f"tcp://{host}:{port}"
        assert self.tcp is not None
        return f"tcp://{self.tcp[0]}:{self.tcp[1]}"

    def _bind(self) -> _UnixServer | _TCPServer:
        server: _UnixServer | _TCPServer
        if self.socket_path is not None:
            _clear_stale_socket(self.socket_path)
            try:
                server = _UnixServer(self.socket_path, _RequestHandler, bind_and_activate=True)
            except OSError as exc:
                raise UnavailableError(f"cannot listen on {self.socket_path}: {exc}") from exc
            self._inode = os.stat(self.socket_path).st_ino
        else:
            assert self.tcp is not None
            try:
                server = _TCPServer(self.tcp, _RequestHandler, bind_and_activate=True)
            except OSError as exc:
                raise UnavailableError(f"cannot listen on {self.tcp}: {exc}") from exc
        server.handlers = self.handlers
        server.name = self.name
        server._open = set()
        server._open_lock = threading.Lock()
        return server

    def start(self) -> PluginServer:
        """Listen and serve in a background thread; returns self."""
        if self._server is not None:
            raise ConflictError(f"plugin server {self.name} is already running")
        self._server = self._bind()
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"plugin-{self.name}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close open connections, remove our socket file."""
        server = self._server
        if server is None:
            return
        server.shutdown()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._close()

    def _close(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.drop_connections()
        server.server_close()
        if self.socket_path is not None and self._inode is not None:
            with contextlib.suppress(OSError):
                # only the file we bound: someone may have replaced it meanwhile
                if os.stat(self.socket_path).st_ino == self._inode:
                    os.unlink(self.socket_path)
            self._inode = None

    def __enter__(self) -> PluginServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _clear_stale_socket(path: str) -> None:
    """Remove a leftover socket nobody listens on; refuse anything else."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise ConflictError(f"{path} exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(0.5)
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return
    except OSError:
        pass
    finally:
        probe.close()
    raise ConflictError(f"{path}: another server is listening there")
