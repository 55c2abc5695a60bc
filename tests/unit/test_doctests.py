"""Every docstring example in the packages runs and holds."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import drivers
import ipam
import netsim


def _modules() -> list[str]:
    names = []
    for package in (netsim, drivers, ipam):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if ".conformance.test_" not in info.name and not info.name.endswith(("conftest", "__main__")):
                names.append(info.name)
    return sorted(names)


@pytest.mark.parametrize("name", _modules())
def test_module_doctests(name: str) -> None:
    module = importlib.import_module(name)
    failures, _ = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert failures == 0
