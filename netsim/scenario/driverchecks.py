"""Which drivers a scenario names, and whether their options are valid, at load.

Nothing is built until a file passed, so a network driver or IPAM driver must
be known here (built in, a ``plugins:`` entry of the file, or an installed
``netsim.drivers`` / ``netsim.ipam`` entry point), and a driver's options are
checked by the driver itself: a driver module may offer

    validate_network_options(options: Mapping[str, str], host_links: Collection[str]) -> None

which raises InvalidParameterError for a bad option without touching a kernel
(bridge, macvlan, ipvlan and overlay do; they run the same parsers again in
``create_network``, so both roads refuse the same values). ``host_links`` are
the links a simulated host has before any network exists.

Entry points are scanned only when a file names a driver that is not built in
(a scan reads every installed distribution's metadata).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Collection, Mapping
from typing import Any

from netsim.errors import InvalidParameterError
from netsim.scenario.checks import Fail
from netsim.scenario.model import NetworkSpec, Scenario

#: every host's own links (``lo``, the uplink), plus the underlay link when hosts are many
SINGLE_HOST_LINKS = ("lo", "eth0")
MULTI_HOST_LINKS = ("lo", "eth0", "eth1")

Validator = Callable[[Mapping[str, str], Collection[str]], None]


class _Drivers:
    """Driver names → their option validator (None: the driver offers none)."""

    def __init__(self, scenario: Scenario) -> None:
        from netsim.registry import BUILTIN_DRIVERS, BUILTIN_IPAM_DRIVERS

        self.plugins = {p.name for p in scenario.plugins}
        self.builtin = {d.name: d.target for d in BUILTIN_DRIVERS}
        self.builtin_ipam = {d.name for d in BUILTIN_IPAM_DRIVERS}
        self._scan: Any = None
        self._validators: dict[str, Validator | None] = {}

    def _entry_points(self, group: str) -> dict[str, str]:
        from netsim.registry import process_entry_points

        if self._scan is None:
            self._scan = process_entry_points()
        return {ep.name: ep.value for ep in self._scan.group(group)}

    def validator(self, name: str) -> Validator | None:
        """The named network driver's validator; KeyError if no such driver."""
        if name in self._validators:
            return self._validators[name]
        if name in self.plugins:
            found = None  # a plugin checks its own options when asked over its socket
        else:
            from netsim.registry import DRIVER_GROUP

            target = self.builtin.get(name) or self._entry_points(DRIVER_GROUP).get(name)
            if target is None:
                raise KeyError(name)
            found = _module_validator(target)
        self._validators[name] = found
        return found

    def known_ipam(self, name: str) -> bool:
        from netsim.registry import IPAM_GROUP

        return name in self.builtin_ipam or name in self.plugins or name in self._entry_points(IPAM_GROUP)

    def driver_names(self) -> str:
        return ", ".join(sorted(self.builtin))


def _module_validator(target: str) -> Validator | None:
    """``module:init`` → that module's ``validate_network_options`` (if any).
    A module that does not import is the registry's error to report at run."""
    module_name = target.partition(":")[0]
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    hook = getattr(module, "validate_network_options", None)
    return hook if callable(hook) else None


def check_drivers(scenario: Scenario, fail: Fail) -> None:
    """Every network's driver and IPAM driver exist; driver options pass the driver's check."""
    drivers = _Drivers(scenario)
    links = MULTI_HOST_LINKS if scenario.multi_host else SINGLE_HOST_LINKS
    for i, net in enumerate(scenario.networks):
        path = f"networks[{i}]"
        try:
            validate = drivers.validator(net.driver)
        except KeyError:
            fail(
                f"{path}.driver",
                f"unknown network driver {net.driver!r}: built-in drivers are {drivers.driver_names()}; "
                "a plugin must be listed under plugins:",
            )
        if net.ipam.driver != "default" and not drivers.known_ipam(net.ipam.driver):
            fail(
                f"{path}.ipam.driver",
                f"unknown IPAM driver {net.ipam.driver!r}: built-in are default and null; "
                "a plugin must be listed under plugins:",
            )
        if validate is not None:
            _check_options(net, validate, links, path, fail)


def _check_options(net: NetworkSpec, validate: Validator, links: Collection[str], path: str, fail: Fail) -> None:
    try:
        validate(net.options, links)
    except InvalidParameterError as exc:
        # The drivers name the option in their message ("invalid value ... for KEY"):
        # point the key path at it when it is one of the network's options.
        message = str(exc)
        named = [key for key in net.options if f"for {key}:" in message]
        fail(f"{path}.options.{named[0]}" if named else f"{path}.options", message)
