"""Fake dataplane, layer 3: routing, forwarding, TTL, ICMP errors, listeners, IPv6, bad input."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netsim.errors import InvalidParameterError, NotFoundError
from netsim.kernel.base import Kernel, Listener


@pytest.fixture
def fake(netsim_kernel_factory: Callable[[str], Kernel]) -> Kernel:
    return netsim_kernel_factory("fake")


def routed(kernel: Kernel, forward: bool = True) -> tuple[str, str, str]:
    """left (10.1.0.2) -- router (10.1.0.1 | 10.2.0.1) -- right (10.2.0.2)."""
    left, router, right = kernel.ns("left"), kernel.ns("router"), kernel.ns("right")
    for name in (left, router, right):
        kernel.add_namespace(name)
    kernel.add_veth(left, "eth0", "l0", router)
    kernel.add_veth(right, "eth0", "r0", router)
    for ns, dev, cidr in (
        (left, "eth0", "10.1.0.2/24"),
        (router, "l0", "10.1.0.1/24"),
        (router, "r0", "10.2.0.1/24"),
        (right, "eth0", "10.2.0.2/24"),
    ):
        kernel.set_link_up(ns, dev)
        kernel.add_address(ns, dev, cidr)
    kernel.add_route(left, "default", via="10.1.0.1")
    kernel.add_route(right, "default", via="10.2.0.1")
    if forward:
        kernel.set_sysctl(router, "net.ipv4.ip_forward", "1")
    return left, router, right


def test_routing_needs_ip_forward(fake: Kernel) -> None:
    left, router, _ = routed(fake, forward=False)
    assert fake.probe(left, "10.2.0.2").outcome == "timeout"
    assert fake.probe(left, "10.2.0.1").outcome == "echo-reply"  # weak host: any local address answers
    fake.set_sysctl(router, "net.ipv4.ip_forward", "1")
    result = fake.probe(left, "10.2.0.2")
    assert result.outcome == "echo-reply"
    assert result.reply.ttl == 63  # decremented once on the way back
    assert [hop.namespace for hop in result.trace if hop.action == "forward"] == [router, router]


def test_no_route_at_source_and_at_router(fake: Kernel) -> None:
    left, _, _ = routed(fake)
    fake.delete_route(left, "default", via="10.1.0.1")
    at_source = fake.probe(left, "10.9.9.9")
    assert at_source.outcome == "net-unreachable" and at_source.reply is None
    fake.add_route(left, "default", via="10.1.0.1")
    at_router = fake.probe(left, "10.9.9.9")
    assert at_router.outcome == "net-unreachable"
    assert at_router.reply is not None and at_router.reply.src == "10.1.0.1"


def test_routing_loop_ends_in_time_exceeded(fake: Kernel) -> None:
    left, router, right = routed(fake)
    fake.set_sysctl(right, "net.ipv4.ip_forward", "1")
    fake.add_route(router, "10.7.0.0/16", via="10.2.0.2")
    fake.add_route(right, "10.7.0.0/16", via="10.2.0.1")
    result = fake.probe(left, "10.7.0.1")
    assert result.outcome == "time-exceeded"
    assert any("TTL expired" in hop.detail for hop in result.trace)


def test_longest_prefix_then_metric(fake: Kernel) -> None:
    left, router, right = routed(fake)
    fake.add_route(router, "10.2.0.0/16", via="10.1.0.2", metric=1)  # shorter: loses to the /24
    assert fake.probe(left, "10.2.0.2").outcome == "echo-reply"
    fake.add_route(router, "10.2.0.0/25", via="10.1.0.2", metric=5)  # longer: wins, back to left
    result = fake.probe(left, "10.2.0.2")
    assert result.outcome == "timeout"  # left does not forward
    assert any(hop.namespace == left and "ip_forward=0" in hop.detail for hop in result.trace)
    fake.add_route(router, "10.2.0.0/25", dev="r0", metric=1)  # same prefix, lower metric wins
    assert fake.probe(left, "10.2.0.2").outcome == "echo-reply"
    assert right


def test_tcp_and_udp_listeners(fake: Kernel) -> None:
    left, _, right = routed(fake)
    assert fake.probe(left, "10.2.0.2", "tcp", 8080).outcome == "rst"
    assert fake.probe(left, "10.2.0.2", "udp", 5353).outcome == "port-unreachable"
    fake.add_listener(right, Listener("tcp", 8080))
    fake.add_listener(right, Listener("udp", 5353, "10.2.0.2"))
    syn_ack = fake.probe(left, "10.2.0.2", "tcp", 8080)
    assert syn_ack.outcome == "syn-ack" and syn_ack.reachable
    udp = fake.probe(left, "10.2.0.2", "udp", 5353)
    assert udp.outcome == "udp-reply" and bytes(udp.reply.payload.payload) == b"netsim-probe"


def test_ipv6_forwarding_and_listeners(fake: Kernel) -> None:
    left, router, right = routed(fake)
    for ns, dev, cidr in (
        (left, "eth0", "fd01::2/64"),
        (router, "l0", "fd01::1/64"),
        (router, "r0", "fd02::1/64"),
        (right, "eth0", "fd02::2/64"),
    ):
        fake.add_address(ns, dev, cidr)
    fake.add_route(left, "default6", via="fd01::1")
    fake.add_route(right, "default6", via="fd02::1")
    assert fake.probe(left, "fd01::1").outcome == "echo-reply"
    assert fake.probe(left, "fd02::2").outcome == "timeout"
    fake.set_sysctl(router, "net.ipv6.conf.all.forwarding", "1")
    assert fake.probe(left, "fd02::2").outcome == "echo-reply"
    assert fake.probe(left, "fd02::2", "udp", 53).outcome == "port-unreachable"
    fake.add_listener(right, Listener("tcp", 22, "::"))
    assert fake.probe(left, "fd02::2", "tcp", 22).outcome == "syn-ack"


def test_probe_own_address_through_loopback(fake: Kernel) -> None:
    left, _, _ = routed(fake)
    fake.set_link_up(left, "lo")
    assert fake.probe(left, "10.1.0.2").outcome == "echo-reply"
    assert fake.probe(left, "127.0.0.1").outcome == "echo-reply"


def test_explicit_source_address(fake: Kernel) -> None:
    left, _, _ = routed(fake)
    result = fake.probe(left, "10.2.0.2", src="10.1.0.2")
    assert result.outcome == "echo-reply"
    with pytest.raises(NotFoundError):
        fake.probe(left, "10.2.0.2", src="10.2.0.2")  # not ours: EADDRNOTAVAIL


BAD_PROBES = [
    ({"dst": "10.0.0.300"}, InvalidParameterError),
    ({"dst": "not-an-ip"}, InvalidParameterError),
    ({"dst": "10.2.0.2", "proto": "sctp"}, InvalidParameterError),
    ({"dst": "10.2.0.2", "proto": "tcp"}, InvalidParameterError),
    ({"dst": "10.2.0.2", "proto": "udp", "port": 70000}, InvalidParameterError),
    ({"dst": "10.2.0.2", "proto": "icmp", "port": 80}, InvalidParameterError),
    ({"dst": "10.2.0.2", "timeout": 0}, InvalidParameterError),
    ({"dst": "10.2.0.2", "timeout": float("inf")}, InvalidParameterError),
    ({"dst": "10.2.0.2", "src": "fd00::1"}, InvalidParameterError),
]


@pytest.mark.parametrize(("kwargs", "error"), BAD_PROBES)
def test_bad_probes_are_refused_and_change_nothing(fake: Kernel, kwargs: dict[str, object], error: type) -> None:
    left, _, _ = routed(fake)
    fake.probe(left, "10.1.0.1")  # learn something first
    before = copy.deepcopy(fake.neighbours(left))
    with pytest.raises(error):
        fake.probe(left, **kwargs)  # type: ignore[arg-type]
    assert fake.neighbours(left) == before


def test_probe_from_unknown_namespace(fake: Kernel) -> None:
    with pytest.raises(NotFoundError, match="nowhere"):
        fake.probe(fake.ns("nowhere"), "10.0.0.1")


@settings(max_examples=40, deadline=None)
@given(last=st.integers(min_value=1, max_value=254), proto=st.sampled_from(["icmp", "tcp", "udp"]))
def test_any_probe_returns_a_known_outcome(last: int, proto: str) -> None:
    from netsim.kernel.fake import FakeKernel

    kernel = FakeKernel("hyp1")
    try:
        left, _, _ = routed(kernel)
        result = kernel.probe(left, f"10.2.0.{last}", proto, None if proto == "icmp" else 9)  # type: ignore[arg-type]
        expected = {
            ("icmp", 1): "echo-reply",
            ("icmp", 2): "echo-reply",
            ("tcp", 1): "rst",
            ("tcp", 2): "rst",
            ("udp", 1): "port-unreachable",
            ("udp", 2): "port-unreachable",
        }.get((proto, last), "timeout")
        assert result.outcome == expected
        assert result.trace and result.trace[0].action == "send"
    finally:
        kernel.close()
