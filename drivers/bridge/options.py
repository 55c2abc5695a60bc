"""The bridge driver's own configuration (Docker's daemon options) and the
network options beyond :mod:`drivers.bridge.config`'s basic ones.

Read against moby's ``daemon/libnetwork/drivers/bridge/bridge_linux.go``
(``Configuration``, ``parseNetworkOptions``) and ``labels.go``. Every option
Docker defines is either implemented as Docker does or refused with an
:class:`InvalidParameterError` naming it: none is accepted and ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from netsim import netlabel
from netsim.errors import InvalidParameterError
from netsim.naming import MAX_IFNAME
from netsim.validate import parse_bool

DEFAULT_BRIDGE = "com.docker.network.bridge.default_bridge"
GATEWAY_MODE_IPV4 = "com.docker.network.bridge.gateway_mode_ipv4"
GATEWAY_MODE_IPV6 = "com.docker.network.bridge.gateway_mode_ipv6"
INHIBIT_IPV4 = "com.docker.network.bridge.inhibit_ipv4"
CONTAINER_IFACE_PREFIX = "com.docker.network.container_iface_prefix"
TRUSTED_HOST_INTERFACES = "com.docker.network.bridge.trusted_host_interfaces"

#: driver config key -> (Docker's Configuration field, default)
DRIVER_OPTIONS: dict[str, tuple[str, bool]] = {
    "userland_proxy": ("EnableUserlandProxy", True),
    "enable_ip_forwarding": ("EnableIPForwarding", True),
    "enable_iptables": ("EnableIPTables", True),
}
_GATEWAY_MODES = ("nat", "nat-unprotected", "routed", "isolated")


@dataclass(frozen=True)
class BridgeDriverConfig:
    """What ``dockerd`` configures once for the bridge driver of a host.

    ``userland_proxy`` (``--userland-proxy``, default on): published ports are
    served to the host's own containers by a docker-proxy in the host
    namespace, and the DNAT skips traffic from the bridge; off, hairpin NAT
    (DNAT from the bridge too, masquerade on the bridge). ``enable_ip_forwarding``
    off: the driver leaves ``net.ipv4.ip_forward`` as it finds it.
    ``enable_iptables`` off: no NAT or filter rule at all (isolation, ICC,
    masquerade, DNAT); a userland proxy still serves published ports.
    """

    userland_proxy: bool = True
    enable_ip_forwarding: bool = True
    enable_iptables: bool = True


def parse_driver_config(options: object) -> BridgeDriverConfig:
    """The driver's ``config["options"]``: snake_case keys or Docker's field
    names (``EnableUserlandProxy``...); anything else is refused, by name.

    >>> parse_driver_config({"userland_proxy": "false"}).userland_proxy
    False
    >>> parse_driver_config({"EnableIPTables": False}).enable_iptables
    False
    """
    if options is None:
        return BridgeDriverConfig()
    if not isinstance(options, Mapping):
        raise InvalidParameterError(f"bridge driver options must be a mapping, not {type(options).__name__}")
    by_docker_name = {docker: key for key, (docker, _) in DRIVER_OPTIONS.items()}
    values: dict[str, bool] = {}
    for raw_key, value in options.items():
        key = by_docker_name.get(raw_key, raw_key)
        if key not in DRIVER_OPTIONS:
            known = ", ".join(sorted(DRIVER_OPTIONS))
            raise InvalidParameterError(f"unknown bridge driver option {raw_key!r} (known: {known})")
        if key in values:
            raise InvalidParameterError(f"bridge driver option {key!r} given twice ({raw_key!r})")
        if not isinstance(value, str | bool):
            raise InvalidParameterError(f"invalid value {value!r} for bridge driver option {raw_key}")
        values[key] = parse_bool(value, what=f"bridge driver option {raw_key}")
    return BridgeDriverConfig(**values)


@dataclass(frozen=True)
class ExtraNetworkOptions:
    """Network options beyond the basic ones, as libnetwork parses them."""

    #: ``com.docker.network.bridge.inhibit_ipv4``: no IPv4 address on the bridge
    inhibit_ipv4: bool = False
    #: ``com.docker.network.container_iface_prefix``: the container's interface name prefix
    container_iface_prefix: str = "eth"


def _option_bool(generic: Mapping[str, Any], key: str) -> bool:
    value = generic.get(key)
    if value is None or value == "":
        return False
    if not isinstance(value, str | bool):
        raise InvalidParameterError(f"invalid value {value!r} for {key}: expected true or false")
    return parse_bool(value, what=key)


def parse_extra_options(generic: Mapping[str, Any]) -> ExtraNetworkOptions:
    """Validate the options Docker defines beyond the basic ones; refuse those
    netsim does not model, naming the option and why.

    >>> parse_extra_options({INHIBIT_IPV4: "true"}).inhibit_ipv4
    True
    >>> parse_extra_options({GATEWAY_MODE_IPV4: "routed"})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    netsim.errors.InvalidParameterError: com.docker.network.bridge.gateway_mode_ipv4='routed' is not modelled...
    """
    if _option_bool(generic, DEFAULT_BRIDGE):
        raise InvalidParameterError(
            f"{DEFAULT_BRIDGE}=true is not modelled by netsim: the default bridge (docker0) is the daemon's own"
            f" network, which outlives its deletion; name a bridge with {netlabel.BRIDGE_NAME} instead"
        )
    for key in (GATEWAY_MODE_IPV4, GATEWAY_MODE_IPV6):
        mode = generic.get(key)
        if mode is None or mode == "" or mode == "nat":
            continue
        if mode not in _GATEWAY_MODES:
            choices = ", ".join(_GATEWAY_MODES)
            raise InvalidParameterError(f"invalid value {mode!r} for {key}: expected one of {choices}")
        raise InvalidParameterError(f"{key}={mode!r} is not modelled by netsim (only 'nat', Docker's default, is)")
    trusted = generic.get(TRUSTED_HOST_INTERFACES)
    if trusted not in (None, ""):
        raise InvalidParameterError(
            f"{TRUSTED_HOST_INTERFACES}={trusted!r} is not modelled by netsim: it filters no direct access to"
            " container ports from host interfaces, so there is nothing to trust"
        )
    prefix = generic.get(CONTAINER_IFACE_PREFIX)
    if prefix in (None, ""):
        prefix = "eth"
    if not isinstance(prefix, str) or not prefix.isascii() or not prefix.replace("-", "").replace("_", "").isalnum():
        raise InvalidParameterError(f"invalid value {prefix!r} for {CONTAINER_IFACE_PREFIX}: letters and digits only")
    if len(prefix) > MAX_IFNAME - 2:
        raise InvalidParameterError(
            f"invalid value {prefix!r} for {CONTAINER_IFACE_PREFIX}: at most {MAX_IFNAME - 2} characters"
            " (an index follows it in a 15-byte interface name)"
        )
    return ExtraNetworkOptions(inhibit_ipv4=_option_bool(generic, INHIBIT_IPV4), container_iface_prefix=prefix)
