"""The embedded DNS: queries answered per second, on each kernel, beside a UDP
round trip on the same kernel and path.

One controller with a user-defined bridge ``back``: ``web`` and ``db`` (alias
``pg``) joined; ``web`` also listens on udp/5353 (an echo). Measured in the
same run, per kernel:

* ``dns-a``: ``Kernel.resolve(web, "pg")``: scapy builds the query, it goes
  from web's namespace to 127.0.0.11:53 over loopback, the resolver parses it,
  looks the name up in the controller's service records, builds the answer,
  and the client reads it back;
* ``dns-ptr``: the same for a PTR query;
* ``udp-echo`` (reference): ``probe(web, 127.0.0.1, udp, 5353)``, one UDP
  datagram over the same loopback to web's own echo listener and back, with
  the probe's own scapy packet: what one round trip costs on that kernel
  without DNS.

``extra_info["queries_per_second"]`` is 1 / mean. On the fake kernel both
are walks through the in-memory dataplane; on the real kernel, sockets in the
namespace and the resolver's thread. The real kernel needs root (skipped
otherwise; a failure under NETSIM_REQUIRE_LINUX).

Run: ``python -m pytest benchmarks/test_bench_dns.py --benchmark-only``.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from netsim.controller import Controller, IpamConfig, PoolConfig
from netsim.kernel import make_kernel
from netsim.kernel.base import Kernel, Listener
from netsim.kernel.dns import reverse_name
from netsim.probe import probe
from netsim.safety import linux_unavailable_reason

ROUNDS = 300
ECHO_PORT = 5353
KERNELS = [
    pytest.param("fake", id="fake"),
    pytest.param(
        "linux",
        id="linux",
        marks=[
            pytest.mark.linux,
            pytest.mark.skipif(linux_unavailable_reason() is not None, reason=str(linux_unavailable_reason())),
        ],
    ),
]


@pytest.fixture(scope="module", params=KERNELS)
def world(request: pytest.FixtureRequest) -> Iterator[tuple[Kernel, str]]:
    kernel = make_kernel(request.param, f"bd{secrets.token_hex(3)}")
    ctrl = Controller(kernel)
    try:
        ctrl.create_network("back", ipam=IpamConfig(pools=[PoolConfig("10.88.0.0/24")]))
        ctrl.connect("db", "back", aliases=["pg"])
        ctrl.connect("web", "back")
        ns = ctrl.sandbox("web").namespace
        kernel.add_listener(ns, Listener("udp", ECHO_PORT))
        if kernel.resolve(ns, "pg", timeout=3.0).records != ("10.88.0.2",):
            pytest.fail("the resolver does not answer")
        yield kernel, ns
    finally:
        ctrl.close()
        kernel.close()


def _rate(benchmark: Any, kind: str) -> None:
    benchmark.extra_info["kind"] = kind
    benchmark.extra_info["queries_per_second"] = round(1 / benchmark.stats.stats.mean)


@pytest.mark.benchmark(group="dns")
def test_dns_a(benchmark: Any, world: tuple[Kernel, str]) -> None:
    kernel, ns = world
    result = benchmark.pedantic(lambda: kernel.resolve(ns, "pg"), rounds=ROUNDS, warmup_rounds=10, iterations=1)
    assert result.records == ("10.88.0.2",)
    _rate(benchmark, f"dns-a-{kernel.kind}")


@pytest.mark.benchmark(group="dns")
def test_dns_ptr(benchmark: Any, world: tuple[Kernel, str]) -> None:
    kernel, ns = world
    name = reverse_name("10.88.0.2")
    result = benchmark.pedantic(lambda: kernel.resolve(ns, name, "PTR"), rounds=ROUNDS, warmup_rounds=10, iterations=1)
    assert result.records == ("db.back",)
    _rate(benchmark, f"dns-ptr-{kernel.kind}")


@pytest.mark.reference
@pytest.mark.benchmark(group="dns")
def test_reference_udp_echo(benchmark: Any, world: tuple[Kernel, str]) -> None:
    kernel, ns = world

    def one() -> str:
        return probe(kernel, ns, "127.0.0.1", "udp", ECHO_PORT, timeout=1.0).outcome

    assert benchmark.pedantic(one, rounds=ROUNDS, warmup_rounds=10, iterations=1) == "udp-reply"
    _rate(benchmark, f"udp-echo-{kernel.kind}")
