"""Docker's bridge driver: see :mod:`drivers.bridge.driver` and the setup steps
in :mod:`drivers.bridge.setup`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drivers.bridge.config import validate_network_options
from drivers.bridge.driver import NETWORK_TYPE, BridgeDriver
from drivers.bridge.options import parse_driver_config
from netsim.driverapi import CONFIG_OPTIONS, Capability, DriverCallback
from netsim.registry import kernel_and_host


def init(registry: DriverCallback, config: Mapping[str, Any]) -> None:
    kernel, host = kernel_and_host(config, NETWORK_TYPE)
    driver = BridgeDriver(kernel, host, parse_driver_config(config.get(CONFIG_OPTIONS)))
    registry.register_driver(NETWORK_TYPE, driver, Capability(data_scope="local"))


__all__ = ["BridgeDriver", "init", "validate_network_options"]
