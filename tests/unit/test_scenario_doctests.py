"""The doctests of the scenario and CLI modules run with the suite."""

from __future__ import annotations

import doctest
from types import ModuleType

import pytest

import netsim.cli.commands
import netsim.scenario.model
import netsim.scenario.results

MODULES = [netsim.scenario.model, netsim.scenario.results, netsim.cli.commands]


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_doctests(module: ModuleType) -> None:
    failed, attempted = doctest.testmod(module)
    assert attempted > 0 and failed == 0
