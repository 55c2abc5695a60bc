"""The controller API (docs/controller-api.md) on both kernels: lookups, store
records, sandboxes on several networks, bad input leaving nothing behind."""

from __future__ import annotations

import ipaddress
import json
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from drivers.bridge.driver import BridgeDriver
from netsim.controller import Controller, ControllerConfig, IpamConfig, Network, PoolConfig, PortBinding
from netsim.controller.testing import ensure_default_ipam, store_dump
from netsim.driverapi import CONNECTED, NEXTHOP, Capability, DriverCallback, JoinInfo
from netsim.errors import ConflictError, InvalidParameterError, NetsimError, NoSpaceError, NotFoundError
from netsim.kernel.base import Kernel
from netsim.probe import probe
from netsim.registry import kernel_and_host
from netsim.store import MemoryStore


@pytest.fixture(params=["memory", "sqlite", "etcd"])
def ctrl(
    kernel: Kernel, request: pytest.FixtureRequest, server_store_url: Callable[[str], str]
) -> Iterator[Controller]:
    """A controller on each kind of local store: the embedded default, sqlite, etcd."""
    store = None if request.param == "memory" else server_store_url(request.param)
    controller = Controller(kernel, ControllerConfig(host="h1", local_store=store))
    ensure_default_ipam(controller)
    try:
        yield controller
    finally:
        controller.close()


def bridge(ctrl: Controller, name: str, subnet: str, **kwargs: Any) -> Network:
    return ctrl.create_network(name, "bridge", ipam=IpamConfig(pools=[PoolConfig(subnet=subnet)]), **kwargs)


def unchanged(ctrl: Controller, call: Callable[[], object], error: type[Exception], match: str) -> None:
    """``call`` raises ``error`` (message matching) and changes neither kernel nor store."""
    before = (ctrl.kernel.snapshot(), store_dump(ctrl))
    with pytest.raises(error, match=match):
        call()
    assert (ctrl.kernel.snapshot(), store_dump(ctrl)) == before


def test_host_and_outside_are_built(ctrl: Controller) -> None:
    host = ctrl.host
    assert host.namespace == ctrl.kernel.ns("h1") and host.outside_namespace == ctrl.kernel.ns("h1-out")
    assert ("eth0", "198.18.0.2/24") in ctrl.kernel.addresses(host.namespace)
    assert ctrl.kernel.get_sysctl(host.namespace, "net.ipv4.ip_forward") == "1"
    assert probe(ctrl.kernel, host.namespace, host.outside_address, timeout=2).reachable
    outside_routes = [r.dst for r in ctrl.kernel.routes(host.outside_namespace) if r.family == 4]
    assert outside_routes == ["198.18.0.0/24"]  # no way back into container subnets


def test_second_host_index(kernel: Kernel) -> None:
    with Controller(kernel, ControllerConfig(host="h2", host_index=3)) as ctrl:
        assert ctrl.host.uplink_address == "198.18.3.2/24" and ctrl.host.outside_address == "198.18.3.1"
    assert kernel.namespaces() == []


def test_lookups_views_and_inspect(ctrl: Controller) -> None:
    net = ctrl.create_network(
        "front",
        "bridge",
        ipam=IpamConfig(
            pools=[
                PoolConfig(
                    subnet="10.10.0.0/24",
                    ip_range="10.10.0.128/25",
                    gateway="10.10.0.1",
                    aux_addresses={"router": "10.10.0.5"},
                )
            ]
        ),
        labels={"team": "web"},
    )
    assert len(net.id) == 64 and ctrl.network("front") == net == ctrl.network(net.id) == ctrl.network(net.id[:12])
    assert net.driver == "bridge" and net.scope == "local" and net.labels == {"team": "web"}
    assert [str(d.pool) for d in net.ipv4_data] == ["10.10.0.0/24"]
    assert str(net.ipv4_data[0].gateway) == "10.10.0.1/24"
    ep = ctrl.create_endpoint(net, "web", ipv4="10.10.0.130", mac="02:00:00:00:00:aa")
    assert ep.sandbox is None and ep.iface is None and ep.mac == "02:00:00:00:00:aa"
    sb = ctrl.create_sandbox("web")
    ctrl.join(ep, sb)
    assert ep.sandbox == sb and ep.iface == "eth0" and sb.endpoints() == [ep]
    assert ctrl.endpoint("front", "web") == ep and ctrl.sandbox("web") == sb and ctrl.sandboxes() == [sb]
    assert ctrl.kernel.link(sb.namespace, "eth0").mac == "02:00:00:00:00:aa"
    info = ctrl.inspect_network("front")
    assert info["IPAM"]["Config"] == [
        {
            "Subnet": "10.10.0.0/24",
            "IPRange": "10.10.0.128/25",
            "Gateway": "10.10.0.1",
            "AuxiliaryAddresses": {"router": "10.10.0.5"},
        }
    ]
    assert info["Containers"] == {
        sb.id: {
            "Name": "web",
            "EndpointID": ep.id,
            "MacAddress": "02:00:00:00:00:aa",
            "IPv4Address": "10.10.0.130/24",
            "IPv6Address": "",
        }
    }
    assert {"Name", "Id", "Scope", "Driver", "EnableIPv6", "Internal", "Options", "Labels"} <= set(info)
    json.dumps(info)
    for bad in ("nope", net.id[:5]):
        with pytest.raises(NotFoundError):
            ctrl.network(bad)


def test_records_live_in_the_store(kernel: Kernel) -> None:
    store = MemoryStore()
    with Controller(kernel, ControllerConfig(host="h1", store=store)) as ctrl:
        ensure_default_ipam(ctrl)
        net = bridge(ctrl, "front", "10.10.0.0/24")
        ep = ctrl.connect("web", "front")
        sb = ctrl.sandbox("web")
        keys = {pair.key for pair in store.list("")}
        assert {f"network/{net.id}", f"endpoint/{net.id}/{ep.id}", f"sandbox/{sb.id}"} <= keys
        record = json.loads(store.get(f"endpoint/{net.id}/{ep.id}").value)
        assert record["sandbox"] == sb.id and record["address"] == "10.10.0.2/24"
        store._check()
    assert len(store) == 0


def test_sandbox_on_several_networks_gateway_choice(ctrl: Controller) -> None:
    bridge(ctrl, "vault", "10.40.0.0/24", internal=True)
    bridge(ctrl, "front", "10.10.0.0/24")
    bridge(ctrl, "back", "10.20.0.0/24")
    ctrl.connect("c", "vault")
    ctrl.connect("c", "front")
    ctrl.connect("c", "back")
    sb = ctrl.sandbox("c")
    assert [ep.iface for ep in sb.endpoints()] == ["eth0", "eth1", "eth2"]

    def default_via() -> list[str | None]:
        return [r.via for r in ctrl.kernel.routes(sb.namespace) if r.dst == "default"]

    assert default_via() == ["10.10.0.1"]  # first non-internal network joined
    ctrl.disconnect("c", "front")
    assert default_via() == ["10.20.0.1"]
    assert probe(ctrl.kernel, sb.namespace, ctrl.host.outside_address, timeout=2).reachable
    ctrl.disconnect("c", "back")
    assert default_via() == []
    ctrl.connect("c", "front")
    assert [ep.iface for ep in sb.endpoints()] == ["eth0", "eth1"] and default_via() == ["10.10.0.1"]
    with pytest.raises(ConflictError, match="already connected"):
        ctrl.connect("c", "front", name="again")


class RoutedBridge(BridgeDriver):
    """A bridge that also hands the sandbox static routes, as a remote driver may."""

    def join(self, nid: str, eid: str, sbox_key: str, jinfo: JoinInfo, options: Mapping[str, Any]) -> None:
        super().join(nid, eid, sbox_key, jinfo, options)
        jinfo.add_static_route(ipaddress.ip_network("192.0.2.0/24"), NEXTHOP, ipaddress.ip_address("10.10.0.1"))
        jinfo.add_static_route(ipaddress.ip_network("198.51.100.0/24"), CONNECTED)


def routed_init(registry: DriverCallback, config: Mapping[str, Any]) -> None:
    kernel, host = kernel_and_host(config, "routed")
    registry.register_driver("routed", RoutedBridge(kernel, host), Capability())


def test_static_routes_from_join_info(ctrl: Controller) -> None:
    ctrl.registry.add_driver(routed_init, ctrl.driver_config("routed"))
    ctrl.create_network("r", "routed", ipam=IpamConfig(pools=[PoolConfig(subnet="10.10.0.0/24")]))
    ctrl.connect("c", "r")
    ns = ctrl.sandbox("c").namespace
    routes = {r.dst: r for r in ctrl.kernel.routes(ns)}
    assert routes["192.0.2.0/24"].via == "10.10.0.1"
    assert routes["198.51.100.0/24"].dev == "eth0" and routes["198.51.100.0/24"].scope == "link"
    ctrl.disconnect("c", "r")
    assert "192.0.2.0/24" not in {r.dst for r in ctrl.kernel.routes(ns)}


def test_bad_network_input(ctrl: Controller) -> None:
    bridge(ctrl, "front", "10.10.0.0/24")
    pool = PoolConfig
    cases: list[tuple[Callable[[], object], type[Exception], str]] = [
        (lambda: ctrl.create_network("x", "nosuchdriver"), NotFoundError, "nosuchdriver"),
        (lambda: bridge(ctrl, "x", "10.11.0.1/24"), InvalidParameterError, "subnet"),
        (lambda: bridge(ctrl, "x", "banana"), InvalidParameterError, "subnet"),
        (lambda: bridge(ctrl, "x", "10.10.0.0/16"), ConflictError, "overlaps"),
        (lambda: bridge(ctrl, "front", "10.12.0.0/24"), ConflictError, "front"),
        (lambda: bridge(ctrl, "bad name", "10.12.0.0/24"), InvalidParameterError, "name"),
        (
            lambda: ctrl.create_network("x", ipam=IpamConfig(pools=[pool(subnet="10.13.0.0/24", gateway="10.14.0.1")])),
            InvalidParameterError,
            "gateway",
        ),
        (
            lambda: ctrl.create_network(
                "x", ipam=IpamConfig(pools=[pool(subnet="10.13.0.0/24", ip_range="10.1.0.0/25")])
            ),
            InvalidParameterError,
            "ip range",
        ),
        (
            lambda: ctrl.create_network(
                "x", ipam=IpamConfig(pools=[pool(subnet="10.13.0.0/24"), pool(subnet="10.13.0.0/25")])
            ),
            InvalidParameterError,
            "overlap",
        ),
        (
            lambda: ctrl.create_network("x", ipam=IpamConfig(pools_v6=[pool(subnet="fd00::/64")])),
            InvalidParameterError,
            "ipv6",
        ),
        (lambda: ctrl.create_network("x", options={"a": 1}), InvalidParameterError, "string"),  # type: ignore[dict-item]
        (lambda: ctrl.create_network("x", ipam=IpamConfig(driver="nosuchipam")), NotFoundError, "nosuchipam"),
    ]
    for call, error, match in cases:
        unchanged(ctrl, call, error, match)


def test_bad_endpoint_and_sandbox_input(ctrl: Controller) -> None:
    net = bridge(ctrl, "front", "10.10.0.0/24")
    ep = ctrl.connect("web", "front", ipv4="10.10.0.10")
    cases: list[tuple[Callable[[], object], type[Exception], str]] = [
        (lambda: ctrl.create_endpoint(net, "x", ipv4="10.99.0.1"), InvalidParameterError, "not in any subnet"),
        (lambda: ctrl.create_endpoint(net, "x", ipv4="10.10.0.10"), ConflictError, "allocated"),
        (lambda: ctrl.create_endpoint(net, "x", ipv4="fd00::1"), InvalidParameterError, "IPv4"),
        (lambda: ctrl.create_endpoint(net, "x", mac="01:00:00:00:00:01"), InvalidParameterError, "MAC"),
        (lambda: ctrl.create_endpoint(net, "web"), ConflictError, "web"),
        (lambda: ctrl.create_endpoint(net, "x", ports=[("tcp", 80)]), InvalidParameterError, "port"),  # type: ignore[list-item]
        (lambda: ctrl.create_endpoint("nosuchnet", "x"), NotFoundError, "nosuchnet"),
        (lambda: ctrl.join(ep, "nosuchsandbox"), NotFoundError, "nosuchsandbox"),
        (lambda: ctrl.join(ep, "web"), ConflictError, "already joined"),
        (lambda: ctrl.delete_network("front"), ConflictError, "active endpoint"),
        (lambda: ctrl.delete_endpoint(ep), ConflictError, "leave first"),
        (lambda: ctrl.create_sandbox("web"), ConflictError, "web"),
        (lambda: ctrl.create_sandbox("../etc"), InvalidParameterError, "container name"),
        (lambda: ctrl.disconnect("web", "nosuchnet"), NotFoundError, "nosuchnet"),
    ]
    for call, error, match in cases:
        unchanged(ctrl, call, error, match)
    with pytest.raises(InvalidParameterError, match="host port"):
        PortBinding("tcp", 80, 70000)


def test_ipam_exhaustion_is_no_space_and_leaks_nothing(ctrl: Controller) -> None:
    net = bridge(ctrl, "tiny", "10.77.0.0/30")  # .1 gateway, .2 the only endpoint address
    ctrl.create_endpoint(net, "one")
    unchanged(ctrl, lambda: ctrl.create_endpoint(net, "two"), NoSpaceError, ".")
    unchanged(ctrl, lambda: ctrl.connect("c", "tiny"), NoSpaceError, ".")
    assert ctrl.sandboxes() == []


def test_concurrent_endpoint_creation(ctrl: Controller) -> None:
    net = bridge(ctrl, "busy", "10.88.0.0/24")
    errors: list[BaseException] = []
    made: list[str] = []

    def worker(index: int) -> None:
        try:
            for j in range(8):
                ep = ctrl.create_endpoint(net, f"ep-{index}-{j}")
                made.append(str(ep.address))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(made) == 48 and len(set(made)) == 48
    assert len(net.endpoints()) == 48


def test_close_removes_everything(kernel: Kernel) -> None:
    ctrl = Controller(kernel, ControllerConfig(host="h1"))
    ensure_default_ipam(ctrl)
    bridge(ctrl, "front", "10.10.0.0/24")
    ctrl.connect("a", "front", ports=[PortBinding("tcp", 80, 8080)])
    ctrl.create_endpoint("front", "loose")
    ctrl.create_sandbox("empty")
    ctrl.close()
    ctrl.close()
    assert kernel.namespaces() == [] and len(ctrl.store.list("")) == 0


def test_controller_config_validation() -> None:
    for bad in ({"host": ""}, {"host": "a b"}, {"host_index": 256}, {"host_index": -1}):
        with pytest.raises(InvalidParameterError):
            ControllerConfig(**bad)
    assert issubclass(NoSpaceError, NetsimError)
