"""Option keys shared by the controller and the drivers (libnetwork's netlabel),
and the small value types carried under them.

Network options reach a driver's ``create_network`` as
``{GENERIC_DATA: {driver options, strings}, ENABLE_IPV6: bool, INTERNAL: bool}``,
the shape libnetwork uses. Endpoint options carry ``PORT_MAP`` (a list of
:class:`PortBinding`) and ``MAC_ADDRESS``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from netsim.errors import InvalidParameterError
from netsim.validate import parse_bool, parse_port

PREFIX = "com.docker.network"
GENERIC_DATA = f"{PREFIX}.generic"
ENABLE_IPV6 = f"{PREFIX}.enable_ipv6"
INTERNAL = f"{PREFIX}.internal"
DRIVER_MTU = f"{PREFIX}.driver.mtu"
PORT_MAP = f"{PREFIX}.portmap"
EXPOSED_PORTS = f"{PREFIX}.endpoint.exposedports"
MAC_ADDRESS = f"{PREFIX}.endpoint.macaddress"

BRIDGE_NAME = f"{PREFIX}.bridge.name"
BRIDGE_ENABLE_ICC = f"{PREFIX}.bridge.enable_icc"
BRIDGE_ENABLE_IP_MASQUERADE = f"{PREFIX}.bridge.enable_ip_masquerade"
BRIDGE_HOST_BINDING_IPV4 = f"{PREFIX}.bridge.host_binding_ipv4"

MACVLAN_PARENT = "parent"
MACVLAN_MODE = "macvlan_mode"


_PROTO_NUMBERS = {"tcp": 6, "udp": 17}
_PROTO_NAMES = {number: name for name, number in _PROTO_NUMBERS.items()}


@dataclass(frozen=True)
class PortBinding:
    """A published port: ``host_ip:host_port`` on the host → ``container_port`` in the container.

    ``host_ip`` "" means every host address (or the network's
    ``host_binding_ipv4`` option when set).
    """

    proto: Literal["tcp", "udp"]
    container_port: int
    host_port: int
    host_ip: str = ""

    def __post_init__(self) -> None:
        if self.proto not in ("tcp", "udp"):
            raise InvalidParameterError(f"invalid port binding protocol {self.proto!r}: expected tcp or udp")
        object.__setattr__(self, "container_port", parse_port(self.container_port, what="container port"))
        object.__setattr__(self, "host_port", parse_port(self.host_port, what="host port"))
        if self.host_ip:
            try:
                address = ipaddress.ip_address(self.host_ip)
            except ValueError as exc:
                raise InvalidParameterError(f"invalid host IP {self.host_ip!r} in port binding: {exc}") from exc
            if address.version != 4:
                raise InvalidParameterError(f"invalid host IP {self.host_ip!r} in port binding: IPv4 expected")

    def to_json(self) -> dict[str, Any]:
        return {
            "Proto": self.proto,
            "ContainerPort": self.container_port,
            "HostPort": self.host_port,
            "HostIP": self.host_ip,
        }

    def to_docker_json(self) -> dict[str, Any]:
        """Docker's types.PortBinding as plugins receive it (Proto is the IP protocol number)."""
        return {
            "Proto": _PROTO_NUMBERS[self.proto],
            "IP": "",
            "Port": self.container_port,
            "HostIP": self.host_ip,
            "HostPort": self.host_port,
            "HostPortEnd": self.host_port,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PortBinding:
        """From :meth:`to_json` or from Docker's shape (:meth:`to_docker_json`)."""
        try:
            if "Port" in data and "ContainerPort" not in data:
                raw = data["Proto"]
                proto: Any = raw if isinstance(raw, str) else _PROTO_NAMES[int(raw)]
                return cls(proto, int(data["Port"]), int(data["HostPort"]), str(data.get("HostIP", "")))
            return cls(data["Proto"], int(data["ContainerPort"]), int(data["HostPort"]), str(data.get("HostIP", "")))
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidParameterError(f"malformed port binding {dict(data)!r}: {exc}") from exc


def generic_options(options: Mapping[str, Any]) -> Mapping[str, Any]:
    """The driver options inside a network/endpoint option map (or the map itself when flat)."""
    inner = options.get(GENERIC_DATA)
    if isinstance(inner, Mapping):
        return inner
    return options


def flag(options: Mapping[str, Any], key: str, default: bool = False) -> bool:
    """A boolean option given either as a bool (controller) or a string (user)."""
    value = options.get(key)
    if value is None or value == "":
        return default
    return parse_bool(value, what=key)


def port_bindings(options: Mapping[str, Any]) -> list[PortBinding]:
    raw = options.get(PORT_MAP) or []
    out = []
    for item in raw:
        out.append(item if isinstance(item, PortBinding) else PortBinding.from_json(item))
    return out
