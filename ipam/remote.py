"""Remote IPAM: a Docker IPAM plugin (``/IpamDriver.*``) used as netsim Ipam.

``init(registry, config)`` registers every configured or discovered plugin
that implements ``IpamDriver`` (same config keys as ``drivers.remote``).
As in Docker, a plugin answering GetCapabilities with 404 gets the default
capabilities. Replies are fully validated before they are returned: a pool
or address that does not parse is a PluginProtocolError naming the call,
and the address or pool the plugin may have reserved is released again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from netsim.driverapi import IPAddress, IPInterface, IPNetwork
from netsim.errors import InvalidParameterError, NetsimError, PluginProtocolError, PluginUnavailableError
from netsim.ipamapi import Ipam, IpamCallback, IpamCapability
from netsim.plugin.client import ClientConfig, PluginAddress, PluginClient, PluginConnectError, shared_client
from netsim.plugin.codec import IPAM_DRIVER, Fields, ipam_capability_from_json, parse_cidr, parse_pool
from netsim.plugin.discovery import default_name, plugins_from_config

_PREFIX = IPAM_DRIVER + "."
T = TypeVar("T")


class RemoteIpam(Ipam):
    """Ipam whose every call is a POST to ``/IpamDriver.<Call>``."""

    def __init__(self, client: PluginClient, capability: IpamCapability) -> None:
        self.client = client
        self._capability = capability

    @classmethod
    def connect(
        cls, address: str | PluginAddress, *, name: str | None = None, config: ClientConfig | None = None
    ) -> RemoteIpam:
        client = PluginClient(name or default_name(address), address, config)
        try:
            return cls.from_client(client)
        except BaseException:
            client.close()
            raise

    @classmethod
    def from_client(cls, client: PluginClient, implements: Sequence[str] | None = None) -> RemoteIpam:
        client.require(IPAM_DRIVER, implements)
        call = _PREFIX + "GetCapabilities"
        reply = client.call(call, optional=True)
        capability = IpamCapability() if reply is None else _decoded(client, call, ipam_capability_from_json, reply)
        return cls(client, capability)

    @classmethod
    def init_for(
        cls, address: str | PluginAddress, *, name: str | None = None, config: ClientConfig | None = None
    ) -> Callable[[IpamCallback, Mapping[str, Any]], None]:
        """An init function registering the IPAM plugin at ``address``."""

        def init(registry: IpamCallback, _config: Mapping[str, Any]) -> None:
            ipam = cls.connect(address, name=name, config=config)
            registry.register_ipam_driver(ipam.name, ipam, ipam.capabilities())

        return init

    @property
    def name(self) -> str:
        return self.client.name

    def close(self) -> None:
        self.client.close()

    def __repr__(self) -> str:
        return f"RemoteIpam({self.client.name!r}, {str(self.client.address)!r})"

    def _call(self, method: str, args: Mapping[str, Any] | None) -> dict[str, Any]:
        reply = self.client.call(_PREFIX + method, args)
        assert reply is not None  # only optional calls return None
        return reply

    def _undo(self, failure: Exception, method: str, args: Mapping[str, Any]) -> None:
        if isinstance(failure, PluginConnectError):
            return
        with contextlib.suppress(NetsimError):
            self._call(method, args)

    def capabilities(self) -> IpamCapability:
        return self._capability

    def get_default_address_spaces(self) -> tuple[str, str]:
        reply = self._call("GetDefaultAddressSpaces", None)

        def decode(data: Any) -> tuple[str, str]:
            fields = Fields(data, "GetDefaultAddressSpaces reply")
            return fields.text("LocalDefaultAddressSpace"), fields.text("GlobalDefaultAddressSpace")

        return _decoded(self.client, _PREFIX + "GetDefaultAddressSpaces", decode, reply)

    def request_pool(
        self, address_space: str, pool: str, sub_pool: str, options: Mapping[str, str], v6: bool
    ) -> tuple[str, IPNetwork, dict[str, str]]:
        args = {"AddressSpace": address_space, "Pool": pool, "SubPool": sub_pool, "Options": dict(options), "V6": v6}
        reply = self._call("RequestPool", args)

        def decode(data: Any) -> tuple[str, IPNetwork, dict[str, str]]:
            fields = Fields(data, "RequestPool reply")
            pool_id = fields.text("PoolID", required=True)
            network = parse_pool(fields.text("Pool", required=True), "RequestPool reply.Pool")
            return pool_id, network, fields.string_map("Data")

        try:
            return _decoded(self.client, _PREFIX + "RequestPool", decode, reply)
        except PluginProtocolError as failure:
            pool_id = reply.get("PoolID")
            if isinstance(pool_id, str) and pool_id:
                self._undo(failure, "ReleasePool", {"PoolID": pool_id})
            raise

    def release_pool(self, pool_id: str) -> None:
        self._call("ReleasePool", {"PoolID": pool_id})

    def request_address(
        self, pool_id: str, preferred: IPAddress | None, options: Mapping[str, str]
    ) -> tuple[IPInterface | None, dict[str, str]]:
        args = {"PoolID": pool_id, "Address": str(preferred) if preferred else "", "Options": dict(options)}
        try:
            reply = self._call("RequestAddress", args)
        except PluginUnavailableError as failure:
            if preferred is not None:  # only a preferred address is known to undo
                self._undo(failure, "ReleaseAddress", {"PoolID": pool_id, "Address": str(preferred)})
            raise

        def decode(data: Any) -> tuple[IPInterface | None, dict[str, str]]:
            fields = Fields(data, "RequestAddress reply")
            text = fields.text("Address", required=True)
            # Like Docker's remote IPAM: an empty address is the null IPAM's "no address".
            address = parse_cidr(text, "RequestAddress reply.Address") if text else None
            return address, fields.string_map("Data")

        try:
            return _decoded(self.client, _PREFIX + "RequestAddress", decode, reply)
        except PluginProtocolError as failure:
            text = reply.get("Address")
            if isinstance(text, str) and text:
                self._undo(failure, "ReleaseAddress", {"PoolID": pool_id, "Address": text.split("/")[0]})
            raise

    def release_address(self, pool_id: str, address: IPAddress) -> None:
        self._call("ReleaseAddress", {"PoolID": pool_id, "Address": str(address)})

    def is_builtin(self) -> bool:
        return False


def _decoded(client: PluginClient, call: str, decode: Callable[[Any], T], reply: Any) -> T:
    try:
        return decode(reply)
    except InvalidParameterError as exc:
        if isinstance(exc, PluginProtocolError):
            raise
        raise PluginProtocolError(str(exc), plugin=client.name, call=call) from exc


def init(registry: IpamCallback, config: Mapping[str, Any]) -> None:
    """Register one RemoteIpam per configured or discovered IPAM plugin."""
    specs, client_config = plugins_from_config(config)
    for spec in specs:
        client = shared_client(registry, spec.name, spec.address, client_config)
        try:
            implements = list(client.implements) if client.implements is not None else client.activate()
            if IPAM_DRIVER not in implements:
                client.close()
                continue
            ipam = RemoteIpam.from_client(client, implements)
        except BaseException:
            client.close()
            raise
        registry.register_ipam_driver(spec.name, ipam, ipam.capabilities())
