"""Fake-kernel probe round trips: how many packets per second walk the model.

One Docker-like host (bridge ``br0`` with two containers, uplink to an
outside namespace, masquerade and a published port), built once. Measured in
the same run, so the figures read as ratios:

* ``bridge-icmp``: ICMP echo container to container through the bridge
  (probe call, packet build, walk, trace, reply matching);
* ``nat-icmp``: ICMP echo from a container to the outside, masqueraded;
* ``dnat-tcp``: TCP SYN from the outside to the published port;
* references ``build-only`` and ``build-serialize``: building the same
  request and reply packets with scapy (and serializing both to bytes, as a
  pcap or a socket would), with no model walked at all.

``extra_info["per_second_median"]`` is 1/median (the mean suffers most
from other work on a shared machine). Target (issue 5): bridge-icmp >=
2,000 round trips/s. Run: ``python -m pytest benchmarks/test_bench_probe_fake.py
--benchmark-only``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from scapy.layers.inet import ICMP, IP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from netsim.kernel.base import Dnat, Kernel, Listener, Masquerade
from netsim.kernel.fake import FakeKernel

#: enough rounds that the median is stable on a shared 2-core machine
pytestmark = pytest.mark.benchmark(min_rounds=300, warmup=True, warmup_iterations=20)


@pytest.fixture(scope="module")
def host() -> Iterator[tuple[Kernel, dict[str, str]]]:
    kernel = FakeKernel("benchfake")
    try:
        names = {role: kernel.ns(role) for role in ("h", "out", "c1", "c2")}
        for name in names.values():
            kernel.add_namespace(name)
        h, out = names["h"], names["out"]
        kernel.add_veth(h, "eth0", "eth0", out)
        for ns, cidr in ((h, "198.18.0.2/24"), (out, "198.18.0.1/24")):
            kernel.set_link_up(ns, "eth0")
            kernel.add_address(ns, "eth0", cidr)
        kernel.add_bridge(h, "br0")
        kernel.add_address(h, "br0", "10.0.0.1/24")
        kernel.set_link_up(h, "br0")
        for index, role in enumerate(("c1", "c2"), start=1):
            kernel.add_veth(h, f"veth{index}", "eth0", names[role])
            kernel.set_master(h, f"veth{index}", "br0")
            kernel.set_link_up(h, f"veth{index}")
            kernel.set_link_up(names[role], "eth0")
            kernel.add_address(names[role], "eth0", f"10.0.0.{index + 1}/24")
            kernel.add_route(names[role], "default", via="10.0.0.1")
        kernel.add_route(h, "default", via="198.18.0.1")
        kernel.set_sysctl(h, "net.ipv4.ip_forward", "1")
        kernel.add_rule(h, Masquerade("10.0.0.0/24", not_out_iface="br0"))
        kernel.add_rule(h, Dnat("tcp", 8080, "10.0.0.2", 80, not_in_iface="br0"))
        kernel.add_listener(names["c1"], Listener("tcp", 80))
        yield kernel, names
    finally:
        kernel.close()


def _rate(benchmark: Any) -> None:
    stats = getattr(getattr(benchmark, "stats", None), "stats", None)
    for name in ("mean", "median"):
        value = getattr(stats, name, None)
        if value:
            benchmark.extra_info[f"per_second_{name}"] = round(1 / value)


def _run(benchmark: Any, call: Callable[[], Any]) -> Any:
    result = benchmark(call)
    _rate(benchmark)
    return result


def test_bridge_icmp(benchmark: Any, host: tuple[Kernel, dict[str, str]]) -> None:
    kernel, names = host
    result = _run(benchmark, lambda: kernel.probe(names["c1"], "10.0.0.3"))
    assert result.outcome == "echo-reply"


def test_nat_icmp(benchmark: Any, host: tuple[Kernel, dict[str, str]]) -> None:
    kernel, names = host
    result = _run(benchmark, lambda: kernel.probe(names["c1"], "198.18.0.1"))
    assert result.outcome == "echo-reply"


def test_dnat_tcp(benchmark: Any, host: tuple[Kernel, dict[str, str]]) -> None:
    kernel, names = host
    result = _run(benchmark, lambda: kernel.probe(names["out"], "198.18.0.2", "tcp", 8080))
    assert result.outcome == "syn-ack"


def _request_and_reply() -> tuple[Any, Any]:
    request = Ether(src="02:00:00:00:00:02", dst="02:00:00:00:00:03")
    request.add_payload(IP(src="10.0.0.2", dst="10.0.0.3", ttl=64))
    request.payload.add_payload(ICMP(type=8, id=0x6E73, seq=1))
    request.payload.payload.add_payload(Raw(b"netsim-probe"))
    reply = Ether(src="02:00:00:00:00:03", dst="02:00:00:00:00:02")
    reply.add_payload(IP(src="10.0.0.3", dst="10.0.0.2", ttl=64))
    reply.payload.add_payload(ICMP(type=0, id=0x6E73, seq=1))
    reply.payload.payload.add_payload(Raw(b"netsim-probe"))
    return request, reply


def test_reference_build_only(benchmark: Any) -> None:
    request, _ = _run(benchmark, _request_and_reply)
    assert request[ICMP].type == 8


def test_reference_build_serialize(benchmark: Any) -> None:
    def build_and_serialize() -> tuple[bytes, bytes]:
        request, reply = _request_and_reply()
        return bytes(request), bytes(reply)

    raw_request, _ = _run(benchmark, build_and_serialize)
    assert len(raw_request) == 14 + 20 + 8 + 12
