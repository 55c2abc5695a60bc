"""Each bridge setup step on its own, on both kernels: what it changes, and
that its undo takes exactly that back."""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from drivers.bridge.config import BridgeNetworkConfig, parse_network_config
from drivers.bridge.options import BridgeDriverConfig
from drivers.bridge.setup import (
    SETUP_STEPS,
    SetupContext,
    icc_rules,
    isolation_rule,
    setup_device,
    setup_device_up,
    setup_forwarding,
    setup_icc,
    setup_internal,
    setup_ip,
    setup_ipv6,
    setup_isolation,
    setup_masquerade,
    setup_mtu,
    setup_skip_dnat,
)
from netsim import netlabel
from netsim.driverapi import IPAMData
from netsim.errors import InvalidParameterError
from netsim.kernel.base import DnatExempt, Filter, Isolated, Kernel, Masquerade
from netsim.undo import Undo

NID = "ab" * 32
BRIDGE = f"br-{NID[:12]}"


@pytest.fixture
def host_ns(kernel: Kernel) -> Iterator[str]:
    ns = kernel.ns("h1")
    kernel.add_namespace(ns)
    try:
        yield ns
    finally:
        kernel.delete_namespace(ns)


def config(options: dict[str, str] | None = None, *, ipv6: bool = False, internal: bool = False) -> BridgeNetworkConfig:
    v4 = [IPAMData("LocalDefault", ipaddress.ip_network("10.10.0.0/24"), ipaddress.ip_interface("10.10.0.1/24"))]
    v6 = [IPAMData("LocalDefault", ipaddress.ip_network("fd00::/64"), ipaddress.ip_interface("fd00::1/64"))]
    opts: dict[str, Any] = {
        netlabel.GENERIC_DATA: options or {},
        netlabel.ENABLE_IPV6: ipv6,
        netlabel.INTERNAL: internal,
    }
    return parse_network_config(NID, opts, v4, v6 if ipv6 else [])


def context(kernel: Kernel, ns: str, cfg: BridgeNetworkConfig) -> SetupContext:
    return SetupContext(kernel, ns, cfg, lambda: False)


def run_and_undo(kernel: Kernel, ctx: SetupContext, steps: list[Callable[[SetupContext, Undo], None]]) -> Undo:
    undo = Undo()
    for step in steps:
        step(ctx, undo)
    return undo


def test_setup_device_and_undo(kernel: Kernel, host_ns: str) -> None:
    before = kernel.snapshot()
    undo = run_and_undo(kernel, context(kernel, host_ns, config()), [setup_device])
    assert kernel.link(host_ns, BRIDGE).kind == "bridge"
    # A fixed MAC from the gateway address, not the lowest port's (which Linux would pick).
    assert kernel.explicit_macs()[(host_ns, BRIDGE)] == "02:42:0a:0a:00:01"
    assert undo.run() == [] and kernel.snapshot() == before


def test_setup_mtu(kernel: Kernel, host_ns: str) -> None:
    ctx = context(kernel, host_ns, config({netlabel.DRIVER_MTU: "1400"}))
    undo = run_and_undo(kernel, ctx, [setup_device, setup_mtu])
    assert kernel.link(host_ns, BRIDGE).mtu == 1400
    undo.run()


def test_setup_ip_and_ipv6(kernel: Kernel, host_ns: str) -> None:
    ctx = context(kernel, host_ns, config(ipv6=True))
    undo = run_and_undo(kernel, ctx, [setup_device, setup_ip, setup_ipv6, setup_device_up])
    addresses = kernel.addresses(host_ns)
    assert (BRIDGE, "10.10.0.1/24") in addresses and (BRIDGE, "fd00::1/64") in addresses
    assert kernel.link(host_ns, BRIDGE).up
    undo.run()


def test_setup_forwarding_restores_what_it_changed(kernel: Kernel, host_ns: str) -> None:
    before = kernel.snapshot()
    undo = run_and_undo(kernel, context(kernel, host_ns, config(ipv6=True)), [setup_forwarding])
    assert kernel.get_sysctl(host_ns, "net.ipv4.ip_forward") == "1"
    assert kernel.get_sysctl(host_ns, "net.ipv6.conf.all.forwarding") == "1"
    undo.run()
    assert kernel.snapshot() == before


@pytest.mark.parametrize(
    ("step", "options", "internal", "expected"),
    [
        (
            setup_icc,
            {netlabel.BRIDGE_ENABLE_ICC: "false"},
            False,
            icc_rules(BRIDGE),
        ),
        (setup_icc, {}, False, []),
        (setup_masquerade, {}, False, [Masquerade(src="10.10.0.0/24", not_out_iface=BRIDGE)]),
        (setup_masquerade, {netlabel.BRIDGE_ENABLE_IP_MASQUERADE: "false"}, False, []),
        (setup_masquerade, {}, True, []),
        (setup_internal, {}, True, [Filter(action="drop", in_iface=BRIDGE), Filter(action="drop", out_iface=BRIDGE)]),
        (setup_internal, {}, False, []),
        # Docker <= 28's SKIP DNAT: with masquerading, never for internal networks
        (setup_skip_dnat, {}, False, [DnatExempt(BRIDGE)]),
        (setup_skip_dnat, {netlabel.BRIDGE_ENABLE_IP_MASQUERADE: "false"}, False, []),
        (setup_skip_dnat, {}, True, []),
    ],
)
def test_rule_steps(
    kernel: Kernel, host_ns: str, step: Any, options: dict[str, str], internal: bool, expected: list[object]
) -> None:
    ctx = context(kernel, host_ns, config(options, internal=internal))
    undo = run_and_undo(kernel, ctx, [setup_device, step])
    assert kernel.rules(host_ns) == expected
    undo.run()
    assert kernel.rules(host_ns) == []


def test_setup_isolation_is_one_membership_whatever_the_other_networks(kernel: Kernel, host_ns: str) -> None:
    other = isolation_rule("br-other")
    kernel.add_rule(host_ns, other)  # another network of the driver, set up earlier
    ctx = context(kernel, host_ns, config())
    undo = run_and_undo(kernel, ctx, [setup_device, setup_isolation])
    assert kernel.rules(host_ns) == [other, Isolated(iface=BRIDGE, group="bridge")]
    undo.run()
    assert kernel.rules(host_ns) == [other]  # the other network keeps its isolation


def test_internal_networks_stay_out_of_the_isolation_group(kernel: Kernel, host_ns: str) -> None:
    """Docker's isolateNetwork returns early for internal networks: their own drops suffice."""
    ctx = context(kernel, host_ns, config(internal=True))
    undo = run_and_undo(kernel, ctx, [setup_device, setup_isolation])
    assert kernel.rules(host_ns) == []
    undo.run()


def test_all_steps_then_undo_leave_nothing(kernel: Kernel, host_ns: str) -> None:
    before = kernel.snapshot()
    cfg = config({netlabel.BRIDGE_ENABLE_ICC: "false", netlabel.DRIVER_MTU: "1450"}, ipv6=True)
    undo = run_and_undo(kernel, context(kernel, host_ns, cfg), list(SETUP_STEPS))
    assert len(kernel.rules(host_ns)) == 7  # three ICC rules, the masquerade of each family, skip DNAT, the isolation
    assert undo.run() == []
    assert kernel.snapshot() == before


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({netlabel.BRIDGE_ENABLE_ICC: "maybe"}, "enable_icc"),
        ({netlabel.DRIVER_MTU: "-1"}, "mtu"),
        ({netlabel.DRIVER_MTU: "70000"}, "mtu"),
        ({netlabel.BRIDGE_NAME: "bad/name"}, "bridge.name"),
    ],
)
def test_config_validation(options: dict[str, str], match: str) -> None:
    with pytest.raises(InvalidParameterError, match=match):
        config(options)


def test_config_defaults() -> None:
    cfg = config()
    assert (cfg.bridge_name, cfg.enable_icc, cfg.enable_ip_masquerade, cfg.mtu, cfg.host_binding_ipv4) == (
        BRIDGE,
        True,
        True,
        None,
        None,
    )
    assert config({netlabel.DRIVER_MTU: "0"}).mtu is None
    with pytest.raises(InvalidParameterError, match="IPv4 pool"):
        parse_network_config(NID, {}, [], [])
    with pytest.raises(InvalidParameterError, match="IPv6"):
        parse_network_config(NID, {netlabel.ENABLE_IPV6: True}, config_v4(), [])


def config_v4() -> list[IPAMData]:
    return [IPAMData("LocalDefault", ipaddress.ip_network("10.0.0.0/24"), ipaddress.ip_interface("10.0.0.1/24"))]


def test_skip_dnat_only_with_the_userland_proxy(kernel: Kernel, host_ns: str) -> None:
    """Hairpin mode (proxy off) DNATs traffic from every bridge, as Docker's does."""
    for proxy, expected in ((True, [DnatExempt(BRIDGE)]), (False, [])):
        ctx = dataclasses.replace(
            context(kernel, host_ns, config()), driver_config=BridgeDriverConfig(userland_proxy=proxy)
        )
        undo = run_and_undo(kernel, ctx, [setup_device, setup_skip_dnat])
        assert kernel.rules(host_ns) == expected
        undo.run()
        assert kernel.rules(host_ns) == []
