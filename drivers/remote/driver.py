"""A netsim Driver that forwards every call to a Docker network plugin.

Follows libnetwork's ``drivers/remote`` driver: the same JSON, the same
optional calls (a 404 on Program/RevokeExternalConnectivity and
DiscoverNew/DiscoverDelete is a no-op), and the same rollbacks: a reply that
cannot be applied (a CreateEndpoint reply setting an interface value that
was already set, a Join reply that does not parse) makes the driver undo the
call on the plugin (DeleteEndpoint / Leave) before raising, so the plugin is
not left with an endpoint netsim does not know about. The caller's
InterfaceInfo / JoinInfo is changed only when the whole reply is valid.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from netsim.driverapi import (
    Capability,
    DiscoveryType,
    Driver,
    DriverCallback,
    InterfaceInfo,
    IPAMData,
    JoinInfo,
    NetworkInfo,
)
from netsim.errors import (
    InvalidParameterError,
    NetsimError,
    NotImplementedByDriverError,
    PluginProtocolError,
    PluginReplyError,
    PluginUnavailableError,
)
from netsim.plugin.client import ClientConfig, PluginAddress, PluginClient, PluginConnectError
from netsim.plugin.codec import (
    NETWORK_DRIVER,
    Fields,
    InterfaceValues,
    capability_from_json,
    copy_join_info,
    ipam_data_to_json,
    join_reply_from_json,
)
from netsim.plugin.discovery import default_name

_PREFIX = NETWORK_DRIVER + "."
T = TypeVar("T")


# Failures after which the plugin may have acted on the call and must be
# asked to undo it: a reply we cannot use, or a plugin that hung or died
# mid-call. A failed connect (PluginConnectError) never reached it.
_MAY_HAVE_ACTED = (PluginProtocolError, PluginUnavailableError)


class RemoteDriver(Driver):
    """Driver whose every call is a POST to ``/NetworkDriver.<Call>``."""

    #: a plugin keeps its own state across a controller restart: never replayed to it
    replay_on_recovery = False

    def __init__(self, client: PluginClient, capability: Capability) -> None:
        self.client = client
        self.capability = capability

    @classmethod
    def connect(
        cls, address: str | PluginAddress, *, name: str | None = None, config: ClientConfig | None = None
    ) -> RemoteDriver:
        """Activate the plugin at ``address`` and read its capabilities."""
        client = PluginClient(name or default_name(address), address, config)
        try:
            return cls.from_client(client)
        except BaseException:
            client.close()
            raise

    @classmethod
    def from_client(cls, client: PluginClient, implements: Sequence[str] | None = None) -> RemoteDriver:
        """From an existing client; ``implements`` skips a second activation."""
        client.require(NETWORK_DRIVER, implements)
        call = _PREFIX + "GetCapabilities"
        reply = client.call(call)
        return cls(client, _decoded(client, call, capability_from_json, reply))

    @classmethod
    def init_for(
        cls, address: str | PluginAddress, *, name: str | None = None, config: ClientConfig | None = None
    ) -> Callable[[DriverCallback, Mapping[str, Any]], None]:
        """An init function registering the plugin at ``address`` as ``name``
        (for ``Registry.add_driver``; the plugin is contacted at init time)."""

        def init(registry: DriverCallback, _config: Mapping[str, Any]) -> None:
            driver = cls.connect(address, name=name, config=config)
            registry.register_driver(driver.name, driver, driver.capability)

        return init

    @property
    def name(self) -> str:
        return self.client.name

    def close(self) -> None:
        self.client.close()

    def __repr__(self) -> str:
        return f"RemoteDriver({self.client.name!r}, {str(self.client.address)!r})"

    # -- calls ----------------------------------------------------------------

    def _call(self, method: str, args: Mapping[str, Any] | None, *, optional: bool = False) -> dict[str, Any] | None:
        return self.client.call(_PREFIX + method, args, optional=optional)

    def _rollback(self, failure: Exception, method: str, args: Mapping[str, Any]) -> None:
        if isinstance(failure, PluginConnectError):
            return  # the call never reached the plugin: nothing to undo
        # best effort: the original failure is what the caller must see
        with contextlib.suppress(NetsimError):
            self._call(method, args)

    def network_allocate(
        self, nid: str, options: Mapping[str, str], ipv4_data: Sequence[IPAMData], ipv6_data: Sequence[IPAMData]
    ) -> dict[str, str]:
        args = _network_args(nid, options, ipv4_data, ipv6_data)
        try:
            reply = self._call("AllocateNetwork", args) or {}
            return _decoded(self.client, _PREFIX + "AllocateNetwork", _allocate_reply, reply)
        except _MAY_HAVE_ACTED as failure:
            self._rollback(failure, "FreeNetwork", {"NetworkID": nid})
            raise

    def network_free(self, nid: str) -> None:
        self._call("FreeNetwork", {"NetworkID": nid})

    def create_network(
        self,
        nid: str,
        options: Mapping[str, Any],
        ninfo: NetworkInfo,
        ipv4_data: Sequence[IPAMData],
        ipv6_data: Sequence[IPAMData],
    ) -> None:
        # ninfo has no counterpart in the plugin protocol (no table events)
        args = _network_args(nid, options, ipv4_data, ipv6_data)
        try:
            self._call("CreateNetwork", args)
        except _MAY_HAVE_ACTED as failure:
            self._rollback(failure, "DeleteNetwork", {"NetworkID": nid})
            raise

    def delete_network(self, nid: str) -> None:
        self._call("DeleteNetwork", {"NetworkID": nid})

    def create_endpoint(self, nid: str, eid: str, ifinfo: InterfaceInfo, options: Mapping[str, Any]) -> None:
        before = InterfaceValues.of(ifinfo)
        args = {"NetworkID": nid, "EndpointID": eid, "Interface": before.to_json(), "Options": _jsonable(options)}
        undo = {"NetworkID": nid, "EndpointID": eid}
        call = _PREFIX + "CreateEndpoint"
        try:
            reply = self._call("CreateEndpoint", args) or {}
            added = _decoded(self.client, call, _endpoint_reply, reply)
            conflicts = added.conflicts_with(before)
            if conflicts:
                raise PluginProtocolError(
                    "driver modified interface values already set: " + ", ".join(conflicts),
                    plugin=self.client.name,
                    call=call,
                )
            added.apply_to(ifinfo)
        except _MAY_HAVE_ACTED as failure:
            self._rollback(failure, "DeleteEndpoint", undo)
            raise

    def delete_endpoint(self, nid: str, eid: str) -> None:
        self._call("DeleteEndpoint", {"NetworkID": nid, "EndpointID": eid})

    def endpoint_oper_info(self, nid: str, eid: str) -> dict[str, Any]:
        call = _PREFIX + "EndpointOperInfo"
        reply = self._call("EndpointOperInfo", {"NetworkID": nid, "EndpointID": eid}, optional=True)
        if reply is None:
            raise NotImplementedByDriverError(f"{self.client.name}/{call}: not implemented by the plugin (404)")
        return _decoded(self.client, call, lambda r: Fields(r, "reply").mapping("Value"), reply)

    def join(self, nid: str, eid: str, sbox_key: str, jinfo: JoinInfo, options: Mapping[str, Any]) -> None:
        args = {"NetworkID": nid, "EndpointID": eid, "SandboxKey": sbox_key, "Options": _jsonable(options)}
        try:
            reply = self._call("Join", args) or {}
            decoded = _decoded(self.client, _PREFIX + "Join", join_reply_from_json, reply)
            copy_join_info(decoded, jinfo)
        except _MAY_HAVE_ACTED as failure:
            self._rollback(failure, "Leave", {"NetworkID": nid, "EndpointID": eid})
            raise

    def leave(self, nid: str, eid: str) -> None:
        self._call("Leave", {"NetworkID": nid, "EndpointID": eid})

    def program_external_connectivity(self, nid: str, eid: str, options: Mapping[str, Any]) -> None:
        args = {"NetworkID": nid, "EndpointID": eid, "Options": _jsonable(options)}
        self._call("ProgramExternalConnectivity", args, optional=True)

    def revoke_external_connectivity(self, nid: str, eid: str) -> None:
        self._call("RevokeExternalConnectivity", {"NetworkID": nid, "EndpointID": eid}, optional=True)

    def discover_new(self, dtype: DiscoveryType, data: Any) -> None:
        self._call("DiscoverNew", {"DiscoveryType": int(dtype), "DiscoveryData": _jsonable(data)}, optional=True)

    def discover_delete(self, dtype: DiscoveryType, data: Any) -> None:
        self._call("DiscoverDelete", {"DiscoveryType": int(dtype), "DiscoveryData": _jsonable(data)}, optional=True)

    def type(self) -> str:
        return self.client.name

    def is_builtin(self) -> bool:
        return False


def _allocate_reply(reply: Any) -> dict[str, str]:
    return Fields(reply, "AllocateNetwork reply").string_map("Options")


def _endpoint_reply(reply: Any) -> InterfaceValues:
    return InterfaceValues.from_json(Fields(reply, "CreateEndpoint reply").sub("Interface"))


def _network_args(
    nid: str, options: Mapping[str, Any], ipv4_data: Sequence[IPAMData], ipv6_data: Sequence[IPAMData]
) -> dict[str, Any]:
    return {
        "NetworkID": nid,
        "Options": _jsonable(options),
        "IPv4Data": ipam_data_to_json(ipv4_data),
        "IPv6Data": ipam_data_to_json(ipv6_data),
    }


def _plain(value: object) -> object:
    to_docker_json = getattr(value, "to_docker_json", None)
    if callable(to_docker_json):
        return to_docker_json()
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _jsonable(value: Any) -> Any:
    """``value`` as plain JSON data; InvalidParameterError if it is not."""
    try:
        return json.loads(json.dumps(value, default=_plain))
    except (TypeError, ValueError) as exc:
        raise InvalidParameterError(f"option value cannot be sent to a plugin as JSON: {exc}") from exc


def _decoded(client: PluginClient, call: str, decode: Callable[[Any], T], reply: Any) -> T:
    """Run a codec decoder; its InvalidParameterError becomes a protocol error."""
    try:
        return decode(reply)
    except PluginReplyError:
        raise
    except InvalidParameterError as exc:
        raise PluginProtocolError(str(exc), plugin=client.name, call=call) from exc
