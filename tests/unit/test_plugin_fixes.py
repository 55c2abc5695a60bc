"""Plugin server, client and CLI fixes of issue 13, each as Docker behaves:
one ``serve`` parser with full help, the system's listen backlog (64
concurrent client processes, none refused), Docker's request headers, one
activation per plugin per controller, Docker's PortBinding shape in
EndpointOperInfo."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from test_plugin_helpers import FakePlugin, MemoryDriver, Request, http_reply, short_dir

from netsim import netlabel
from netsim.cli import build_parser
from netsim.controller import Controller, ControllerConfig
from netsim.kernel import make_kernel
from netsim.netlabel import PortBinding
from netsim.plugin import PluginServer
from netsim.plugin.client import ClientConfig, PluginClient
from netsim.plugin.codec import ACCEPT
from netsim.plugin.server import system_backlog


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    with short_dir() as path:
        yield path


# -- CLI: one parser ---------------------------------------------------------------------------


def test_console_script_accepts_builtin_as_the_docs_write_it() -> None:
    args = build_parser().parse_args(["plugin", "serve", "--builtin", "bridge", "--socket", "/tmp/b.sock"])
    assert (args.builtin, args.socket, args.target, args.kernel) == ("bridge", "/tmp/b.sock", None, "fake")


def test_console_script_help_is_the_full_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["plugin", "serve", "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for option in ("--builtin", "--kernel", "--socket", "--tcp", "--config", "--scope", "--connectivity-scope"):
        assert option in out, f"{option} missing from `netsim plugin serve --help`"


# -- server: listen backlog --------------------------------------------------------------------

# One child process: wait for the common start time, then run endpoint
# lifecycles, a fresh non-blocking connect per call as Go's client does (a full
# backlog is EAGAIN at once instead of a wait); print the refusals it saw.
_CLIENT = r"""
import json, socket, sys, time
path, nid, start, index = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
refused = ok = 0
def call(method, body):
    global refused, ok
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        sock.connect(path)
    except BlockingIOError:
        refused += 1
        sock.close()
        return None
    sock.setblocking(True)
    data = json.dumps(body).encode()
    sock.sendall(b"POST /" + method.encode() + b" HTTP/1.1\r\nHost: plugin.sock\r\nContent-Length: "
                 + str(len(data)).encode() + b"\r\nConnection: close\r\n\r\n" + data)
    reply = b""
    while chunk := sock.recv(65536):
        reply += chunk
    sock.close()
    ok += reply.split(b" ", 2)[1] == b"200"
while time.time() < start:
    time.sleep(0.0005)
for round in range(2):
    eid = "e%s-%d" % (index, round)
    ids = {"NetworkID": nid, "EndpointID": eid}
    call("NetworkDriver.CreateEndpoint", dict(ids, Interface={}, Options={}))
    call("NetworkDriver.Join", dict(ids, SandboxKey="/x", Options={}))
    call("NetworkDriver.Leave", ids)
    call("NetworkDriver.DeleteEndpoint", ids)
print(refused, ok)
"""

CLIENTS = 64


def test_64_concurrent_client_processes_are_never_refused(sock_dir: Path) -> None:
    path = sock_dir / "p.sock"
    driver = MemoryDriver()
    with PluginServer(driver=driver, socket_path=path):
        client = PluginClient("p", f"unix://{path}", ClientConfig(timeout=5))
        ipv4 = [{"AddressSpace": "", "Pool": "10.0.0.0/16", "Gateway": "10.0.0.1/16", "AuxAddresses": {}}]
        client.call("NetworkDriver.CreateNetwork", {"NetworkID": "n", "Options": {}, "IPv4Data": ipv4})
        client.close()
        start = f"{time.time() + 2.0:.6f}"  # every child is up by then (2 cores, ~20 ms each)
        children = [
            subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _CLIENT, str(path), "n", start, str(i)],
                stdout=subprocess.PIPE,
                text=True,
            )
            for i in range(CLIENTS)
        ]
        outputs = [child.communicate(timeout=60)[0].split() for child in children]
    assert all(child.returncode == 0 for child in children)
    refused = [int(out[0]) for out in outputs]
    assert sum(refused) == 0, f"refused connections per client: {refused}"
    assert all(int(out[1]) == 8 for out in outputs), f"calls answered 200 per client (of 8): {outputs}"
    assert driver.state()["endpoints"] == {}, "some lifecycle did not complete"


def test_backlog_is_the_systems_maximum() -> None:
    with open("/proc/sys/net/core/somaxconn", encoding="ascii") as stream:
        assert system_backlog() >= int(stream.read())


# -- client: Docker's headers, one activation --------------------------------------------------


def _plugin_behaviour(implements: list[str]) -> Any:
    def behave(request: Request) -> bytes:
        call = request.path.lstrip("/")
        if call == "Plugin.Activate":
            return http_reply(200, {"Implements": implements})
        if call == "NetworkDriver.GetCapabilities":
            return http_reply(200, {"Scope": "local", "ConnectivityScope": "local"})
        if call == "IpamDriver.GetCapabilities":
            return http_reply(200, {"RequiresMACAddress": False, "RequiresRequestReplay": False})
        return http_reply(200, {})

    return behave


def test_requests_carry_dockers_headers_and_no_content_type(sock_dir: Path) -> None:
    with FakePlugin(sock_dir / "h.sock", _plugin_behaviour(["NetworkDriver"])) as plugin:
        client = PluginClient("h", plugin.address)
        client.activate()
        client.call("NetworkDriver.Leave", {"NetworkID": "n", "EndpointID": "e"})
        client.close()
    for request in plugin.requests:
        headers = {key.lower(): value for key, value in request.headers.items()}
        assert "content-type" not in headers, f"Docker sends no Content-Type, we sent {headers}"
        assert headers["accept"] == ACCEPT
        assert headers["host"] == "plugin.sock"


@pytest.mark.parametrize("implements", [["NetworkDriver"], ["IpamDriver"], ["NetworkDriver", "IpamDriver"]])
def test_a_controller_activates_each_plugin_once(sock_dir: Path, implements: list[str]) -> None:
    with FakePlugin(sock_dir / "one.sock", _plugin_behaviour(implements)) as plugin:
        options: Mapping[str, Any] = {"remote": {"plugins": [{"name": "one", "address": plugin.address}]}}
        with contextlib.closing(make_kernel("fake")) as kernel:
            ctrl = Controller(kernel, ControllerConfig(host="h1", driver_options=options))
            try:
                assert ("NetworkDriver" in implements) == ("one" in ctrl.registry.drivers())
                assert ("IpamDriver" in implements) == ("one" in ctrl.registry.ipam_drivers())
            finally:
                ctrl.close()
        assert plugin.calls().count("Plugin.Activate") == 1, plugin.calls()


# -- server: EndpointOperInfo in Docker's shape ------------------------------------------------


class PortMappingDriver(MemoryDriver):
    """Reports its port map in netsim's shape, as the bridge driver does."""

    def endpoint_oper_info(self, nid: str, eid: str) -> dict[str, Any]:
        return {
            netlabel.PORT_MAP: [
                {"Proto": "tcp", "HostIP": "", "HostPort": 18080, "ContainerPort": 80},
                PortBinding("udp", 53, 5353),
            ]
        }


def test_endpoint_oper_info_port_map_has_dockers_numeric_proto(sock_dir: Path) -> None:
    with PluginServer(driver=PortMappingDriver(), socket_path=sock_dir / "o.sock") as server:
        client = PluginClient("o", server.address)
        reply = client.call("NetworkDriver.EndpointOperInfo", {"NetworkID": "n", "EndpointID": "e"})
        client.close()
    assert reply is not None
    assert reply["Value"][netlabel.PORT_MAP] == [
        {"Proto": 6, "IP": "", "Port": 80, "HostIP": "", "HostPort": 18080, "HostPortEnd": 18080},
        {"Proto": 17, "IP": "", "Port": 53, "HostIP": "", "HostPort": 5353, "HostPortEnd": 5353},
    ]
    # and it still reads back into netsim's PortBinding
    assert PortBinding.from_json(json.loads(json.dumps(reply["Value"][netlabel.PORT_MAP][0]))).proto == "tcp"
