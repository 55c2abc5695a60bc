"""JSON <-> driverapi/ipamapi types for Docker's plugin protocol.

Both ends use this module: the remote client (``drivers.remote``,
``ipam.remote``) decodes plugin replies with it and the plugin server
(:mod:`netsim.plugin.server`) decodes Docker's requests with it. Every decoder
raises :class:`InvalidParameterError` naming the field at fault; the client
re-raises that as :class:`PluginProtocolError` with the plugin and the call.

Field names are exactly Docker's (libnetwork ``drivers/remote/api`` and
``ipams/remote/api``). Missing fields read as Go's zero value (``""``,
``false``, empty list/map), as Go's ``json.Unmarshal`` would; a field of the
wrong JSON type is an error, as it is for Go.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from netsim.driverapi import (
    NEXTHOP,
    Capability,
    InterfaceInfo,
    IPAddress,
    IPAMData,
    IPInterface,
    IPNetwork,
    JoinInfo,
)
from netsim.errors import (
    InvalidParameterError,
)
from netsim.ipamapi import IpamCapability
from netsim.netlabel import PORT_MAP, PortBinding
from netsim.validate import parse_mac

#: What Docker's engine sends as Accept on every plugin call.
ACCEPT = "application/vnd.docker.plugins.v1.2+json"
#: What plugins built on Docker's helpers answer with.
REPLY_CONTENT_TYPE = "application/vnd.docker.plugins.v1+json"

ACTIVATE = "Plugin.Activate"
NETWORK_DRIVER = "NetworkDriver"
IPAM_DRIVER = "IpamDriver"

# Docker accepts only these two data/connectivity scopes from a remote driver.
REMOTE_SCOPES = ("local", "global")


class Fields:
    """Typed reads from one decoded JSON object; each failure names the field.

    >>> f = Fields({"Pool": "10.0.0.0/24", "V6": False}, "RequestPool")
    >>> f.text("Pool"), f.flag("V6"), f.text("SubPool")
    ('10.0.0.0/24', False, '')
    """

    def __init__(self, data: object, what: str) -> None:
        if not isinstance(data, dict):
            raise InvalidParameterError(f"{what}: expected a JSON object, got {_json_type(data)}")
        self.data: dict[str, Any] = data
        self.what = what

    def _typed(self, key: str, kind: type | tuple[type, ...], label: str) -> Any:
        value = self.data.get(key)
        if value is None:
            return None
        # bool is an int in Python but not a number in JSON
        if not isinstance(value, kind) or (label == "a number" and isinstance(value, bool)):
            raise InvalidParameterError(f"{self.what}: field {key!r} must be {label}, got {_json_type(value)}")
        return value

    def text(self, key: str, *, required: bool = False) -> str:
        value = self._typed(key, str, "a string")
        if required and not value:
            raise InvalidParameterError(f"{self.what}: missing field {key!r}")
        return value or ""

    def flag(self, key: str) -> bool:
        return bool(self._typed(key, bool, "a boolean"))

    def number(self, key: str) -> int:
        return int(self._typed(key, int, "a number") or 0)

    def mapping(self, key: str) -> dict[str, Any]:
        return dict(self._typed(key, dict, "an object") or {})

    def items(self, key: str) -> list[Any]:
        return list(self._typed(key, list, "a list") or [])

    def string_map(self, key: str) -> dict[str, str]:
        value = self.mapping(key)
        for name, item in value.items():
            if not isinstance(item, str):
                raise InvalidParameterError(f"{self.what}: {key}[{name!r}] must be a string, got {_json_type(item)}")
        return value

    def sub(self, key: str) -> Fields | None:
        """The nested object ``key``, or None when absent or null."""
        value = self._typed(key, dict, "an object")
        return None if value is None else Fields(value, f"{self.what}.{key}")


def _json_type(value: object) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def parse_cidr(text: str, what: str) -> IPInterface:
    """A CIDR with host part (Docker's ``types.ParseCIDR``): ``10.0.0.2/24``."""
    if "/" not in text:
        raise InvalidParameterError(f"{what}: {text!r} is not in CIDR notation")
    try:
        return ipaddress.ip_interface(text)
    except ValueError as exc:
        raise InvalidParameterError(f"{what}: {text!r} is not a valid CIDR: {exc}") from exc


def parse_plain_ip(text: str, what: str) -> IPAddress:
    try:
        return ipaddress.ip_address(text)
    except ValueError as exc:
        raise InvalidParameterError(f"{what}: {text!r} is not a valid IP address") from exc


def parse_pool(text: str, what: str) -> IPNetwork:
    try:
        return ipaddress.ip_network(parse_cidr(text, what).network, strict=True)
    except ValueError as exc:  # pragma: no cover - parse_cidr already validated
        raise InvalidParameterError(f"{what}: {exc}") from exc


# -- IPAMData ---------------------------------------------------------------


def ipam_data_to_json(items: Sequence[IPAMData]) -> list[dict[str, Any]]:
    return [item.to_json() for item in items]


def ipam_data_from_json(fields: Fields, key: str) -> list[IPAMData]:
    result = []
    for index, raw in enumerate(fields.items(key)):
        entry = Fields(raw, f"{fields.what}.{key}[{index}]")
        entry.text("Pool", required=True)
        for key_name in ("AddressSpace", "Gateway"):
            entry.text(key_name)
        entry.string_map("AuxAddresses")
        result.append(IPAMData.from_json(entry.data))
    return result


# -- capabilities -------------------------------------------------------------


def capability_to_json(capability: Capability) -> dict[str, str]:
    return {"Scope": capability.data_scope, "ConnectivityScope": capability.connectivity_scope}


def capability_from_json(data: object) -> Capability:
    """Docker's rule: Scope must be local or global; an empty
    ConnectivityScope means the same as Scope."""
    fields = Fields(data, "GetCapabilities reply")
    scope = fields.text("Scope")
    connectivity = fields.text("ConnectivityScope") or scope
    for key, value in (("Scope", scope), ("ConnectivityScope", connectivity)):
        if value not in REMOTE_SCOPES:
            raise InvalidParameterError(f"invalid capability: {key} must be 'local' or 'global', got {value!r}")
    return Capability(data_scope=scope, connectivity_scope=connectivity)  # type: ignore[arg-type]


def ipam_capability_to_json(capability: IpamCapability) -> dict[str, bool]:
    return {
        "RequiresMACAddress": capability.requires_mac_address,
        "RequiresRequestReplay": capability.requires_request_replay,
    }


def ipam_capability_from_json(data: object) -> IpamCapability:
    fields = Fields(data, "GetCapabilities reply")
    return IpamCapability(fields.flag("RequiresMACAddress"), fields.flag("RequiresRequestReplay"))


# -- endpoint interface -------------------------------------------------------


@dataclass(frozen=True)
class InterfaceValues:
    """The three values of an endpoint interface, None where empty."""

    mac: str | None = None
    address: IPInterface | None = None
    address_ipv6: IPInterface | None = None

    @classmethod
    def of(cls, ifinfo: InterfaceInfo) -> InterfaceValues:
        return cls(ifinfo.mac_address, ifinfo.address, ifinfo.address_ipv6)

    def to_json(self) -> dict[str, str]:
        return {
            "Address": str(self.address) if self.address else "",
            "AddressIPv6": str(self.address_ipv6) if self.address_ipv6 else "",
            "MacAddress": self.mac or "",
        }

    @classmethod
    def from_json(cls, fields: Fields | None) -> InterfaceValues:
        if fields is None:
            return cls()
        address, address6, mac = fields.text("Address"), fields.text("AddressIPv6"), fields.text("MacAddress")
        values = cls(
            mac=_parse_mac(mac, f"{fields.what}.MacAddress") if mac else None,
            address=parse_cidr(address, f"{fields.what}.Address") if address else None,
            address_ipv6=parse_cidr(address6, f"{fields.what}.AddressIPv6") if address6 else None,
        )
        if values.address is not None and values.address.version != 4:
            raise InvalidParameterError(f"{fields.what}.Address: {address!r} is not IPv4")
        if values.address_ipv6 is not None and values.address_ipv6.version != 6:
            raise InvalidParameterError(f"{fields.what}.AddressIPv6: {address6!r} is not IPv6")
        return values

    def filled_since(self, before: InterfaceValues) -> InterfaceValues:
        """What is set here and was empty in ``before`` (a driver's additions)."""
        return InterfaceValues(
            self.mac if before.mac is None else None,
            self.address if before.address is None else None,
            self.address_ipv6 if before.address_ipv6 is None else None,
        )

    def conflicts_with(self, current: InterfaceValues) -> list[str]:
        """Fields a reply sets although ``current`` has them set already
        (Docker refuses these even when the value is equal)."""
        pairs = (
            ("MacAddress", self.mac, current.mac),
            ("Address", self.address, current.address),
            ("AddressIPv6", self.address_ipv6, current.address_ipv6),
        )
        return [f"{name} {new} (already {old})" for name, new, old in pairs if new is not None and old is not None]

    def apply_to(self, ifinfo: InterfaceInfo) -> None:
        if self.mac is not None:
            ifinfo.set_mac_address(self.mac)
        if self.address is not None:
            ifinfo.set_ip_address(self.address)
        if self.address_ipv6 is not None:
            ifinfo.set_ip_address(self.address_ipv6)


def _parse_mac(text: str, what: str) -> str:
    try:
        return parse_mac(text)
    except InvalidParameterError as exc:
        raise InvalidParameterError(f"{what}: {exc}") from exc


# -- join ---------------------------------------------------------------------


def join_reply_to_json(jinfo: JoinInfo) -> dict[str, Any]:
    names = None
    if jinfo.src_name is not None or jinfo.dst_prefix is not None:
        names = {"SrcName": jinfo.src_name or "", "DstPrefix": jinfo.dst_prefix or ""}
    return {
        "InterfaceName": names,
        "Gateway": str(jinfo.gateway) if jinfo.gateway else "",
        "GatewayIPv6": str(jinfo.gateway_ipv6) if jinfo.gateway_ipv6 else "",
        "StaticRoutes": [
            {
                "Destination": str(route.destination),
                "RouteType": route.route_type,
                "NextHop": str(route.next_hop) if route.next_hop else "",
            }
            for route in jinfo.static_routes
        ],
        "DisableGatewayService": jinfo.gateway_service_disabled,
    }


def join_reply_from_json(data: object) -> JoinInfo:
    """Decode a Join reply completely into a fresh JoinInfo (so a bad reply
    leaves the caller's JoinInfo untouched); see :func:`copy_join_info`."""
    fields = Fields(data, "Join reply")
    reply = JoinInfo()
    names = fields.sub("InterfaceName")
    if names is not None:
        reply.set_names(names.text("SrcName"), names.text("DstPrefix"))
    gateway = fields.text("Gateway")
    if gateway:
        address = parse_plain_ip(gateway, "Join reply.Gateway")
        if not isinstance(address, ipaddress.IPv4Address):
            raise InvalidParameterError(f"Join reply.Gateway: {gateway!r} is not IPv4")
        reply.set_gateway(address)
    gateway6 = fields.text("GatewayIPv6")
    if gateway6:
        address = parse_plain_ip(gateway6, "Join reply.GatewayIPv6")
        if not isinstance(address, ipaddress.IPv6Address):
            raise InvalidParameterError(f"Join reply.GatewayIPv6: {gateway6!r} is not IPv6")
        reply.set_gateway_ipv6(address)
    for index, raw in enumerate(fields.items("StaticRoutes")):
        route = Fields(raw, f"Join reply.StaticRoutes[{index}]")
        destination = parse_cidr(route.text("Destination", required=True), f"{route.what}.Destination").network
        next_hop_text = route.text("NextHop")
        next_hop = parse_plain_ip(next_hop_text, f"{route.what}.NextHop") if next_hop_text else None
        route_type = route.number("RouteType")
        if route_type == NEXTHOP and next_hop is None:
            raise InvalidParameterError(f"{route.what}: route type 0 (next hop) without NextHop")
        reply.add_static_route(destination, route_type, next_hop)
    if fields.flag("DisableGatewayService"):
        reply.disable_gateway_service()
    return reply


def copy_join_info(source: JoinInfo, target: JoinInfo) -> None:
    """Apply what a decoded reply set onto the caller's JoinInfo."""
    if source.src_name is not None or source.dst_prefix is not None:
        target.set_names(source.src_name or "", source.dst_prefix or "")
    if source.gateway is not None:
        target.set_gateway(source.gateway)
    if source.gateway_ipv6 is not None:
        target.set_gateway_ipv6(source.gateway_ipv6)
    for route in source.static_routes:
        target.add_static_route(route.destination, route.route_type, route.next_hop)
    if source.gateway_service_disabled:
        target.disable_gateway_service()


def oper_info_to_json(value: Mapping[str, Any]) -> dict[str, Any]:
    """An EndpointOperInfo ``Value`` in Docker's shape: the port map is a list
    of ``types.PortBinding`` (numeric ``Proto``, ``Port``, ``HostPortEnd``),
    whatever shape the driver returned it in (netsim's ``PortBinding``, its
    ``to_json`` dict or Docker's own).

    >>> value = {PORT_MAP: [{"Proto": "udp", "ContainerPort": 53, "HostPort": 5353, "HostIP": ""}]}
    >>> oper_info_to_json(value)[PORT_MAP]
    [{'Proto': 17, 'IP': '', 'Port': 53, 'HostIP': '', 'HostPort': 5353, 'HostPortEnd': 5353}]
    """
    reply = dict(value)
    bindings = reply.get(PORT_MAP)
    if isinstance(bindings, list):
        reply[PORT_MAP] = [
            binding.to_docker_json()
            if isinstance(binding, PortBinding)
            else PortBinding.from_json(binding).to_docker_json()
            for binding in bindings
        ]
    return reply
