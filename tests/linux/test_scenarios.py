"""Every shipped scenario on each kernel: all expectations hold, teardown
leaves the kernel exactly as it found it (the runner's leak check)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from netsim.kernel.base import Kernel
from netsim.scenario.report import format_table
from netsim.scenario.runner import Backend, run_scenario
from netsim.scenario.schema import load_scenario

SCENARIOS = sorted((Path(__file__).resolve().parents[2] / "scenarios").glob("*.yaml"))
#: drivers whose link kind a real kernel may lack (divergences.py "no-ipvlan-here"): there, their
#: scenarios must be refused with this reason, leaving nothing behind
KERNEL_MAY_LACK = {"ipvlan": "this kernel has no ipvlan link kind"}


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_scenario_passes(path: Path, kernel_kind: str, netsim_kernel_factory: Callable[[str], Kernel]) -> None:
    scenario = load_scenario(path)
    # kernels come from the fixture: session-scoped names, closed and checked after the test
    result = run_scenario(scenario, kernel_kind, backend=Backend(make_kernel=netsim_kernel_factory), timeout=0.5)
    lacking = [KERNEL_MAY_LACK[n.driver] for n in scenario.networks if n.driver in KERNEL_MAY_LACK]
    if kernel_kind == "linux" and lacking and result.error is not None and lacking[0] in result.error:
        assert result.leaks == [] and not result.passed
        return
    assert result.error is None, result.error
    assert result.leaks == []
    assert len(result.results) + len(result.state_results) == scenario.expectation_count()
    assert result.passed, "\n" + format_table([result])


@pytest.mark.linux
def test_cli_trace_on_the_real_kernel(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    from netsim.cli import main
    from netsim.pytest_plugin import session_run_prefix
    from netsim.safety import namespaces_with_prefix

    run_id = session_run_prefix(request.config) + "cli"
    monkeypatch.setenv("NETSIM_RUN_ID", run_id)  # the CLI's kernel gets this session's prefix
    quickstart = str(SCENARIOS[0].parent / "quickstart.yaml")
    status = main(
        ["trace", quickstart, "--from", "web", "--to", "db:5432/tcp", "--kernel", "linux", "--pcap", str(tmp_path)]
    )
    out = capsys.readouterr().out
    assert status == 0
    assert "outcome: syn-ack (reachable)" in out
    assert "no hop-by-hop trace" in out
    assert len(list(tmp_path.glob("quickstart-*.pcap"))) == 1
    assert namespaces_with_prefix(f"netsim-{run_id}-") == []


ONE_HOST_OVERLAY = {
    "name": "one-host-overlay",
    "networks": [{"name": "ov", "driver": "overlay", "ipam": {"subnet": "10.90.0.0/24"}}, {"name": "br"}],
    "containers": [
        {"name": "a", "networks": ["ov"], "listen": ["tcp/80"]},
        {"name": "b", "networks": ["ov"]},
        {"name": "c", "networks": ["br"]},
    ],
    "expect": [
        {"from": "b", "to": "a", "proto": "tcp", "port": 80},
        {"from": "a", "to": "b"},
        {"from": "c", "to": "a", "reachable": False},
    ],
    "steps": [{"remove_container": "a", "expect": [{"from": "b", "to": "a", "reachable": False}]}],
}


def test_an_overlay_on_a_single_host_runs_on_a_one_host_cluster(
    kernel_kind: str, netsim_kernel_factory: Callable[[str], Kernel]
) -> None:
    from netsim.scenario.schema import parse_scenario

    scenario = parse_scenario(ONE_HOST_OVERLAY)
    assert scenario.multi_host and scenario.hosts == ("h1",)
    result = run_scenario(scenario, kernel_kind, backend=Backend(make_kernel=netsim_kernel_factory), timeout=0.5)
    assert result.error is None and result.leaks == []
    assert result.passed, "\n" + format_table([result])


def test_inspect_of_an_overlay_is_the_same_on_both_kernels(
    kernel_kind: str, netsim_kernel_factory: Callable[[str], Kernel]
) -> None:
    from netsim.cluster import underlay_address
    from netsim.scenario.inspect import inspect_networks
    from netsim.scenario.runner import built

    scenario = load_scenario(SCENARIOS[0].parent / "overlay-two-hosts.yaml")
    leaks: list[str] = []
    with built(scenario, kernel_kind, backend=Backend(make_kernel=netsim_kernel_factory), leaks=leaks) as world:
        blue = inspect_networks(world)[0]
    assert (blue["Name"], blue["Driver"], blue["Scope"]) == ("blue", "overlay", "global")
    assert blue["Peers"] == [{"Name": "h1", "IP": underlay_address(0)}, {"Name": "h2", "IP": underlay_address(1)}]
    assert sorted(e["Info"]["Host IP"] for e in blue["PeerEntries"]) == [underlay_address(0), underlay_address(1)]
    assert leaks == []


@pytest.mark.linux
def test_cli_trace_across_hosts_on_the_real_kernel(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    from netsim.cli import main
    from netsim.pytest_plugin import session_run_prefix
    from netsim.safety import namespaces_with_prefix

    run_id = session_run_prefix(request.config) + "ovcli"
    monkeypatch.setenv("NETSIM_RUN_ID", run_id)
    overlay = str(SCENARIOS[0].parent / "overlay-two-hosts.yaml")
    status = main(["trace", overlay, "--from", "web", "--to", "api:8080/tcp", "--kernel", "linux"])
    out = capsys.readouterr().out
    assert status == 0
    assert "hosts: web on h1, api on h2" in out
    assert out.splitlines()[-1] == "outcome: syn-ack (reachable)"
    assert namespaces_with_prefix(f"netsim-{run_id}-") == []
