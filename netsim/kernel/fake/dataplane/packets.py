"""Scapy helpers the dataplane shares: building frames cheaply, reading the
L3/L4 tuple, rewriting fields, and the ICMP errors Linux sends.

Scapy's ``a / b`` copies both operands, which costs more than the whole rest
of a hop; frames here are assembled with ``add_payload`` instead (no copy),
and a frame handed to the next hop belongs to it (flooding copies). New
layers come from :func:`make`, which skips scapy's per-instance field setup.
"""

from __future__ import annotations

import functools
import itertools
import time
from typing import Any, TypeVar

from scapy.layers.inet import ICMP, IP, TCP, UDP, IPerror
from scapy.layers.inet6 import (
    ICMPv6DestUnreach,
    ICMPv6EchoReply,
    ICMPv6EchoRequest,
    ICMPv6TimeExceeded,
    IPerror6,
    IPv6,
)
from scapy.layers.l2 import Ether
from scapy.packet import NoPayload, Packet, Raw

from netsim.errors import InvalidParameterError

BROADCAST_MAC = "ff:ff:ff:ff:ff:ff"
ZERO_MAC = "00:00:00:00:00:00"
ETH_VLAN = 0x8100

#: ICMP (v4) types and codes Linux uses for the errors modelled here
ICMP_ECHO_REPLY = 0
ICMP_UNREACH = 3
ICMP_ECHO_REQUEST = 8
ICMP_TIME_EXCEEDED = 11
UNREACH_NET, UNREACH_HOST, UNREACH_PORT, UNREACH_ADMIN = 0, 1, 3, 13
#: the same errors in ICMPv6 (type, code)
ICMP6_ERRORS = {
    "net": (1, 0),
    "host": (1, 3),
    "port": (1, 4),
    "admin": (1, 1),
    "time": (3, 0),
}
ICMP4_ERRORS = {
    "net": (ICMP_UNREACH, UNREACH_NET),
    "host": (ICMP_UNREACH, UNREACH_HOST),
    "port": (ICMP_UNREACH, UNREACH_PORT),
    "admin": (ICMP_UNREACH, UNREACH_ADMIN),
    "time": (ICMP_TIME_EXCEEDED, 0),
}


LayerT = TypeVar("LayerT", bound=Packet)

#: Packet slots a made layer takes over from its class's prototype as they are:
#: per-class constants (default_fields, fieldtype, ...) and init-time values.
_PROTOTYPE_SLOTS = (
    "sent_time",
    "name",
    "default_fields",
    "overload_fields",
    "fieldtype",
    "packetfields",
    "underlayer",
    "parent",
    "original",
    "explicit",
    "raw_packet_cache",
    "raw_packet_cache_fields",
    "wirelen",
    "direction",
    "sniffed_on",
    "comments",
    "process_information",
    "stop_dissection_after",
)


@functools.cache
def _prototype(cls: type[Packet]) -> tuple[Packet, tuple[tuple[str, Any], ...], dict[str, int]]:
    """One default-built layer per class (only ever read), the slot values a
    made layer copies from it, and each field's declaration index. Safe to
    keep for the process: a pure function of the (immutable) class
    definition, the same for every kernel and caller, and nothing reaches it
    but :func:`make`."""
    prototype = cls()
    # NoPayload is scapy's singleton: every layer without a payload shares it.
    slot_values = (*((slot, getattr(prototype, slot)) for slot in _PROTOTYPE_SLOTS), ("payload", NoPayload()))
    return prototype, slot_values, {field.name: index for index, field in enumerate(cls.fields_desc)}


def make(cls: type[LayerT], **fields: Any) -> LayerT:
    """``cls(**fields)`` without ``Packet.__init__``: a real scapy layer, equal
    to the one the constructor gives (same bytes, repr and fields), at about a
    tenth of the cost (the constructor deep-copies every field default of
    classes like ICMP on every call). Values go through the field's ``any2i``
    as with the constructor. O(number of fields given).

    >>> made = make(IP, src="10.0.0.1", dst="10.0.0.2", ttl=64)
    >>> bytes(made) == bytes(IP(src="10.0.0.1", dst="10.0.0.2", ttl=64)), repr(make(ICMP, type=8))
    (True, '<ICMP  type=echo-request |>')
    """
    prototype, slot_values, positions = _prototype(cls)
    layer = object.__new__(cls)
    setattr_ = object.__setattr__
    for slot, value in slot_values:
        setattr_(layer, slot, value)
    # Defaults held by reference (lists, dicts) are the layer's own, as scapy does.
    own = {
        name: value.copy() if isinstance(value, list | dict | set) else value
        for name, value in prototype.fields.items()
    }
    setattr_(layer, "fields", own)
    setattr_(layer, "overloaded_fields", {})
    setattr_(layer, "post_transforms", [])
    setattr_(layer, "time", time.time())
    if fields:
        unknown = fields.keys() - positions.keys()
        if unknown:
            raise InvalidParameterError(f"scapy layer {cls.__name__} has no field {sorted(unknown)[0]!r}")
        field_types = prototype.fieldtype
        # In declaration order, as the constructor: a conditional field's
        # conversion may read the fields before it (ARP's addresses do).
        for name in sorted(fields, key=positions.__getitem__):
            own[name] = field_types[name].any2i(layer, fields[name])
    return layer


def fset(pkt: Packet, **values: Any) -> None:
    """``pkt.name = value`` for each pair, without scapy's ``__setattr__``
    (field lookup and ``any2i`` per assignment, ~5x the cost). Only for values
    already in their stored form, as :func:`fget` reads them: addresses as
    str, ports, TTL, ICMP type/code, ids, and None for checksums to recompute.

    >>> ip = make(IP, src="10.0.0.1", dst="10.0.0.2")
    >>> fset(ip, src="10.0.0.2", dst="10.0.0.1", ttl=7, chksum=None)
    >>> bytes(ip) == bytes(IP(src="10.0.0.2", dst="10.0.0.1", ttl=7))
    True
    """
    pkt.fields.update(values)
    # What scapy's setfieldval resets, so the next build re-serializes this layer.
    setattr_ = object.__setattr__
    setattr_(pkt, "explicit", 0)
    setattr_(pkt, "raw_packet_cache", None)
    setattr_(pkt, "raw_packet_cache_fields", None)
    setattr_(pkt, "wirelen", None)


def fget(pkt: Packet, name: str) -> Any:
    """A field's stored value, without scapy's attribute machinery (~10x
    faster than ``pkt.name``). Only for fields whose stored form is the one
    wanted: addresses (str), ports, TTL, ICMP type/code, MACs.

    >>> fget(IP(dst="10.0.0.1"), "dst"), fget(IP(), "ttl")
    ('10.0.0.1', 64)
    """
    fields = pkt.fields
    if name in fields:
        return fields[name]
    overloaded = pkt.overloaded_fields
    if name in overloaded:
        return overloaded[name]
    return pkt.default_fields[name]


def is_multicast_mac(mac: str) -> bool:
    """Broadcast and multicast MACs have the group bit set in the first octet.

    >>> is_multicast_mac(BROADCAST_MAC), is_multicast_mac("33:33:ff:00:00:01"), is_multicast_mac("02:00:00:00:00:01")
    (True, True, False)
    """
    return bool(int(mac[:2], 16) & 1)


def ether(src: str, dst: str, payload: Packet) -> Packet:
    """``Ether(src, dst) / payload`` without copying ``payload``.

    A packet that arrived in a frame (a forwarded packet, an answer written
    over its request) goes out in that same Ether object, readdressed: the
    frame that carried it in is done with, and a new Ether costs ~20 µs."""
    carrier = payload.underlayer
    if isinstance(carrier, Ether) and carrier.underlayer is None:
        fset(carrier, src=src, dst=dst)
        return carrier
    if carrier is not None:
        carrier.remove_payload()
    frame = make(Ether, src=src, dst=dst)
    frame.add_payload(payload)
    return frame


def l3_of(frame: Packet) -> Packet | None:
    """The IP or IPv6 layer right above Ether (None for ARP and others)."""
    inner = frame.payload
    if isinstance(inner, IP | IPv6):
        return inner
    return None


def stack(*layers: Packet) -> Packet:
    """Chain layers without scapy's copy: ``stack(IP(), ICMP())``."""
    top = layers[0]
    for lower, upper in itertools.pairwise(layers):
        lower.add_payload(upper)
    return top


def ttl_of(ip: Packet) -> int:
    return int(ip.ttl if isinstance(ip, IP) else ip.hlim)


def set_ttl(ip: Packet, value: int) -> None:
    if isinstance(ip, IP):
        fset(ip, ttl=value, chksum=None)
    else:
        fset(ip, hlim=value)


def _echo_side(l4: Packet) -> str | None:
    """Where an echo's id sits in its flow tuple, as in Linux's conntrack:
    the source side of a request, the destination side of a reply."""
    if isinstance(l4, ICMP):
        icmp_type = fget(l4, "type")
        if icmp_type == ICMP_ECHO_REQUEST:
            return "src"
        return "dst" if icmp_type == ICMP_ECHO_REPLY else None
    # scapy's ICMPv6EchoReply subclasses ICMPv6EchoRequest: test the reply first
    if isinstance(l4, ICMPv6EchoReply):
        return "dst"
    return "src" if isinstance(l4, ICMPv6EchoRequest) else None


def flow_key(ip: Packet) -> tuple[str, tuple[str, int], tuple[str, int]] | None:
    """``(proto, (src, sport), (dst, dport))``. An ICMP echo's id is its one
    port: ``((src, id), (dst, 0))`` for a request, ``((src, 0), (dst, id))``
    for the reply, so that NAT can remap ids like ports."""
    l4 = ip.payload
    src, dst = fget(ip, "src"), fget(ip, "dst")
    if isinstance(l4, TCP | UDP):
        proto = "tcp" if isinstance(l4, TCP) else "udp"
        return proto, (src, fget(l4, "sport")), (dst, fget(l4, "dport"))
    side = _echo_side(l4)
    if side is None:
        return None
    echo_id = fget(l4, "id")
    if side == "src":
        return "icmp", (src, echo_id), (dst, 0)
    return "icmp", (src, 0), (dst, echo_id)


def rewrite(ip: Packet, *, src: tuple[str, int] | None = None, dst: tuple[str, int] | None = None) -> None:
    """NAT rewrite of addresses and ports (an echo's id) in place; checksums
    are cleared so scapy recomputes them when the packet is built."""
    l4 = ip.payload
    side = _echo_side(l4)
    if src is not None:
        fset(ip, src=src[0])
        if isinstance(l4, TCP | UDP):
            fset(l4, sport=src[1])
        elif side == "src":
            fset(l4, id=src[1])
    if dst is not None:
        fset(ip, dst=dst[0])
        if isinstance(l4, TCP | UDP):
            fset(l4, dport=dst[1])
        elif side == "dst":
            fset(l4, id=dst[1])
    if isinstance(ip, IP):
        fset(ip, chksum=None)
    if isinstance(l4, TCP | UDP | ICMP):
        fset(l4, chksum=None)
    elif isinstance(l4, ICMPv6EchoRequest | ICMPv6EchoReply):
        fset(l4, cksum=None)


def embedded(ip: Packet) -> Packet | None:
    """For an ICMP error: the offending packet's IP header it quotes."""
    l4 = ip.payload
    if isinstance(l4, ICMP) and int(l4.type) in (ICMP_UNREACH, ICMP_TIME_EXCEEDED):
        inner = l4.payload
        return inner if isinstance(inner, IPerror) else None
    if isinstance(l4, ICMPv6DestUnreach | ICMPv6TimeExceeded):
        inner = l4.payload
        return inner if isinstance(inner, IPerror6) else None
    return None


def icmp_error(kind: str, offender: Packet, src: str) -> Packet:
    """The ICMP error Linux sends back to ``offender``'s source (``kind`` is a
    key of ICMP4_ERRORS). It quotes the offending header and 8 bytes; the
    quote is re-dissected so it reads as IPerror like on the wire."""
    raw = bytes(offender)
    if isinstance(offender, IP):
        icmp_type, code = ICMP4_ERRORS[kind]
        quote = IPerror(raw[: int(offender.ihl or 5) * 4 + 8])
        return stack(make(IP, src=src, dst=offender.src, ttl=64), make(ICMP, type=icmp_type, code=code), quote)
    icmp_type, code = ICMP6_ERRORS[kind]
    layer: Packet = (ICMPv6DestUnreach if icmp_type == 1 else ICMPv6TimeExceeded)(code=code)
    return stack(make(IPv6, src=src, dst=offender.src, hlim=64), layer, IPerror6(raw[:48]))


def describe(pkt: Packet) -> str:
    """One line in scapy's summary style, from a few fields (scapy's own
    ``summary()`` costs ~50 µs, more than a whole hop).

    >>> describe(stack(IP(src="10.0.0.1", dst="10.0.0.2"), ICMP(type=8)))
    'IP 10.0.0.1 > 10.0.0.2 / ICMP echo-request code=0 ttl=64'
    >>> describe(stack(IP(src="10.0.0.1", dst="10.0.0.2"), TCP(sport=1, dport=80, flags="S")))
    'IP / TCP 10.0.0.1:1 > 10.0.0.2:80 S'
    """
    layer: Any = pkt
    if isinstance(layer, Ether):
        layer = layer.payload
    if isinstance(layer, IP | IPv6):
        name = "IP" if isinstance(layer, IP) else "IPv6"
        src, dst = fget(layer, "src"), fget(layer, "dst")
        l4 = layer.payload
        if isinstance(l4, TCP | UDP):
            flags = f" {l4.flags}" if isinstance(l4, TCP) else ""
            return f"{name} / {type(l4).__name__} {src}:{fget(l4, 'sport')} > {dst}:{fget(l4, 'dport')}{flags}"
        ttl = fget(layer, "ttl" if name == "IP" else "hlim")
        return f"{name} {src} > {dst} / {_icmp_text(l4)} ttl={ttl}"
    if isinstance(layer, Raw) or not isinstance(pkt, Ether):
        return str(pkt.summary())
    return str(layer.summary())


def _icmp_text(l4: Packet) -> str:
    if isinstance(l4, ICMP):
        names = {0: "echo-reply", 8: "echo-request", 3: "dest-unreach", 11: "time-exceeded"}
        icmp_type = fget(l4, "type")
        return f"ICMP {names.get(icmp_type, str(icmp_type))} code={fget(l4, 'code')}"
    return type(l4).__name__
