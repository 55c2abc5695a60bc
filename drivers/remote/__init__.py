"""Remote network drivers: Docker network plugins used as netsim drivers.

``init(registry, config)`` activates every plugin that ``config`` names
(``"plugins": [{"name", "address"}]``) or that discovery finds in
``"plugin_dirs"``, and registers each one implementing ``NetworkDriver``
under its plugin name with the capability its GetCapabilities reports.
``"plugin_client": {"timeout", "retries", "backoff", "max_backoff",
"max_body"}`` tunes the client. Without the registry, use
``RemoteDriver.connect("unix:///path.sock", name=...)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drivers.remote.driver import RemoteDriver
from netsim.driverapi import DriverCallback
from netsim.plugin.client import ClientConfig, PluginAddress, PluginClient, PluginConnectError, shared_client
from netsim.plugin.codec import NETWORK_DRIVER
from netsim.plugin.discovery import PluginSpec, default_name, find_plugin, plugins_from_config, scan

__all__ = [
    "ClientConfig",
    "PluginAddress",
    "PluginClient",
    "PluginConnectError",
    "PluginSpec",
    "RemoteDriver",
    "default_name",
    "find_plugin",
    "init",
    "plugins_from_config",
    "scan",
]


def init(registry: DriverCallback, config: Mapping[str, Any]) -> None:
    """Register one RemoteDriver per configured or discovered network plugin.

    A plugin that cannot be activated raises (PluginError naming it): a
    configured plugin that silently vanished would make tests lie.
    """
    specs, client_config = plugins_from_config(config)
    for spec in specs:
        client = shared_client(registry, spec.name, spec.address, client_config)
        try:
            implements = list(client.implements) if client.implements is not None else client.activate()
            if NETWORK_DRIVER not in implements:
                client.close()
                continue
            driver = RemoteDriver.from_client(client, implements)
        except BaseException:
            client.close()
            raise
        registry.register_driver(spec.name, driver, driver.capability)
