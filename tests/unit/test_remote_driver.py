"""RemoteDriver: round trips through PluginServer give what direct calls give;
misbehaving plugins give clear errors and leave nothing half-made."""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_plugin_helpers import (
    HANG,
    FakePlugin,
    MemoryDriver,
    MinimalDriver,
    Request,
    http_reply,
    network_plugin,
    short_dir,
)

from drivers.remote import RemoteDriver, init
from netsim.driverapi import (
    Capability,
    DiscoveryType,
    Driver,
    InterfaceInfo,
    IPAMData,
    JoinInfo,
    NetworkInfo,
)
from netsim.errors import (
    ConflictError,
    InvalidParameterError,
    NotFoundError,
    NotImplementedByDriverError,
    PluginProtocolError,
    PluginReplyError,
    PluginUnavailableError,
    error_kind,
)
from netsim.plugin import PluginServer
from netsim.plugin.client import ClientConfig

GLOBAL = Capability("global", "global")
FAST = ClientConfig(timeout=0.5, retries=1, backoff=0.01)
V4 = [IPAMData("LocalDefault", ipaddress.ip_network("10.0.0.0/24"), ipaddress.ip_interface("10.0.0.1/24"))]


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    with short_dir() as path:
        yield path


@pytest.fixture
def served(sock_dir: Path) -> Iterator[tuple[MemoryDriver, RemoteDriver]]:
    driver = MemoryDriver()
    with PluginServer(driver=driver, socket_path=sock_dir / "mem.sock", capability=GLOBAL) as server:
        remote = RemoteDriver.connect(server.address, name="mem", config=FAST)
        try:
            yield driver, remote
        finally:
            remote.close()


def join_view(jinfo: JoinInfo) -> dict[str, Any]:
    return {k: v for k, v in vars(jinfo).items() if k != "table_entries"}


def test_connect_reads_capability(served: tuple[MemoryDriver, RemoteDriver]) -> None:
    _, remote = served
    assert remote.capability == Capability("global", "global")
    assert remote.type() == "mem" and remote.name == "mem"
    assert remote.is_builtin() is False


def test_full_lifecycle_matches_direct(served: tuple[MemoryDriver, RemoteDriver]) -> None:
    backend, remote = served
    direct = MemoryDriver()
    options = {"com.docker.network.generic": {"mtu": "1400"}, "com.docker.network.enable_ipv6": False}
    results = []
    for driver in (direct, remote):
        driver.network_allocate("n", {"a": "b"}, V4, [])
        driver.create_network("n", options, NetworkInfo(), V4, [])
        ifinfo = InterfaceInfo(address=ipaddress.ip_interface("10.0.0.2/24"))
        driver.create_endpoint("n", "e1", ifinfo, {"v6": "fd00::2/64"})
        jinfo = JoinInfo()
        driver.join("n", "e1", "/var/run/netns/sb", jinfo, {"nogw": True})
        driver.program_external_connectivity("n", "e1", {})
        oper = driver.endpoint_oper_info("n", "e1")
        driver.discover_new(DiscoveryType.NODE, {"Address": "198.18.0.2", "Self": True})
        results.append((repr(ifinfo), join_view(jinfo), oper))
        driver.revoke_external_connectivity("n", "e1")
        driver.leave("n", "e1")
        driver.delete_endpoint("n", "e1")
        assert isinstance(driver, Driver)
    assert results[0] == results[1]
    assert direct.state() == backend.state()
    assert backend.discoveries == [(1, {"Address": "198.18.0.2", "Self": True})]


def test_errors_keep_their_category(served: tuple[MemoryDriver, RemoteDriver]) -> None:
    _, remote = served
    direct = MemoryDriver()
    for driver in (direct, remote):
        driver.create_network("n", {}, NetworkInfo(), V4, [])
    kinds = []
    for driver in (direct, remote):
        row = []
        for call in (
            lambda d: d.create_network("n", {}, NetworkInfo(), V4, []),
            lambda d: d.delete_network("missing"),
            lambda d: d.create_network("m", {"bad": "x"}, NetworkInfo(), V4, []),
            lambda d: d.leave("n", "nope"),
        ):
            with pytest.raises((ConflictError, NotFoundError, InvalidParameterError)) as info:
                call(driver)
            row.append(error_kind(info.value))
        kinds.append(row)
    assert kinds[0] == kinds[1] == ["conflict", "not-found", "invalid-parameter", "not-found"]
    with pytest.raises(PluginReplyError, match=r"^mem/NetworkDriver.DeleteNetwork: HTTP 500: network missing"):
        remote.delete_network("missing")


# Operations for the randomized comparison: (name, network index, endpoint index).
OPS = st.lists(
    st.tuples(
        st.sampled_from(["create_network", "delete_network", "create_endpoint", "delete_endpoint", "join", "leave"]),
        st.integers(0, 1),
        st.integers(0, 2),
    ),
    max_size=12,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_random_sequences_agree(served: tuple[MemoryDriver, RemoteDriver], ops: list[tuple[str, int, int]]) -> None:
    backend, remote = served
    run = next(_RUNS)  # the served driver outlives examples: ids are per example
    direct = MemoryDriver()
    outcomes: list[list[str]] = [[], []]
    for index, driver in enumerate((direct, remote)):
        for op, n, e in ops:
            nid, eid = f"r{run}n{n}", f"r{run}e{e}"
            try:
                if op == "create_network":
                    driver.create_network(nid, {}, NetworkInfo(), V4, [])
                elif op == "delete_network":
                    driver.delete_network(nid)
                elif op == "create_endpoint":
                    ifinfo = InterfaceInfo(address=ipaddress.ip_interface(f"10.0.0.{e + 2}/24"))
                    driver.create_endpoint(nid, eid, ifinfo, {})
                    outcomes[index].append(repr(ifinfo))
                elif op == "delete_endpoint":
                    driver.delete_endpoint(nid, eid)
                elif op == "join":
                    jinfo = JoinInfo()
                    driver.join(nid, eid, "/sb", jinfo, {})
                    outcomes[index].append(repr(join_view(jinfo)))
                else:
                    driver.leave(nid, eid)
                outcomes[index].append("ok")
            except (ConflictError, NotFoundError) as exc:
                outcomes[index].append(error_kind(exc))
    assert outcomes[0] == outcomes[1]
    mine = {k: v for k, v in backend.state()["endpoints"].items() if k.startswith(f"r{run}")}
    assert mine == direct.state()["endpoints"]


_RUNS = itertools.count()


def test_optional_calls_404_are_noops(sock_dir: Path) -> None:
    with PluginServer(driver=MinimalDriver(), socket_path=sock_dir / "min.sock") as server:
        remote = RemoteDriver.connect(server.address, config=FAST)
        remote.create_network("n", {}, NetworkInfo(), V4, [])
        remote.create_endpoint("n", "e", InterfaceInfo(), {})
        remote.program_external_connectivity("n", "e", {})  # 404 from the server: a no-op
        with pytest.raises(NotImplementedByDriverError, match="EndpointOperInfo"):
            remote.endpoint_oper_info("n", "e")
        remote.close()


def test_not_a_network_driver(sock_dir: Path) -> None:
    behave = network_plugin({"Plugin.Activate": lambda r: http_reply(200, {"Implements": ["IpamDriver"]})})
    with (
        FakePlugin(sock_dir / "p.sock", behave) as plugin,
        pytest.raises(PluginProtocolError, match="not NetworkDriver"),
    ):
        RemoteDriver.connect(plugin.address, config=FAST)


@pytest.mark.parametrize(
    ("reply", "match"),
    [
        ({"Scope": "swarm"}, "must be 'local' or 'global'"),
        ({}, "must be 'local' or 'global'"),
        ({"Scope": 1}, "must be a string"),
        ({"Scope": "local", "ConnectivityScope": "everywhere"}, "ConnectivityScope"),
    ],
)
def test_bad_capabilities(sock_dir: Path, reply: dict[str, Any], match: str) -> None:
    behave = network_plugin({"NetworkDriver.GetCapabilities": lambda r: http_reply(200, reply)})
    with FakePlugin(sock_dir / "p.sock", behave) as plugin:
        with pytest.raises(PluginProtocolError, match=match) as info:
            RemoteDriver.connect(plugin.address, name="caps", config=FAST)
        assert info.value.call == "NetworkDriver.GetCapabilities" and info.value.plugin == "caps"


def test_connectivity_scope_defaults_to_scope(sock_dir: Path) -> None:
    behave = network_plugin({"NetworkDriver.GetCapabilities": lambda r: http_reply(200, {"Scope": "global"})})
    with FakePlugin(sock_dir / "p.sock", behave) as plugin:
        remote = RemoteDriver.connect(plugin.address, config=FAST)
        assert remote.capability == Capability("global", "global")
        remote.close()


def _endpoint_plugin(sock_dir: Path, interface: object) -> FakePlugin:
    behave = network_plugin({"NetworkDriver.CreateEndpoint": lambda r: http_reply(200, {"Interface": interface})})
    return FakePlugin(sock_dir / "p.sock", behave)


@pytest.mark.parametrize(
    ("interface", "match"),
    [
        ({"Address": "10.0.0.9/24"}, "already set"),
        ({"Address": "10.0.0.2/24"}, "already set"),  # Docker refuses even an equal value
        ({"MacAddress": "not-a-mac"}, "invalid MAC"),
        ({"MacAddress": 12}, "must be a string"),
        ({"AddressIPv6": "fd00::1"}, "CIDR"),
        ({"AddressIPv6": "10.0.0.3/24"}, "not IPv6"),
        ("oops", "must be an object"),
    ],
)
def test_create_endpoint_bad_reply_rolls_back(sock_dir: Path, interface: object, match: str) -> None:
    with _endpoint_plugin(sock_dir, interface) as plugin:
        remote = RemoteDriver.connect(plugin.address, name="ep", config=FAST)
        ifinfo = InterfaceInfo(address=ipaddress.ip_interface("10.0.0.2/24"))
        with pytest.raises(PluginProtocolError, match=match) as info:
            remote.create_endpoint("n", "e", ifinfo, {})
        remote.close()
    assert info.value.call == "NetworkDriver.CreateEndpoint"
    assert repr(ifinfo) == repr(InterfaceInfo(address=ipaddress.ip_interface("10.0.0.2/24")))  # untouched
    assert plugin.calls()[-2:] == ["NetworkDriver.CreateEndpoint", "NetworkDriver.DeleteEndpoint"]
    assert plugin.requests[-1].json() == {"NetworkID": "n", "EndpointID": "e"}


def test_create_endpoint_fills_only_empty_fields(sock_dir: Path) -> None:
    reply = {"Address": "", "AddressIPv6": "fd00::5/64", "MacAddress": "02:42:0a:00:00:05"}
    with _endpoint_plugin(sock_dir, reply) as plugin:
        remote = RemoteDriver.connect(plugin.address, config=FAST)
        ifinfo = InterfaceInfo(address=ipaddress.ip_interface("10.0.0.5/24"))
        remote.create_endpoint("n", "e", ifinfo, {"opt": 1})
        remote.close()
    assert str(ifinfo.address_ipv6) == "fd00::5/64" and ifinfo.mac_address == "02:42:0a:00:00:05"
    sent = plugin.requests[-1].json()
    assert sent["Interface"] == {"Address": "10.0.0.5/24", "AddressIPv6": "", "MacAddress": ""}
    assert sent["Options"] == {"opt": 1}


@pytest.mark.parametrize(
    ("reply", "match"),
    [
        ({"Gateway": "10.0.0.1/24"}, "not a valid IP"),
        ({"Gateway": "fd00::1"}, "not IPv4"),
        ({"GatewayIPv6": "10.0.0.1"}, "not IPv6"),
        ({"StaticRoutes": [{"Destination": "10.1.0.0/16", "RouteType": 0}]}, "without NextHop"),
        ({"StaticRoutes": [{"Destination": "10.1.0.0/16", "RouteType": 7, "NextHop": "10.0.0.1"}]}, "route type"),
        ({"StaticRoutes": [{"Destination": "x", "RouteType": 1}]}, "CIDR"),
        ({"StaticRoutes": {"a": 1}}, "must be a list"),
        ({"InterfaceName": "eth"}, "must be an object"),
        ({"DisableGatewayService": "yes"}, "must be a boolean"),
    ],
)
def test_join_bad_reply_rolls_back(sock_dir: Path, reply: dict[str, Any], match: str) -> None:
    base = {"InterfaceName": {"SrcName": "veth1", "DstPrefix": "eth"}, "Gateway": "10.0.0.1"}
    behave = network_plugin({"NetworkDriver.Join": lambda r: http_reply(200, {**base, **reply})})
    with FakePlugin(sock_dir / "p.sock", behave) as plugin:
        remote = RemoteDriver.connect(plugin.address, config=FAST)
        jinfo = JoinInfo()
        with pytest.raises(PluginProtocolError, match=match):
            remote.join("n", "e", "/sb", jinfo, {})
        remote.close()
    assert join_view(jinfo) == join_view(JoinInfo())  # untouched
    assert plugin.calls()[-2:] == ["NetworkDriver.Join", "NetworkDriver.Leave"]


def test_join_reply_mapping(sock_dir: Path) -> None:
    reply = {
        "InterfaceName": {"SrcName": "veth9", "DstPrefix": "eth"},
        "Gateway": "10.0.0.1",
        "GatewayIPv6": "fd00::1",
        "StaticRoutes": [
            {"Destination": "10.9.0.0/16", "RouteType": 0, "NextHop": "10.0.0.254"},
            {"Destination": "10.8.0.0/16", "RouteType": 1, "NextHop": ""},
        ],
        "DisableGatewayService": True,
    }
    behave = network_plugin({"NetworkDriver.Join": lambda r: http_reply(200, reply)})
    with FakePlugin(sock_dir / "p.sock", behave) as plugin:
        remote = RemoteDriver.connect(plugin.address, config=FAST)
        jinfo = JoinInfo()
        remote.join("n", "e", "/sb", jinfo, {})
        remote.close()
    assert (jinfo.src_name, jinfo.dst_prefix) == ("veth9", "eth")
    assert str(jinfo.gateway) == "10.0.0.1" and str(jinfo.gateway_ipv6) == "fd00::1"
    assert [(str(r.destination), r.route_type, str(r.next_hop)) for r in jinfo.static_routes] == [
        ("10.9.0.0/16", 0, "10.0.0.254"),
        ("10.8.0.0/16", 1, "None"),
    ]
    assert jinfo.gateway_service_disabled
    assert plugin.requests[-1].json() == {"NetworkID": "n", "EndpointID": "e", "SandboxKey": "/sb", "Options": {}}


def test_create_network_hang_times_out_and_rolls_back(sock_dir: Path) -> None:
    behave = network_plugin({"NetworkDriver.CreateNetwork": lambda r: HANG})
    with FakePlugin(sock_dir / "p.sock", behave) as plugin:
        remote = RemoteDriver.connect(plugin.address, name="slow", config=FAST)
        with pytest.raises(PluginUnavailableError, match=r"slow/NetworkDriver\.CreateNetwork: no reply within 0\.5 s"):
            remote.create_network("n", {}, NetworkInfo(), V4, [])
        remote.close()
    assert plugin.calls()[-2:] == ["NetworkDriver.CreateNetwork", "NetworkDriver.DeleteNetwork"]
    sent = plugin.requests[-2].json()
    assert sent["IPv4Data"][0] == {
        "AddressSpace": "LocalDefault",
        "Pool": "10.0.0.0/24",
        "Gateway": "10.0.0.1/24",
        "AuxAddresses": {},
    }
    assert sent == {
        "NetworkID": "n",
        "Options": {},
        "IPv4Data": [
            {"AddressSpace": "LocalDefault", "Pool": "10.0.0.0/24", "Gateway": "10.0.0.1/24", "AuxAddresses": {}}
        ],
        "IPv6Data": [],
    }


def test_reply_error_is_not_rolled_back(sock_dir: Path) -> None:
    behave = network_plugin({"NetworkDriver.CreateNetwork": lambda r: http_reply(200, {"Err": "refused"})})
    with FakePlugin(sock_dir / "p.sock", behave) as plugin:
        remote = RemoteDriver.connect(plugin.address, config=FAST)
        with pytest.raises(PluginReplyError, match="refused"):
            remote.create_network("n", {}, NetworkInfo(), V4, [])
        remote.close()
    assert plugin.calls()[-1] == "NetworkDriver.CreateNetwork"  # the plugin said it did nothing


def test_allocate_network_reply_types(sock_dir: Path) -> None:
    behave = network_plugin({"NetworkDriver.AllocateNetwork": lambda r: http_reply(200, {"Options": {"vni": 5}})})
    with FakePlugin(sock_dir / "p.sock", behave) as plugin:
        remote = RemoteDriver.connect(plugin.address, config=FAST)
        with pytest.raises(PluginProtocolError, match=r"Options\['vni'\] must be a string"):
            remote.network_allocate("n", {}, V4, [])
        remote.close()
    assert plugin.calls()[-1] == "NetworkDriver.FreeNetwork"


def test_unserializable_option_is_refused_before_sending(served: tuple[MemoryDriver, RemoteDriver]) -> None:
    backend, remote = served
    with pytest.raises(InvalidParameterError, match="JSON"):
        remote.create_network("n", {"x": object()}, NetworkInfo(), V4, [])
    assert backend.state()["networks"] == {}


def test_init_registers_configured_and_discovered_plugins(sock_dir: Path) -> None:
    from test_plugin_helpers import MemoryIpam

    registered: dict[str, Any] = {}

    class Registry:
        def register_driver(self, name: str, driver: Driver, capability: Capability) -> None:
            registered[name] = (driver, capability)

    plugin_dir = sock_dir / "plugins"
    plugin_dir.mkdir()
    with (
        PluginServer(driver=MemoryDriver(), socket_path=sock_dir / "configured.sock") as configured,
        PluginServer(driver=MemoryDriver(), socket_path=plugin_dir / "found.sock", capability=GLOBAL),
        PluginServer(ipam=MemoryIpam(), socket_path=plugin_dir / "ipamonly.sock"),
    ):
        config = {
            "plugins": [{"name": "mine", "address": configured.address}],
            "plugin_dirs": [str(plugin_dir)],
            "plugin_client": {"timeout": 1},
        }
        init(Registry(), config)
        assert sorted(registered) == ["found", "mine"]
        assert registered["found"][1] == Capability("global", "global")
        registered["mine"][0].create_network("n", {}, NetworkInfo(), V4, [])
        for driver, _ in registered.values():
            driver.close()


def test_init_fails_loudly_for_unreachable_plugin(sock_dir: Path) -> None:
    class Registry:
        def register_driver(self, name: str, driver: Driver, capability: Capability) -> None:
            raise AssertionError("nothing may be registered")

    config = {"plugins": [{"name": "dead", "address": f"unix://{sock_dir}/dead.sock"}], "plugin_client": FAST.__dict__}
    with pytest.raises(PluginUnavailableError, match=r"dead/Plugin\.Activate"):
        init(Registry(), config)


def test_init_for(served: tuple[MemoryDriver, RemoteDriver]) -> None:
    _, remote = served
    seen: list[str] = []

    class Registry:
        def register_driver(self, name: str, driver: Driver, capability: Capability) -> None:
            seen.append(name)
            assert isinstance(driver, RemoteDriver)
            driver.close()

    RemoteDriver.init_for(str(remote.client.address), name="under-test")(Registry(), {})
    assert seen == ["under-test"]


def test_request_for_unknown_plugin_call_shape(sock_dir: Path) -> None:
    seen: list[Request] = []

    def behave(request: Request) -> bytes | str:
        seen.append(request)
        return network_plugin()(request)

    with FakePlugin(sock_dir / "p.sock", behave) as plugin:
        remote = RemoteDriver.connect(plugin.address, config=FAST)
        remote.discover_delete(DiscoveryType.DATASTORE, {"k": "v"})
        remote.revoke_external_connectivity("n", "e")
        remote.close()
    assert seen[-2].json() == {"DiscoveryType": 2, "DiscoveryData": {"k": "v"}}
    assert seen[-1].json() == {"NetworkID": "n", "EndpointID": "e"}
