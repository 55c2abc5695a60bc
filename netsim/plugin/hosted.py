"""A plugin process that serves a simulated host netsim runs elsewhere.

When netsim launches a plugin inside a simulated host
(:func:`netsim.plugin.launcher.launch_plugin` with ``host=``), it tells the
plugin which host that is in the environment variable ``NETSIM_PLUGIN_HOST``:
a JSON object with the host's name, namespace, uplink, uplink address,
outside namespace and outside address. Plugins in any language may read it;
``netsim plugin serve --builtin NAME --kernel linux`` uses it to serve a
built-in driver that acts on *that* host: its kernel borrows the host's
namespace (``LinuxKernel.borrow_namespace``: used, never removed; the
process that made it owns it), so the driver's bridges, veths and rules are
made exactly where the in-process driver would make them.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from typing import Any

from netsim.driverapi import CONFIG_HOST, CONFIG_KERNEL, CONFIG_OPTIONS, Capability, Driver
from netsim.errors import InvalidParameterError, NotFoundError
from netsim.host import Host
from netsim.kernel.base import Kernel

HOST_ENV = "NETSIM_PLUGIN_HOST"
_FIELDS = ("name", "namespace", "uplink", "uplink_address", "outside_namespace", "outside_address")


def host_environment(host: Host) -> dict[str, str]:
    """The environment entry describing ``host`` to a plugin launched inside it.

    >>> from netsim.kernel.fake import FakeKernel
    >>> env = host_environment(Host("h1", FakeKernel("ab12"), "netsim-ab12-h1"))
    >>> json.loads(env[HOST_ENV])["namespace"]
    'netsim-ab12-h1'
    """
    return {HOST_ENV: json.dumps({key: getattr(host, key) for key in _FIELDS})}


def host_from_environment(kernel: Kernel, environ: Mapping[str, str] | None = None) -> Host | None:
    """The Host described by ``NETSIM_PLUGIN_HOST`` on ``kernel``, or None if unset."""
    text = (environ if environ is not None else os.environ).get(HOST_ENV)
    if not text:
        return None
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or not all(isinstance(data.get(key), str) for key in _FIELDS):
            raise ValueError(f"expected an object with string fields {', '.join(_FIELDS)}")
    except ValueError as exc:
        raise InvalidParameterError(f"{HOST_ENV}: {exc}") from exc
    return Host(kernel=kernel, **{key: data[key] for key in _FIELDS})


def serve_builtin_in_host(
    stack: contextlib.ExitStack, name: str, environ: Mapping[str, str] | None = None
) -> tuple[Driver, Capability] | None:
    """The built-in network driver ``name`` acting on the host this process was
    launched in (None when no host is described: the caller builds its own).

    Only drivers whose init needs nothing but the kernel and the host can be
    served this way (bridge, macvlan, host, null); the kernel is closed, and
    the borrowed namespace left to its owner, when ``stack`` closes.
    """
    from netsim.kernel import make_kernel
    from netsim.plugin.cli import CollectingRegistry
    from netsim.registry import BUILTIN_DRIVERS, load_target

    if not (environ if environ is not None else os.environ).get(HOST_ENV):
        return None
    targets = {driver.name: driver.target for driver in BUILTIN_DRIVERS}
    from netsim.registry import DRIVER_GROUP, process_entry_points

    for entry_point in process_entry_points().group(DRIVER_GROUP):
        targets.setdefault(entry_point.name, entry_point.value)  # installed drivers are served the same way
    if name not in targets:
        raise NotFoundError(
            f"no built-in or installed network driver named {name!r} (known: {', '.join(sorted(targets))})"
        )
    kernel = make_kernel("linux")
    stack.callback(kernel.close)
    host = host_from_environment(kernel, environ)
    assert host is not None
    kernel.borrow_namespace(host.namespace)  # type: ignore[attr-defined]
    registry = CollectingRegistry()
    config: dict[str, Any] = {CONFIG_KERNEL: kernel, CONFIG_HOST: host, CONFIG_OPTIONS: {}}
    try:
        load_target(targets[name])(registry, config)
    except (KeyError, TypeError) as exc:
        raise InvalidParameterError(f"built-in {name!r} needs more than a kernel and a host to serve: {exc}") from exc
    if name not in registry.drivers:
        raise NotFoundError(f"built-in {name!r} registered no network driver")
    return registry.drivers[name]
