"""Cost of a whole endpoint lifecycle through the controller and bridge driver
(create, join + program ports, leave + revoke, delete), against a reference
measured in the same run: the bare kernel calls such an endpoint needs
(veth, move into the sandbox, address, up, default route, DNAT rule, and back).
The ratio is the controller's overhead (IPAM, store, undo logs, driver).

Also: 1,000 endpoints on one bridge network on the fake kernel, against 1,000
bare veth pairs; and Controller construction with the entry-point scan (shared
per process) against construction with built-in drivers only.

Run: ``python -m pytest benchmarks/test_bench_controller.py --benchmark-only``.
Targets (issue 6): fake >= 5,000 lifecycles/s (<= 200 µs each); linux <= 10 ms each.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from netsim.controller import Controller, ControllerConfig, IpamConfig, PoolConfig, PortBinding
from netsim.controller.testing import ensure_default_ipam
from netsim.kernel import make_kernel
from netsim.kernel.base import Dnat
from netsim.safety import linux_unavailable_reason

ROUNDS = {"fake": 300, "linux": 60}
PORTS = [PortBinding("tcp", 80, 8080)]


def _kernel(kind: str) -> Any:
    if kind == "linux" and linux_unavailable_reason() is not None:
        pytest.skip(f"real kernel unavailable: {linux_unavailable_reason()}")
    return make_kernel(kind)


@pytest.fixture(params=["fake", pytest.param("linux", marks=pytest.mark.linux)])
def bench_ctrl(request: pytest.FixtureRequest) -> Iterator[Controller]:
    kernel = _kernel(str(request.param))
    try:
        ctrl = Controller(kernel, ControllerConfig(host="bh"))
        try:
            ensure_default_ipam(ctrl)
            ctrl.create_network("bench", "bridge", ipam=IpamConfig(pools=[PoolConfig(subnet="10.128.0.0/16")]))
            ctrl.create_sandbox("c")
            yield ctrl
        finally:
            ctrl.close()
    finally:
        kernel.close()


@pytest.mark.benchmark(group="controller-endpoint-lifecycle")
def test_endpoint_lifecycle(benchmark: Any, bench_ctrl: Controller) -> None:
    ctrl = bench_ctrl
    benchmark.extra_info["kernel"] = ctrl.kernel.kind
    names = (f"ep{n}" for n in itertools.count())

    def lifecycle() -> None:
        ep = ctrl.create_endpoint("bench", next(names), ports=PORTS)
        ctrl.join(ep, "c")
        ctrl.leave(ep, "c")
        ctrl.delete_endpoint(ep)

    rounds = ROUNDS[ctrl.kernel.kind]
    benchmark.pedantic(lifecycle, rounds=rounds, warmup_rounds=5, iterations=1)
    assert ctrl.network("bench").endpoints() == [] and ctrl.kernel.links(ctrl.sandbox("c").namespace)[0].name == "lo"


@pytest.fixture(params=["fake", pytest.param("linux", marks=pytest.mark.linux)])
def bare_kernel(request: pytest.FixtureRequest) -> Iterator[Any]:
    kernel = _kernel(str(request.param))
    try:
        host, sandbox = kernel.ns("rh"), kernel.ns("rc")
        kernel.add_namespace(host)
        kernel.add_namespace(sandbox)
        kernel.add_bridge(host, "br0")
        kernel.add_address(host, "br0", "10.128.0.1/16")
        kernel.set_link_up(host, "br0")
        yield kernel, host, sandbox
    finally:
        kernel.close()


@pytest.mark.benchmark(group="controller-endpoint-lifecycle")
def test_endpoint_lifecycle_reference_bare_kernel(benchmark: Any, bare_kernel: Any) -> None:
    kernel, host, sandbox = bare_kernel
    benchmark.extra_info["kernel"] = f"{kernel.kind}-bare"
    rule = Dnat(proto="tcp", dport=8080, to_addr="10.128.0.2", to_port=80)

    def lifecycle() -> None:
        kernel.add_veth(host, "vethh", "vethc")
        kernel.set_master(host, "vethh", "br0")
        kernel.set_link_up(host, "vethh")
        kernel.move_link(host, "vethc", sandbox, "eth0")
        kernel.set_link_up(sandbox, "eth0")
        kernel.add_address(sandbox, "eth0", "10.128.0.2/16")
        kernel.add_route(sandbox, "default", via="10.128.0.1")
        kernel.add_rule(host, rule)
        kernel.delete_rule(host, rule)
        kernel.delete_address(sandbox, "eth0", "10.128.0.2/16")
        kernel.set_link_up(sandbox, "eth0", False)
        kernel.move_link(sandbox, "eth0", host, "vethc")
        kernel.delete_link(host, "vethh")

    benchmark.pedantic(lifecycle, rounds=ROUNDS[kernel.kind], warmup_rounds=5, iterations=1)
    assert [link.name for link in kernel.links(sandbox)] == ["lo"]


@pytest.mark.benchmark(group="controller-1000-endpoints")
def test_thousand_endpoints_on_one_bridge_fake(benchmark: Any) -> None:
    kernel = make_kernel("fake")
    ctrl = Controller(kernel, ControllerConfig(host="bh"))
    try:
        ensure_default_ipam(ctrl)
        rounds = itertools.count()

        def setup() -> tuple[tuple[()], dict[str, Any]]:
            for net in ctrl.networks():
                for ep in net.endpoints():
                    ctrl.delete_endpoint(ep)
                ctrl.delete_network(net)
            ctrl.create_network(
                f"big{next(rounds)}", "bridge", ipam=IpamConfig(pools=[PoolConfig(subnet="10.128.0.0/16")])
            )
            return (), {}

        def thousand() -> None:
            net = ctrl.networks()[0]
            for n in range(1000):
                ctrl.create_endpoint(net, f"ep{n}")

        benchmark.pedantic(thousand, setup=setup, rounds=3, iterations=1)
        assert len(ctrl.networks()[0].endpoints()) == 1000
    finally:
        ctrl.close()
        kernel.close()


@pytest.mark.benchmark(group="controller-1000-endpoints")
def test_thousand_endpoints_reference_bare_veths_fake(benchmark: Any) -> None:
    kernel = make_kernel("fake")
    try:
        host = kernel.ns("rh")
        kernel.add_namespace(host)
        kernel.add_bridge(host, "br0")
        rounds = itertools.count()

        def setup() -> tuple[tuple[()], dict[str, Any]]:
            for link in kernel.links(host):
                if link.name.startswith("h"):
                    kernel.delete_link(host, link.name)
            next(rounds)
            return (), {}

        def thousand() -> None:
            for n in range(1000):
                kernel.add_veth(host, f"h{n:x}", f"c{n:x}")
                kernel.set_master(host, f"h{n:x}", "br0")
                kernel.set_link_up(host, f"h{n:x}")

        benchmark.pedantic(thousand, setup=setup, rounds=3, iterations=1)
        assert len(kernel.links(host)) >= 2000
    finally:
        kernel.close()


@pytest.mark.benchmark(group="controller-construction")
@pytest.mark.parametrize("entry_points", [True, False], ids=["entry-points", "reference-no-entry-points"])
def test_controller_construction_fake(benchmark: Any, entry_points: bool) -> None:
    """Controller() + close() on the fake kernel. With entry points, the scan is
    shared per process (netsim.registry.process_entry_points), so this should
    cost about the same as the reference that loads only the built-ins."""
    kernel = make_kernel("fake")
    try:
        config = ControllerConfig(host="bc", entry_points=entry_points)

        def construct() -> Controller:
            ctrl = Controller(kernel, config)
            ctrl.close()
            return ctrl

        ctrl = benchmark.pedantic(construct, rounds=50, warmup_rounds=2, iterations=1)
        assert "bridge" in ctrl.registry.drivers() and ctrl.load_warnings == []
        assert kernel.namespaces() == []
    finally:
        kernel.close()
