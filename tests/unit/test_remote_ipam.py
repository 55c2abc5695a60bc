"""RemoteIpam: an IPAM driver served by PluginServer and reached through the
plugin protocol answers as the driver does directly; bad replies are clear
errors and release what the plugin may have reserved."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_plugin_helpers import FakePlugin, MemoryIpam, Request, http_reply, short_dir

from ipam.remote import RemoteIpam, init
from netsim.errors import (
    ConflictError,
    InvalidParameterError,
    NoSpaceError,
    NotFoundError,
    PluginProtocolError,
    PluginReplyError,
    error_kind,
)
from netsim.ipamapi import Ipam, IpamCapability
from netsim.plugin import PluginServer
from netsim.plugin.client import ClientConfig

FAST = ClientConfig(timeout=0.5, retries=1, backoff=0.01)


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    with short_dir() as path:
        yield path


@pytest.fixture
def served(sock_dir: Path) -> Iterator[RemoteIpam]:
    with PluginServer(ipam=MemoryIpam(), socket_path=sock_dir / "ipam.sock") as server:
        remote = RemoteIpam.connect(server.address, name="mem-ipam", config=FAST)
        try:
            yield remote
        finally:
            remote.close()


def run_script(ipam: Ipam) -> list[Any]:
    """A fixed allocation script; results and error kinds, in order."""
    results: list[Any] = [ipam.get_default_address_spaces(), ipam.capabilities()]

    def attempt(fn: Any, *args: Any) -> Any:
        try:
            value = fn(*args)
        except (ConflictError, NotFoundError, InvalidParameterError, NoSpaceError) as exc:
            value = error_kind(exc)
        results.append(value)
        return value

    pool_id, _pool, _ = attempt(ipam.request_pool, "LocalDefault", "10.5.0.0/29", "", {}, False)
    attempt(ipam.request_pool, "LocalDefault", "10.5.0.0/29", "", {}, False)  # overlaps
    attempt(ipam.request_pool, "LocalDefault", "", "10.5.0.0/30", {}, False)  # sub-pool without pool
    attempt(ipam.request_pool, "LocalDefault", "", "", {"gw": "1"}, True)
    for _ in range(7):
        attempt(ipam.request_address, pool_id, None, {})
    attempt(ipam.release_address, pool_id, ipaddress.ip_address("10.5.0.3"))
    attempt(ipam.request_address, pool_id, ipaddress.ip_address("10.5.0.3"), {})
    attempt(ipam.request_address, pool_id, ipaddress.ip_address("10.5.0.3"), {})  # taken
    attempt(ipam.request_address, pool_id, ipaddress.ip_address("10.6.0.3"), {})  # out of range
    attempt(ipam.request_address, "nope", None, {})
    attempt(ipam.release_pool, pool_id)
    attempt(ipam.release_pool, pool_id)
    return results


def test_round_trip_matches_direct(served: RemoteIpam) -> None:
    direct = run_script(MemoryIpam())
    remote = run_script(served)
    assert remote == direct
    assert "no-space" in direct and "conflict" in direct and "not-found" in direct
    assert served.capabilities() == IpamCapability(requires_mac_address=True)
    assert served.is_builtin() is False


def test_round_trip_default_ipam(sock_dir: Path) -> None:
    default = pytest.importorskip("ipam.default")

    def build() -> Ipam:
        found: dict[str, Ipam] = {}

        class Registry:
            def register_ipam_driver(self, name: str, driver: Ipam, capability: IpamCapability | None = None) -> None:
                found[name] = driver

        default.init(Registry(), {})
        return found["default"]

    with PluginServer(ipam=build(), socket_path=sock_dir / "default.sock") as server:
        remote = RemoteIpam.connect(server.address, config=FAST)
        try:
            assert _default_script(remote) == _default_script(build())
        finally:
            remote.close()


def _default_script(ipam: Ipam) -> list[Any]:
    out: list[Any] = [ipam.get_default_address_spaces()]
    local = out[0][0]
    pool_id, pool, data = ipam.request_pool(local, "", "", {}, False)
    out.append((str(pool), data))
    for _ in range(3):
        out.append(str(ipam.request_address(pool_id, None, {})[0]))
    fixed_id, fixed, _ = ipam.request_pool(local, "10.66.0.0/24", "10.66.0.128/25", {}, False)
    out.append(str(fixed))
    out.append(str(ipam.request_address(fixed_id, None, {"RequestAddressType": "com.docker.network.gateway"})[0]))
    out.append(str(ipam.request_address(fixed_id, None, {})[0]))
    try:
        ipam.request_pool(local, "10.66.0.0/24", "", {}, False)
    except ConflictError as exc:
        out.append(error_kind(exc))
    v6_id, _v6, _ = ipam.request_pool(local, "fd00:1::/64", "", {}, True)
    out.append(str(ipam.request_address(v6_id, ipaddress.ip_address("fd00:1::ffff:ffff:ffff:ffff"), {})[0]))
    for pid in (pool_id, fixed_id, v6_id):
        ipam.release_pool(pid)
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prefs=st.lists(st.one_of(st.none(), st.integers(0, 20)), max_size=10))
def test_random_requests_agree(served: RemoteIpam, prefs: list[int | None]) -> None:
    direct = MemoryIpam()
    outcomes: list[list[str]] = [[], []]
    for index, ipam in enumerate((direct, served)):
        pool_id, _, _ = ipam.request_pool("LocalDefault", "10.7.0.0/28", "", {}, False)
        for pref in prefs:
            preferred = None if pref is None else ipaddress.ip_address(f"10.7.0.{pref}")
            try:
                outcomes[index].append(str(ipam.request_address(pool_id, preferred, {})[0]))
            except (ConflictError, InvalidParameterError, NoSpaceError) as exc:
                outcomes[index].append(error_kind(exc))
        ipam.release_pool(pool_id)
    assert outcomes[0] == outcomes[1]


def ipam_plugin(sock_dir: Path, handlers: Mapping[str, Any]) -> FakePlugin:
    def behave(request: Request) -> bytes | str:
        call = request.path.lstrip("/")
        if call in handlers:
            return handlers[call](request)  # type: ignore[no-any-return]
        if call == "Plugin.Activate":
            return http_reply(200, {"Implements": ["IpamDriver"]})
        return http_reply(200, {})

    return FakePlugin(sock_dir / "ipam.sock", behave)


def test_capabilities_404_means_defaults(sock_dir: Path) -> None:
    with ipam_plugin(sock_dir, {"IpamDriver.GetCapabilities": lambda r: http_reply(404, "404 page not found")}) as p:
        remote = RemoteIpam.connect(p.address, config=FAST)
        assert remote.capabilities() == IpamCapability()
        remote.close()


@pytest.mark.parametrize(
    ("reply", "match", "undo"),
    [
        ({"PoolID": "p1", "Pool": "not-a-cidr"}, "not in CIDR", "ReleasePool"),
        ({"PoolID": "p1", "Pool": "10.0.0.0/24", "Data": {"a": 1}}, "must be a string", "ReleasePool"),
        ({"Pool": "10.0.0.0/24"}, "missing field 'PoolID'", None),
        ({"PoolID": 7, "Pool": "10.0.0.0/24"}, "must be a string", None),
    ],
)
def test_bad_request_pool_reply(sock_dir: Path, reply: dict[str, Any], match: str, undo: str | None) -> None:
    with ipam_plugin(sock_dir, {"IpamDriver.RequestPool": lambda r: http_reply(200, reply)}) as plugin:
        remote = RemoteIpam.connect(plugin.address, name="bad", config=FAST)
        with pytest.raises(PluginProtocolError, match=match) as info:
            remote.request_pool("LocalDefault", "", "", {}, False)
        remote.close()
    assert info.value.plugin == "bad" and info.value.call == "IpamDriver.RequestPool"
    last = plugin.calls()[-1]
    assert last == (f"IpamDriver.{undo}" if undo else "IpamDriver.RequestPool")


@pytest.mark.parametrize(
    ("reply", "match"),
    [({"Address": "10.0.0.2"}, "not in CIDR"), ({}, "missing field 'Address'"), ({"Address": ["x"]}, "string")],
)
def test_bad_request_address_reply(sock_dir: Path, reply: dict[str, Any], match: str) -> None:
    with ipam_plugin(sock_dir, {"IpamDriver.RequestAddress": lambda r: http_reply(200, reply)}) as plugin:
        remote = RemoteIpam.connect(plugin.address, config=FAST)
        with pytest.raises(PluginProtocolError, match=match):
            remote.request_address("p1", None, {})
        remote.close()
    if reply.get("Address") == "10.0.0.2":  # a parseable address is released again
        assert plugin.requests[-1].json() == {"PoolID": "p1", "Address": "10.0.0.2"}


def test_error_field_of_ipam_replies(sock_dir: Path) -> None:
    handlers = {"IpamDriver.ReleasePool": lambda r: http_reply(200, {"Error": "pool in use"})}
    with ipam_plugin(sock_dir, handlers) as plugin:
        remote = RemoteIpam.connect(plugin.address, config=FAST)
        with pytest.raises(PluginReplyError, match="pool in use"):
            remote.release_pool("p1")
        remote.close()


def test_wire_format(sock_dir: Path) -> None:
    handlers = {
        "IpamDriver.RequestPool": lambda r: http_reply(200, {"PoolID": "p1", "Pool": "10.1.0.0/16", "Data": {}}),
        "IpamDriver.RequestAddress": lambda r: http_reply(200, {"Address": "10.1.0.9/16", "Data": {"k": "v"}}),
        "IpamDriver.GetDefaultAddressSpaces": lambda r: http_reply(
            200, {"LocalDefaultAddressSpace": "L", "GlobalDefaultAddressSpace": "G"}
        ),
    }
    with ipam_plugin(sock_dir, handlers) as plugin:
        remote = RemoteIpam.connect(plugin.address, config=FAST)
        assert remote.get_default_address_spaces() == ("L", "G")
        assert remote.request_pool("L", "10.1.0.0/16", "10.1.1.0/24", {"o": "1"}, False)[1] == ipaddress.ip_network(
            "10.1.0.0/16"
        )
        address, data = remote.request_address("p1", ipaddress.ip_address("10.1.0.9"), {"x": "y"})
        remote.release_address("p1", ipaddress.ip_address("10.1.0.9"))
        remote.close()
    assert (str(address), data) == ("10.1.0.9/16", {"k": "v"})
    bodies = {r.path.lstrip("/"): r.json() for r in plugin.requests}
    assert bodies["IpamDriver.GetDefaultAddressSpaces"] is None  # argument-less: empty body
    assert bodies["IpamDriver.RequestPool"] == {
        "AddressSpace": "L",
        "Pool": "10.1.0.0/16",
        "SubPool": "10.1.1.0/24",
        "Options": {"o": "1"},
        "V6": False,
    }
    assert bodies["IpamDriver.RequestAddress"] == {"PoolID": "p1", "Address": "10.1.0.9", "Options": {"x": "y"}}
    assert bodies["IpamDriver.ReleaseAddress"] == {"PoolID": "p1", "Address": "10.1.0.9"}


def test_init_registers_ipam_plugins_only(sock_dir: Path) -> None:
    from test_plugin_helpers import MemoryDriver

    registered: dict[str, Any] = {}

    class Registry:
        def register_ipam_driver(self, name: str, driver: Ipam, capability: IpamCapability | None = None) -> None:
            registered[name] = (driver, capability)

    with (
        PluginServer(ipam=MemoryIpam(), socket_path=sock_dir / "ip.sock") as ipam_server,
        PluginServer(driver=MemoryDriver(), socket_path=sock_dir / "net.sock") as net_server,
    ):
        config = {"options": {"plugins": [{"address": ipam_server.address}, {"address": net_server.address}]}}
        init(Registry(), config)
        assert list(registered) == ["ip"]
        driver, capability = registered["ip"]
        assert capability == IpamCapability(requires_mac_address=True)
        driver.close()
