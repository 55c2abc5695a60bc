"""Which driver the conformance suite tests, and how it gets into a controller.

``--netsim-driver`` accepts:

* a registered name (built-in or from the ``netsim.drivers`` entry points),
* ``module:attr`` where ``attr`` is a :class:`~netsim.driverapi.Driver`
  subclass (constructed with the driver config the controller builds; its
  optional ``capability`` and ``name`` class attributes are used at
  registration, the name defaulting to ``type()``) or an init
  function ``init(registry, config)`` as libnetwork's ``AddDriver`` calls,
* ``unix:///path.sock`` / ``tcp://host:port``: a remote (Docker) plugin,
* ``plugin:NAME``: the built-in NAME served in-process as a Docker plugin and
  reached through the remote driver (a round trip of the plugin protocol).

``--netsim-plugin-cmd "CMD ARGS" --netsim-plugin-name NAME`` instead names a
plugin *program* (any language): kind ``process``, spec ``NAME``. Each check
starts it with :func:`netsim.plugin.launcher.launch_plugin` inside the
check's simulated host and stops it afterwards.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from netsim.driverapi import Capability, Driver, DriverCallback
from netsim.errors import InvalidParameterError, NotFoundError

InitFunction = Callable[[DriverCallback, Mapping[str, Any]], None]


@dataclass(frozen=True)
class DriverTarget:
    spec: str
    kernel: str = "fake"
    #: driver options passed to every network the suite creates
    options: dict[str, str] = field(default_factory=dict)
    #: ``--netsim-plugin-cmd``: a plugin program netsim starts for every check
    #: (inside the check's simulated host on the real kernel)
    plugin_cmd: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        if self.plugin_cmd:
            return "process"
        if self.spec.startswith(("unix://", "tcp://", "http://")):
            return "remote"
        if self.spec.startswith("plugin:"):
            return "plugin"
        if ":" in self.spec:
            return "python"
        return "name"

    @property
    def out_of_process(self) -> bool:
        """The driver runs in another process: it cannot reach a fake kernel."""
        return self.kind in ("process", "remote")


def parse_options(pairs: list[str]) -> dict[str, str]:
    """``["key=value", ...]`` → dict; a pair without '=' is an error."""
    options: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidParameterError(f"--netsim-option {pair!r}: expected key=value")
        options[key.strip()] = value
    return options


def load_python_target(spec: str) -> InitFunction:
    """Turn ``module:attr`` into an init function."""
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise NotFoundError(f"--netsim-driver {spec!r}: cannot import {module_name!r}: {exc}") from exc
    try:
        obj = getattr(module, attr)
    except AttributeError as exc:
        raise NotFoundError(f"--netsim-driver {spec!r}: {module_name} has no attribute {attr!r}") from exc
    if isinstance(obj, type) and issubclass(obj, Driver):
        driver_class = obj

        def init_from_class(registry: DriverCallback, config: Mapping[str, Any]) -> None:
            try:
                driver = driver_class(config)  # type: ignore[call-arg]
            except TypeError:
                driver = driver_class()
            capability = getattr(driver_class, "capability", None)
            if not isinstance(capability, Capability):
                capability = Capability()
            name = getattr(driver_class, "name", None) or driver.type()
            registry.register_driver(str(name), driver, capability)

        return init_from_class
    if callable(obj):
        init: InitFunction = obj
        return init
    raise InvalidParameterError(f"--netsim-driver {spec!r}: {attr} is neither a Driver subclass nor an init function")


def check_target(target: DriverTarget) -> None:
    """Refuse a target that cannot work before any check runs (one usage
    error instead of one setup error per check): an unknown driver name, an
    unknown ``plugin:NAME`` built-in, a ``module:attr`` that does not import."""
    from netsim.registry import BUILTIN_DRIVERS, DRIVER_GROUP, process_entry_points

    builtins = {b.name for b in BUILTIN_DRIVERS}
    if target.kind == "name":
        known = builtins | {ep.name for ep in process_entry_points().group(DRIVER_GROUP)}
        if target.spec not in known:
            raise NotFoundError(
                f"--netsim-driver {target.spec!r}: no such driver (known: {', '.join(sorted(known))};"
                " or give module:Class, unix:///path.sock, plugin:NAME)"
            )
    elif target.kind == "plugin":
        builtin = target.spec.split(":", 1)[1]
        if builtin not in builtins:
            raise NotFoundError(
                f"--netsim-driver {target.spec!r}: plugin: serves a built-in driver ({', '.join(sorted(builtins))})"
            )
    elif target.kind == "python":
        load_python_target(target.spec)
