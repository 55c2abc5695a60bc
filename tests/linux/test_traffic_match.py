"""Reply matching for real-kernel probes: pure functions over packet bytes,
built here with scapy (no root needed, so these run everywhere)."""

from __future__ import annotations

import doctest
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPerror, TCPerror, UDPerror
from scapy.layers.inet6 import ICMPv6DestUnreach, ICMPv6EchoReply, ICMPv6TimeExceeded, IPv6
from scapy.packet import NoPayload, Packet, Raw

from netsim.kernel.linux import traffic_match, traffic_nssocket, traffic_probe
from netsim.kernel.linux.traffic_match import Expectation, match_v4, match_v4_outcome, match_v6, match_v6_outcome
from netsim.kernel.linux.traffic_probe import build_probe

ME, THEM, ROUTER = "10.0.0.1", "10.0.1.2", "10.0.0.254"
TCP_PROBE = Expectation("tcp", THEM, sport=40000, dport=80, seq=1000)
UDP_PROBE = Expectation("udp", THEM, sport=40001, dport=53)
ECHO = Expectation("icmp", THEM, ident=77, seq=5)


@pytest.mark.parametrize("module", [traffic_match, traffic_nssocket], ids=lambda module: module.__name__)
def test_doctests(module: object) -> None:
    outcome = doctest.testmod(module)  # type: ignore[arg-type]
    assert outcome.attempted > 0 and outcome.failed == 0


@pytest.mark.parametrize(
    ("packet", "expect", "outcome"),
    [
        (IP(src=THEM, dst=ME) / TCP(sport=80, dport=40000, flags="SA", ack=1001), TCP_PROBE, "syn-ack"),
        (IP(src=THEM, dst=ME) / TCP(sport=80, dport=40000, flags="RA", ack=1001), TCP_PROBE, "rst"),
        (IP(src=THEM, dst=ME) / TCP(sport=80, dport=40000, flags="SA", ack=999), TCP_PROBE, None),
        (IP(src=THEM, dst=ME) / TCP(sport=81, dport=40000, flags="SA", ack=1001), TCP_PROBE, None),
        (IP(src=ROUTER, dst=ME) / TCP(sport=80, dport=40000, flags="SA", ack=1001), TCP_PROBE, None),
        (IP(src=ME, dst=THEM) / TCP(sport=40000, dport=80, flags="S", seq=1000), TCP_PROBE, None),  # our own SYN
        (IP(src=THEM, dst=ME) / UDP(sport=53, dport=40001) / Raw(b"x"), UDP_PROBE, "udp-reply"),
        (IP(src=THEM, dst=ME) / UDP(sport=53, dport=40002), UDP_PROBE, None),
        (IP(src=THEM, dst=ME) / ICMP(type=0, id=77, seq=5), ECHO, "echo-reply"),
        (IP(src=THEM, dst=ME) / ICMP(type=0, id=77, seq=6), ECHO, None),
        (IP(src=ME, dst=THEM) / ICMP(type=8, id=77, seq=5), ECHO, None),  # our own request
        (
            IP(src=THEM, dst=ME) / ICMP(type=3, code=3) / IPerror(src=ME, dst=THEM) / UDPerror(sport=40001, dport=53),
            UDP_PROBE,
            "port-unreachable",
        ),
        (
            IP(src=ROUTER, dst=ME) / ICMP(type=3, code=0) / IPerror(src=ME, dst=THEM) / TCPerror(sport=40000, dport=80),
            TCP_PROBE,
            "net-unreachable",
        ),
        (
            IP(src=ROUTER, dst=ME)
            / ICMP(type=3, code=13)
            / IPerror(src=ME, dst=THEM)
            / TCPerror(sport=40000, dport=80),
            TCP_PROBE,
            "admin-prohibited",
        ),
        (
            IP(src=ROUTER, dst=ME) / ICMP(type=11) / IPerror(src=ME, dst=THEM) / ICMP(type=8, id=77, seq=5),
            ECHO,
            "time-exceeded",
        ),
        (
            IP(src=ROUTER, dst=ME) / ICMP(type=3, code=1) / IPerror(src=ME, dst=THEM) / ICMP(type=8, id=77, seq=5),
            ECHO,
            "host-unreachable",
        ),
        (
            IP(src=ROUTER, dst=ME) / ICMP(type=3, code=1) / IPerror(src=ME, dst=THEM) / ICMP(type=8, id=78, seq=5),
            ECHO,
            None,
        ),
        (
            IP(src=THEM, dst=ME) / ICMP(type=3, code=3) / IPerror(src=ME, dst=THEM) / UDPerror(sport=40001, dport=53),
            TCP_PROBE,
            None,
        ),
        (  # a hairpin's answer that bypassed the NAT quotes the translated flow: not ours
            IP(src="10.0.0.2", dst=ME)
            / ICMP(type=3, code=3)
            / IPerror(src=ME, dst="10.0.0.2")
            / UDPerror(sport=40001, dport=53),
            UDP_PROBE,
            None,
        ),
        (
            IP(src=THEM, dst=ME) / ICMP(type=3, code=3) / IPerror(src=ME, dst=THEM) / UDPerror(sport=40001, dport=5353),
            UDP_PROBE,
            None,
        ),
    ],
)
def test_v4_outcomes(packet: IP, expect: Expectation, outcome: str | None) -> None:
    assert match_v4_outcome(bytes(packet), expect) == outcome
    matched = match_v4(bytes(packet), expect)
    assert (matched is None) == (outcome is None)
    if matched is not None:
        assert matched[1].summary() == IP(bytes(packet)).summary()


V6_ME, V6_THEM = "fd00::1", "fd00:1::2"


@pytest.mark.parametrize(
    ("proto", "payload", "src", "expect", "outcome"),
    [
        (58, ICMPv6EchoReply(id=77, seq=5), V6_THEM, Expectation("icmp", V6_THEM, ident=77, seq=5), "echo-reply"),
        (
            6,
            TCP(sport=80, dport=40000, flags="SA", ack=1001),
            V6_THEM,
            Expectation("tcp", V6_THEM, sport=40000, dport=80, seq=1000),
            "syn-ack",
        ),
        (
            17,
            UDP(sport=53, dport=40001),
            "FD00:1:0::2",
            Expectation("udp", V6_THEM, sport=40001, dport=53),
            "udp-reply",
        ),
        (
            58,
            ICMPv6DestUnreach(code=4) / IPv6(src=V6_ME, dst=V6_THEM, nh=17) / UDP(sport=40001, dport=53),
            V6_THEM,
            Expectation("udp", V6_THEM, sport=40001, dport=53),
            "port-unreachable",
        ),
        (
            58,
            ICMPv6TimeExceeded() / IPv6(src=V6_ME, dst=V6_THEM, nh=6) / TCP(sport=40000, dport=80),
            "fd00::fe",
            Expectation("tcp", V6_THEM, sport=40000, dport=80, seq=1),
            "time-exceeded",
        ),
        (
            58,
            ICMPv6DestUnreach(code=0) / IPv6(src=V6_ME, dst=V6_THEM, nh=6) / TCP(sport=40009, dport=80),
            "fd00::fe",
            Expectation("tcp", V6_THEM, sport=40000, dport=80, seq=1),
            None,
        ),
    ],
)
def test_v6_outcomes(proto: int, payload: object, src: str, expect: Expectation, outcome: str | None) -> None:
    l4 = bytes(payload)  # type: ignore[call-overload]
    assert match_v6_outcome(proto, l4, src, expect) == outcome
    matched = match_v6(proto, l4, src, V6_ME, expect)
    if outcome is None:
        assert matched is None
    else:
        assert matched is not None and matched[1]["IPv6"].dst == V6_ME


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=120))
def test_garbage_never_matches_or_crashes(data: bytes) -> None:
    for expect in (TCP_PROBE, UDP_PROBE, ECHO):
        assert match_v4_outcome(data, expect) is None or data[0] >> 4 == 4
        for proto in (58, 6, 17):
            match_v6_outcome(proto, data, V6_THEM, expect)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["icmp", "tcp", "udp"]), st.integers(1, 65535), st.randoms(use_true_random=False))
def test_built_probes_carry_what_the_matcher_expects(proto: str, port: int, rng: random.Random) -> None:
    packet, expect = build_probe(4, ME, THEM, proto, None if proto == "icmp" else port, rng)  # type: ignore[arg-type]
    wire = IP(bytes(packet))
    assert (wire.src, wire.dst) == (ME, THEM)
    if proto == "icmp":
        assert (wire[ICMP].id, wire[ICMP].seq) == (expect.ident, expect.seq)
    else:
        layer = wire[TCP] if proto == "tcp" else wire[UDP]
        assert (layer.sport, layer.dport) == (expect.sport, port) and layer.sport != port
    assert match_v4_outcome(bytes(packet), expect) is None  # a probe never matches itself


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from(["icmp", "tcp", "udp"]),
    st.sampled_from([(4, "10.0.0.1", "10.0.1.2"), (6, "fd00::1", "fd00:1::2")]),
    st.integers(0, 2**32 - 1),
)
def test_chained_probes_are_byte_identical_to_slash_built_ones(
    proto: str, addresses: tuple[int, str, str], seed: int
) -> None:
    version, src, dst = addresses
    port = None if proto == "icmp" else 8080
    packet, _ = build_probe(version, src, dst, proto, port, random.Random(seed))  # type: ignore[arg-type]
    layers = [layer.copy() for layer in _layers(packet)]
    for layer in layers:
        layer.remove_payload()
    rebuilt = layers[0]
    for layer in layers[1:]:
        rebuilt = rebuilt / layer
    assert bytes(packet) == bytes(rebuilt)


def _layers(packet: Packet) -> list[Packet]:
    found = []
    while packet and not isinstance(packet, NoPayload):
        found.append(packet)
        packet = packet.payload
    return found


def test_probe_module_constants_agree_with_the_public_front() -> None:
    from netsim.probe import REACHABLE_OUTCOMES

    assert traffic_probe.REACHABLE_OUTCOMES == REACHABLE_OUTCOMES
