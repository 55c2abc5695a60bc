"""Plugins as separate programs started by netsim's launcher (issue 13),
each figure beside a same-run reference:

* group ``plugin-process-call``: one ``EndpointOperInfo`` round trip with the
  plugin in a thread of this process (reference) and with plugins launched
  as processes in their own namespaces: ``netsim plugin serve`` and the
  standard-library sample plugin (``http.server``). Target: <= 300 µs median
  with client and server in separate processes.
* group ``plugin-process-startup``: launch to socket ready (namespaces
  entered, interpreter started, socket answering) and stop, for the sample
  plugin, beside a bare interpreter start (``python3 -I -S -c pass``).
* group ``plugin-process-concurrent``: 64 endpoint lifecycles (create, join,
  leave, delete) through one plugin process, from 64 client threads at once
  (connections are never refused: tests/unit/test_plugin_fixes.py) beside
  the same 64 lifecycles from one client in sequence; ``extra_info`` has the
  rate in lifecycles per second.
* group ``plugin-process-conformance``: the whole conformance suite on the
  real kernel, once, for the bridge in-process (reference), the built-in
  bridge served by ``netsim plugin serve`` per check, and the sample plugin.

Needs namespaces (root, or unprivileged user namespaces): marked ``linux``.
Run: ``python -m pytest benchmarks/test_bench_plugin_process.py --benchmark-only``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from test_bench_remote import BenchDriver

from netsim.conformance.samples import STDLIB_BRIDGE
from netsim.plugin import PluginServer
from netsim.plugin.client import PluginClient
from netsim.plugin.launcher import LaunchedPlugin, launch_plugin

pytestmark = pytest.mark.linux

ROUNDS = 1000
CLIENTS = 64
NID = "n" * 64
IDS = {"NetworkID": NID, "EndpointID": "e" * 64}
HERE = Path(__file__).resolve().parent


def _oper_info(client: PluginClient) -> None:
    client.call("NetworkDriver.EndpointOperInfo", IDS)


@pytest.fixture
def netsim_serve_plugin() -> Iterator[LaunchedPlugin]:
    """``netsim plugin serve`` of a trivial driver, launched in its own namespaces."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "netsim.plugin", "serve", "test_bench_remote:BenchDriver"]
    with launch_plugin([*command, "--socket", "/run/docker/plugins/bench.sock"], "bench", env=env) as plugin:
        yield plugin


@pytest.mark.benchmark(group="plugin-process-call")
def test_call_plugin_in_a_thread_reference(benchmark: Any, tmp_path: Path) -> None:
    with PluginServer(driver=BenchDriver(), socket_path=tmp_path / "t.sock") as server:
        client = PluginClient("t", server.address)
        benchmark.extra_info["plugin"] = "PluginServer in a thread of the client's process"
        benchmark.pedantic(_oper_info, args=(client,), rounds=ROUNDS, warmup_rounds=50, iterations=1)
        client.close()


@pytest.mark.benchmark(group="plugin-process-call")
def test_call_netsim_serve_in_its_own_process(benchmark: Any, netsim_serve_plugin: LaunchedPlugin) -> None:
    client = PluginClient("bench", netsim_serve_plugin.address)
    benchmark.extra_info["plugin"] = "netsim plugin serve, launched in its own namespaces"
    benchmark.pedantic(_oper_info, args=(client,), rounds=ROUNDS, warmup_rounds=50, iterations=1)
    client.close()


@pytest.fixture
def sample_plugin() -> Iterator[LaunchedPlugin]:
    with launch_plugin([sys.executable, str(STDLIB_BRIDGE), "--name", "sb"], "sb") as plugin:
        client = PluginClient("sb", plugin.address)
        ipv4 = [{"AddressSpace": "", "Pool": "10.66.0.0/16", "Gateway": "10.66.0.1/16", "AuxAddresses": {}}]
        client.call("NetworkDriver.CreateNetwork", {"NetworkID": NID, "Options": {}, "IPv4Data": ipv4})
        client.call("NetworkDriver.CreateEndpoint", {**IDS, "Interface": {"Address": "10.66.0.2/16"}})
        client.close()
        yield plugin


@pytest.mark.benchmark(group="plugin-process-call")
def test_call_stdlib_sample_in_its_own_process(benchmark: Any, sample_plugin: LaunchedPlugin) -> None:
    client = PluginClient("sb", sample_plugin.address)
    benchmark.extra_info["plugin"] = "standard-library sample (http.server), launched in its own namespaces"
    benchmark.pedantic(_oper_info, args=(client,), rounds=ROUNDS, warmup_rounds=50, iterations=1)
    client.close()


@pytest.mark.benchmark(group="plugin-process-startup")
def test_startup_bare_interpreter_reference(benchmark: Any) -> None:
    benchmark.extra_info["what"] = "python3 -I -S -c pass (process start to exit)"
    benchmark.pedantic(subprocess.run, args=([sys.executable, "-I", "-S", "-c", "pass"],), rounds=20, iterations=1)


@pytest.mark.benchmark(group="plugin-process-startup")
def test_startup_stdlib_sample_launch_to_ready_and_stop(benchmark: Any) -> None:
    startups: list[float] = []

    def launch_and_stop() -> None:
        plugin = launch_plugin([sys.executable, str(STDLIB_BRIDGE), "--name", "sb"], "sb")
        startups.append(plugin.startup_seconds)
        plugin.stop()

    benchmark.pedantic(launch_and_stop, rounds=20, iterations=1)
    startups.sort()
    benchmark.extra_info["median process start to socket ready (ms)"] = round(startups[len(startups) // 2] * 1e3, 1)


def _lifecycles(plugin: LaunchedPlugin, workers: int) -> None:
    def lifecycle(index: int) -> None:
        client = PluginClient("bench", plugin.address)
        ids = {"NetworkID": NID, "EndpointID": f"{index:064x}"}
        client.call("NetworkDriver.CreateEndpoint", {**ids, "Interface": {}, "Options": {}})
        client.call("NetworkDriver.Join", {**ids, "SandboxKey": "/x", "Options": {}})
        client.call("NetworkDriver.Leave", ids)
        client.call("NetworkDriver.DeleteEndpoint", ids)
        client.close()

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lifecycle, range(CLIENTS)))


@pytest.mark.benchmark(group="plugin-process-concurrent")
def test_64_lifecycles_one_after_another_reference(benchmark: Any, netsim_serve_plugin: LaunchedPlugin) -> None:
    benchmark.pedantic(_lifecycles, args=(netsim_serve_plugin, 1), rounds=10, iterations=1)
    benchmark.extra_info["lifecycles per second"] = round(CLIENTS / benchmark.stats.stats.median)


@pytest.mark.benchmark(group="plugin-process-concurrent")
def test_64_concurrent_lifecycles(benchmark: Any, netsim_serve_plugin: LaunchedPlugin) -> None:
    benchmark.pedantic(_lifecycles, args=(netsim_serve_plugin, CLIENTS), rounds=10, iterations=1)
    benchmark.extra_info["lifecycles per second"] = round(CLIENTS / benchmark.stats.stats.median)


# -- the whole conformance suite on the real kernel --------------------------------------------

_SUITE_TARGETS = {
    "bridge-in-process-reference": ["--netsim-driver=bridge"],
    "bridge-plugin-process": [
        "--netsim-plugin-cmd",
        f"{sys.executable} -m netsim.plugin serve --builtin bridge --kernel linux "
        "--socket /run/docker/plugins/xbridge.sock",
        "--netsim-plugin-name",
        "xbridge",
    ],
    "stdlib-sample-plugin-process": [
        "--netsim-plugin-cmd",
        f"{sys.executable} {STDLIB_BRIDGE} --name sb",
        "--netsim-plugin-name",
        "sb",
    ],
}


@pytest.mark.benchmark(group="plugin-process-conformance")
@pytest.mark.parametrize("target", list(_SUITE_TARGETS))
def test_conformance_suite_duration(benchmark: Any, target: str, tmp_path: Path) -> None:
    """One run of the 28 checks (a fresh plugin process per check for the
    process targets); the in-process bridge is the reference."""
    command = [sys.executable, "-m", "pytest", "--pyargs", "netsim.conformance", "--netsim-kernel=linux", "-q"]
    command += ["-p", "no:cacheprovider", *_SUITE_TARGETS[target]]

    def run_suite() -> None:
        done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout[-2000:]

    benchmark.pedantic(run_suite, rounds=1, iterations=1)
