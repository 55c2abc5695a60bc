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


#: Docker's default range for a host port left to the daemon (``-p 80``, ``-P``):
#: portallocator's DefaultPortRangeStart / DefaultPortRangeEnd
EPHEMERAL_PORTS = (49153, 60999)


@dataclass(frozen=True)
class PortBinding:
    """A published port: ``host_ip:host_port`` on the host → ``container_port`` in the container.

    ``host_ip`` "" means every host address (or the network's
    ``host_binding_ipv4`` option when set). As in Docker's types.PortBinding,
    ``host_port`` 0 leaves the port to the driver (the first free one of
    :data:`EPHEMERAL_PORTS`), and ``host_port``-``host_port_end`` is a range
    of which the first free port is taken (``host_port_end`` 0: no range).

    >>> PortBinding("tcp", 80, 9000, host_port_end=9005).host_range()
    (9000, 9005)
    >>> PortBinding("udp", 53, 0).host_range()
    (49153, 60999)
    """

    proto: Literal["tcp", "udp"]
    container_port: int
    host_port: int
    host_ip: str = ""
    host_port_end: int = 0

    def __post_init__(self) -> None:
        if self.proto not in ("tcp", "udp"):
            raise InvalidParameterError(f"invalid port binding protocol {self.proto!r}: expected tcp or udp")
        object.__setattr__(self, "container_port", parse_port(self.container_port, what="container port"))
        if self.host_port != 0:
            object.__setattr__(self, "host_port", parse_port(self.host_port, what="host port"))
        end = self.host_port_end
        if end not in (0, self.host_port):
            end = parse_port(end, what="host port range end")
            if self.host_port == 0 or end < self.host_port:
                raise InvalidParameterError(
                    f"invalid host port range {self.host_port}-{end}: expected START-END with START <= END"
                )
        object.__setattr__(self, "host_port_end", 0 if end == self.host_port else end)
        if self.host_ip:
            try:
                address = ipaddress.ip_address(self.host_ip)
            except ValueError as exc:
                raise InvalidParameterError(f"invalid host IP {self.host_ip!r} in port binding: {exc}") from exc
            if address.version != 4:
                raise InvalidParameterError(f"invalid host IP {self.host_ip!r} in port binding: IPv4 expected")

    def host_range(self) -> tuple[int, int]:
        """The host ports this binding may take, inclusive."""
        if self.host_port == 0:
            return EPHEMERAL_PORTS
        return self.host_port, self.host_port_end or self.host_port

    @property
    def fixed(self) -> bool:
        """One known host port (not 0, not a range)."""
        return self.host_port != 0 and self.host_port_end == 0

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "Proto": self.proto,
            "ContainerPort": self.container_port,
            "HostPort": self.host_port,
            "HostIP": self.host_ip,
        }
        if self.host_port_end:
            out["HostPortEnd"] = self.host_port_end
        return out

    def to_docker_json(self) -> dict[str, Any]:
        """Docker's types.PortBinding as plugins receive it (Proto is the IP protocol number)."""
        return {
            "Proto": _PROTO_NUMBERS[self.proto],
            "IP": "",
            "Port": self.container_port,
            "HostIP": self.host_ip,
            "HostPort": self.host_port,
            "HostPortEnd": self.host_port_end or self.host_port,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PortBinding:
        """From :meth:`to_json` or from Docker's shape (:meth:`to_docker_json`)."""
        try:
            if "Port" in data and "ContainerPort" not in data:
                raw = data["Proto"]
                proto: Any = raw if isinstance(raw, str) else _PROTO_NAMES[int(raw)]
                host, end = int(data["HostPort"]), int(data.get("HostPortEnd") or 0)
                return cls(proto, int(data["Port"]), host, str(data.get("HostIP", "")), end if end != host else 0)
            end = int(data.get("HostPortEnd") or 0)
            return cls(
                data["Proto"], int(data["ContainerPort"]), int(data["HostPort"]), str(data.get("HostIP", "")), end
            )
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
