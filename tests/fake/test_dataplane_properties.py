"""Fake dataplane properties over random topologies (hypothesis).

* probes never change permanent state: the snapshot is the same before and after;
* probes are deterministic: the same probe twice gives the same outcome;
* on one bridge with ICC on, reachability is symmetric and matches listeners;
* every outcome is one of the shared vocabulary; the walk's invariants hold.
"""

from __future__ import annotations

import json
from itertools import count

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netsim.kernel.base import Filter, Listener, Masquerade
from netsim.kernel.fake import FakeKernel
from netsim.kernel.fake.dataplane import links
from netsim.kernel.fake.dataplane.walk import Walk

OUTCOMES = {
    "echo-reply",
    "syn-ack",
    "rst",
    "udp-reply",
    "port-unreachable",
    "net-unreachable",
    "host-unreachable",
    "admin-prohibited",
    "time-exceeded",
    "timeout",
}
PROBES = [("icmp", None), ("tcp", 80), ("udp", 53)]
RUNS = count(1)


def run_id() -> str:
    return f"prop{next(RUNS):x}"


@st.composite
def bridge_topologies(draw: st.DrawFn) -> dict[str, object]:
    size = draw(st.integers(2, 4))
    return {
        "size": size,
        "icc": draw(st.booleans()),
        "forward": draw(st.booleans()),
        "masquerade": draw(st.booleans()),
        "down": draw(st.sets(st.integers(1, size), max_size=1)),
        "tcp": draw(st.sets(st.integers(1, size))),
        "udp": draw(st.sets(st.integers(1, size))),
    }


def build(kernel: FakeKernel, spec: dict[str, object]) -> tuple[list[str], list[str]]:
    host, outside = kernel.ns("h"), kernel.ns("out")
    kernel.add_namespace(host)
    kernel.add_namespace(outside)
    kernel.add_veth(host, "eth0", "eth0", outside)
    for ns, cidr in ((host, "198.18.0.2/24"), (outside, "198.18.0.1/24")):
        kernel.set_link_up(ns, "eth0")
        kernel.add_address(ns, "eth0", cidr)
    kernel.add_bridge(host, "br0")
    kernel.set_link_up(host, "br0")
    kernel.add_address(host, "br0", "10.0.0.1/24")
    if spec["forward"]:
        kernel.set_sysctl(host, "net.ipv4.ip_forward", "1")
    if spec["masquerade"]:
        kernel.add_rule(host, Masquerade("10.0.0.0/24", not_out_iface="br0"))
    if not spec["icc"]:
        kernel.add_rule(host, Filter("drop", in_iface="br0", out_iface="br0", layer="bridge"))
    names, addresses = [], []
    for index in range(1, int(spec["size"]) + 1):  # type: ignore[call-overload]
        ns = kernel.ns(f"c{index}")
        kernel.add_namespace(ns)
        kernel.add_veth(host, f"veth{index}", "eth0", ns)
        kernel.set_master(host, f"veth{index}", "br0")
        kernel.set_link_up(host, f"veth{index}", index not in spec["down"])  # type: ignore[operator]
        kernel.set_link_up(ns, "eth0")
        kernel.add_address(ns, "eth0", f"10.0.0.{index + 1}/24")
        kernel.add_route(ns, "default", via="10.0.0.1")
        if index in spec["tcp"]:  # type: ignore[operator]
            kernel.add_listener(ns, Listener("tcp", 80))
        if index in spec["udp"]:  # type: ignore[operator]
            kernel.add_listener(ns, Listener("udp", 53))
        names.append(ns)
        addresses.append(f"10.0.0.{index + 1}")
    return [*names, outside], [*addresses, "198.18.0.1", "10.0.0.1"]


def matrix(kernel: FakeKernel, sources: list[str], targets: list[str]) -> dict[tuple[str, str, str], str]:
    return {
        (src, dst, proto): kernel.probe(src, dst, proto, port).outcome  # type: ignore[arg-type]
        for src in sources
        for dst in targets
        for proto, port in PROBES
    }


@settings(max_examples=25, deadline=None)
@given(spec=bridge_topologies())
def test_probes_are_deterministic_and_leave_permanent_state_alone(spec: dict[str, object]) -> None:
    kernel = FakeKernel(run_id())
    try:
        sources, targets = build(kernel, spec)
        before = json.dumps(kernel.snapshot(), sort_keys=True)
        first = matrix(kernel, sources, targets)
        second = matrix(kernel, sources, targets)
        assert first == second
        assert set(first.values()) <= OUTCOMES
        assert json.dumps(kernel.snapshot(), sort_keys=True) == before
    finally:
        kernel.close()


@settings(max_examples=25, deadline=None)
@given(spec=bridge_topologies())
def test_one_bridge_reachability_follows_the_model(spec: dict[str, object]) -> None:
    kernel = FakeKernel(run_id())
    try:
        sources, targets = build(kernel, spec)
        containers = sources[:-1]
        found = matrix(kernel, containers, targets[:-2])
        down: set[int] = spec["down"]  # type: ignore[assignment]
        for i, src in enumerate(containers, start=1):
            for j, dst in enumerate(targets[:-2], start=1):
                connected = i not in down and j not in down and (i == j or spec["icc"])
                if i == j:
                    continue  # own address: lo is down in a fresh namespace
                expect_tcp = "syn-ack" if j in spec["tcp"] else "rst"  # type: ignore[operator]
                expect_udp = "udp-reply" if j in spec["udp"] else "port-unreachable"  # type: ignore[operator]
                assert found[(src, dst, "icmp")] == ("echo-reply" if connected else "timeout")
                assert found[(src, dst, "tcp")] == (expect_tcp if connected else "timeout")
                assert found[(src, dst, "udp")] == (expect_udp if connected else "timeout")
                assert found[(src, dst, "icmp")] == found[(containers[j - 1], targets[i - 1], "icmp")]
    finally:
        kernel.close()


@settings(max_examples=25, deadline=None)
@given(spec=bridge_topologies())
def test_outside_reachable_exactly_with_forwarding_and_masquerade(spec: dict[str, object]) -> None:
    kernel = FakeKernel(run_id())
    try:
        sources, _ = build(kernel, spec)
        down: set[int] = spec["down"]  # type: ignore[assignment]
        for index, src in enumerate(sources[:-1], start=1):
            expected = spec["forward"] and spec["masquerade"] and index not in down
            assert kernel.probe(src, "198.18.0.1").reachable == expected
    finally:
        kernel.close()


def test_walk_invariants_hold_mid_run() -> None:
    kernel = FakeKernel(run_id())
    try:
        sources, targets = build(
            kernel,
            {"size": 2, "icc": True, "forward": True, "masquerade": True, "down": set(), "tcp": set(), "udp": set()},
        )
        walk = Walk(kernel.world)
        checks = []

        def checked(w: Walk, link: object, frame: object) -> None:
            w._check()
            checks.append(w.clock)
            links.receive(w, link, frame)  # type: ignore[arg-type]

        from scapy.layers.inet import ICMP, IP

        from netsim.kernel.fake.dataplane import stack

        packet = IP(src="10.0.0.2", dst="198.18.0.1")
        packet.add_payload(ICMP(type=8, id=1, seq=1))
        assert stack.local_output(walk, kernel.world.namespaces[sources[0]], packet) is None
        walk.run(checked, deadline=1.0)
        walk._check()
        assert checks == sorted(checks) and len(checks) > 4
        assert targets
    finally:
        kernel.close()


@pytest.mark.parametrize("proto", ["icmp", "tcp", "udp"])
def test_capture_and_probe_leave_no_taps(proto: str, tmp_path: object) -> None:
    kernel = FakeKernel(run_id())
    try:
        sources, _ = build(
            kernel,
            {"size": 2, "icc": True, "forward": False, "masquerade": False, "down": set(), "tcp": set(), "udp": set()},
        )
        with kernel.capture(sources[0], ["eth0"], f"{tmp_path}/x.pcap"):
            kernel.probe(sources[0], "10.0.0.3", proto, None if proto == "icmp" else 9)  # type: ignore[arg-type]
        assert kernel.world.taps == []
    finally:
        kernel.close()
