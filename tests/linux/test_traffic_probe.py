"""Probes on the real kernel: what gets through a small routed topology.

Topology (built once per module, through the LinuxKernel contract)::

    a (10.1.0.2, fd01::2) --veth--+
                                  br1 of r (10.1.0.1, fd01::1)   r: ip_forward on, drops 10.2.0.3
    c (10.1.0.3, no default) -----+
                                  r "rb" (10.2.0.1, fd02::1) --veth-- b (10.2.0.2-.4, fd02::2)

r and b route 10.9.9.0/24 to each other (a loop: TTL runs out).
``b`` listens on tcp/80 and udp/53 (and both on "::").
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from netsim.errors import InvalidParameterError, KernelInvalidError, NotFoundError
from netsim.kernel import make_kernel
from netsim.kernel.base import Filter, Kernel, Listener
from netsim.kernel.linux.traffic_nssocket import ICMP_UNLIMITED, inside_namespace, relax_icmp_rate_limits
from netsim.probe import probe, reachability_matrix
from netsim.pytest_plugin import session_run_prefix, skip_unless_linux

pytestmark = pytest.mark.linux


@pytest.fixture(scope="module")
def topo(request: pytest.FixtureRequest) -> Iterator[Kernel]:
    skip_unless_linux()
    kernel = make_kernel("linux", f"{session_run_prefix(request.config)}pr")
    try:
        a, r, b, c = (kernel.ns(x) for x in "arbc")
        for ns in (a, r, b, c):
            kernel.add_namespace(ns)
            kernel.set_link_up(ns, "lo")
        kernel.add_veth(a, "eth0", "ra", r)
        kernel.add_veth(b, "eth0", "rb", r)
        kernel.add_veth(c, "eth0", "rc", r)
        kernel.add_bridge(r, "br1")
        for ns, dev, cidrs in (
            (a, "eth0", ["10.1.0.2/24", "fd01::2/64"]),
            (c, "eth0", ["10.1.0.3/24"]),
            (r, "br1", ["10.1.0.1/24", "fd01::1/64"]),
            (r, "rb", ["10.2.0.1/24", "fd02::1/64", "10.3.0.1/24"]),
            (b, "eth0", ["10.2.0.2/24", "10.2.0.3/24", "10.2.0.4/24", "fd02::2/64"]),
        ):
            kernel.set_link_up(ns, dev)
            for cidr in cidrs:
                kernel.add_address(ns, dev, cidr)
        for port in ("ra", "rc"):
            kernel.set_master(r, port, "br1")
            kernel.set_link_up(r, port)
        kernel.add_route(a, "default", via="10.1.0.1")
        kernel.add_route(a, "default6", via="fd01::1")
        kernel.add_route(b, "default", via="10.2.0.1")
        kernel.add_route(b, "default6", via="fd02::1")
        kernel.set_sysctl(r, "net.ipv4.ip_forward", "1")
        kernel.set_sysctl(r, "net.ipv6.conf.all.forwarding", "1")
        kernel.add_rule(r, Filter("drop", dst="10.2.0.3/32"))
        # a routing loop for 10.9.9.0/24 between r and b: TTL runs out
        kernel.set_sysctl(b, "net.ipv4.ip_forward", "1")
        kernel.add_route(r, "10.9.9.0/24", via="10.2.0.2")
        for listener in (
            Listener("tcp", 80),
            Listener("udp", 53),
            Listener("tcp", 80, "::"),
            Listener("udp", 53, "::"),
        ):
            kernel.add_listener(b, listener)
        # IPv6 neighbour discovery may miss its first solicitation right after
        # links come up; settle it here so tests see steady-state behaviour
        # (and links pass packets only once Linux's link watcher saw their carrier)
        for ns, dst in (
            (a, "10.1.0.1"),
            (b, "10.2.0.1"),
            (c, "10.1.0.1"),
            (a, "fd01::1"),
            (b, "fd02::1"),
            (a, "fd02::2"),
        ):
            probe(kernel, ns, dst, timeout=3.0)
        yield kernel
    finally:
        kernel.close()


def test_ping_same_subnet(topo: Kernel) -> None:
    result = probe(topo, topo.ns("a"), "10.1.0.1")
    assert (result.outcome, result.reachable) == ("echo-reply", True)
    assert result.reply is not None and result.reply.src == "10.1.0.1"
    assert result.rtt is not None and 0 < result.rtt < 1.0


def test_ping_across_a_routing_namespace(topo: Kernel) -> None:
    result = probe(topo, topo.ns("a"), "10.2.0.2")
    assert result.outcome == "echo-reply"
    assert result.reply["IP"].ttl == 63  # one router decremented it


def test_ping_ipv6_across_the_router(topo: Kernel) -> None:
    result = probe(topo, topo.ns("a"), "fd02::2")
    assert result.outcome == "echo-reply"
    assert result.reply["IPv6"].src == "fd02::2"


def test_unrouted_address_is_net_unreachable_at_the_source(topo: Kernel) -> None:
    result = probe(topo, topo.ns("c"), "10.2.0.2", timeout=0.5)
    assert (result.outcome, result.reachable, result.reply) == ("net-unreachable", False, None)


def test_router_without_a_route_answers_net_unreachable(topo: Kernel) -> None:
    result = probe(topo, topo.ns("a"), "192.0.2.9", "udp", 9)
    assert result.outcome == "net-unreachable"
    assert result.reply is not None and result.reply["IP"].src == "10.1.0.1"


@pytest.mark.parametrize(
    ("proto", "port", "outcome", "reachable"),
    [
        ("tcp", 80, "syn-ack", True),
        ("tcp", 81, "rst", False),
        ("udp", 53, "udp-reply", True),
        ("udp", 54, "port-unreachable", False),
    ],
)
@pytest.mark.parametrize("dst", ["10.2.0.2", "fd02::2"])
def test_transport_open_and_closed(
    topo: Kernel, dst: str, proto: str, port: int, outcome: str, reachable: bool
) -> None:
    result = probe(topo, topo.ns("a"), dst, proto, port)
    assert (result.outcome, result.reachable) == (outcome, reachable)
    assert result.port == port and result.proto == proto


def test_udp_reply_echoes_the_probe_payload(topo: Kernel) -> None:
    result = probe(topo, topo.ns("a"), "10.2.0.2", "udp", 53)
    assert bytes(result.reply["UDP"].payload) == b"netsim-probe"  # as on the fake kernel


@pytest.mark.parametrize("proto", ["icmp", "udp"])
def test_routing_loop_is_time_exceeded(topo: Kernel, proto: str) -> None:
    result = probe(topo, topo.ns("a"), "10.9.9.1", proto, None if proto == "icmp" else 33434)
    assert (result.outcome, result.reachable) == ("time-exceeded", False)
    assert result.reply["ICMP"].type == 11


def test_nft_filter_drop_times_out(topo: Kernel) -> None:
    result = probe(topo, topo.ns("a"), "10.2.0.3", "tcp", 80, timeout=0.3)
    assert (result.outcome, result.reachable, result.rtt) == ("timeout", False, None)
    # the same listener on the address that is not filtered answers
    assert probe(topo, topo.ns("a"), "10.2.0.2", "tcp", 80).outcome == "syn-ack"


def test_timeout_is_bounded(topo: Kernel) -> None:
    started = time.monotonic()
    result = probe(topo, topo.ns("a"), "10.1.0.77", timeout=0.2)  # no such neighbour
    elapsed = time.monotonic() - started
    assert result.outcome == "timeout"
    assert elapsed < 0.2 + 1.0  # generous slack: this checks "bounded", not speed


def test_explicit_source_address_is_used(topo: Kernel) -> None:
    result = probe(topo, topo.ns("b"), "10.1.0.2", src="10.2.0.4")
    assert result.outcome == "echo-reply"
    assert result.reply["IP"].dst == "10.2.0.4"


def test_many_udp_errors_in_a_row_all_answer(topo: Kernel) -> None:
    # Linux rate-limits ICMP errors per peer; the traffic manager lifts that
    outcomes = {probe(topo, topo.ns("a"), "10.2.0.2", "udp", 1000 + i, timeout=0.5).outcome for i in range(25)}
    assert outcomes == {"port-unreachable"}


def test_concurrent_probes_each_get_their_own_answer(topo: Kernel) -> None:
    expected = {("a", "tcp", 80): "syn-ack", ("a", "tcp", 81): "rst", ("b", "udp", 7): "port-unreachable"}
    results: dict[tuple[str, str, int], list[str]] = {key: [] for key in expected}

    def run(key: tuple[str, str, int]) -> None:
        role, proto, port = key
        dst = "10.2.0.2" if role == "a" else "10.1.0.2"
        for _ in range(10):
            results[key].append(probe(topo, topo.ns(role), dst, proto, port).outcome)

    threads = [threading.Thread(target=run, args=(key,)) for key in expected for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert {key: set(outcomes) for key, outcomes in results.items()} == {key: {v} for key, v in expected.items()}
    assert all(len(outcomes) == 20 for outcomes in results.values())


def test_reachability_matrix_on_the_real_kernel(topo: Kernel) -> None:
    a, c = topo.ns("a"), topo.ns("c")
    matrix = reachability_matrix(topo, [a, c], ["10.2.0.2", "10.1.0.1"], ["icmp", "tcp/80", "udp/53"], timeout=0.5)
    assert matrix[(a, "10.2.0.2", "tcp/80")] == "syn-ack"
    assert matrix[(a, "10.1.0.1", "tcp/80")] == "rst"
    assert matrix[(c, "10.2.0.2", "icmp")] == "net-unreachable"
    assert matrix[(c, "10.1.0.1", "icmp")] == "echo-reply"
    assert matrix[(a, "10.1.0.1", "udp/53")] == "port-unreachable"


def test_bad_probes_are_refused(topo: Kernel) -> None:
    with pytest.raises(NotFoundError):
        probe(topo, topo.ns("nobody"), "10.1.0.1")
    with pytest.raises(InvalidParameterError):
        probe(topo, topo.ns("a"), "10.1.0.1/24")
    with pytest.raises(InvalidParameterError):
        probe(topo, topo.ns("a"), "10.1.0.1", "sctp", 9)
    with pytest.raises(KernelInvalidError):  # the kernel's own check, below netsim.probe
        topo.probe(topo.ns("a"), "not-an-ip")
    assert probe(topo, topo.ns("a"), "10.1.0.1").outcome == "echo-reply"


def test_source_address_follows_each_destination(topo: Kernel) -> None:
    r = topo.ns("r")
    sources = [(dst, probe(topo, r, dst).reply["IP"].dst) for dst in ("10.2.0.2", "10.1.0.2", "127.0.0.1", "10.2.0.2")]
    assert sources == [
        ("10.2.0.2", "10.2.0.1"),
        ("10.1.0.2", "10.1.0.1"),
        ("127.0.0.1", "127.0.0.1"),
        ("10.2.0.2", "10.2.0.1"),
    ]


@pytest.mark.parametrize(("role", "dst"), [("a", "10.2.0.4"), ("b", "10.2.0.4"), ("b", "127.0.0.1"), ("r", "10.2.0.4")])
def test_udp_listener_answers_from_the_address_asked(topo: Kernel, role: str, dst: str) -> None:
    result = probe(topo, topo.ns(role), dst, "udp", 53)
    assert result.outcome == "udp-reply"
    assert result.reply["IP"].src == dst


def test_ipv6_link_local_destination_with_scope(topo: Kernel) -> None:
    link_local = [
        cidr.split("/")[0] for dev, cidr in topo.addresses(topo.ns("r")) if dev == "br1" and cidr.startswith("fe80")
    ]
    assert link_local, "the bridge has an IPv6 link-local address"
    result = probe(topo, topo.ns("a"), f"{link_local[0]}%eth0", timeout=3.0)
    assert result.outcome == "echo-reply"
    assert result.reply["IPv6"].src == link_local[0]
    assert result.reply["IPv6"].dst.startswith("fe80:")  # answered to a's own link-local address


@pytest.mark.slow
def test_neighbour_that_never_answers_is_host_unreachable(topo: Kernel) -> None:
    # Linux gives up after 3 ARP solicitations, one a second, then reports to the sender
    result = probe(topo, topo.ns("a"), "10.1.0.78", timeout=5.0)
    assert (result.outcome, result.reachable) == ("host-unreachable", False)
    assert result.rtt is not None and result.rtt > 2.0


def read_icmp_limits() -> dict[str, str]:
    """The calling thread's namespace's values of the keys the traffic manager relaxes."""
    return {
        key: Path("/proc/sys", key).read_text().strip() for key, _ in ICMP_UNLIMITED if Path("/proc/sys", key).exists()
    }


def test_icmp_rate_limit_relief_stays_inside_netsim_namespaces(topo: Kernel) -> None:
    root_before = read_icmp_limits()
    relax_icmp_rate_limits(topo.ns("r"))
    with inside_namespace(topo.ns("r")):
        inside = read_icmp_limits()
    assert inside == {key: value for key, value in ICMP_UNLIMITED if key in inside}
    assert "net/ipv4/icmp_ratemask" in inside
    assert read_icmp_limits() == root_before  # the root namespace is untouched


def test_parallel_matrix_equals_the_sequential_one(topo: Kernel) -> None:
    sources = [topo.ns(role) for role in "arbc"]
    args = (sources, ["10.1.0.1", "10.2.0.2", "10.2.0.3", "fd02::2"], ["icmp", "tcp/80", "udp/53"])
    sequential = reachability_matrix(topo, *args, timeout=0.3)
    assert reachability_matrix(topo, *args, timeout=0.3, workers=4) == sequential
    assert sequential[(topo.ns("a"), "10.2.0.3", "tcp/80")] == "timeout"  # the filtered address
    assert sequential[(topo.ns("b"), "10.2.0.3", "tcp/80")] == "syn-ack"  # local delivery is not forwarded
