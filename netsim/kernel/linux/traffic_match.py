"""Recognize the answer to one probe among copies of every packet a raw
socket receives. Pure functions over bytes, so they are tested without root.

A match needs something only this probe can have caused: the echo id and
sequence; the TCP/UDP ports, one of them a random source port, plus for TCP
the acknowledgement of the random SYN sequence; for an ICMP error, the same
flow (destination included) in the quoted original header. Parsing is done with ``struct`` on the
raw bytes (cheap enough to run on every copy); scapy decodes only the match.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from dataclasses import dataclass

from scapy.layers.inet import IP
from scapy.layers.inet6 import IPv6
from scapy.packet import Packet

PROTO_NUMBERS = {"icmp": (1, 58), "tcp": (6, 6), "udp": (17, 17)}
TCP_FIN, TCP_SYN, TCP_RST, TCP_ACK = 0x01, 0x02, 0x04, 0x10

#: ICMP destination-unreachable codes (RFC 792, 1812) → probe outcome
ICMP4_UNREACH = {
    0: "net-unreachable",
    1: "host-unreachable",
    2: "proto-unreachable",
    3: "port-unreachable",
    4: "frag-needed",
    6: "net-unreachable",
    7: "host-unreachable",
    9: "admin-prohibited",
    10: "admin-prohibited",
    11: "net-unreachable",
    12: "host-unreachable",
    13: "admin-prohibited",
}
#: ICMPv6 destination-unreachable codes (RFC 4443) → probe outcome
ICMP6_UNREACH = {
    0: "net-unreachable",
    1: "admin-prohibited",
    3: "host-unreachable",
    4: "port-unreachable",
    5: "admin-prohibited",
    6: "admin-prohibited",
}


@dataclass(frozen=True)
class Expectation:
    """What identifies one probe's packets: ``sport`` is ours, ``dport`` the target's."""

    proto: str
    dst: str  # normalized (``str(ipaddress.ip_address(...))``), compared to reply sources
    ident: int = 0
    seq: int = 0
    sport: int = 0
    dport: int = 0


def _quoted_matches(quoted_proto: int, quoted_dst: bytes, quoted_l4: bytes, expect: Expectation, version: int) -> bool:
    """Does the header quoted in an ICMP error belong to our probe?

    The whole flow is compared, as the kernel does before it hands an error to
    a connected socket: destination, destination port and our random source
    port (or echo id and sequence). An error that crossed a NAT on its way
    back quotes the original header (conntrack translates it back); one that
    bypassed the NAT (a hairpin answered over the bridge) quotes the
    translated destination, and no real client would take it as its answer.
    """
    if quoted_proto != PROTO_NUMBERS[expect.proto][0 if version == 4 else 1] or len(quoted_l4) < 8:
        return False
    if str(ipaddress.ip_address(quoted_dst)) != expect.dst:
        return False
    if expect.proto == "icmp":
        request_type = 8 if version == 4 else 128
        quoted: tuple[int, int, int, int, int] = struct.unpack("!BBHHH", quoted_l4[:8])
        return quoted[0] == request_type and quoted[3:] == (expect.ident, expect.seq)
    ports: tuple[int, int] = struct.unpack("!HH", quoted_l4[:4])
    return ports == (expect.sport, expect.dport)


def _transport_outcome(proto: int, l4: bytes, src: str, expect: Expectation) -> str | None:
    """The outcome of a TCP or UDP reply, or None when it is not ours."""
    if src != expect.dst or len(l4) < 8:
        return None
    sport, dport = struct.unpack("!HH", l4[:4])
    if sport != expect.dport or dport != expect.sport:
        return None
    if proto == 17 and expect.proto == "udp":
        return "udp-reply"
    if proto != 6 or expect.proto != "tcp" or len(l4) < 20:
        return None
    ack = struct.unpack("!I", l4[8:12])[0]
    flags = l4[13]
    acks_our_syn = bool(flags & TCP_ACK) and ack == (expect.seq + 1) & 0xFFFFFFFF
    if flags & TCP_RST and (acks_our_syn or not flags & TCP_ACK):
        return "rst"
    if flags & TCP_SYN and acks_our_syn:
        return "syn-ack"
    return None


def match_v4_outcome(data: bytes, expect: Expectation) -> str | None:
    """The outcome ``data`` (a whole IPv4 packet) means for the probe, or None.

    >>> from scapy.layers.inet import IP, ICMP
    >>> echo = Expectation("icmp", "10.0.0.2", ident=7, seq=1)
    >>> match_v4_outcome(bytes(IP(src="10.0.0.2", dst="10.0.0.1") / ICMP(type=0, id=7, seq=1)), echo)
    'echo-reply'
    >>> match_v4_outcome(bytes(IP(src="10.0.0.2", dst="10.0.0.1") / ICMP(type=0, id=8, seq=1)), echo) is None
    True
    """
    if len(data) < 20 or data[0] >> 4 != 4:
        return None
    ihl = (data[0] & 0x0F) * 4
    proto = data[9]
    src = socket.inet_ntoa(data[12:16])
    l4 = data[ihl:]
    if proto != 1:
        return _transport_outcome(proto, l4, src, expect)
    if len(l4) < 8:
        return None
    kind, code, _, ident, seq = struct.unpack("!BBHHH", l4[:8])
    if kind == 0:
        ours = expect.proto == "icmp" and src == expect.dst and ident == expect.ident and seq == expect.seq
        return "echo-reply" if ours else None
    if kind not in (3, 11) or len(l4) < 28:
        return None
    quoted = l4[8:]
    quoted_ihl = (quoted[0] & 0x0F) * 4
    if not _quoted_matches(quoted[9], quoted[16:20], quoted[quoted_ihl:], expect, 4):
        return None
    return "time-exceeded" if kind == 11 else ICMP4_UNREACH.get(code, "unreachable")


def match_v4(data: bytes, expect: Expectation) -> tuple[str, Packet] | None:
    """``(outcome, scapy IP packet)`` when ``data`` answers the probe."""
    outcome = match_v4_outcome(data, expect)
    return None if outcome is None else (outcome, IP(data))


def match_v6_outcome(proto: int, l4: bytes, src: str, expect: Expectation) -> str | None:
    """The outcome of an IPv6 packet's payload ``l4`` (raw IPv6 sockets strip the
    IP header; ``proto`` is the socket's protocol, ``src`` the sender)."""
    src = str(ipaddress.ip_address(src.split("%")[0]))
    if proto != 58:
        return _transport_outcome(proto, l4, src, expect)
    if len(l4) < 8:
        return None
    kind, code, _, ident, seq = struct.unpack("!BBHHH", l4[:8])
    if kind == 129:
        ours = expect.proto == "icmp" and src == expect.dst and ident == expect.ident and seq == expect.seq
        return "echo-reply" if ours else None
    if kind not in (1, 3) or len(l4) < 8 + 40 + 8:
        return None
    quoted = l4[8:]
    # extension headers in the quoted packet are not followed: probes send none
    if not _quoted_matches(quoted[6], quoted[24:40], quoted[40:], expect, 6):
        return None
    return "time-exceeded" if kind == 3 else ICMP6_UNREACH.get(code, "unreachable")


def match_v6(proto: int, l4: bytes, src: str, local: str, expect: Expectation) -> tuple[str, Packet] | None:
    """``(outcome, scapy IPv6 packet rebuilt around the payload)`` when it answers the probe."""
    outcome = match_v6_outcome(proto, l4, src, expect)
    if outcome is None:
        return None
    header = IPv6(src=src.split("%")[0], dst=local.split("%")[0], nh=proto, plen=len(l4))
    return outcome, IPv6(bytes(header) + l4)
