"""The driver registry: init functions, built-ins, entry points, refusals."""

from __future__ import annotations

import importlib.metadata
import sys
import types
from collections.abc import Mapping
from typing import Any

import pytest

from drivers.null import NullDriver
from netsim.driverapi import CONFIG_HOST, CONFIG_KERNEL, CONFIG_OPTIONS, Capability, DriverCallback
from netsim.errors import ConflictError, ForbiddenError, InvalidParameterError, NotFoundError
from netsim.host import Host
from netsim.ipamapi import IpamCallback
from netsim.kernel import make_kernel
from netsim.registry import BUILTIN_DRIVERS, DRIVER_GROUP, IPAM_GROUP, BuiltinDriver, Registry, kernel_and_host


def make_config_for(seen: list[str] | None = None) -> Any:
    kernel = make_kernel("fake")  # nothing is created: init functions only build driver objects
    host = Host(name="h1", kernel=kernel, namespace=kernel.ns("h1"))

    def config_for(name: str) -> Mapping[str, Any]:
        if seen is not None:
            seen.append(name)
        # No options: the bridge driver refuses options it does not know (Docker's are typed).
        return {CONFIG_KERNEL: kernel, CONFIG_HOST: host, CONFIG_OPTIONS: {}}

    return config_for


def named_null(name: str) -> Any:
    def init(registry: DriverCallback, config: Mapping[str, Any]) -> None:
        registry.register_driver(name, NullDriver(), Capability(data_scope="global", connectivity_scope="swarm"))

    return init


def test_add_driver_calls_init_with_registry_and_config() -> None:
    registry = Registry()
    received: list[tuple[object, Mapping[str, Any]]] = []

    def init(reg: DriverCallback, config: Mapping[str, Any]) -> None:
        received.append((reg, config))
        reg.register_driver("mine", NullDriver(), Capability())

    registry.add_driver(init, {CONFIG_OPTIONS: {"x": "1"}})
    assert received == [(registry, {CONFIG_OPTIONS: {"x": "1"}})]
    entry = registry.driver("mine")
    assert entry.capability == Capability() and not entry.builtin


def test_name_registered_twice_is_a_conflict() -> None:
    registry = Registry()
    registry.add_driver(named_null("dup"), {})
    with pytest.raises(ConflictError, match="dup"):
        registry.add_driver(named_null("dup"), {})
    assert registry.driver("dup").capability.data_scope == "global"


def test_builtins_cannot_be_overridden() -> None:
    registry = Registry()
    warnings = registry.load(make_config_for(), entry_points=False)
    assert {"null", "host", "bridge", "macvlan"} <= set(registry.drivers())
    assert all(registry.driver(n).builtin for n in ("null", "host", "bridge", "macvlan"))
    with pytest.raises(ForbiddenError, match="built in"):
        registry.add_driver(named_null("bridge"), {})
    assert registry.driver("bridge").driver.type() == "bridge"
    assert all("overlay" not in w for w in warnings)  # experimental: not even tried


def test_experimental_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    plugin = types.ModuleType("netsim_test_experimental")
    plugin.init = named_null("shiny")  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "netsim_test_experimental", plugin)
    builtins = (*BUILTIN_DRIVERS, BuiltinDriver("shiny", "netsim_test_experimental:init", experimental=True))
    plain, trying = Registry(), Registry()
    plain.load(make_config_for(), entry_points=False, builtin_drivers=builtins)
    trying.load(make_config_for(), experimental=True, entry_points=False, builtin_drivers=builtins)
    assert "shiny" not in plain.drivers()
    assert "shiny" in trying.drivers() and trying.driver("shiny").builtin


def test_each_driver_gets_its_own_config() -> None:
    seen: list[str] = []
    registry = Registry()
    registry.load(make_config_for(seen), entry_points=False)
    assert {"null", "host", "bridge", "macvlan"} <= set(seen)


def test_ipam_registration() -> None:
    from netsim.controller.testing import SimpleIpam

    registry = Registry()

    def init(reg: IpamCallback, config: Mapping[str, Any]) -> None:
        reg.register_ipam_driver("mine", SimpleIpam())

    registry.add_ipam_driver(init, {})
    assert isinstance(registry.ipam("mine").driver, SimpleIpam)
    with pytest.raises(ConflictError):
        registry.add_ipam_driver(init, {})
    with pytest.raises(InvalidParameterError, match="Ipam"):
        registry.register_ipam_driver("bad", object())  # type: ignore[arg-type]
    with pytest.raises(NotFoundError, match="mine"):
        registry.ipam("other")


@pytest.mark.parametrize("name", ["", "has space", "a/b"])
def test_bad_registrations(name: str) -> None:
    registry = Registry()
    with pytest.raises(InvalidParameterError):
        registry.register_driver(name, NullDriver(), Capability())
    with pytest.raises(InvalidParameterError, match="Driver"):
        registry.register_driver("ok", object(), Capability())  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="capability"):
        registry.register_driver("ok", NullDriver(), "local")  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="scope"):
        Capability(data_scope="planet")  # type: ignore[arg-type]
    assert registry.drivers() == {}


def test_unknown_driver_names_registered_ones() -> None:
    registry = Registry()
    registry.add_driver(named_null("one"), {})
    with pytest.raises(NotFoundError, match="registered: one"):
        registry.driver("two")


def fake_entry_points(monkeypatch: pytest.MonkeyPatch, drivers: list[tuple[str, str]]) -> None:
    plugin = types.ModuleType("netsim_test_plugin")
    plugin.init = named_null("thirdparty")  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "netsim_test_plugin", plugin)
    listed = {
        DRIVER_GROUP: [importlib.metadata.EntryPoint(n, v, DRIVER_GROUP) for n, v in drivers],
        IPAM_GROUP: [],
    }
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: listed[group])


def test_entry_points_load_and_broken_ones_are_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_entry_points(
        monkeypatch,
        [
            ("bridge", "drivers.bridge:init"),  # the built-in itself: not loaded twice
            ("thirdparty", "netsim_test_plugin:init"),
            ("broken", "no_such_module_anywhere:init"),
        ],
    )
    registry = Registry()
    warnings = registry.load(make_config_for())
    assert "thirdparty" in registry.drivers() and not registry.driver("thirdparty").builtin
    assert "broken" not in registry.drivers()
    assert any("broken" in w and "no_such_module_anywhere" in w for w in warnings)


def test_entry_point_overriding_a_builtin_is_forbidden(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_entry_points(monkeypatch, [("bridge", "netsim_test_plugin:init")])
    with pytest.raises(ForbiddenError, match="bridge"):
        Registry().load(make_config_for())


def test_replace_driver_keeps_capability() -> None:
    registry = Registry()
    registry.add_driver(named_null("x"), {})
    replacement = NullDriver()
    registry.replace_driver("x", replacement)
    assert registry.driver("x").driver is replacement and registry.driver("x").capability.data_scope == "global"
    with pytest.raises(NotFoundError):
        registry.replace_driver("y", replacement)


def test_kernel_and_host_config_checked() -> None:
    with pytest.raises(InvalidParameterError, match="kernel"):
        kernel_and_host({}, "bridge")
    kernel = make_kernel("fake")
    host = Host(name="h1", kernel=kernel, namespace="x")
    assert kernel_and_host({CONFIG_KERNEL: kernel, CONFIG_HOST: host}, "bridge") == (kernel, host)
