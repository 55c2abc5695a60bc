"""libnetwork's overlay driver (global scope, VXLAN between hosts): see
:mod:`drivers.overlay.driver`.

Driver options (``ControllerConfig.driver_options["overlay"]``), all optional:
``underlay_dev`` / ``underlay_address`` (the VTEP; default: the host's uplink
and its address) and ``global_store`` (a KVStore shared by every host for VNI
allocation; default: the controller's global store).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from drivers.overlay.driver import NETWORK_TYPE, VXLANID_LIST, OverlayDriver, Underlay, _is_ipv4, refuse_encrypted
from drivers.overlay.vni import VniAllocator, parse_vni
from netsim import netlabel
from netsim.driverapi import CONFIG_GLOBAL_STORE, CONFIG_OPTIONS, CONFIG_STORE, Capability, DriverCallback
from netsim.errors import InvalidParameterError, UnavailableError
from netsim.registry import kernel_and_host
from netsim.store import MemoryStore

UNDERLAY_DEV = "underlay_dev"
UNDERLAY_ADDRESS = "underlay_address"
GLOBAL_STORE = "global_store"


def validate_network_options(options: Mapping[str, Any], host_links: Collection[str] = ()) -> None:
    """Check the network options without a kernel (the scenario loader's road):
    the VXLAN id, parsed as ``network_allocate`` parses it; ``encrypted`` is refused."""
    generic = netlabel.generic_options(options)
    try:
        refuse_encrypted(generic)
    except UnavailableError as exc:  # the loader's road reports option errors as invalid parameters
        raise InvalidParameterError(str(exc)) from exc
    if VXLANID_LIST in generic:
        try:
            parse_vni(str(generic[VXLANID_LIST]))
        except InvalidParameterError as exc:
            raise InvalidParameterError(f"invalid value for {VXLANID_LIST}: {exc}") from exc


def init(registry: DriverCallback, config: Mapping[str, Any]) -> None:
    kernel, host = kernel_and_host(config, NETWORK_TYPE)
    options = config.get(CONFIG_OPTIONS) or {}
    dev = options.get(UNDERLAY_DEV, host.uplink)
    address = options.get(UNDERLAY_ADDRESS, host.host_ip)
    if not isinstance(dev, str) or not dev or not isinstance(address, str) or not _is_ipv4(address):
        raise InvalidParameterError(f"overlay: invalid underlay {dev!r} / {address!r}: expected a link and an IPv4")
    # Explicit None checks: an empty store is falsy (it has a length).
    store = options.get(GLOBAL_STORE)
    if store is None:
        store = config.get(CONFIG_GLOBAL_STORE)
    if store is None:
        store = config.get(CONFIG_STORE)
    if store is None:
        store = MemoryStore()
    if not all(hasattr(store, method) for method in ("get", "put", "delete", "list", "exists")):
        raise InvalidParameterError(f"overlay: {GLOBAL_STORE} must be a KVStore, got {type(store).__name__}")
    driver = OverlayDriver(kernel, host, Underlay(dev, address), VniAllocator(store))
    registry.register_driver(NETWORK_TYPE, driver, Capability(data_scope="global", connectivity_scope="global"))


__all__ = ["OverlayDriver", "init", "validate_network_options"]
