"""Parsing helpers that turn user input into values or InvalidParameterError."""

from __future__ import annotations

import ipaddress
import re

from netsim.errors import InvalidParameterError

_MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


def parse_mac(mac: str) -> str:
    """Normalize a MAC to lowercase colon form; refuse multicast and zero."""
    norm = str(mac).strip().lower().replace("-", ":")
    if not _MAC_RE.match(norm):
        raise InvalidParameterError(f"invalid MAC address {mac!r}")
    if int(norm[:2], 16) & 1:
        raise InvalidParameterError(f"invalid MAC address {mac!r}: multicast bit set")
    if norm == "00:00:00:00:00:00":
        raise InvalidParameterError(f"invalid MAC address {mac!r}: all zero")
    return norm


def parse_network(text: str, *, what: str = "subnet") -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """A CIDR; host bits must be zero (Docker refuses 10.0.0.1/24 as a pool)."""
    if not isinstance(text, str) or "/" not in text:
        raise InvalidParameterError(f"invalid {what} {text!r}: expected CIDR notation such as 10.0.0.0/24")
    try:
        return ipaddress.ip_network(text.strip(), strict=True)
    except ValueError as exc:
        raise InvalidParameterError(f"invalid {what} {text!r}: {exc}") from exc


def parse_ip(text: str, *, what: str = "address") -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(str(text).strip())
    except ValueError as exc:
        raise InvalidParameterError(f"invalid {what} {text!r}: {exc}") from exc


def parse_bool(text: str | bool, *, what: str) -> bool:
    """Docker's strconv.ParseBool: 1/t/T/TRUE/true/True and the false forms."""
    if isinstance(text, bool):
        return text
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise InvalidParameterError(f"invalid value {text!r} for {what}: expected true or false")


def parse_port(value: object, *, what: str = "port") -> int:
    try:
        port = int(str(value))
    except ValueError as exc:
        raise InvalidParameterError(f"invalid {what} {value!r}: not a number") from exc
    if not 1 <= port <= 65535:
        raise InvalidParameterError(f"invalid {what} {value!r}: expected 1-65535")
    return port
