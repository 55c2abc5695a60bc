"""The plugin protocol client against scripted, misbehaving plugins: every
failure is a PluginError of the right kind naming the plugin and the call."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_plugin_helpers import CLOSE, HANG, FakePlugin, Request, ThenClose, chunked_reply, http_reply, short_dir

from netsim.errors import (
    ConflictError,
    InvalidParameterError,
    NotFoundError,
    NotImplementedByDriverError,
    PluginError,
    PluginProtocolError,
    PluginReplyError,
    PluginUnavailableError,
)
from netsim.plugin.client import ClientConfig, PluginAddress, PluginClient, PluginConnectError
from netsim.plugin.codec import ACCEPT

FAST = ClientConfig(timeout=0.5, retries=2, backoff=0.01, max_backoff=0.02)


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    with short_dir() as path:
        yield path


def serve(sock_dir: Path, reply: object) -> FakePlugin:
    def behave(request: Request) -> bytes | str:
        return reply(request) if callable(reply) else reply  # type: ignore[return-value]

    return FakePlugin(sock_dir / "p.sock", behave)


def expect(exc_type: type[PluginError], plugin: FakePlugin, call: str = "NetworkDriver.Leave", **kw: object) -> str:
    client = PluginClient("misbehaving", plugin.address, FAST)
    try:
        with pytest.raises(exc_type) as info:
            client.call(call, {"NetworkID": "n", "EndpointID": "e"}, **kw)  # type: ignore[arg-type]
    finally:
        client.close()
    assert info.value.plugin == "misbehaving"
    assert info.value.call == call
    assert str(info.value).startswith(f"misbehaving/{call}: ")
    return str(info.value)


# -- addresses and config -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("unix:///run/p.sock", PluginAddress("unix", path="/run/p.sock")),
        ("tcp://127.0.0.1:9000", PluginAddress("tcp", host="127.0.0.1", port=9000)),
        ("http://localhost:80", PluginAddress("tcp", host="localhost", port=80)),
    ],
)
def test_address_parse(text: str, expected: PluginAddress) -> None:
    assert PluginAddress.parse(text) == expected


@pytest.mark.parametrize(
    "text", ["", "/run/p.sock", "unix://", "tcp://host", "tcp://:80", "ftp://x:1", "tcp://h:99999"]
)
def test_address_invalid(text: str) -> None:
    with pytest.raises(InvalidParameterError, match=r"plugin address|scheme"):
        PluginAddress.parse(text)


def test_client_config_from_mapping() -> None:
    assert ClientConfig.from_mapping({"timeout": "2", "retries": 1}) == ClientConfig(timeout=2.0, retries=1)
    assert ClientConfig.from_mapping(None) == ClientConfig()
    with pytest.raises(InvalidParameterError, match="unknown plugin client option"):
        ClientConfig.from_mapping({"tmeout": 1})
    with pytest.raises(InvalidParameterError, match="positive"):
        ClientConfig(timeout=0)
    with pytest.raises(InvalidParameterError, match="negative"):
        ClientConfig(retries=-1)


# -- what goes on the wire ----------------------------------------------------------------------


def test_accept_header_and_bodies(sock_dir: Path) -> None:
    with serve(sock_dir, http_reply(200, {"Implements": ["NetworkDriver"]})) as plugin:
        client = PluginClient("p", plugin.address, FAST)
        assert client.activate() == ["NetworkDriver"]
        client.call("NetworkDriver.Leave", {"NetworkID": "n", "EndpointID": "e"})
        client.close()
    activate, leave = plugin.requests
    assert activate.path == "/Plugin.Activate"
    assert activate.headers["Accept"] == ACCEPT
    assert activate.body == b""  # argument-less calls send an empty body
    assert leave.headers["Accept"] == ACCEPT
    assert leave.json() == {"NetworkID": "n", "EndpointID": "e"}
    assert plugin.connections == 1  # kept alive across calls


def test_stale_keepalive_connection_is_replaced(sock_dir: Path) -> None:
    from netsim.plugin.wire import Connection as _Connection

    with serve(sock_dir, http_reply(200, {"ok": True})) as plugin:
        client = PluginClient("p", plugin.address, FAST)
        client.call("A")
        # the idle connection's peer went away: the client must notice before sending
        left, right = socket.socketpair()
        right.close()
        client._idle[0].close()
        client._idle[0] = _Connection(left)
        assert client.call("B") == {"ok": True}
        client.close()
    assert plugin.calls() == ["A", "B"]
    assert plugin.connections == 2


# -- failures -----------------------------------------------------------------------------------


def test_unreachable_plugin_retries_bounded(sock_dir: Path) -> None:
    client = PluginClient("gone", f"unix://{sock_dir}/missing.sock", FAST)
    start = time.monotonic()
    with pytest.raises(PluginConnectError, match="after 3 attempt") as info:
        client.call("Plugin.Activate")
    assert time.monotonic() - start < FAST.timeout + 0.2
    assert isinstance(info.value, PluginUnavailableError)
    assert info.value.plugin == "gone" and info.value.call == "Plugin.Activate"


def test_connect_retry_succeeds_when_plugin_appears(sock_dir: Path) -> None:
    path = sock_dir / "late.sock"
    config = ClientConfig(timeout=2.0, retries=10, backoff=0.02, max_backoff=0.05)
    client = PluginClient("late", f"unix://{path}", config)
    holder: list[FakePlugin] = []
    timer = threading.Timer(0.1, lambda: holder.append(FakePlugin(path, lambda r: http_reply(200, {"Implements": []}))))
    timer.start()
    try:
        assert client.activate() == []
    finally:
        timer.join()
        client.close()
        holder[0].close()


def test_hang_hits_timeout(sock_dir: Path) -> None:
    with serve(sock_dir, HANG) as plugin:
        start = time.monotonic()
        message = expect(PluginUnavailableError, plugin)
        elapsed = time.monotonic() - start
    assert "timed out" in message
    assert FAST.timeout * 0.9 <= elapsed < FAST.timeout + 0.5
    assert len(plugin.requests) == 1  # sent once, never re-sent


def test_dies_mid_call(sock_dir: Path) -> None:
    with serve(sock_dir, CLOSE) as plugin:
        message = expect(PluginUnavailableError, plugin)
    assert "connection lost" in message
    assert len(plugin.requests) == 1  # a request that may have been received is not re-sent


def test_dies_mid_body(sock_dir: Path) -> None:
    with serve(sock_dir, ThenClose(http_reply(200, "x" * 100)[:-60])) as plugin:
        message = expect(PluginUnavailableError, plugin, "NetworkDriver.Join")
    assert "connection lost" in message and "after 40 of 100 body bytes" in message


def test_garbage_instead_of_http(sock_dir: Path) -> None:
    with serve(sock_dir, b"SSH-2.0-OpenSSH\r\n\r\n") as plugin:
        message = expect(PluginUnavailableError, plugin)
    assert "BadStatusLine" in message or "connection lost" in message


@pytest.mark.parametrize(
    ("reply", "match"),
    [
        (http_reply(200, "{not json"), "not valid JSON"),
        (http_reply(200, "[1, 2]"), "JSON object, got JSON list"),
        (http_reply(200, ""), "empty body"),
        (http_reply(200, b"\xff\xfe"), "not valid JSON"),
        (http_reply(200, "x" * (5 * 1024 * 1024)), "exceeds the 4194304-byte limit"),
        (chunked_reply(200, [b"x" * 65536] * 70), "exceeds the 4194304-byte limit"),
    ],
    ids=["malformed", "list", "empty", "binary", "huge", "huge-chunked"],
)
def test_malformed_replies(sock_dir: Path, reply: bytes, match: str) -> None:
    with serve(sock_dir, reply) as plugin:
        message = expect(PluginProtocolError, plugin)
    assert match in message


def test_huge_body_is_not_read_when_announced(sock_dir: Path) -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n{"
    with serve(sock_dir, head) as plugin:
        start = time.monotonic()
        expect(PluginProtocolError, plugin)
    assert time.monotonic() - start < 0.3  # refused from the header, no waiting for a gigabyte


def test_small_max_body_is_configurable(sock_dir: Path) -> None:
    with serve(sock_dir, http_reply(200, {"Options": {"k": "v" * 100}})) as plugin:
        client = PluginClient("p", plugin.address, ClientConfig(max_body=50))
        with pytest.raises(PluginProtocolError, match="50-byte limit"):
            client.call("NetworkDriver.AllocateNetwork", {})
        client.close()


@pytest.mark.parametrize(
    ("reply", "match"),
    [
        (http_reply(500, {"Err": "bridge exploded"}), "HTTP 500: bridge exploded"),
        (http_reply(500, "plain text panic"), "HTTP 500: plain text panic"),
        (http_reply(503, ""), "HTTP 503: (empty body)"),
        (http_reply(200, {"Err": "no such network"}), "no such network"),
        (http_reply(200, {"Error": "pool exhausted"}), "pool exhausted"),
        (http_reply(200, {"Err": {"nested": 1}}), '{"nested": 1}'),
        (http_reply(404, "404 page not found"), "HTTP 404"),
    ],
    ids=["500-err", "500-text", "503-empty", "200-err", "200-error", "200-err-object", "404-mandatory"],
)
def test_error_replies(sock_dir: Path, reply: bytes, match: str) -> None:
    with serve(sock_dir, reply) as plugin:
        message = expect(PluginReplyError, plugin)
    assert match in message


def test_404_on_mandatory_call_is_not_implemented(sock_dir: Path) -> None:
    with serve(sock_dir, http_reply(404, "404 page not found")) as plugin:
        client = PluginClient("p", plugin.address, FAST)
        with pytest.raises(NotImplementedByDriverError):
            client.call("NetworkDriver.Leave", {})
        assert client.call("NetworkDriver.ProgramExternalConnectivity", {}, optional=True) is None
        client.close()


def test_error_kind_is_kept(sock_dir: Path) -> None:
    with serve(sock_dir, http_reply(500, {"Err": "exists", "NetsimKind": "conflict"})) as plugin:
        client = PluginClient("p", plugin.address, FAST)
        with pytest.raises(ConflictError) as info:
            client.call("NetworkDriver.CreateNetwork", {})
        assert isinstance(info.value, PluginReplyError)
        assert info.value.kind == "conflict"
        client.close()
    with serve(sock_dir, http_reply(200, {"Err": "gone", "NetsimKind": "not-found"})) as plugin:
        client = PluginClient("p", plugin.address, FAST)
        with pytest.raises(NotFoundError):
            client.call("NetworkDriver.DeleteNetwork", {})
        client.close()


def test_unserializable_arguments_are_refused_before_sending(sock_dir: Path) -> None:
    with serve(sock_dir, http_reply(200, {})) as plugin:
        client = PluginClient("p", plugin.address, FAST)
        with pytest.raises(InvalidParameterError, match="not JSON-serializable"):
            client.call("NetworkDriver.CreateNetwork", {"Options": {"x": object()}})
        client.close()
    assert plugin.requests == []


def test_tcp_plugin() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    seen: list[bytes] = []

    def answer() -> None:
        conn, _ = listener.accept()
        with conn:
            seen.append(conn.recv(65536))
            conn.sendall(http_reply(200, {"Implements": ["IpamDriver"]}))

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    client = PluginClient("tcp", f"tcp://127.0.0.1:{port}", FAST)
    try:
        assert client.activate() == ["IpamDriver"]
    finally:
        client.close()
        thread.join()
        listener.close()
    assert seen[0].startswith(b"POST /Plugin.Activate HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{port}".encode() in seen[0]


def test_activate_reply_must_list_strings(sock_dir: Path) -> None:
    with serve(sock_dir, http_reply(200, {"Implements": "NetworkDriver"})) as plugin:
        client = PluginClient("p", plugin.address, FAST)
        with pytest.raises(PluginProtocolError, match="Implements"):
            client.activate()
        client.close()
    with serve(sock_dir, http_reply(200, {"Implements": [1]})) as plugin:
        client = PluginClient("p", plugin.address, FAST)
        with pytest.raises(PluginProtocolError, match="list of strings"):
            client.activate()
        client.close()
    assert json.loads(plugin.requests[0].body or b"null") is None


# -- HTTP framing as Go's net/http sends it -------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (chunked_reply(200, [b'{"Options"', b': {"a": "b"}}']), {"Options": {"a": "b"}}),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\n{}\n\r\n0\r\nX-Trailer: 1\r\n\r\n",
            {},
        ),
        (b"HTTP/1.1 100 Continue\r\n\r\n" + http_reply(200, {"ok": 1}), {"ok": 1}),
        (ThenClose(b"HTTP/1.0 200 OK\r\n\r\n" + b'{"ok": 2}'), {"ok": 2}),
        (http_reply(200, {"ok": 3}, headers={"Connection": "close"}), {"ok": 3}),
    ],
    ids=["chunked", "chunk-extension-trailer", "100-continue", "http10-read-to-close", "connection-close"],
)
def test_reply_framings(sock_dir: Path, reply: bytes, expected: object) -> None:
    with serve(sock_dir, reply) as plugin:
        client = PluginClient("p", plugin.address, FAST)
        assert client.call("NetworkDriver.AllocateNetwork", {}) == expected
        kept = len(client._idle)
        client.close()
    closing = isinstance(reply, ThenClose) or b"Connection: close" in reply
    assert kept == (0 if closing else 1)


@pytest.mark.parametrize(
    ("reply", "match"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n", "invalid Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "invalid Content-Length"),
        (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "malformed reply header"),
        (b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 101 + b"\r\n", "more than 100 reply headers"),
        (b"HTTP/1.1 200 OK\r\nX: " + b"y" * 70000 + b"\r\n\r\n", "longer than 65536"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "invalid chunk size"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}XX", "chunk not followed by CRLF"),
        (b"HTTP/2 200\r\n\r\n", "not an HTTP reply"),
    ],
    ids=["cl-text", "cl-negative", "header", "many-headers", "long-line", "chunk-size", "chunk-crlf", "http2"],
)
def test_broken_framing(sock_dir: Path, reply: bytes, match: str) -> None:
    with serve(sock_dir, ThenClose(reply)) as plugin:
        message = expect(PluginUnavailableError, plugin)
    assert match in message
