"""PluginServer answers what Docker's engine sends, at the HTTP level, and
cleans up its socket; ``netsim plugin serve`` does the same from a shell."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_plugin_helpers import MemoryDriver, MemoryIpam, MinimalDriver, short_dir

from drivers.remote import ClientConfig, RemoteDriver
from netsim.driverapi import Capability, InterfaceInfo, NetworkInfo
from netsim.errors import ConflictError, InvalidParameterError, PluginUnavailableError
from netsim.plugin import PluginServer
from netsim.plugin.cli import build_served, load_target, serve_main
from netsim.plugin.codec import ACCEPT

HERE = Path(__file__).parent


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    with short_dir() as path:
        yield path


def post(path: Path, call: str, body: bytes | None = None, method: str = "POST") -> tuple[int, Any]:
    """One raw HTTP request, as Docker's engine sends it."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(5)
    sock.connect(str(path))
    data = body or b""
    head = f"{method} /{call} HTTP/1.1\r\nHost: plugin\r\nAccept: {ACCEPT}\r\nContent-Length: {len(data)}\r\n\r\n"
    sock.sendall(head.encode() + data)
    response = http.client.HTTPResponse(sock, method=method)
    response.begin()
    raw = response.read()
    sock.close()
    assert response.getheader("Content-Type") == "application/vnd.docker.plugins.v1+json"
    return response.status, json.loads(raw) if raw else None


def test_activate_lists_what_is_served(sock_dir: Path) -> None:
    with PluginServer(driver=MemoryDriver(), ipam=MemoryIpam(), socket_path=sock_dir / "both.sock") as server:
        assert post(sock_dir / "both.sock", "Plugin.Activate") == (200, {"Implements": ["NetworkDriver", "IpamDriver"]})
        assert server.address == f"unix://{sock_dir}/both.sock"
    with PluginServer(ipam=MemoryIpam(), socket_path=sock_dir / "ipam.sock"):
        assert post(sock_dir / "ipam.sock", "Plugin.Activate") == (200, {"Implements": ["IpamDriver"]})
        status, reply = post(sock_dir / "ipam.sock", "NetworkDriver.GetCapabilities")
        assert status == 404 and "unknown plugin call" in reply["Err"]


def test_http_level_answers(sock_dir: Path) -> None:
    path = sock_dir / "p.sock"
    with PluginServer(driver=MemoryDriver(), socket_path=path, capability=Capability("global", "local")):
        assert post(path, "NetworkDriver.GetCapabilities") == (200, {"Scope": "global", "ConnectivityScope": "local"})
        assert post(path, "NetworkDriver.Nope") == (404, {"Err": "unknown plugin call /NetworkDriver.Nope"})
        status, reply = post(path, "NetworkDriver.CreateNetwork", b"{broken")
        assert status == 400 and "not valid JSON" in reply["Err"]
        status, reply = post(path, "NetworkDriver.CreateNetwork", b"[1]")
        assert status == 400 and "expected a JSON object" in reply["Err"]
        status, reply = post(path, "NetworkDriver.CreateNetwork", json.dumps({"NetworkID": 5}).encode())
        assert status == 400 and "'NetworkID' must be a string" in reply["Err"]
        assert reply["NetsimKind"] == "invalid-parameter"
        status, reply = post(path, "NetworkDriver.DeleteNetwork", json.dumps({"NetworkID": "x"}).encode())
        assert (status, reply) == (500, {"Err": "network x not found", "NetsimKind": "not-found"})
        status, reply = post(path, "NetworkDriver.DiscoverNew", json.dumps({"DiscoveryType": 9}).encode())
        assert status == 400 and "unknown DiscoveryType 9" in reply["Err"]
        status, reply = post(path, "Plugin.Activate", method="GET")
        assert status == 405


def test_create_endpoint_reply_has_only_driver_additions(sock_dir: Path) -> None:
    path = sock_dir / "p.sock"
    with PluginServer(driver=MemoryDriver(), socket_path=path):
        post(path, "NetworkDriver.CreateNetwork", json.dumps({"NetworkID": "n"}).encode())
        request = {"NetworkID": "n", "EndpointID": "e", "Interface": {"Address": "10.0.0.2/24"}, "Options": {}}
        status, reply = post(path, "NetworkDriver.CreateEndpoint", json.dumps(request).encode())
    assert status == 200
    assert reply == {"Interface": {"Address": "", "AddressIPv6": "", "MacAddress": "02:42:65:30:30:30"}}


def test_optional_calls_not_implemented_answer_404(sock_dir: Path) -> None:
    path = sock_dir / "p.sock"
    with PluginServer(driver=MinimalDriver(), socket_path=path):
        ids = json.dumps({"NetworkID": "n", "EndpointID": "e"}).encode()
        assert post(path, "NetworkDriver.ProgramExternalConnectivity", ids)[0] == 404
        assert post(path, "NetworkDriver.EndpointOperInfo", ids)[0] == 404
        assert post(path, "NetworkDriver.RevokeExternalConnectivity", ids) == (200, {})


def test_request_body_limit(sock_dir: Path) -> None:
    path = sock_dir / "p.sock"
    with PluginServer(driver=MemoryDriver(), socket_path=path):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(str(path))
        sock.sendall(b"POST /NetworkDriver.CreateNetwork HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n")
        response = http.client.HTTPResponse(sock)
        response.begin()
        assert response.status == 413
        sock.close()


def test_driver_bug_becomes_500_and_server_survives(sock_dir: Path) -> None:
    class Buggy(MemoryDriver):
        def delete_network(self, nid: str) -> None:
            raise RuntimeError("oops")

    path = sock_dir / "p.sock"
    with PluginServer(driver=Buggy(), socket_path=path):
        assert post(path, "NetworkDriver.DeleteNetwork", b'{"NetworkID": "n"}') == (500, {"Err": "oops"})
        assert post(path, "Plugin.Activate")[0] == 200


def test_socket_lifecycle(sock_dir: Path) -> None:
    path = sock_dir / "p.sock"
    server = PluginServer(driver=MemoryDriver(), socket_path=path)
    server.start()
    try:
        assert path.is_socket()
        with pytest.raises(ConflictError, match="already running"):
            server.start()
        with pytest.raises(ConflictError, match="another server is listening"):
            PluginServer(driver=MemoryDriver(), socket_path=path).start()
    finally:
        server.stop()
    assert not path.exists()
    server.stop()  # idempotent
    # a stale socket file (its server died) is replaced
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()
    with PluginServer(driver=MemoryDriver(), socket_path=path):
        assert post(path, "Plugin.Activate")[0] == 200
    assert not path.exists()
    path.write_text("not a socket")
    with pytest.raises(ConflictError, match="not a socket"):
        PluginServer(driver=MemoryDriver(), socket_path=path).start()
    assert path.read_text() == "not a socket"


def test_stop_closes_kept_alive_connections(sock_dir: Path) -> None:
    path = sock_dir / "p.sock"
    server = PluginServer(driver=MemoryDriver(), socket_path=path).start()
    remote = RemoteDriver.connect(server.address)
    start = time.monotonic()
    server.stop()
    assert time.monotonic() - start < 2
    assert remote.client._idle and remote.client._idle[0].closed_by_peer()
    remote.close()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "neither"),
        ({"driver": object()}, "must be a netsim Driver"),
        ({"ipam": object()}, "must be a netsim Ipam"),
    ],
)
def test_invalid_server_arguments(sock_dir: Path, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidParameterError, match=match):
        PluginServer(socket_path=sock_dir / "x.sock", **kwargs)
    assert not (sock_dir / "x.sock").exists()


def test_invalid_socket_arguments(sock_dir: Path) -> None:
    with pytest.raises(InvalidParameterError, match="exactly one"):
        PluginServer(driver=MemoryDriver())
    with pytest.raises(InvalidParameterError, match="longer than 107"):
        PluginServer(driver=MemoryDriver(), socket_path="/tmp/" + "x" * 120)


def test_tcp_server() -> None:
    with PluginServer(driver=MemoryDriver(), tcp=("127.0.0.1", 0)) as server:
        assert server.address.startswith("tcp://127.0.0.1:")
        remote = RemoteDriver.connect(server.address)
        remote.create_network("n", {}, NetworkInfo(), [], [])
        remote.close()


def test_concurrent_callers(sock_dir: Path) -> None:
    backend = MemoryDriver()
    with PluginServer(driver=backend, socket_path=sock_dir / "p.sock") as server:
        remote = RemoteDriver.connect(server.address)
        remote.create_network("n", {}, NetworkInfo(), [], [])
        errors: list[BaseException] = []

        def worker(index: int) -> None:
            try:
                for j in range(20):
                    remote.create_endpoint("n", f"w{index}-{j}", InterfaceInfo(), {})
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        remote.close()
    assert errors == []
    assert len(backend.endpoints) == 160


# -- CLI ------------------------------------------------------------------------------------------


def test_load_and_build_targets() -> None:
    assert load_target("test_plugin_helpers:MemoryDriver") is MemoryDriver
    driver, capability, ipam = build_served(MemoryDriver)
    assert isinstance(driver, MemoryDriver) and capability is None and ipam is None
    _, _, ipam = build_served(MemoryIpam())
    assert isinstance(ipam, MemoryIpam)

    def init(registry: Any, config: Any) -> None:
        registry.register_driver("a", MemoryDriver(), Capability("global", "global"))
        registry.register_ipam_driver("b", MemoryIpam())

    driver, capability, ipam = build_served(init)
    assert capability == Capability("global", "global") and isinstance(ipam, MemoryIpam)
    for bad, match in [
        ("nocolon", "expected MODULE:CLASS"),
        ("no_such_module_xyz:X", "cannot import"),
        ("json:Nope", "no attribute"),
    ]:
        with pytest.raises(InvalidParameterError, match=match):
            load_target(bad)
    with pytest.raises(InvalidParameterError, match="neither a netsim Driver"):
        build_served(dict)
    with pytest.raises(InvalidParameterError, match="not a Driver"):
        build_served(42)


def test_serve_main_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert serve_main(["serve"]) == 2
    assert serve_main(["serve", "x:Y"]) == 2  # --socket or --tcp is required
    assert serve_main(["serve", "no_such_module_xyz:Y", "--socket", "/tmp/nsp-unused.sock"]) == 1
    assert "cannot import" in capsys.readouterr().err
    assert not os.path.exists("/tmp/nsp-unused.sock")


def start_cli(path: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "netsim.plugin", "serve", *args, "--socket", str(path)]
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while not path.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    return process


def test_plugin_process_killed_mid_call(sock_dir: Path) -> None:
    path = sock_dir / "slow.sock"
    process = start_cli(path, "test_plugin_helpers:SlowDriver")
    try:
        remote = RemoteDriver.connect(f"unix://{path}", name="slow", config=ClientConfig(timeout=5))
        killer = threading.Timer(0.3, process.kill)
        killer.start()
        start = time.monotonic()
        with pytest.raises(PluginUnavailableError, match=r"slow/NetworkDriver\.Leave: connection lost"):
            remote.leave("n", "e")
        assert time.monotonic() - start < 3  # noticed when the socket closed, not at the timeout
        killer.join()
        remote.close()
    finally:
        process.kill()
        process.communicate(timeout=10)


def test_serve_subprocess(sock_dir: Path) -> None:
    path = sock_dir / "cli.sock"
    process = start_cli(path, "test_plugin_helpers:MemoryDriver", "--scope", "global")
    try:
        remote = RemoteDriver.connect(f"unix://{path}", name="cli")
        assert remote.capability == Capability("global", "global")
        remote.create_network("n", {}, NetworkInfo(), [], [])
        remote.close()
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    assert "serving NetworkDriver on unix://" in err
    assert not path.exists()


@pytest.mark.parametrize("kernel_kind", ["fake", pytest.param("linux", marks=pytest.mark.linux)])
def test_serve_builtin_bridge(sock_dir: Path, kernel_kind: str) -> None:
    """``--builtin bridge``: Docker's calls drive netsim's bridge driver on a
    host the CLI builds (and removes on exit)."""
    import ipaddress
    import secrets

    from netsim import netlabel
    from netsim.driverapi import IPAMData, JoinInfo
    from netsim.safety import namespaces_with_prefix

    run_id = f"pl{secrets.token_hex(3)}"
    nid, eid = secrets.token_hex(32), secrets.token_hex(32)
    path = sock_dir / "bridge.sock"
    os.environ["NETSIM_RUN_ID"] = run_id  # inherited by the CLI's process only
    try:
        process = start_cli(path, "--builtin", "bridge", "--kernel", kernel_kind)
    finally:
        del os.environ["NETSIM_RUN_ID"]
    try:
        remote = RemoteDriver.connect(f"unix://{path}", name="bridge-plugin", config=ClientConfig(timeout=10))
        data = [IPAMData("LocalDefault", ipaddress.ip_network("10.60.0.0/24"), ipaddress.ip_interface("10.60.0.1/24"))]
        options = {netlabel.GENERIC_DATA: {}, netlabel.ENABLE_IPV6: False, netlabel.INTERNAL: False}
        remote.create_network(nid, options, NetworkInfo(), data, [])
        ifinfo = InterfaceInfo(address=ipaddress.ip_interface("10.60.0.2/24"))
        remote.create_endpoint(nid, eid, ifinfo, {})
        assert ifinfo.mac_address is not None  # the bridge driver filled the MAC in
        jinfo = JoinInfo()
        remote.join(nid, eid, "/var/run/netns/x", jinfo, {})
        assert jinfo.src_name and str(jinfo.gateway) == "10.60.0.1"
        remote.leave(nid, eid)
        remote.delete_endpoint(nid, eid)
        remote.delete_network(nid)
        remote.close()
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert namespaces_with_prefix(f"netsim-{run_id}-") == []


def test_serve_builtin_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert serve_main(["serve", "--builtin", "nope", "--socket", "/tmp/nsp-unused2.sock"]) == 1
    assert "no built-in or installed network or IPAM driver named 'nope'" in capsys.readouterr().err
    assert serve_main(["serve", "x:Y", "--builtin", "bridge", "--socket", "/tmp/nsp-unused2.sock"]) == 1
    assert "either MODULE:CLASS or --builtin" in capsys.readouterr().err
    assert not os.path.exists("/tmp/nsp-unused2.sock")
