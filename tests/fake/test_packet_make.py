"""packets.make builds the same scapy layers as the constructors (bytes, repr,
fields), and made layers share no mutable state with each other."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Packet, Raw

from netsim.errors import InvalidParameterError
from netsim.kernel.fake.dataplane.packets import fset, make

ipv4 = st.ip_addresses(v=4).map(str)
ipv6 = st.ip_addresses(v=6).map(str)
mac = st.binary(min_size=6, max_size=6).map(lambda b: ":".join(f"{x:02x}" for x in b))
port = st.integers(0, 65535)


def _same(made: Packet, built: Packet) -> None:
    assert type(made) is type(built)
    assert made.fields == built.fields
    assert repr(made) == repr(built)
    assert bytes(made) == bytes(built)


@settings(max_examples=60, deadline=None)
@given(src=ipv4, dst=ipv4, ttl=st.integers(1, 255), icmp_type=st.integers(0, 255), ident=port, seq=port)
def test_ip_icmp_raw(src: str, dst: str, ttl: int, icmp_type: int, ident: int, seq: int) -> None:
    made = make(IP, src=src, dst=dst, ttl=ttl)
    made.add_payload(make(ICMP, type=icmp_type, id=ident, seq=seq))
    made.payload.add_payload(make(Raw, load=b"netsim-probe"))
    built = IP(src=src, dst=dst, ttl=ttl) / ICMP(type=icmp_type, id=ident, seq=seq) / Raw(b"netsim-probe")
    _same(made, built)


@settings(max_examples=40, deadline=None)
@given(src=ipv6, dst=ipv6, sport=port, dport=port, flags=st.sampled_from(["S", "SA", "RA", "A"]))
def test_ipv6_tcp_udp_echo6(src: str, dst: str, sport: int, dport: int, flags: str) -> None:
    _same(make(IPv6, src=src, dst=dst, hlim=64), IPv6(src=src, dst=dst, hlim=64))
    _same(make(TCP, sport=sport, dport=dport, flags=flags, seq=1), TCP(sport=sport, dport=dport, flags=flags, seq=1))
    _same(make(UDP, sport=sport, dport=dport), UDP(sport=sport, dport=dport))
    _same(make(ICMPv6EchoRequest, id=sport, seq=1, data=b"x"), ICMPv6EchoRequest(id=sport, seq=1, data=b"x"))


@settings(max_examples=40, deadline=None)
@given(src=mac, dst=mac, psrc=ipv4, pdst=ipv4)
def test_ether_arp(src: str, dst: str, psrc: str, pdst: str) -> None:
    _same(make(Ether, src=src, dst=dst), Ether(src=src, dst=dst))
    _same(make(ARP, op=1, hwsrc=src, psrc=psrc, pdst=pdst), ARP(op=1, hwsrc=src, psrc=psrc, pdst=pdst))


def test_made_layers_do_not_share_mutable_state() -> None:
    first, second = make(IP, dst="10.0.0.1"), make(IP, dst="10.0.0.2")
    first.options.append(b"\x01")  # IP's options default is a list held by reference
    first.ttl = 3
    assert second.options == [] and second.ttl == 64 and second.dst == "10.0.0.2"
    assert make(IP).options == [] and IP().options == []


def test_unknown_field_is_refused_like_the_constructor() -> None:
    bad: dict[str, Any] = {"no_such_field": 1}
    with pytest.raises(InvalidParameterError, match="no_such_field"):
        make(IP, **bad)
    with pytest.raises(AttributeError):
        IP(**bad)


@settings(max_examples=40, deadline=None)
@given(src=ipv4, dst=ipv4, ttl=st.integers(1, 255), sport=port, dport=port)
def test_fset_equals_scapy_assignment(src: str, dst: str, ttl: int, sport: int, dport: int) -> None:
    fast = IP(bytes(IP(src="10.9.9.9", dst="10.8.8.8") / TCP(sport=1, dport=2)))  # dissected: has raw caches
    slow = IP(bytes(IP(src="10.9.9.9", dst="10.8.8.8") / TCP(sport=1, dport=2)))
    fset(fast, src=src, dst=dst, ttl=ttl, chksum=None)
    fset(fast.payload, sport=sport, dport=dport, chksum=None)
    slow.src, slow.dst, slow.ttl, slow.chksum = src, dst, ttl, None
    slow[TCP].sport, slow[TCP].dport, slow[TCP].chksum = sport, dport, None
    assert bytes(fast) == bytes(slow)
    assert fast.fields == slow.fields and fast.payload.fields == slow.payload.fields
