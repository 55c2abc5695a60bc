"""Fake dataplane NAT: masquerade to the outside, published ports (DNAT), hairpin, conntrack."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from netsim.kernel.base import Dnat, Kernel, Listener, Masquerade


@pytest.fixture
def fake(netsim_kernel_factory: Callable[[str], Kernel]) -> Kernel:
    return netsim_kernel_factory("fake")


def docker_host(kernel: Kernel) -> tuple[str, str, str, str]:
    """outside (198.18.0.1) -- eth0 (198.18.0.2) host br0 (10.0.0.1) -- c1 (.2), c2 (.3)."""
    host, outside, c1, c2 = (kernel.ns(r) for r in ("h", "out", "c1", "c2"))
    for name in (host, outside, c1, c2):
        kernel.add_namespace(name)
    kernel.add_veth(host, "eth0", "eth0", outside)
    for ns, cidr in ((host, "198.18.0.2/24"), (outside, "198.18.0.1/24")):
        kernel.set_link_up(ns, "eth0")
        kernel.add_address(ns, "eth0", cidr)
    kernel.add_bridge(host, "br0")
    kernel.add_address(host, "br0", "10.0.0.1/24")
    kernel.set_link_up(host, "br0")
    for index, name in enumerate((c1, c2), start=1):
        kernel.add_veth(host, f"veth{index}", "eth0", name)
        kernel.set_master(host, f"veth{index}", "br0")
        kernel.set_link_up(host, f"veth{index}")
        kernel.set_link_up(name, "eth0")
        kernel.add_address(name, "eth0", f"10.0.0.{index + 1}/24")
        kernel.add_route(name, "default", via="10.0.0.1")
    kernel.add_route(host, "default", via="198.18.0.1")
    kernel.set_sysctl(host, "net.ipv4.ip_forward", "1")
    return host, outside, c1, c2


def seen_by(result: object, namespace: str) -> list[str]:
    return [hop.summary for hop in result.trace if hop.namespace == namespace and hop.action == "rx"]  # type: ignore[attr-defined]


def test_masquerade_to_the_outside(fake: Kernel) -> None:
    host, outside, c1, _ = docker_host(fake)
    without = fake.probe(c1, "198.18.0.1")
    assert without.outcome == "timeout"  # the outside has no route back to 10.0.0.0/24
    fake.add_rule(host, Masquerade("10.0.0.0/24", not_out_iface="br0"))
    result = fake.probe(c1, "198.18.0.1")
    assert result.outcome == "echo-reply"
    assert result.reply.src == "198.18.0.1" and result.reply.dst == "10.0.0.2"  # translated back
    assert any("10.0.0.2" not in text and "198.18.0.2" in text for text in seen_by(result, outside))
    assert any(hop.action == "snat" for hop in result.trace)
    assert any(hop.action == "un-snat" for hop in result.trace)
    fake.add_listener(outside, Listener("tcp", 443))
    assert fake.probe(c1, "198.18.0.1", "tcp", 443).outcome == "syn-ack"
    assert fake.probe(c1, "198.18.0.1", "udp", 53).outcome == "port-unreachable"  # ICMP error un-NATed


def test_masquerade_does_not_touch_bridge_local_traffic(fake: Kernel) -> None:
    host, _, c1, _ = docker_host(fake)
    fake.add_rule(host, Masquerade("10.0.0.0/24", not_out_iface="br0"))
    result = fake.probe(c1, "10.0.0.3")
    assert result.outcome == "echo-reply"
    assert not any(hop.action in ("snat", "dnat") for hop in result.trace)


def test_published_port_from_outside(fake: Kernel) -> None:
    host, outside, c1, _ = docker_host(fake)
    fake.add_rule(host, Dnat("tcp", 8080, "10.0.0.2", 80, not_in_iface="br0"))
    fake.add_rule(host, Dnat("udp", 5353, "10.0.0.2", 53, not_in_iface="br0"))
    assert fake.probe(outside, "198.18.0.2", "tcp", 8080).outcome == "rst"  # nothing listens in c1 yet
    fake.add_listener(c1, Listener("tcp", 80))
    result = fake.probe(outside, "198.18.0.2", "tcp", 8080)
    assert result.outcome == "syn-ack" and result.reachable
    assert result.reply.sport == 8080 and result.reply.src == "198.18.0.2"
    assert any(hop.action == "dnat" for hop in result.trace)
    assert any(hop.action == "un-dnat" for hop in result.trace)
    closed = fake.probe(outside, "198.18.0.2", "udp", 5353)
    assert closed.outcome == "port-unreachable"  # the quoted header is translated back too
    fake.add_listener(c1, Listener("udp", 53))
    assert fake.probe(outside, "198.18.0.2", "udp", 5353).outcome == "udp-reply"
    assert fake.probe(outside, "198.18.0.2", "tcp", 8081).outcome == "rst"  # unpublished: the host answers
    assert len(fake.world.namespaces[host].conntrack) >= 2  # type: ignore[attr-defined]


@pytest.mark.parametrize("masquerade", [True, False])
def test_hairpin_needs_masquerade_on_the_bridge(fake: Kernel, masquerade: bool) -> None:
    host, _, c1, c2 = docker_host(fake)
    fake.add_listener(c1, Listener("tcp", 80))
    fake.add_rule(host, Dnat("tcp", 8080, "10.0.0.2", 80))
    if masquerade:
        fake.add_rule(host, Masquerade("10.0.0.0/24", out_iface="br0"))
        result = fake.probe(c2, "198.18.0.2", "tcp", 8080)
        assert result.outcome == "syn-ack"
        assert result.reply.src == "198.18.0.2"
    else:
        # c1 answers c2 straight over the bridge: c2 never sees 198.18.0.2:8080 answer
        result = fake.probe(c2, "198.18.0.2", "tcp", 8080)
        assert result.outcome == "timeout"
        assert any(hop.namespace == c2 and "10.0.0.2:80" in hop.summary for hop in result.trace)


def test_dnat_excluding_the_bridge_leaves_hairpin_to_the_host(fake: Kernel) -> None:
    host, _, c1, c2 = docker_host(fake)
    fake.add_listener(c1, Listener("tcp", 80))
    fake.add_rule(host, Dnat("tcp", 8080, "10.0.0.2", 80, not_in_iface="br0"))
    result = fake.probe(c2, "198.18.0.2", "tcp", 8080)
    assert result.outcome == "rst"  # not translated: the host itself has no listener
    assert not any(hop.action == "dnat" for hop in result.trace)


def test_local_output_dnat_from_the_host(fake: Kernel) -> None:
    host, _, c1, _ = docker_host(fake)
    fake.add_listener(c1, Listener("tcp", 80))
    fake.add_rule(host, Dnat("tcp", 8080, "10.0.0.2", 80))
    result = fake.probe(host, "198.18.0.2", "tcp", 8080)
    assert result.outcome == "syn-ack"
    assert any("rerouted after DNAT" in hop.detail for hop in result.trace)


def test_two_containers_masquerading_the_same_flow_get_distinct_tuples(fake: Kernel) -> None:
    host, outside, c1, c2 = docker_host(fake)
    fake.add_rule(host, Masquerade("10.0.0.0/24", not_out_iface="br0"))
    fake.add_listener(outside, Listener("udp", 53))
    for proto, port in (("icmp", None), ("udp", 53)):
        first = fake.probe(c1, "198.18.0.1", proto, port)  # type: ignore[arg-type]
        second = fake.probe(c2, "198.18.0.1", proto, port)  # type: ignore[arg-type]
        assert first.reachable and second.reachable
        assert first.reply.dst == "10.0.0.2" and second.reply.dst == "10.0.0.3"
    table = fake.world.namespaces[host].conntrack  # type: ignore[attr-defined]
    translated = [(entry.proto, entry.reply_dst) for entry in table]
    assert len(translated) == len(set(translated)) == 4


def test_ipv6_masquerade_and_published_port(fake: Kernel) -> None:
    host, outside, c1, _ = docker_host(fake)
    for ns, dev, cidr in (
        (host, "eth0", "2001:db8::2/64"),
        (outside, "eth0", "2001:db8::1/64"),
        (host, "br0", "fd00::1/64"),
        (c1, "eth0", "fd00::2/64"),
    ):
        fake.add_address(ns, dev, cidr)
    fake.add_route(c1, "default6", via="fd00::1")
    fake.set_sysctl(host, "net.ipv6.conf.all.forwarding", "1")
    assert fake.probe(c1, "2001:db8::1").outcome == "timeout"  # the outside has no route to fd00::/64
    fake.add_rule(host, Masquerade("fd00::/64", not_out_iface="br0"))
    result = fake.probe(c1, "2001:db8::1")
    assert result.outcome == "echo-reply"
    assert any(hop.namespace == outside and "2001:db8::2 >" in hop.summary for hop in result.trace)
    assert fake.probe(c1, "2001:db8::1", "udp", 53).outcome == "port-unreachable"  # error un-NATed
    fake.add_listener(c1, Listener("tcp", 80, "::"))
    fake.add_rule(host, Dnat("tcp", 8080, "fd00::2", 80, not_in_iface="br0"))
    assert fake.probe(outside, "2001:db8::2", "tcp", 8080).outcome == "syn-ack"
