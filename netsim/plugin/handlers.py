"""What a plugin answers to each call Docker's engine sends: the mapping from
``/NetworkDriver.*`` and ``/IpamDriver.*`` requests to a netsim Driver or
Ipam object, independent of HTTP (the server only moves bytes).

Status codes follow Docker's plugin helpers: 200 with a JSON object on
success; 400 when the request itself does not decode; 500 with
``{"Err": ...}`` when the driver raised; 404 for an unknown call and for an
optional call (EndpointOperInfo, Program/RevokeExternalConnectivity,
DiscoverNew/DiscoverDelete) the driver does not implement.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from netsim.driverapi import Capability, DiscoveryType, Driver, InterfaceInfo, JoinInfo, NetworkInfo
from netsim.errors import InvalidParameterError, NetsimError, NotImplementedByDriverError
from netsim.ipamapi import Ipam
from netsim.plugin.codec import (
    ACTIVATE,
    IPAM_DRIVER,
    NETWORK_DRIVER,
    Fields,
    InterfaceValues,
    capability_to_json,
    ipam_capability_to_json,
    ipam_data_from_json,
    join_reply_to_json,
    oper_info_to_json,
    parse_plain_ip,
)
from netsim.plugin.errors import error_reply

LOG = logging.getLogger("netsim.plugin")

T = TypeVar("T")
Reply = dict[str, Any]
Handler = Callable[[Fields], Reply]
#: Calls whose 404 Docker reads as "not implemented".
OPTIONAL_CALLS = frozenset(
    f"{NETWORK_DRIVER}.{name}"
    for name in (
        "EndpointOperInfo",
        "ProgramExternalConnectivity",
        "RevokeExternalConnectivity",
        "DiscoverNew",
        "DiscoverDelete",
    )
)


class PluginHandlers:
    """Routes calls to ``driver`` and/or ``ipam``. Stateless itself: all
    state lives in the served objects, which must be thread-safe if the
    plugin is called concurrently. Dispatch is one dict lookup, O(1)."""

    def __init__(self, driver: Driver | None = None, ipam: Ipam | None = None, capability: Capability | None = None):
        if driver is None and ipam is None:
            raise InvalidParameterError("a plugin serves a network driver, an IPAM driver, or both; got neither")
        if driver is not None and not isinstance(driver, Driver):
            raise InvalidParameterError(f"driver must be a netsim Driver, got {type(driver).__name__}")
        if ipam is not None and not isinstance(ipam, Ipam):
            raise InvalidParameterError(f"ipam must be a netsim Ipam, got {type(ipam).__name__}")
        self.driver = driver
        self.ipam = ipam
        self.capability = capability or Capability()
        routes: dict[str, Handler] = {ACTIVATE: self._activate}
        if driver is not None:
            routes.update({f"{NETWORK_DRIVER}.{name}": fn for name, fn in self._network_routes(driver).items()})
        if ipam is not None:
            routes.update({f"{IPAM_DRIVER}.{name}": fn for name, fn in self._ipam_routes(ipam).items()})
        self.routes: Mapping[str, Handler] = routes

    def implements(self) -> list[str]:
        return [name for name, obj in ((NETWORK_DRIVER, self.driver), (IPAM_DRIVER, self.ipam)) if obj is not None]

    def dispatch(self, call: str, body: object) -> tuple[int, Reply]:
        """``call`` is the path without its leading slash; ``body`` the decoded
        request (None for an empty body). Returns (HTTP status, reply)."""
        handler = self.routes.get(call)
        if handler is None:
            return 404, {"Err": f"unknown plugin call /{call}"}
        try:
            fields = Fields({} if body is None else body, f"{call} request")
        except InvalidParameterError as exc:
            return 400, error_reply(exc)
        try:
            return 200, handler(fields)
        except _BadRequest as exc:
            return 400, error_reply(exc)
        except NotImplementedByDriverError as exc:
            if call in OPTIONAL_CALLS:
                return 404, error_reply(exc)
            return 500, error_reply(exc)
        except Exception as exc:  # any driver failure becomes an error reply, never a dead server
            if not isinstance(exc, NetsimError):  # a bug in the served driver: keep its traceback
                LOG.exception("plugin call /%s failed", call)
            return 500, error_reply(exc)

    # -- activation -----------------------------------------------------------

    def _activate(self, _fields: Fields) -> Reply:
        return {"Implements": self.implements()}

    # -- network driver -------------------------------------------------------

    def _network_routes(self, driver: Driver) -> dict[str, Handler]:
        def ids(f: Fields) -> tuple[str, str]:
            return _decode(lambda: (f.text("NetworkID", required=True), f.text("EndpointID", required=True)))

        def network_args(f: Fields) -> tuple[str, dict[str, Any], list[Any], list[Any]]:
            return _decode(
                lambda: (
                    f.text("NetworkID", required=True),
                    f.mapping("Options"),
                    ipam_data_from_json(f, "IPv4Data"),
                    ipam_data_from_json(f, "IPv6Data"),
                )
            )

        def allocate(f: Fields) -> Reply:
            nid, _opts, v4, v6 = network_args(f)
            options = _decode(lambda: f.string_map("Options"))
            return {"Options": driver.network_allocate(nid, options, v4, v6)}

        def free(f: Fields) -> Reply:
            driver.network_free(_decode(lambda: f.text("NetworkID", required=True)))
            return {}

        def create_network(f: Fields) -> Reply:
            nid, options, v4, v6 = network_args(f)
            driver.create_network(nid, options, NetworkInfo(), v4, v6)
            return {}

        def delete_network(f: Fields) -> Reply:
            driver.delete_network(_decode(lambda: f.text("NetworkID", required=True)))
            return {}

        def create_endpoint(f: Fields) -> Reply:
            nid, eid = ids(f)
            given, options = _decode(lambda: (InterfaceValues.from_json(f.sub("Interface")), f.mapping("Options")))
            ifinfo = InterfaceInfo(given.mac, given.address, given.address_ipv6)
            driver.create_endpoint(nid, eid, ifinfo, options)
            added = InterfaceValues.of(ifinfo).filled_since(given)
            return {"Interface": added.to_json() if added != InterfaceValues() else None}

        def delete_endpoint(f: Fields) -> Reply:
            driver.delete_endpoint(*ids(f))
            return {}

        def oper_info(f: Fields) -> Reply:
            return {"Value": oper_info_to_json(driver.endpoint_oper_info(*ids(f)))}

        def join(f: Fields) -> Reply:
            nid, eid = ids(f)
            sbox_key, options = _decode(lambda: (f.text("SandboxKey"), f.mapping("Options")))
            jinfo = JoinInfo()
            driver.join(nid, eid, sbox_key, jinfo, options)
            return join_reply_to_json(jinfo)

        def leave(f: Fields) -> Reply:
            driver.leave(*ids(f))
            return {}

        def program(f: Fields) -> Reply:
            nid, eid = ids(f)
            driver.program_external_connectivity(nid, eid, _decode(lambda: f.mapping("Options")))
            return {}

        def revoke(f: Fields) -> Reply:
            driver.revoke_external_connectivity(*ids(f))
            return {}

        def discovery(f: Fields) -> tuple[DiscoveryType, Any]:
            number = _decode(lambda: f.number("DiscoveryType"))
            try:
                return DiscoveryType(number), f.data.get("DiscoveryData")
            except ValueError as exc:
                raise _BadRequest(f"{f.what}: unknown DiscoveryType {number}") from exc

        def discover_new(f: Fields) -> Reply:
            driver.discover_new(*discovery(f))
            return {}

        def discover_delete(f: Fields) -> Reply:
            driver.discover_delete(*discovery(f))
            return {}

        return {
            "GetCapabilities": lambda _f: capability_to_json(self.capability),
            "AllocateNetwork": allocate,
            "FreeNetwork": free,
            "CreateNetwork": create_network,
            "DeleteNetwork": delete_network,
            "CreateEndpoint": create_endpoint,
            "DeleteEndpoint": delete_endpoint,
            "EndpointOperInfo": oper_info,
            "Join": join,
            "Leave": leave,
            "ProgramExternalConnectivity": program,
            "RevokeExternalConnectivity": revoke,
            "DiscoverNew": discover_new,
            "DiscoverDelete": discover_delete,
        }

    # -- IPAM -------------------------------------------------------------------

    def _ipam_routes(self, ipam: Ipam) -> dict[str, Handler]:
        def spaces(_f: Fields) -> Reply:
            local, global_ = ipam.get_default_address_spaces()
            return {"LocalDefaultAddressSpace": local, "GlobalDefaultAddressSpace": global_}

        def request_pool(f: Fields) -> Reply:
            args = _decode(
                lambda: (
                    f.text("AddressSpace"),
                    f.text("Pool"),
                    f.text("SubPool"),
                    f.string_map("Options"),
                    f.flag("V6"),
                )
            )
            pool_id, pool, data = ipam.request_pool(*args)
            return {"PoolID": pool_id, "Pool": str(pool), "Data": data}

        def release_pool(f: Fields) -> Reply:
            ipam.release_pool(_decode(lambda: f.text("PoolID", required=True)))
            return {}

        def request_address(f: Fields) -> Reply:
            pool_id, text, options = _decode(
                lambda: (f.text("PoolID", required=True), f.text("Address"), f.string_map("Options"))
            )
            preferred = _decode(lambda: parse_plain_ip(text, f"{f.what}.Address")) if text else None
            address, data = ipam.request_address(pool_id, preferred, options)
            return {"Address": "" if address is None else str(address), "Data": data}

        def release_address(f: Fields) -> Reply:
            pool_id, text = _decode(lambda: (f.text("PoolID", required=True), f.text("Address", required=True)))
            ipam.release_address(pool_id, _decode(lambda: parse_plain_ip(text, f"{f.what}.Address")))
            return {}

        return {
            "GetCapabilities": lambda _f: ipam_capability_to_json(ipam.capabilities()),
            "GetDefaultAddressSpaces": spaces,
            "RequestPool": request_pool,
            "ReleasePool": release_pool,
            "RequestAddress": request_address,
            "ReleaseAddress": release_address,
        }


class _BadRequest(InvalidParameterError):
    """A request field did not decode: answered with 400, not 500."""


def _decode(read: Callable[[], T]) -> T:
    try:
        return read()
    except InvalidParameterError as exc:
        raise _BadRequest(str(exc)) from exc
