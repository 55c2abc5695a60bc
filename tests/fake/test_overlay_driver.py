"""The overlay driver on one host of the fake kernel: the network sandbox
(namespace with br0 and vxlan0), peer programming from table events,
refusals that leave everything as it was, rollback."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import Any

import pytest

import drivers.overlay as overlay_package
from drivers.overlay import OverlayDriver
from drivers.overlay.driver import ENCRYPTED, VXLANID_LIST
from drivers.overlay.peers import PEER_TABLE, PeerRecord
from netsim import netlabel
from netsim.controller import Controller, ControllerConfig
from netsim.driverapi import EventType, InterfaceInfo, IPAMData, JoinInfo, NetworkInfo
from netsim.errors import (
    ConflictError,
    ForbiddenError,
    InvalidParameterError,
    KernelError,
    NetsimError,
    NotFoundError,
    UnavailableError,
)
from netsim.kernel.fake import FakeKernel
from netsim.registry import Registry

NID = "a" * 64
SUBNET = ipaddress.ip_network("10.5.0.0/24")
REMOTE = "198.18.9.9"


@pytest.fixture
def ctrl() -> Iterator[Controller]:
    controller = Controller(FakeKernel(), ControllerConfig(host="h1"))
    try:
        yield controller
    finally:
        controller.close()
        controller.kernel.close()


def _driver(ctrl: Controller) -> OverlayDriver:
    driver = ctrl.registry.driver("overlay").driver
    assert isinstance(driver, OverlayDriver)
    return driver


def _data() -> list[IPAMData]:
    return [IPAMData("GlobalDefault", SUBNET, ipaddress.ip_interface("10.5.0.1/24"))]


def _options(**generic: str) -> dict[str, Any]:
    return {netlabel.GENERIC_DATA: generic, netlabel.ENABLE_IPV6: False, netlabel.INTERNAL: False}


def _create(ctrl: Controller, nid: str = NID, **generic: str) -> NetworkInfo:
    ninfo = NetworkInfo()
    _driver(ctrl).create_network(nid, _options(**generic), ninfo, _data(), [])
    return ninfo


def _state(ctrl: Controller) -> tuple[Any, ...]:
    driver = _driver(ctrl)
    peers = {nid: dict(n.peers) for nid, n in driver.networks.items()}
    return (
        ctrl.kernel.snapshot(),
        sorted(driver.networks),
        peers,
        [(p.key, p.value) for p in ctrl.store.list("overlay/")],
    )


def _peer(ip: str, mac: str, vtep: str = REMOTE) -> bytes:
    return PeerRecord(ipaddress.ip_interface(f"{ip}/24"), mac, vtep).encode()


def _sandbox(ctrl: Controller, nid: str = NID) -> str:
    return _driver(ctrl).namespace_of(nid)


def _programmed(ctrl: Controller) -> tuple[set[tuple[str, str | None]], set[tuple[str, str]]]:
    ns = _sandbox(ctrl)
    fdb = {(f.mac, f.dst) for f in ctrl.kernel.fdb(ns) if f.dev == "vxlan0"}
    neighbours = {(n.ip, n.mac) for n in ctrl.kernel.neighbours(ns) if n.dev == "vxlan0"}
    return fdb, neighbours


def test_create_network_builds_its_sandbox_as_libnetwork_and_registers_the_peer_table(ctrl: Controller) -> None:
    ninfo = _create(ctrl, **{VXLANID_LIST: "4242"})
    assert PEER_TABLE in ninfo.tables
    ns = _sandbox(ctrl)
    assert ns == ctrl.kernel.ns(f"h1-ov-{NID[:12]}") and ns in ctrl.kernel.namespaces()
    vxlan = ctrl.kernel.link(ns, "vxlan0")
    assert vxlan.master == "br0" and vxlan.attrs["vni"] == 4242 and vxlan.mtu == 1450
    flags = {key: vxlan.attrs[key] for key in ("learning", "proxy", "l2miss", "l3miss")}
    assert flags == {"learning": True, "proxy": True, "l2miss": True, "l3miss": True}  # ov_utils.go createVxlan
    # the UDP socket stays with the underlay: local address and device are the host's
    assert vxlan.attrs["local"] == ctrl.host.host_ip and vxlan.parent == ctrl.host.uplink
    assert ("br0", "10.5.0.1/24") in ctrl.kernel.addresses(ns)  # the gateway sits on br0, as in libnetwork
    assert [link.name for link in ctrl.kernel.links(ctrl.host.namespace) if link.kind in ("vxlan", "bridge")] == []
    _driver(ctrl).delete_network(NID)
    assert ns not in ctrl.kernel.namespaces()


def test_encrypted_networks_are_refused_as_unavailable(ctrl: Controller) -> None:
    before = _state(ctrl)
    with pytest.raises(UnavailableError, match="ESP"):
        _create(ctrl, **{ENCRYPTED: ""})
    with pytest.raises(UnavailableError, match="ESP"):
        _driver(ctrl).network_allocate(NID, {ENCRYPTED: "true"}, [], [])
    # the scenario loader's road: an invalid option there, with the same reason
    with pytest.raises(InvalidParameterError, match="ESP"):
        overlay_package.validate_network_options({netlabel.GENERIC_DATA: {ENCRYPTED: ""}})
    assert _state(ctrl) == before


def test_without_network_allocate_the_driver_allocates_and_frees_its_vni(ctrl: Controller) -> None:
    _create(ctrl)
    assert ctrl.store.exists(f"overlay/network/{NID}")
    _driver(ctrl).delete_network(NID)
    assert ctrl.store.list("overlay/") == []


def test_events_program_and_remove_remote_peers(ctrl: Controller) -> None:
    _create(ctrl)
    driver = _driver(ctrl)
    driver.event_notify(EventType.CREATE, NID, PEER_TABLE, "e1", _peer("10.5.0.7", "02:42:0a:05:00:07"))
    driver.event_notify(EventType.CREATE, NID, PEER_TABLE, "e2", _peer("10.5.0.8", "02:42:0a:05:00:08"))
    fdb, neighbours = _programmed(ctrl)
    # no all-zero flood entry: ARP for a peer is answered by the vxlan's proxy
    assert fdb == {("02:42:0a:05:00:07", REMOTE), ("02:42:0a:05:00:08", REMOTE)}
    assert neighbours == {("10.5.0.7", "02:42:0a:05:00:07"), ("10.5.0.8", "02:42:0a:05:00:08")}
    # UPDATE moves e2 behind another VTEP: its FDB entry follows.
    driver.event_notify(EventType.UPDATE, NID, PEER_TABLE, "e2", _peer("10.5.0.8", "02:42:0a:05:00:08", "198.18.9.10"))
    assert _programmed(ctrl)[0] == {("02:42:0a:05:00:07", REMOTE), ("02:42:0a:05:00:08", "198.18.9.10")}
    for key in ("e1", "e2"):
        driver.event_notify(EventType.DELETE, NID, PEER_TABLE, key, b"")
    assert _programmed(ctrl) == (set(), set())
    assert driver.peers(NID) == {}


@pytest.mark.parametrize(
    ("event", "nid", "table", "value"),
    [
        (EventType.CREATE, NID, PEER_TABLE, b"garbage"),
        (EventType.CREATE, NID, PEER_TABLE, b""),
        (EventType.UPDATE, NID, PEER_TABLE, b'{"EndpointIP": 1}'),
        (EventType.CREATE, "b" * 64, PEER_TABLE, _peer("10.5.0.7", "02:42:0a:05:00:07")),
        (EventType.CREATE, NID, "endpoint_table", _peer("10.5.0.7", "02:42:0a:05:00:07")),
        (EventType.DELETE, NID, PEER_TABLE, b"never created"),
        # this host's own VTEP: the endpoint is local, nothing to tunnel
        (EventType.CREATE, NID, PEER_TABLE, _peer("10.5.0.7", "02:42:0a:05:00:07", "198.18.0.2")),
        # outside the network's subnets (libnetwork: "couldn't find the subnet")
        (EventType.CREATE, NID, PEER_TABLE, _peer("10.6.0.7", "02:42:0a:06:00:07")),
    ],
)
def test_events_the_driver_cannot_use_change_nothing(
    ctrl: Controller, event: EventType, nid: str, table: str, value: bytes
) -> None:
    _create(ctrl)
    before = _state(ctrl)
    _driver(ctrl).event_notify(event, nid, table, "e1", value)
    assert _state(ctrl) == before


def test_decode_table_entry(ctrl: Controller) -> None:
    driver = _driver(ctrl)
    assert driver.decode_table_entry(PEER_TABLE, "e1", _peer("10.5.0.7", "02:42:0a:05:00:07")) == (
        "e1",
        {"Host IP": REMOTE},
    )
    assert driver.decode_table_entry(PEER_TABLE, "e1", b"\x00") == ("e1", {})
    assert driver.decode_table_entry("other", "e1", b"{}") == ("e1", {})


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda c: _create(c, **{VXLANID_LIST: "zero"}), InvalidParameterError, "invalid VXLAN id"),
        (lambda c: _create(c, **{VXLANID_LIST: str(1 << 24)}), InvalidParameterError, "invalid VXLAN id"),
        (lambda c: _create(c), ConflictError, "exists already"),
        (lambda c: _create(c, "b" * 64, **{VXLANID_LIST: "4096"}), ConflictError, "already used"),
        (
            lambda c: _driver(c).create_network("b" * 64, _options(), NetworkInfo(), [], []),
            InvalidParameterError,
            "IPv4 pool",
        ),
        (
            lambda c: _driver(c).create_network("b" * 64, {netlabel.GENERIC_DATA: "x"}, NetworkInfo(), _data(), []),
            InvalidParameterError,
            "mapping",
        ),
        (lambda c: _driver(c).create_endpoint(NID, "e" * 64, InterfaceInfo(), {}), InvalidParameterError, "IPv4"),
        (
            lambda c: _driver(c).create_endpoint("b" * 64, "e" * 64, InterfaceInfo(), {}),
            NotFoundError,
            "not found",
        ),
        (lambda c: _driver(c).join(NID, "e" * 64, "ns", JoinInfo(), {}), NotFoundError, "not found"),
        (lambda c: _driver(c).leave(NID, "e" * 64), NotFoundError, "not found"),
        (lambda c: _driver(c).delete_endpoint(NID, "e" * 64), NotFoundError, "not found"),
        (lambda c: _driver(c).delete_network("b" * 64), NotFoundError, "not found"),
        (lambda c: _driver(c).network_free("b" * 64), NotFoundError, "no VXLAN id"),
        (lambda c: _driver(c).network_allocate("b" * 64, {VXLANID_LIST: "4096"}, [], []), ConflictError, "already"),
    ],
)
def test_refusals_name_the_problem_and_change_nothing(
    ctrl: Controller, call: Any, error: type[NetsimError], message: str
) -> None:
    _create(ctrl)  # takes VNI 4096
    before = _state(ctrl)
    with pytest.raises(error, match=message):
        call(ctrl)
    assert _state(ctrl) == before


def test_endpoint_lifecycle_and_busy_network(ctrl: Controller) -> None:
    _create(ctrl)
    driver = _driver(ctrl)
    eid = "e" * 64
    ifinfo = InterfaceInfo(address=ipaddress.ip_interface("10.5.0.2/24"))
    driver.create_endpoint(NID, eid, ifinfo, {})
    assert ifinfo.mac_address == "02:42:0a:05:00:02"
    jinfo = JoinInfo()
    driver.join(NID, eid, "sandbox", jinfo, {})
    assert jinfo.dst_prefix == "eth" and jinfo.gateway is None
    [(table, key, value)] = jinfo.table_entries
    assert (table, key) == (PEER_TABLE, eid)
    assert PeerRecord.decode(value) == PeerRecord(ifinfo.address, "02:42:0a:05:00:02", ctrl.host.host_ip)  # type: ignore[arg-type]
    with pytest.raises(ConflictError, match="already joined"):
        driver.join(NID, eid, "sandbox", JoinInfo(), {})
    before = _state(ctrl)
    with pytest.raises(ForbiddenError, match="active endpoints"):
        driver.delete_network(NID)
    assert _state(ctrl) == before
    driver.leave(NID, eid)
    driver.delete_endpoint(NID, eid)
    driver.delete_network(NID)
    assert driver.networks == {}


def test_a_kernel_failure_rolls_the_network_back() -> None:
    """The underlay device does not exist: the vxlan cannot be made; the
    sandbox namespace, its bridge and the VNI taken before it are given back."""
    kernel = FakeKernel()
    ctrl = Controller(kernel, ControllerConfig(host="h1", driver_options={"overlay": {"underlay_dev": "eth9"}}))
    try:
        before = _state(ctrl)
        with pytest.raises(KernelError):
            _create(ctrl)
        assert _state(ctrl) == before
    finally:
        ctrl.close()
        kernel.close()


@pytest.mark.parametrize(
    "options",
    [{"underlay_address": "not-an-ip"}, {"underlay_address": "fd00::1"}, {"underlay_dev": ""}, {"global_store": 3}],
)
def test_init_refuses_a_bad_underlay_or_store(ctrl: Controller, options: dict[str, Any]) -> None:
    registry = Registry()
    config = {**ctrl.driver_config("overlay"), "options": options}
    with pytest.raises(InvalidParameterError, match="overlay"):
        overlay_package.init(registry, config)
    assert registry.drivers() == {}


def test_a_scenario_with_an_encrypted_overlay_is_refused_at_load(tmp_path: Any) -> None:
    from netsim.errors import ScenarioError
    from netsim.scenario.schema import load_scenario

    path = tmp_path / "encrypted.yaml"
    path.write_text(
        "name: enc\nhosts: [h1, h2]\nnetworks:\n  - {name: ov, driver: overlay, options: {encrypted: ''}}\n"
        "containers:\n  - {name: a, host: h1, networks: [ov]}\n"
    )
    with pytest.raises(ScenarioError, match=r"networks\[0\]\.options: overlay option 'encrypted'.*ESP"):
        load_scenario(path)
