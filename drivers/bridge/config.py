"""Bridge network configuration: Docker's option names parsed and validated
before anything is created, so a bad value changes nothing."""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from drivers.bridge.options import parse_extra_options
from netsim import netlabel
from netsim.driverapi import IPAMData, IPInterface
from netsim.errors import InvalidParameterError, KernelError
from netsim.naming import MAX_IFNAME, check_ifname
from netsim.validate import parse_bool

BRIDGE_PREFIX = "br-"
MIN_MTU = 68
MAX_MTU = 65535


@dataclass(frozen=True)
class BridgeNetworkConfig:
    nid: str
    bridge_name: str
    enable_icc: bool
    enable_ip_masquerade: bool
    #: published ports without a host IP bind to this one (None: every address)
    host_binding_ipv4: str | None
    #: None: the kernel's default
    mtu: int | None
    internal: bool
    enable_ipv6: bool
    #: None: an IPv6-only network (Docker's --ipv4=false: no IPv4 pool, no IPv4 on the bridge)
    gateway: IPInterface | None
    gateway_ipv6: IPInterface | None

    @property
    def subnet(self) -> str:
        """The IPv4 subnet ("" for an IPv6-only network)."""
        return str(self.gateway.network) if self.gateway is not None else ""

    @property
    def mac_source(self) -> IPInterface:
        """The address the bridge's fixed MAC is derived from: its IPv4 gateway, else its IPv6 one."""
        source = self.gateway or self.gateway_ipv6
        assert source is not None  # parse_network_config refuses a network with neither
        return source


def _bool_option(generic: Mapping[str, Any], key: str, default: bool) -> bool:
    value = generic.get(key)
    if value is None or value == "":
        return default
    if not isinstance(value, str | bool):
        raise InvalidParameterError(f"invalid value {value!r} for {key}: expected true or false")
    return parse_bool(value, what=key)


def parse_mtu(value: object) -> int | None:
    """``com.docker.network.driver.mtu``: 0 or unset = default; else 68-65535."""
    if value is None or value == "":
        return None
    try:
        mtu = int(str(value))
    except ValueError as exc:
        raise InvalidParameterError(f"invalid value {value!r} for {netlabel.DRIVER_MTU}: not a number") from exc
    if mtu == 0:
        return None
    if not MIN_MTU <= mtu <= MAX_MTU:
        raise InvalidParameterError(
            f"invalid value {value!r} for {netlabel.DRIVER_MTU}: expected 0 or {MIN_MTU}-{MAX_MTU}"
        )
    return mtu


def _bridge_name(nid: str, generic: Mapping[str, Any]) -> str:
    name = generic.get(netlabel.BRIDGE_NAME) or f"{BRIDGE_PREFIX}{nid[:12]}"
    if len(str(name).encode()) > MAX_IFNAME:
        raise InvalidParameterError(
            f"invalid value {name!r} for {netlabel.BRIDGE_NAME}: longer than {MAX_IFNAME} bytes (Linux's limit)"
        )
    try:
        check_ifname(str(name))
    except KernelError as exc:
        raise InvalidParameterError(f"invalid value {name!r} for {netlabel.BRIDGE_NAME}: {exc.strerror}") from exc
    return str(name)


def _host_binding(generic: Mapping[str, Any]) -> str | None:
    value = generic.get(netlabel.BRIDGE_HOST_BINDING_IPV4)
    if value is None or value == "":
        return None
    try:
        address = ipaddress.IPv4Address(str(value))
    except ValueError as exc:
        raise InvalidParameterError(f"invalid value {value!r} for {netlabel.BRIDGE_HOST_BINDING_IPV4}: {exc}") from exc
    return None if address.is_unspecified else str(address)


def validate_network_options(options: Mapping[str, Any], host_links: Collection[str] = ()) -> None:
    """Check the bridge options alone, without a kernel or IPAM data: the
    scenario loader's road (``create_network`` runs the same parsers, so both
    refuse the same values). ``host_links`` are links the host has before any
    network exists: a bridge may not take one of their names."""
    generic = netlabel.generic_options(options)
    name = _bridge_name("0" * 64, generic)
    if netlabel.BRIDGE_NAME in generic and name in host_links:
        raise InvalidParameterError(
            f"invalid value {name!r} for {netlabel.BRIDGE_NAME}: the host's {name} has that name"
        )
    for key in (netlabel.BRIDGE_ENABLE_ICC, netlabel.BRIDGE_ENABLE_IP_MASQUERADE, netlabel.INTERNAL):
        _bool_option(generic, key, True)
    _host_binding(generic)
    parse_mtu(generic.get(netlabel.DRIVER_MTU))
    parse_extra_options(generic)  # refused Docker options (gateway modes, ...) at load, as create_network does


def parse_network_config(
    nid: str, options: Mapping[str, Any], ipv4_data: Sequence[IPAMData], ipv6_data: Sequence[IPAMData]
) -> BridgeNetworkConfig:
    """Validate every option first; raise InvalidParameterError naming the bad one."""
    generic = netlabel.generic_options(options)
    internal = _bool_option(options, netlabel.INTERNAL, False) or _bool_option(generic, netlabel.INTERNAL, False)
    enable_ipv6 = _bool_option(options, netlabel.ENABLE_IPV6, False)
    ipv6_only = not ipv4_data and enable_ipv6  # Docker's --ipv4=false: the controller requested no IPv4 pool
    if not ipv6_only and (not ipv4_data or ipv4_data[0].gateway is None):
        raise InvalidParameterError("bridge network needs an IPv4 pool with a gateway address")
    if len(ipv4_data) > 1:
        raise InvalidParameterError("bridge network supports one IPv4 pool")
    gateway_ipv6 = None
    if enable_ipv6:
        if not ipv6_data or ipv6_data[0].gateway is None:
            raise InvalidParameterError("IPv6 bridge network needs an IPv6 pool with a gateway address")
        gateway_ipv6 = ipv6_data[0].gateway
    return BridgeNetworkConfig(
        nid=nid,
        bridge_name=_bridge_name(nid, generic),
        enable_icc=_bool_option(generic, netlabel.BRIDGE_ENABLE_ICC, True),
        enable_ip_masquerade=_bool_option(generic, netlabel.BRIDGE_ENABLE_IP_MASQUERADE, True),
        host_binding_ipv4=_host_binding(generic),
        mtu=parse_mtu(generic.get(netlabel.DRIVER_MTU)),
        internal=internal,
        enable_ipv6=enable_ipv6,
        gateway=None if ipv6_only else ipv4_data[0].gateway,
        gateway_ipv6=gateway_ipv6,
    )
