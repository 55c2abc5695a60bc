"""Random replies and requests: the client only ever raises PluginErrors, and
the server only ever answers 200/400/404/500 with a JSON object."""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_plugin_helpers import FakePlugin, MemoryDriver, MemoryIpam, Request, http_reply, short_dir

from drivers.remote import RemoteDriver
from ipam.remote import RemoteIpam
from netsim.driverapi import DiscoveryType, InterfaceInfo, IPAMData, JoinInfo, NetworkInfo
from netsim.errors import NotImplementedByDriverError, PluginError
from netsim.plugin import PluginServer
from netsim.plugin.client import ClientConfig

FAST = ClientConfig(timeout=1.0, retries=1, backoff=0.01)
V4 = [IPAMData("LocalDefault", ipaddress.ip_network("10.0.0.0/24"), ipaddress.ip_interface("10.0.0.1/24"))]

# Field names the codec reads, so random objects hit real decoding paths.
KEYS = [
    "Err",
    "Error",
    "Interface",
    "Address",
    "AddressIPv6",
    "MacAddress",
    "InterfaceName",
    "SrcName",
    "DstPrefix",
    "Gateway",
    "GatewayIPv6",
    "StaticRoutes",
    "Destination",
    "RouteType",
    "NextHop",
    "DisableGatewayService",
    "Options",
    "Value",
    "PoolID",
    "Pool",
    "Data",
    "LocalDefaultAddressSpace",
    "GlobalDefaultAddressSpace",
]
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 5)
    | st.sampled_from(["", "x", "10.0.0.1", "10.0.0.0/24", "fd00::1/64"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=4),
    max_leaves=8,
)


@pytest.fixture(scope="module")
def scripted() -> Iterator[tuple[FakePlugin, list[bytes]]]:
    """A plugin answering activation properly and everything else with
    whatever the test put in ``next_reply[0]``."""
    next_reply = [http_reply(200, {})]

    def behave(request: Request) -> bytes:
        call = request.path.lstrip("/")
        if call == "Plugin.Activate":
            return http_reply(200, {"Implements": ["NetworkDriver", "IpamDriver"]})
        if call.endswith("GetCapabilities"):
            return http_reply(200, {"Scope": "local"})
        return next_reply[0]

    with short_dir() as directory, FakePlugin(directory / "fuzz.sock", behave) as plugin:
        yield plugin, next_reply


CALLS: dict[str, Callable[[RemoteDriver, RemoteIpam], Any]] = {
    "allocate": lambda d, i: d.network_allocate("n", {}, V4, []),
    "create_network": lambda d, i: d.create_network("n", {}, NetworkInfo(), V4, []),
    "create_endpoint": lambda d, i: d.create_endpoint(
        "n", "e", InterfaceInfo(address=ipaddress.ip_interface("10.0.0.2/24")), {}
    ),
    "oper_info": lambda d, i: d.endpoint_oper_info("n", "e"),
    "join": lambda d, i: d.join("n", "e", "/sb", JoinInfo(), {}),
    "discover": lambda d, i: d.discover_new(DiscoveryType.NODE, {}),
    "spaces": lambda d, i: i.get_default_address_spaces(),
    "request_pool": lambda d, i: i.request_pool("LocalDefault", "", "", {}, False),
    "request_address": lambda d, i: i.request_address("p", None, {}),
}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(call=st.sampled_from(sorted(CALLS)), status=st.sampled_from([200, 200, 200, 404, 500]), body=JSON)
def test_random_replies_raise_only_plugin_errors(
    scripted: tuple[FakePlugin, list[bytes]], call: str, status: int, body: Any
) -> None:
    plugin, next_reply = scripted
    next_reply[0] = http_reply(status, json.dumps(body))
    driver = RemoteDriver.connect(plugin.address, name="fuzz", config=FAST)
    ipam = RemoteIpam.connect(plugin.address, name="fuzz", config=FAST)
    try:
        CALLS[call](driver, ipam)
    except PluginError as exc:
        assert exc.plugin == "fuzz" and exc.call
    except NotImplementedByDriverError as exc:  # EndpointOperInfo answered 404
        assert call == "oper_info" and status == 404 and "fuzz" in str(exc)
    finally:
        driver.close()
        ipam.close()


@pytest.fixture(scope="module")
def server() -> Iterator[Path]:
    with (
        short_dir() as directory,
        PluginServer(driver=MemoryDriver(), ipam=MemoryIpam(), socket_path=directory / "s.sock"),
    ):
        yield directory / "s.sock"


ROUTES = [
    "Plugin.Activate",
    "NetworkDriver.GetCapabilities",
    "NetworkDriver.AllocateNetwork",
    "NetworkDriver.CreateNetwork",
    "NetworkDriver.CreateEndpoint",
    "NetworkDriver.Join",
    "NetworkDriver.DiscoverNew",
    "NetworkDriver.ProgramExternalConnectivity",
    "IpamDriver.RequestPool",
    "IpamDriver.RequestAddress",
    "IpamDriver.ReleaseAddress",
    "Nope.Nope",
]
REQUEST_KEYS = st.sampled_from(
    ["NetworkID", "EndpointID", "Options", "IPv4Data", "Interface", "Address", "Pool", "PoolID", "DiscoveryType", "V6"]
)
REQUESTS = st.recursive(
    st.none() | st.booleans() | st.integers(-2, 300) | st.sampled_from(["", "n", "10.0.0.0/24", "10.0.0.2"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(REQUEST_KEYS, inner, max_size=5),
    max_leaves=10,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(route=st.sampled_from(ROUTES), body=REQUESTS | st.binary(max_size=20))
def test_random_requests_get_json_answers(server: Path, route: str, body: Any) -> None:
    import http.client

    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(5)
    sock.connect(str(server))
    try:
        sock.sendall(f"POST /{route} HTTP/1.1\r\nContent-Length: {len(data)}\r\n\r\n".encode() + data)
        response = http.client.HTTPResponse(sock)
        response.begin()
        reply = json.loads(response.read())
    finally:
        sock.close()
    assert response.status in (200, 400, 404, 500)
    assert isinstance(reply, dict)
    if response.status != 200:
        assert isinstance(reply["Err"], str) and reply["Err"]
