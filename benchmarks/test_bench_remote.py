"""Cost of Docker's plugin protocol: one remote call, and a whole endpoint
lifecycle through a remote plugin, each beside the same work done directly
in-process in the same run, so the figures read as ratios.

* group ``remote-call``: ``endpoint_oper_info`` on a trivial driver:
  ``direct`` (the reference), ``unix-thread`` (RemoteDriver → PluginServer
  in a thread of this process, sharing its GIL) and ``unix-process`` (the
  plugin served by ``python -m netsim.plugin serve`` in its own process, as
  a real plugin runs);
* group ``endpoint-lifecycle``: create_endpoint, join, leave, delete_endpoint
  through the controller on the fake kernel, with the bridge driver called
  directly (reference) and the same bridge driver object served as a plugin
  and reached through RemoteDriver.

Run: ``python -m pytest benchmarks/test_bench_remote.py --benchmark-only``.
Target (issue 9): a remote call's round trip over a unix socket <= 300 µs median.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from drivers.remote import RemoteDriver
from netsim.driverapi import Driver, InterfaceInfo, IPAMData, JoinInfo, NetworkInfo
from netsim.plugin import PluginServer

ROUNDS = 2000
CYCLES = 200


class BenchDriver(Driver):
    """Every call is O(1) and nearly free: what is measured is the transport."""

    def network_allocate(
        self, nid: str, options: Mapping[str, str], ipv4_data: Sequence[IPAMData], ipv6_data: Sequence[IPAMData]
    ) -> dict[str, str]:
        return {}

    def network_free(self, nid: str) -> None:
        return None

    def create_network(
        self,
        nid: str,
        options: Mapping[str, Any],
        ninfo: NetworkInfo,
        ipv4_data: Sequence[IPAMData],
        ipv6_data: Sequence[IPAMData],
    ) -> None:
        return None

    def delete_network(self, nid: str) -> None:
        return None

    def create_endpoint(self, nid: str, eid: str, ifinfo: InterfaceInfo, options: Mapping[str, Any]) -> None:
        return None

    def delete_endpoint(self, nid: str, eid: str) -> None:
        return None

    def endpoint_oper_info(self, nid: str, eid: str) -> dict[str, Any]:
        return {"state": "up"}

    def join(self, nid: str, eid: str, sbox_key: str, jinfo: JoinInfo, options: Mapping[str, Any]) -> None:
        return None

    def leave(self, nid: str, eid: str) -> None:
        return None

    def type(self) -> str:
        return "bench"

    def is_builtin(self) -> bool:
        return False


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="nsb", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


NID, EID = "n" * 64, "e" * 64


def _call(driver: Driver) -> None:
    driver.endpoint_oper_info(NID, EID)


@pytest.mark.benchmark(group="remote-call")
def test_remote_call_direct_reference(benchmark: Any) -> None:
    driver = BenchDriver()
    benchmark.extra_info["transport"] = "direct"
    benchmark.pedantic(_call, args=(driver,), rounds=ROUNDS, warmup_rounds=50, iterations=1)
    assert driver.endpoint_oper_info(NID, EID) == {"state": "up"}


@pytest.mark.benchmark(group="remote-call")
def test_remote_call_unix_thread(benchmark: Any, sock_dir: Path) -> None:
    with PluginServer(driver=BenchDriver(), socket_path=sock_dir / "bench.sock") as server:
        remote = RemoteDriver.connect(server.address)
        benchmark.extra_info["transport"] = "unix socket, plugin in a thread"
        benchmark.pedantic(_call, args=(remote,), rounds=ROUNDS, warmup_rounds=50, iterations=1)
        assert remote.endpoint_oper_info(NID, EID) == {"state": "up"}
        remote.close()


@pytest.mark.benchmark(group="remote-call")
def test_remote_call_unix_process(benchmark: Any, sock_dir: Path) -> None:
    path = sock_dir / "proc.sock"
    here = str(Path(__file__).parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([here, os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "netsim.plugin", "serve", "test_bench_remote:BenchDriver", "--socket", str(path)]
    process = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not path.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        remote = RemoteDriver.connect(f"unix://{path}")
        benchmark.extra_info["transport"] = "unix socket, plugin in its own process"
        benchmark.pedantic(_call, args=(remote,), rounds=ROUNDS, warmup_rounds=50, iterations=1)
        assert remote.endpoint_oper_info(NID, EID) == {"state": "up"}
        remote.close()
    finally:
        process.terminate()
        process.wait(timeout=10)


# -- endpoint lifecycle through the controller on the fake kernel ----------------------------


@pytest.fixture
def controller(sock_dir: Path) -> Iterator[tuple[Any, str]]:
    """A fake-kernel controller with ``bridge`` also registered as ``rbridge``:
    the same driver object served as a plugin. Yields (controller, ipam name)."""
    controller_module = pytest.importorskip("netsim.controller")
    from netsim.kernel import make_kernel

    kernel = make_kernel("fake")
    ctrl = controller_module.Controller(kernel, controller_module.ControllerConfig(host="hb", entry_points=False))
    try:
        bridge = ctrl.registry.driver("bridge")
        ipam_name = "default" if "default" in ctrl.registry._ipams else _register_stand_in_ipam(ctrl)
        with PluginServer(driver=bridge.driver, socket_path=sock_dir / "br.sock", capability=bridge.capability) as srv:
            ctrl.registry.add_driver(RemoteDriver.init_for(srv.address, name="rbridge"), {})
            yield ctrl, ipam_name
            ctrl.registry.driver("rbridge").driver.close()  # type: ignore[attr-defined]
    finally:
        ctrl.close()
        kernel.close()


def _register_stand_in_ipam(ctrl: Any) -> str:
    """Until ipam.default lands: a first-fit IPAM over one /24 (same for both sides)."""
    import ipaddress

    from netsim.ipamapi import Ipam

    class StandInIpam(Ipam):
        def __init__(self) -> None:
            self.used: dict[str, set[Any]] = {}

        def get_default_address_spaces(self) -> tuple[str, str]:
            return "LocalDefault", "GlobalDefault"

        def request_pool(self, address_space: str, pool: str, sub_pool: str, options: Any, v6: bool) -> Any:
            self.used[pool] = set()
            return pool, ipaddress.ip_network(pool), {}

        def release_pool(self, pool_id: str) -> None:
            self.used.pop(pool_id, None)

        def request_address(self, pool_id: str, preferred: Any, options: Any) -> Any:
            network = ipaddress.ip_network(pool_id)
            free = preferred or next(h for h in network.hosts() if h not in self.used[pool_id])
            self.used[pool_id].add(free)
            return ipaddress.ip_interface(f"{free}/{network.prefixlen}"), {}

        def release_address(self, pool_id: str, address: Any) -> None:
            self.used[pool_id].discard(address)

        def is_builtin(self) -> bool:
            return False

    ctrl.registry.register_ipam_driver("bench-ipam", StandInIpam())
    return "bench-ipam"


_SUBNETS = itertools.count(1)


def _lifecycle_bench(benchmark: Any, controller: tuple[Any, str], driver: str) -> None:
    from netsim.controller import IpamConfig, PoolConfig

    ctrl, ipam_name = controller
    subnet = f"10.{next(_SUBNETS)}.0.0/24"
    net = ctrl.create_network(
        f"net-{driver}", driver=driver, ipam=IpamConfig(driver=ipam_name, pools=[PoolConfig(subnet)])
    )
    sandbox = ctrl.create_sandbox(f"c-{driver}")

    def cycle() -> None:
        ep = ctrl.create_endpoint(net, "ep")
        ctrl.join(ep, sandbox)
        ctrl.leave(ep, sandbox)
        ctrl.delete_endpoint(ep)

    benchmark.extra_info["driver"] = driver
    benchmark.pedantic(cycle, rounds=CYCLES, warmup_rounds=5, iterations=1)
    assert net.endpoints() == []
    ctrl.delete_sandbox(sandbox)
    ctrl.delete_network(net)


@pytest.mark.benchmark(group="endpoint-lifecycle")
def test_endpoint_lifecycle_direct_reference(benchmark: Any, controller: tuple[Any, str]) -> None:
    _lifecycle_bench(benchmark, controller, "bridge")


@pytest.mark.benchmark(group="endpoint-lifecycle")
def test_endpoint_lifecycle_through_plugin(benchmark: Any, controller: tuple[Any, str]) -> None:
    _lifecycle_bench(benchmark, controller, "rbridge")
