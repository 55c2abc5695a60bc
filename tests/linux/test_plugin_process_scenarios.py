"""Scenario files with plugin programs on the real kernel: the shipped
sample passes and leaves nothing behind; a plugin listed for two hosts runs
once inside each, serving both hosts' networks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from netsim.kernel.base import Kernel
from netsim.scenario.report import format_table
from netsim.scenario.runner import Backend, run_scenario
from netsim.scenario.schema import load_scenario, parse_scenario

pytestmark = pytest.mark.linux

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "scenarios" / "plugins" / "stdlib-bridge.yaml"
SAMPLE = ROOT / "netsim" / "conformance" / "samples" / "stdlib_bridge.py"


def test_the_shipped_plugin_scenario_passes(netsim_kernel_factory: Callable[[str], Kernel]) -> None:
    scenario = load_scenario(SHIPPED)
    before = set(Path("/tmp").glob("netsim-plugin-sbridge-*"))
    result = run_scenario(scenario, "linux", backend=Backend(make_kernel=netsim_kernel_factory), timeout=0.5)
    assert result.error is None, result.error
    assert result.leaks == []
    assert result.passed, "\n" + format_table([result])
    left = set(Path("/tmp").glob("netsim-plugin-sbridge-*")) - before
    assert not left, f"a plugin's per-run directory is left: {left}"


def test_one_plugin_on_two_hosts(netsim_kernel_factory: Callable[[str], Kernel]) -> None:
    scenario = parse_scenario(
        {
            "name": "two-hosts",
            "hosts": ["h1", "h2"],
            "plugins": [{"name": "sb", "command": ["python3", str(SAMPLE), "--name", "sb"]}],
            "networks": [
                {"name": "n1", "driver": "sb", "host": "h1", "ipam": {"driver": "sb"}},
                {"name": "n2", "driver": "sb", "host": "h2", "ipam": {"driver": "sb", "subnet": "10.55.0.0/24"}},
            ],
            "containers": [
                {"name": "a1", "host": "h1", "networks": ["n1"]},
                {"name": "b1", "host": "h1", "networks": ["n1"]},
                {"name": "a2", "host": "h2", "networks": ["n2"]},
                {"name": "b2", "host": "h2", "networks": ["n2"]},
            ],
            "expect": [{"from": "a1", "to": "b1"}, {"from": "a2", "to": "b2"}],
        }
    )
    result = run_scenario(scenario, "linux", backend=Backend(make_kernel=netsim_kernel_factory), timeout=0.5)
    assert result.error is None, result.error
    assert result.leaks == []
    assert result.passed, "\n" + format_table([result])
