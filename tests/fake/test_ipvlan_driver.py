"""The ipvlan driver on the fake kernel, against Docker's (libnetwork/drivers/ipvlan):
options, defaults and refusals with Docker's messages, when the slave is made,
what a join gives in each mode, parent.VLAN, and the reachability that follows."""

from __future__ import annotations

import errno
import ipaddress
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers import ipvlan
from netsim import netlabel
from netsim.controller import Controller, ControllerConfig, IpamConfig, Network, PoolConfig
from netsim.controller.testing import (
    FaultInjector,
    FaultyKernel,
    ensure_default_ipam,
    every_step_fails,
    install_faults,
)
from netsim.driverapi import CONNECTED, InterfaceInfo, IPAMData, JoinInfo, NetworkInfo
from netsim.errors import (
    ConflictError,
    ForbiddenError,
    InvalidParameterError,
    KernelError,
    NotFoundError,
    kernel_error,
)
from netsim.kernel.base import Kernel
from netsim.probe import probe
from netsim.scenario.schema import parse_scenario
from netsim.store import MemoryStore

MISS = 0.3
LAN = PoolConfig(subnet="198.18.0.0/24", ip_range="198.18.0.128/25", gateway="198.18.0.1")


@pytest.fixture
def ctrl(netsim_kernel_factory: Callable[[str], Kernel]) -> Iterator[Controller]:
    controller = Controller(netsim_kernel_factory("fake"), ControllerConfig(host="h1"))
    ensure_default_ipam(controller)
    try:
        yield controller
    finally:
        controller.close()


def network(ctrl: Controller, name: str = "lan", pool: PoolConfig = LAN, **options: str) -> Network:
    return ctrl.create_network(name, "ipvlan", options=options, ipam=IpamConfig(pools=[pool]))


def host_links(ctrl: Controller) -> list[str]:
    return [link.name for link in ctrl.kernel.links(ctrl.host.namespace)]


def default_routes(ctrl: Controller, container: str) -> list[tuple[str | None, str | None, str]]:
    ns = ctrl.sandbox(container).namespace
    return [(r.via, r.dev, r.scope) for r in ctrl.kernel.routes(ns) if r.dst == "default"]


# --- what Docker's driver does --------------------------------------------------------------


def test_l2_defaults_on_the_uplink(ctrl: Controller) -> None:
    network(ctrl)
    a = ctrl.connect("a", "lan")
    b = ctrl.connect("b", "lan")
    ns_a = ctrl.sandbox("a").namespace
    link = ctrl.kernel.link(ns_a, "eth0")
    assert (link.kind, link.parent, dict(link.attrs)) == ("ipvlan", "eth0", {"mode": "l2", "flag": "bridge"})
    assert link.mac == ctrl.kernel.link(ctrl.host.namespace, "eth0").mac  # shared, never its own
    assert a.mac is None
    assert default_routes(ctrl, "a") == [("198.18.0.1", "eth0", "universe")]  # the IPAM gateway: the LAN's router
    assert a.address is not None and b.address is not None
    assert probe(ctrl.kernel, ns_a, str(b.address.ip)).reachable
    assert probe(ctrl.kernel, ns_a, ctrl.host.outside_address).reachable
    assert probe(ctrl.kernel, ctrl.host.outside_namespace, str(a.address.ip)).reachable
    assert not probe(ctrl.kernel, ctrl.host.namespace, str(a.address.ip), timeout=MISS).reachable
    assert ctrl.registry.driver("ipvlan").driver.endpoint_oper_info(a.network.id, a.id) == {}
    ctrl.disconnect("a", "lan")
    ctrl.disconnect("b", "lan")
    ctrl.delete_network("lan")
    assert host_links(ctrl) == ["eth0", "lo"]


@pytest.mark.parametrize("mode", ["l3", "l3s"])
def test_l3_join_gives_an_on_link_default_route_and_no_gateway(ctrl: Controller, mode: str) -> None:
    pool = PoolConfig(subnet="10.60.0.0/24")
    network(ctrl, pool=pool, **{ipvlan.MODE: mode})
    a = ctrl.connect("a", "lan")
    b = ctrl.connect("b", "lan")
    assert default_routes(ctrl, "a") == [(None, "eth0", "link")]
    assert b.address is not None and a.address is not None
    assert probe(ctrl.kernel, ctrl.sandbox("a").namespace, str(b.address.ip)).reachable
    assert not probe(ctrl.kernel, ctrl.host.namespace, str(a.address.ip), timeout=MISS).reachable


@pytest.mark.parametrize("mode", ["l2", "l3"])
def test_dual_stack_siblings_over_ipv6(ctrl: Controller, mode: str) -> None:
    """l2 resolves IPv6 neighbours among siblings (ND by target address); l3 needs none."""
    ipam = IpamConfig(pools=[PoolConfig(subnet="10.68.0.0/24")], pools_v6=[PoolConfig(subnet="fd68::/64")])
    ctrl.create_network("lan", "ipvlan", {ipvlan.MODE: mode}, ipam=ipam, ipv6=True)
    ctrl.connect("a", "lan")
    b = ctrl.connect("b", "lan")
    assert b.address_ipv6 is not None
    result = probe(ctrl.kernel, ctrl.sandbox("a").namespace, str(b.address_ipv6.ip))
    assert result.outcome == "echo-reply"
    assert any(hop.action == "nd" for hop in result.trace) == (mode == "l2")
    ns = ctrl.sandbox("a").namespace
    v6_defaults = [(r.via, r.scope) for r in ctrl.kernel.routes(ns) if r.dst == "default" and r.family == 6]
    assert v6_defaults == [("fd68::1" if mode == "l2" else None, "universe")]  # IPv6 routes have no scope


def test_join_info_per_mode_as_libnetwork(ctrl: Controller) -> None:
    """Docker's Join: l3 adds 0.0.0.0/0 and ::/0 CONNECTED for the families the endpoint has,
    l2 sets the subnet's gateway, internal neither; every join disables the gateway service."""
    driver = ipvlan.IpvlanDriver(ctrl.kernel, ctrl.host)
    v4 = IPAMData("LocalDefault", ipaddress.ip_network("10.61.0.0/24"), ipaddress.ip_interface("10.61.0.1/24"))
    v6 = IPAMData("LocalDefault", ipaddress.ip_network("fd61::/64"), ipaddress.ip_interface("fd61::1/64"))
    cases: dict[str, tuple[dict[str, Any], str]] = {
        "l3": ({netlabel.GENERIC_DATA: {ipvlan.MODE: "l3"}}, "eth0"),
        "l2": ({netlabel.GENERIC_DATA: {ipvlan.PARENT: "eth0.7"}}, "eth0.7"),
        "internal": (
            {netlabel.GENERIC_DATA: {ipvlan.MODE: "l3", ipvlan.PARENT: "eth0.8"}, netlabel.INTERNAL: True},
            "eth0.8",
        ),
    }
    joined = {}
    for nid, (options, parent) in cases.items():
        driver.create_network(nid, options, NetworkInfo(), [v4], [v6])
        ifinfo = InterfaceInfo(address=ipaddress.ip_interface("10.61.0.5/24"))
        ifinfo.set_ip_address(ipaddress.ip_interface("fd61::5/64"))
        driver.create_endpoint(nid, f"{nid}-ep", ifinfo, {})
        assert f"ipvl{nid}-ep"[:15] not in host_links(ctrl)  # Docker makes the slave at join
        jinfo = JoinInfo()
        driver.join(nid, f"{nid}-ep", "sbox", jinfo, {})
        assert jinfo.src_name is not None and jinfo.dst_prefix == "eth"
        assert ctrl.kernel.link(ctrl.host.namespace, jinfo.src_name).parent == parent
        joined[nid] = jinfo
    l3 = joined["l3"]
    assert [(str(r.destination), r.route_type) for r in l3.static_routes] == [
        ("0.0.0.0/0", CONNECTED),
        ("::/0", CONNECTED),
    ]
    assert (l3.gateway, l3.gateway_ipv6, l3.gateway_service_disabled) == (None, None, True)
    l2 = joined["l2"]
    assert (str(l2.gateway), str(l2.gateway_ipv6), l2.static_routes, l2.gateway_service_disabled) == (
        "10.61.0.1",
        "fd61::1",
        [],
        True,
    )
    internal = joined["internal"]
    assert (internal.gateway, internal.static_routes, internal.gateway_service_disabled) == (None, [], True)
    for nid in cases:
        driver.leave(nid, f"{nid}-ep")
        driver.delete_endpoint(nid, f"{nid}-ep")
        driver.delete_network(nid)
    assert host_links(ctrl) == ["eth0", "lo"]  # the slaves and the VLAN parents it made are gone


def test_one_network_per_parent_and_vlan_parents(ctrl: Controller) -> None:
    first = network(ctrl)
    with pytest.raises(ForbiddenError) as refused:
        network(ctrl, "again", pool=PoolConfig(subnet="10.62.0.0/24"))
    assert str(refused.value) == f"network di-{first.id[:12]} is already using parent interface eth0"
    network(ctrl, "v10", pool=PoolConfig(subnet="10.63.0.0/24"), parent="eth0.10")
    vlan = ctrl.kernel.link(ctrl.host.namespace, "eth0.10")
    assert (vlan.kind, vlan.parent, vlan.attrs.get("vlan_id")) == ("vlan", "eth0", 10)
    ctrl.connect("a", "v10")
    assert ctrl.kernel.link(ctrl.sandbox("a").namespace, "eth0").parent == "eth0.10"
    ctrl.disconnect("a", "v10")
    ctrl.delete_network("v10")
    assert "eth0.10" not in host_links(ctrl)


def test_refusals_leave_nothing(ctrl: Controller) -> None:
    before = ctrl.kernel.snapshot()
    attempts = {
        "missing base": ({"parent": "eth9.5"}, NotFoundError, "-o parent interface was not found on the host: eth9"),
        "missing parent": ({"parent": "eth9"}, NotFoundError, "invalid subinterface vlan name eth9"),
        "loopback": ({"parent": "lo"}, InvalidParameterError, "loopback interface is not a valid ipvlan parent link"),
        "mode": ({"ipvlan_mode": "l4"}, InvalidParameterError, "requested ipvlan mode 'l4' is not valid"),
        "flag": ({"ipvlan_flag": "open"}, InvalidParameterError, "requested ipvlan flag 'open' is not valid"),
        "vlan id": ({"parent": "eth0.5000"}, InvalidParameterError, "vlan id 1-4094"),
    }
    for index, (what, (options, error, message)) in enumerate(attempts.items()):
        with pytest.raises(error) as caught:
            ctrl.create_network(f"bad-{index}", "ipvlan", options=options, ipam=IpamConfig(pools=[LAN]))
        assert message in str(caught.value), what
    # a parent that cannot carry an ipvlan is found by the probe at creation, not at the first container
    ctrl.kernel.add_macvlan(ctrl.host.namespace, "mv0", "eth0")
    with pytest.raises(KernelError) as busy:
        network(ctrl, "taken")
    assert busy.value.errno == errno.EBUSY
    ctrl.kernel.delete_link(ctrl.host.namespace, "mv0")
    assert ctrl.kernel.snapshot() == before
    assert ctrl.networks() == []


class KernelWithoutIpvlan:
    """The kernel, but refusing ipvlan links as this machine's real kernel does."""

    def __init__(self, kernel: Kernel) -> None:
        self._kernel = kernel

    def __getattr__(self, name: str) -> object:
        return getattr(self._kernel, name)

    def add_ipvlan(self, *args: object) -> None:
        raise kernel_error(errno.EOPNOTSUPP, "this kernel has no ipvlan link kind")


def test_a_kernel_without_ipvlan_refuses_the_network_and_its_vlan_parent_goes(ctrl: Controller) -> None:
    before = ctrl.kernel.snapshot()
    driver = ipvlan.IpvlanDriver(KernelWithoutIpvlan(ctrl.kernel), ctrl.host)  # type: ignore[arg-type]
    options = {netlabel.GENERIC_DATA: {ipvlan.PARENT: "eth0.20"}}
    with pytest.raises(KernelError, match="no ipvlan link kind"):
        driver.create_network("n" * 64, options, NetworkInfo(), [], [])
    assert ctrl.kernel.snapshot() == before and driver.networks == {}


def test_custom_mac_refused_as_docker_does(ctrl: Controller) -> None:
    network(ctrl)
    with pytest.raises(InvalidParameterError, match="ipvlan interfaces do not support custom mac address assignment"):
        ctrl.connect("a", "lan", mac="02:42:c6:12:00:99")
    assert host_links(ctrl) == ["eth0", "lo"]


def test_rejoin_after_leave_and_duplicate_endpoint(ctrl: Controller) -> None:
    net = network(ctrl, pool=PoolConfig(subnet="10.64.0.0/24"), ipvlan_mode="l3")
    ep = ctrl.create_endpoint("lan", "a")
    ctrl.create_sandbox("a")
    for _ in range(2):
        ctrl.join(ep, "a")
        assert ctrl.kernel.link(ctrl.sandbox("a").namespace, "eth0").kind == "ipvlan"
        ctrl.leave(ep, "a")
    driver = ctrl.registry.driver("ipvlan").driver
    with pytest.raises(ConflictError):
        driver.create_endpoint(net.id, ep.id, InterfaceInfo(), {})


# --- options, at create_network and at scenario load --------------------------------------------

option_text = st.text(st.characters(codec="utf-8"), max_size=12)


@settings(max_examples=60, deadline=None)
@given(mode=option_text, flag=option_text)
def test_mode_and_flag_are_docker_s_or_refused(mode: str, flag: str) -> None:
    options = {netlabel.GENERIC_DATA: {ipvlan.MODE: mode, ipvlan.FLAG: flag}}
    try:
        config = ipvlan.parse_config("n" * 64, options, "eth0", [], [])
    except InvalidParameterError as exc:
        bad_mode = mode not in ("", *ipvlan.MODES)
        bad_flag = flag not in ("", *ipvlan.FLAGS)
        assert bad_mode or bad_flag
        key = ipvlan.MODE if bad_mode else ipvlan.FLAG
        assert f"for {key}:" in str(exc) and "is the ipvlan driver default" in str(exc)
    else:
        assert config.mode == (mode or "l2") and config.flag == (flag or "bridge")


@settings(max_examples=60, deadline=None)
@given(parent=st.text(st.sampled_from("eth0.12lo/: x"), min_size=0, max_size=18))
def test_parent_names_are_interface_names_or_refused(parent: str) -> None:
    options = {netlabel.GENERIC_DATA: {ipvlan.PARENT: parent}}
    try:
        config = ipvlan.parse_config("n" * 64, options, "eth0", [], [])
    except InvalidParameterError as exc:
        assert f"for {ipvlan.PARENT}:" in str(exc)
        return
    expected = parent or "eth0"
    assert config.parent == expected and expected != "lo" and len(expected.encode()) <= 15
    if config.vlan is not None:
        base, tag = config.vlan
        # the sub-interface keeps its name ("eth0.010" is VLAN 10, as Docker's parseVlan reads it)
        named_base, _, named_tag = expected.rpartition(".")
        assert (base, tag) == (named_base, int(named_tag)) and 1 <= tag <= 4094


def scenario(options: dict[str, str]) -> dict[str, object]:
    return {
        "networks": [{"name": "lan", "driver": "ipvlan", "options": options, "ipam": {"subnet": "10.65.0.0/24"}}],
        "containers": [{"name": "a", "networks": ["lan"]}],
    }


@pytest.mark.parametrize(
    ("options", "key", "words"),
    [
        ({"ipvlan_mode": "l4"}, "ipvlan_mode", "'l2' mode is the ipvlan driver default"),
        ({"ipvlan_flag": "open"}, "ipvlan_flag", "'bridge' is the ipvlan driver default"),
        ({"parent": "lo"}, "parent", "not a valid ipvlan parent link"),
        ({"parent": "eth7"}, "parent", "the host has no link 'eth7'"),
    ],
)
def test_scenario_load_refuses_bad_options(options: dict[str, str], key: str, words: str) -> None:
    with pytest.raises(InvalidParameterError) as refused:
        parse_scenario(scenario(options))
    assert f"networks[0].options.{key}" in str(refused.value) and words in str(refused.value)


def test_scenario_load_accepts_docker_s_options() -> None:
    parse_scenario(scenario({"parent": "eth0.30", "ipvlan_mode": "l3s", "ipvlan_flag": "vepa"}))


# --- restart ------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["l2", "l3"])
def test_restart_keeps_the_vlan_parent_and_the_l3_default_route(
    netsim_kernel_factory: Callable[[str], Kernel], mode: str
) -> None:
    """A restarted controller replays the network: the driver's store says the VLAN
    parent is its own (else the recovery would sweep it, and every slave with it),
    and the l3 on-link default route is the join's, not a stale gateway route."""
    kernel = netsim_kernel_factory("fake")
    before = kernel.snapshot()
    store = MemoryStore()
    old = Controller(kernel, ControllerConfig(store=store, entry_points=False))
    pool = PoolConfig(subnet="10.67.0.0/24", gateway="10.67.0.1")
    old.create_network("lan", "ipvlan", {"parent": "eth0.10", "ipvlan_mode": mode}, ipam=IpamConfig(pools=[pool]))
    old.connect("a", "lan")
    b = old.connect("b", "lan")
    routes = default_routes(old, "a")
    new = Controller(kernel, ControllerConfig(store=store, entry_points=False))  # the old one died
    try:
        assert new.recovery is not None and new.recovery.clean, new.recovery
        assert default_routes(new, "a") == routes
        assert b.address is not None
        assert probe(kernel, new.sandbox("a").namespace, str(b.address.ip)).reachable
        new.disconnect("a", "lan")
        new.disconnect("b", "lan")
        new.delete_network("lan")
        assert "eth0.10" not in host_links(new)
    finally:
        new.close()
    assert kernel.snapshot() == before


# --- rollback -----------------------------------------------------------------------------------


def test_a_fault_at_every_step_leaves_nothing(netsim_kernel_factory: Callable[[str], Kernel]) -> None:
    """Kernel, driver and IPAM faults injected at each step of create (with a VLAN
    parent and the kernel probe), connect and leave roll back completely."""
    kernel = netsim_kernel_factory("fake")
    injector = FaultInjector()
    ctrl = Controller(cast(Kernel, FaultyKernel(kernel, injector)), ControllerConfig(host="h1"))
    try:
        ensure_default_ipam(ctrl)
        ipams = install_faults(ctrl, injector)
        pool = PoolConfig(subnet="10.69.0.0/24")
        options = {ipvlan.PARENT: "eth0.30", ipvlan.MODE: "l3"}

        def every_step(operation: Callable[[], object]) -> int:
            return every_step_fails(ctrl, kernel, injector, ipams, operation)

        assert every_step(lambda: ctrl.create_network("lan", "ipvlan", options, ipam=IpamConfig(pools=[pool]))) > 3
        every_step(lambda: ctrl.connect("a", "lan"))
        every_step(lambda: ctrl.leave(ctrl.endpoint("lan", "a"), ctrl.sandbox("a")))
    finally:
        injector.disarm()
        ctrl.close()
