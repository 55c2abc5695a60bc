"""Hostile bytes on the plugin wire (issue 16, items 4 and 5).

Server: every reply is Docker's JSON shape (``{"Err": ...}`` with the plugin
content type), including the requests ``http.server`` answers in HTML; a body
nested 100,000 deep is a 400, not a dead handler thread; a request must be
complete within its deadline, not within a per-read timeout; two or negative
Content-Length headers are malformed.

Client: the deadline holds over the whole exchange even when the server sends
a byte at a time, and a reply nested 100,000 deep is a protocol error.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_plugin_helpers import MemoryDriver, short_dir

from drivers.remote import ClientConfig, RemoteDriver
from netsim.errors import NetsimError, PluginUnavailableError
from netsim.plugin import PluginServer
from netsim.plugin import server as server_module

JSON_TYPE = b"application/vnd.docker.plugins.v1+json"


@pytest.fixture
def served() -> Iterator[Path]:
    with short_dir() as path, PluginServer(driver=MemoryDriver(), socket_path=path / "p.sock"):
        yield path / "p.sock"


def raw_exchange(path: Path, data: bytes, timeout: float = 5.0) -> bytes:
    """Send ``data``, half-close, read everything the server sends back."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.connect(str(path))
    try:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        sock.close()


def parse(reply: bytes) -> tuple[int, dict[str, str], object]:
    head, _, body = reply.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ")[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.decode().partition(":") for line in lines[1:])}
    assert headers.get("content-type", "").encode() == JSON_TYPE, reply[:300]
    return status, headers, json.loads(body)


GARBAGE = {
    "garbage-line": b"\x00\x01\x02 nonsense\r\n\r\n",
    "http-0.9": b"GET /Plugin.Activate\r\n",
    "http-2.0": b"POST /Plugin.Activate HTTP/2.0\r\nContent-Length: 0\r\n\r\n",
    "options": b"OPTIONS / HTTP/1.1\r\nHost: p\r\n\r\n",
    "unknown-method": b"BREW /Plugin.Activate HTTP/1.1\r\nHost: p\r\n\r\n",
    "huge-header": b"POST /Plugin.Activate HTTP/1.1\r\nX: " + b"a" * 70_000 + b"\r\n\r\n",
    "many-headers": b"POST /Plugin.Activate HTTP/1.1\r\n" + b"".join(b"X%d: 1\r\n" % i for i in range(150)) + b"\r\n",
    "huge-line": b"POST /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n",
    "two-lengths": b"POST /Plugin.Activate HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
    "negative-length": b"POST /Plugin.Activate HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
    "deep-json": b"POST /NetworkDriver.CreateNetwork HTTP/1.1\r\nContent-Length: 200000\r\n\r\n"
    + b"[" * 100_000
    + b"]" * 100_000,
}


@pytest.mark.parametrize("name", sorted(GARBAGE))
def test_every_reply_is_docker_json(served: Path, name: str) -> None:
    status, _, body = parse(raw_exchange(served, GARBAGE[name]))
    assert 400 <= status < 600 and isinstance(body, dict) and body.get("Err"), (status, body)


def test_the_server_survives_garbage_and_keeps_serving(served: Path) -> None:
    for data in GARBAGE.values():
        raw_exchange(served, data)
    status, _, body = parse(raw_exchange(served, b"POST /Plugin.Activate HTTP/1.1\r\nContent-Length: 0\r\n\r\n"))
    assert (status, body) == (200, {"Implements": ["NetworkDriver"]})


def test_a_request_trickling_in_is_cut_at_its_deadline(served: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server_module, "REQUEST_DEADLINE", 1.0)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(str(served))
    started = time.monotonic()
    closed_after = None
    try:
        for byte in b"POST /Plugin.Activate HTTP/1.1\r\nContent-Length: 0\r\n":  # never finished
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                closed_after = time.monotonic() - started
                break
            time.sleep(0.2)  # every read is quick: only a whole-request deadline stops this
        if closed_after is None:
            sock.settimeout(5)
            assert sock.recv(65536) == b""  # closed without an answer to an unfinished request
            closed_after = time.monotonic() - started
    finally:
        sock.close()
    assert closed_after < 6, closed_after  # 1 s deadline; per-read timeouts would never fire


def _slow_server(path: Path, reply: bytes, byte_delay: float) -> threading.Thread:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(4)
    listener.settimeout(10)

    def serve() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            conn.recv(65536)
            if not byte_delay:
                conn.sendall(reply)
                time.sleep(1)  # keep it open while the client reads
                return
            for byte in reply:
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return
                time.sleep(byte_delay)
        listener.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def test_the_client_deadline_holds_over_a_trickling_reply() -> None:
    with short_dir() as path:
        reply = b"HTTP/1.1 200 OK\r\nX-Slow: " + b"y" * 200 + b"\r\n\r\n"  # one line, 10 s at 50 ms a byte
        _slow_server(path / "slow.sock", reply, byte_delay=0.05)
        started = time.monotonic()
        with pytest.raises(PluginUnavailableError, match="timed out"):
            RemoteDriver.connect(f"unix://{path}/slow.sock", config=ClientConfig(timeout=1.0, retries=0))
        assert time.monotonic() - started < 3  # ~1 s; a per-read timeout read the 10 s header line to its end


def test_a_reply_nested_too_deeply_is_a_plugin_error() -> None:
    with short_dir() as path:
        body = b"[" * 100_000 + b"]" * 100_000
        reply = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body
        _slow_server(path / "deep.sock", reply, byte_delay=0)
        with pytest.raises(NetsimError, match="nested"):
            RemoteDriver.connect(f"unix://{path}/deep.sock", config=ClientConfig(timeout=5, retries=0))
