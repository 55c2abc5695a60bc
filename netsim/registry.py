"""The driver registry (libnetwork's drvregistry).

Adding a driver calls its init function ``init(registry, config)``, which
builds the driver and registers it with :meth:`Registry.register_driver`, as
libnetwork's ``AddDriver`` does. Built-in drivers come from a fixed list (some
marked experimental); third-party ones from the ``netsim.drivers`` and
``netsim.ipam`` entry-point groups, the same road. A name registered twice is a
:class:`ConflictError`; a third party taking a built-in's name is a
:class:`ForbiddenError`.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from netsim.driverapi import CONFIG_HOST, CONFIG_KERNEL, Capability, Driver, DriverCallback
from netsim.errors import ConflictError, ForbiddenError, InvalidParameterError, NotFoundError
from netsim.host import Host
from netsim.ipamapi import Ipam, IpamCallback, IpamCapability
from netsim.kernel.base import Kernel

log = logging.getLogger(__name__)

#: what an init function looks like (driverapi.DriverInit / ipamapi.IpamInit, by position)
DriverInitFunction = Callable[[DriverCallback, Mapping[str, Any]], None]
IpamInitFunction = Callable[[IpamCallback, Mapping[str, Any]], None]

DRIVER_GROUP = "netsim.drivers"
IPAM_GROUP = "netsim.ipam"


@dataclass(frozen=True)
class BuiltinDriver:
    name: str
    #: "module:function" of the init function
    target: str
    experimental: bool = False


BUILTIN_DRIVERS: tuple[BuiltinDriver, ...] = (
    BuiltinDriver("null", "drivers.null:init"),
    BuiltinDriver("host", "drivers.host:init"),
    BuiltinDriver("bridge", "drivers.bridge:init"),
    BuiltinDriver("macvlan", "drivers.macvlan:init"),
    BuiltinDriver("ipvlan", "drivers.ipvlan:init"),
    BuiltinDriver("overlay", "drivers.overlay:init"),
)
BUILTIN_IPAM_DRIVERS: tuple[BuiltinDriver, ...] = (
    BuiltinDriver("default", "ipam.default:init"),
    BuiltinDriver("null", "ipam.null:init"),
)


@dataclass(frozen=True)
class EntryPointScan:
    """The ``netsim.drivers`` / ``netsim.ipam`` entry points found at one moment,
    sorted by name: an immutable snapshot, so one scan can serve any number of
    registries. Scanning reads every installed distribution's metadata (tens of
    milliseconds); lookups afterwards are O(1).

    >>> scan = EntryPointScan({DRIVER_GROUP: (importlib.metadata.EntryPoint("x", "pkg:init", DRIVER_GROUP),)})
    >>> [ep.name for ep in scan.group(DRIVER_GROUP)], scan.group(IPAM_GROUP)
    (['x'], ())
    """

    groups: Mapping[str, tuple[importlib.metadata.EntryPoint, ...]] = field(default_factory=dict)

    @classmethod
    def scan(cls) -> EntryPointScan:
        """Read the installed distributions now (sees plugins installed since any earlier scan)."""
        return cls(
            {
                group: tuple(sorted(importlib.metadata.entry_points(group=group), key=lambda e: e.name))
                for group in (DRIVER_GROUP, IPAM_GROUP)
            }
        )

    def group(self, group: str) -> tuple[importlib.metadata.EntryPoint, ...]:
        return tuple(self.groups.get(group, ()))


@functools.cache
def process_entry_points() -> EntryPointScan:
    """One :meth:`EntryPointScan.scan` per process, shared by every controller.

    Safe to share: the scan is an immutable snapshot and holds no driver state
    (each registry still calls every init function with its own config), and
    the installed distributions only change if packages are installed while
    the process runs. Whoever does that passes a fresh ``EntryPointScan.scan()``
    (``ControllerConfig.discovery``) or calls ``process_entry_points.cache_clear()``.
    """
    return EntryPointScan.scan()


@dataclass(frozen=True)
class DriverEntry:
    driver: Driver
    capability: Capability
    builtin: bool


@dataclass(frozen=True)
class IpamEntry:
    driver: Ipam
    capability: IpamCapability
    builtin: bool


def load_target(target: str) -> Callable[..., Any]:
    """Import ``"module:attr"``; ImportError/AttributeError propagate to the caller."""
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise InvalidParameterError(f"invalid init target {target!r}: expected 'module:function'")
    func = getattr(importlib.import_module(module_name), attr)
    if not callable(func):
        raise InvalidParameterError(f"init target {target!r} is not callable")
    return func  # type: ignore[no-any-return]


class Registry:
    """Network and IPAM drivers by name. Thread-safe; lookups are O(1)."""

    def __init__(self) -> None:
        self._drivers: dict[str, DriverEntry] = {}
        self._ipams: dict[str, IpamEntry] = {}
        self._lock = threading.RLock()
        # True while a built-in's init function runs: what it registers is built-in.
        self._adding_builtin = False

    # --- registration callbacks (driverapi.DriverCallback, ipamapi.IpamCallback) ---------
    def register_driver(self, name: str, driver: Driver, capability: Capability) -> None:
        _check_name(name, "network driver")
        if not isinstance(driver, Driver):
            raise InvalidParameterError(f"network driver {name!r} does not implement netsim.driverapi.Driver")
        if not isinstance(capability, Capability):
            raise InvalidParameterError(f"network driver {name!r}: capability must be a driverapi.Capability")
        with self._lock:
            self._refuse_taken(name, self._drivers.get(name), "network driver")
            self._drivers[name] = DriverEntry(driver, capability, self._adding_builtin)

    def register_ipam_driver(self, name: str, driver: Ipam, capability: IpamCapability | None = None) -> None:
        _check_name(name, "IPAM driver")
        if not isinstance(driver, Ipam):
            raise InvalidParameterError(f"IPAM driver {name!r} does not implement netsim.ipamapi.Ipam")
        with self._lock:
            self._refuse_taken(name, self._ipams.get(name), "IPAM driver")
            self._ipams[name] = IpamEntry(driver, capability or driver.capabilities(), self._adding_builtin)

    def _refuse_taken(self, name: str, existing: DriverEntry | IpamEntry | None, what: str) -> None:
        if existing is None:
            return
        if existing.builtin and not self._adding_builtin:
            raise ForbiddenError(f"{what} {name!r} is built in and cannot be overridden")
        raise ConflictError(f"{what} {name!r} is already registered")

    # --- adding drivers (libnetwork's AddDriver) ------------------------------------------
    def add_driver(self, init: DriverInitFunction, config: Mapping[str, Any], *, builtin: bool = False) -> None:
        """Call ``init(self, config)``; the driver registers itself."""
        with self._lock:
            self._adding_builtin = builtin
            try:
                init(self, config)
            finally:
                self._adding_builtin = False

    def add_ipam_driver(self, init: IpamInitFunction, config: Mapping[str, Any], *, builtin: bool = False) -> None:
        with self._lock:
            self._adding_builtin = builtin
            try:
                init(self, config)
            finally:
                self._adding_builtin = False

    def load(
        self,
        config_for: Callable[[str], Mapping[str, Any]],
        *,
        experimental: bool = False,
        entry_points: bool = True,
        builtin_drivers: tuple[BuiltinDriver, ...] = BUILTIN_DRIVERS,
        builtin_ipam_drivers: tuple[BuiltinDriver, ...] = BUILTIN_IPAM_DRIVERS,
        discovered: EntryPointScan | None = None,
    ) -> list[str]:
        """Add the built-in drivers (experimental ones only when asked), then the
        entry points (from ``discovered``, else from a scan made now). Returns
        warnings for entry points that could not be loaded (they are skipped:
        one broken plugin must not stop the controller)."""
        warnings: list[str] = []
        if entry_points and discovered is None:
            discovered = EntryPointScan.scan()
        for group, builtins, add in (
            (IPAM_GROUP, builtin_ipam_drivers, self.add_ipam_driver),
            (DRIVER_GROUP, builtin_drivers, self.add_driver),
        ):
            builtin_targets = {b.name: b.target for b in builtins}
            for item in builtins:
                if item.experimental and not experimental:
                    continue
                try:
                    init = load_target(item.target)
                except ImportError as exc:
                    # A built-in still being written (or optional) is skipped loudly.
                    warnings.append(f"built-in {group} {item.name!r} not loaded: {exc}")
                    continue
                add(init, config_for(item.name), builtin=True)
            if discovered is not None and entry_points:
                warnings += self._load_entry_points(discovered.group(group), group, builtin_targets, add, config_for)
        for warning in warnings:
            log.warning("%s", warning)
        return warnings

    def _load_entry_points(
        self,
        found: tuple[importlib.metadata.EntryPoint, ...],
        group: str,
        builtin_targets: Mapping[str, str],
        add: Callable[..., None],
        config_for: Callable[[str], Mapping[str, Any]],
    ) -> list[str]:
        warnings = []
        for ep in found:
            if builtin_targets.get(ep.name) == ep.value:
                continue  # the built-in list already covered it (or skipped it as experimental)
            if ep.name in builtin_targets:
                raise ForbiddenError(f"entry point {ep.value!r} in {group} tries to override built-in {ep.name!r}")
            try:
                init = ep.load()
            except Exception as exc:  # a plugin's import error must not break the controller
                warnings.append(f"entry point {ep.name!r} ({ep.value}) in {group} not loaded: {exc!r}")
                continue
            add(init, config_for(ep.name))
        return warnings

    def replace_driver(self, name: str, driver: Driver) -> None:
        """Swap the object behind a registered name, keeping its capability
        (fault-injection proxies in tests; see netsim.controller.testing)."""
        with self._lock:
            entry = self.driver(name)
            self._drivers[name] = DriverEntry(driver, entry.capability, entry.builtin)

    def replace_ipam_driver(self, name: str, driver: Ipam) -> None:
        with self._lock:
            entry = self.ipam(name)
            self._ipams[name] = IpamEntry(driver, entry.capability, entry.builtin)

    # --- lookups ---------------------------------------------------------------------------
    def driver(self, name: str) -> DriverEntry:
        entry = self._drivers.get(name)
        if entry is None:
            known = ", ".join(sorted(self._drivers)) or "none"
            raise NotFoundError(f"network driver {name!r} not found (registered: {known})")
        return entry

    def ipam(self, name: str) -> IpamEntry:
        entry = self._ipams.get(name)
        if entry is None:
            known = ", ".join(sorted(self._ipams)) or "none"
            raise NotFoundError(f"IPAM driver {name!r} not found (registered: {known})")
        return entry

    def drivers(self) -> dict[str, DriverEntry]:
        return dict(self._drivers)

    def ipam_drivers(self) -> dict[str, IpamEntry]:
        return dict(self._ipams)


def _check_name(name: str, what: str) -> None:
    if not isinstance(name, str) or not name or any(c.isspace() or c == "/" for c in name):
        raise InvalidParameterError(f"invalid {what} name {name!r}")


def kernel_and_host(config: Mapping[str, Any], driver: str) -> tuple[Kernel, Host]:
    """The kernel and host a driver's init function finds in its config."""
    kernel, host = config.get(CONFIG_KERNEL), config.get(CONFIG_HOST)
    # Duck-typed kernel check: tests wrap kernels in fault-injecting proxies.
    if not hasattr(kernel, "add_bridge") or not isinstance(host, Host):
        raise InvalidParameterError(
            f"{driver} driver config needs {CONFIG_KERNEL!r} (a Kernel) and {CONFIG_HOST!r} (a Host)"
        )
    return kernel, host  # type: ignore[return-value]
