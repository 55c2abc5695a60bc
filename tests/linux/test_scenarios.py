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


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_scenario_passes(path: Path, kernel_kind: str, netsim_kernel_factory: Callable[[str], Kernel]) -> None:
    scenario = load_scenario(path)
    # kernels come from the fixture: session-scoped names, closed and checked after the test
    result = run_scenario(scenario, kernel_kind, backend=Backend(make_kernel=netsim_kernel_factory), timeout=0.5)
    assert result.error is None, result.error
    assert result.leaks == []
    assert len(result.results) == scenario.expectation_count()
    assert result.passed, "\n" + format_table([result])
