"""The host driver: containers share the host's namespace and get no
addresses of their own (the controller puts such sandboxes in the host
namespace). One host network per host, as in libnetwork.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drivers.null import SingleNetworkDriver
from netsim.driverapi import Capability, DriverCallback

NETWORK_TYPE = "host"


class HostDriver(SingleNetworkDriver):
    network_type = NETWORK_TYPE


def init(registry: DriverCallback, config: Mapping[str, Any]) -> None:
    registry.register_driver(NETWORK_TYPE, HostDriver(), Capability(data_scope="local"))
