"""Overlay on a three-host cluster, both kernels, each figure beside a bridge
doing the same on one of the cluster's hosts in the same run:

* **join**: a new container connected to the overlay on h3 (sandbox,
  endpoint in the network's namespace, join, its docker_gwbridge endpoint,
  and the peer entry carried to h1 and h2, which program it), against a new
  container connected to a local bridge network of h1;
* **first packet**: one ICMP echo between two containers that have never
  talked (h1 → h2 over VXLAN: ARP answered by the vxlan proxy from the peer
  table, encapsulation both ways), against the same between two new
  containers on the bridge (ARP answered by the peer container).

Read the groups as ratios: ``overlay / bridge (reference)``.
"""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from netsim.cluster import Cluster
from netsim.controller import Endpoint, IpamConfig, PoolConfig
from netsim.kernel import make_kernel
from netsim.probe import probe
from netsim.safety import linux_unavailable_reason

ROUNDS = {"fake": 60, "linux": 20}


class Bench:
    """A three-host cluster with overlay ``ov`` and bridge ``br`` (on h1)."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.kernel = cluster.kernel
        self.overlay = cluster.create_network("ov", ipam=IpamConfig(pools=[PoolConfig(subnet="10.140.0.0/16")]))
        bridge = cluster.controller("h1").create_network(
            "br", "bridge", ipam=IpamConfig(pools=[PoolConfig(subnet="10.141.0.0/16")])
        )
        self.bridge = bridge.id
        self._names = (f"b{n}" for n in itertools.count())
        self.made: list[tuple[str, str]] = []
        # One resident overlay container per host, never removed: docker_gwbridge then
        # stays, as in Docker once a host has run one overlay container, and a join
        # measures the gateway endpoint, not the bridge's creation.
        for host in cluster.hosts:
            cluster.connect(host, f"resident-{host}", "ov")

    def new_name(self) -> str:
        return next(self._names)

    def connect(self, host: str, network: str) -> tuple[str, Endpoint]:
        name = self.new_name()
        ctrl = self.cluster.controller(host)
        endpoint = ctrl.connect(name, network)
        self.made.append((host, name))
        return name, endpoint

    def address(self, host: str, endpoint: Endpoint) -> str:
        record = self.cluster.controller(host).records.endpoint(endpoint.network_id, endpoint.id)
        return str(ipaddress.ip_interface(record["address"]).ip)

    def clear(self) -> None:
        """Remove the containers made so far (outside the measured part)."""
        while self.made:
            host, name = self.made.pop()
            self.cluster.controller(host).delete_sandbox(name)


@pytest.fixture(scope="module", params=["fake", pytest.param("linux", marks=pytest.mark.linux)])
def bench(request: pytest.FixtureRequest) -> Iterator[Bench]:
    kind = str(request.param)
    if kind == "linux" and linux_unavailable_reason() is not None:
        pytest.skip(f"real kernel unavailable: {linux_unavailable_reason()}")
    kernel = make_kernel(kind)
    try:
        cluster = Cluster(kernel, ["h1", "h2", "h3"])
        try:
            yield Bench(cluster)
            assert cluster.bus.failures == []
        finally:
            cluster.close()
    finally:
        kernel.close()


def _join(benchmark: Any, bench: Bench, host: str, network: str) -> None:
    benchmark.extra_info["kernel"] = bench.kernel.kind

    def join() -> None:
        bench.connect(host, network)

    benchmark.pedantic(join, setup=bench.clear, rounds=ROUNDS[bench.kernel.kind], warmup_rounds=2, iterations=1)
    bench.clear()


@pytest.mark.benchmark(group="overlay-join")
def test_overlay_join_on_three_hosts(benchmark: Any, bench: Bench) -> None:
    _join(benchmark, bench, "h3", bench.overlay)


@pytest.mark.reference
@pytest.mark.benchmark(group="overlay-join")
def test_overlay_join_reference_bridge_join(benchmark: Any, bench: Bench) -> None:
    _join(benchmark, bench, "h1", bench.bridge)


def _first_packet(benchmark: Any, bench: Bench, hosts: tuple[str, str], network: str) -> None:
    benchmark.extra_info["kernel"] = bench.kernel.kind
    pair: dict[str, str] = {}

    def two_new_peers() -> None:
        bench.clear()
        name, _ = bench.connect(hosts[0], network)
        _, far = bench.connect(hosts[1], network)
        pair["from"] = bench.cluster.sandbox_namespace(hosts[0], name)
        pair["to"] = bench.address(hosts[1], far)

    outcomes: list[str] = []

    def first_packet() -> None:
        outcomes.append(probe(bench.kernel, pair["from"], pair["to"], timeout=3.0).outcome)

    benchmark.pedantic(first_packet, setup=two_new_peers, rounds=ROUNDS[bench.kernel.kind], warmup_rounds=1)
    bench.clear()
    assert set(outcomes) == {"echo-reply"}, outcomes


@pytest.mark.benchmark(group="overlay-first-packet")
def test_overlay_first_packet_between_new_peers(benchmark: Any, bench: Bench) -> None:
    _first_packet(benchmark, bench, ("h1", "h2"), bench.overlay)


@pytest.mark.reference
@pytest.mark.benchmark(group="overlay-first-packet")
def test_overlay_first_packet_reference_bridge(benchmark: Any, bench: Bench) -> None:
    _first_packet(benchmark, bench, ("h1", "h1"), bench.bridge)
