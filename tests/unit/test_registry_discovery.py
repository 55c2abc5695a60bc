"""Entry-point discovery is scanned once per process and shared by controllers;
an explicit EntryPointScan in the config overrides it."""

from __future__ import annotations

import importlib.metadata
import sys
import types
from collections.abc import Mapping
from typing import Any

import pytest

from drivers.null import NullDriver
from netsim.controller import Controller, ControllerConfig
from netsim.driverapi import CONFIG_OPTIONS, Capability, DriverCallback
from netsim.errors import ForbiddenError, InvalidParameterError
from netsim.kernel import make_kernel
from netsim.registry import DRIVER_GROUP, IPAM_GROUP, EntryPointScan, process_entry_points


def test_process_scan_is_made_once_and_matches_a_fresh_scan() -> None:
    first = process_entry_points()
    assert process_entry_points() is first
    fresh = EntryPointScan.scan()
    for group in (DRIVER_GROUP, IPAM_GROUP):
        assert [ep.name for ep in first.group(group)] == [ep.name for ep in fresh.group(group)]
    assert "bridge" in [ep.name for ep in first.group(DRIVER_GROUP)]


def _plugin_scan(monkeypatch: pytest.MonkeyPatch, name: str, seen: list[Mapping[str, Any]]) -> EntryPointScan:
    def init(registry: DriverCallback, config: Mapping[str, Any]) -> None:
        seen.append(config[CONFIG_OPTIONS])
        registry.register_driver(name, NullDriver(), Capability(data_scope="local"))

    plugin = types.ModuleType("netsim_discovery_plugin")
    plugin.init = init  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "netsim_discovery_plugin", plugin)
    entry = importlib.metadata.EntryPoint(name, "netsim_discovery_plugin:init", DRIVER_GROUP)
    return EntryPointScan({DRIVER_GROUP: (entry,)})


def test_explicit_scan_and_each_configs_options_are_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Mapping[str, Any]] = []
    scan = _plugin_scan(monkeypatch, "thirdnet", seen)
    kernel = make_kernel("fake")
    try:
        for n in range(2):
            config = ControllerConfig(host=f"d{n}", discovery=scan, driver_options={"thirdnet": {"round": n}})
            ctrl = Controller(kernel, config)
            try:
                assert not ctrl.registry.driver("thirdnet").builtin
                assert "bridge" in ctrl.registry.drivers()
            finally:
                ctrl.close()
        default = Controller(kernel, ControllerConfig(host="d2"))
        try:
            assert "thirdnet" not in default.registry.drivers()
        finally:
            default.close()
    finally:
        kernel.close()
    assert seen == [{"round": 0}, {"round": 1}]


def test_scan_ignored_when_entry_points_are_off(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Mapping[str, Any]] = []
    scan = _plugin_scan(monkeypatch, "thirdnet", seen)
    kernel = make_kernel("fake")
    try:
        ctrl = Controller(kernel, ControllerConfig(host="d3", discovery=scan, entry_points=False))
        try:
            assert "thirdnet" not in ctrl.registry.drivers() and "bridge" in ctrl.registry.drivers()
        finally:
            ctrl.close()
    finally:
        kernel.close()
    assert seen == []


def test_scan_overriding_a_builtin_is_forbidden_and_leaves_the_kernel_clean(monkeypatch: pytest.MonkeyPatch) -> None:
    scan = _plugin_scan(monkeypatch, "bridge", [])
    kernel = make_kernel("fake")
    try:
        before = kernel.namespaces()
        with pytest.raises(ForbiddenError, match="bridge"):
            Controller(kernel, ControllerConfig(host="d4", discovery=scan))
        assert kernel.namespaces() == before
    finally:
        kernel.close()


def test_invalid_discovery_is_refused() -> None:
    with pytest.raises(InvalidParameterError, match="EntryPointScan"):
        ControllerConfig(host="d5", discovery="not a scan")  # type: ignore[arg-type]
