"""``--netsim-driver=plugin:NAME``: a built-in driver served in-process as a
Docker plugin on a unix socket and reached through the remote driver, so the
suite exercises the plugin protocol in both directions."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from netsim.driverapi import Capability, Driver
from netsim.errors import NotFoundError
from netsim.registry import BUILTIN_DRIVERS, load_target


@dataclass
class _Collector:
    """A registry stand-in that keeps what an init function registers."""

    drivers: dict[str, tuple[Driver, Capability]] = field(default_factory=dict)

    def register_driver(self, name: str, driver: Driver, capability: Capability) -> None:
        self.drivers[name] = (driver, capability)


def serve_builtin(
    name: str, config: Mapping[str, Any], register_name: str
) -> tuple[Callable[..., None], Callable[[], None]]:
    """Start a plugin server for built-in ``name``; returns the remote driver's
    init function and a cleanup that stops the server and removes its socket."""
    from drivers.remote import RemoteDriver
    from netsim.plugin.server import PluginServer

    targets = {b.name: b.target for b in BUILTIN_DRIVERS}
    if name not in targets:
        raise NotFoundError(f"plugin:{name}: no built-in driver {name!r} (built-ins: {', '.join(sorted(targets))})")
    collector = _Collector()
    load_target(targets[name])(collector, config)
    driver, capability = collector.drivers[name]
    workdir = tempfile.mkdtemp(prefix="netsim-plugin-")
    socket_path = os.path.join(workdir, f"{name}.sock")
    server = PluginServer(driver=driver, socket_path=socket_path, capability=capability, name=name)
    server.start()

    def cleanup() -> None:
        server.stop()
        if os.path.exists(socket_path):
            os.unlink(socket_path)
        os.rmdir(workdir)

    return RemoteDriver.init_for(f"unix://{socket_path}", name=register_name), cleanup
