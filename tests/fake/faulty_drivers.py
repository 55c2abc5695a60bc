"""Deliberately broken drivers: each wraps the built-in bridge driver and
breaks exactly one promise of the Driver contract, so that a conformance check
can be shown to catch it (tests/fake/test_conformance_catches.py)."""

from __future__ import annotations

import dataclasses
import ipaddress
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from drivers.bridge import init as bridge_init
from netsim import netlabel
from netsim.driverapi import (
    CONNECTED,
    NEXTHOP,
    Capability,
    DiscoveryType,
    Driver,
    EventType,
    InterfaceInfo,
    IPAMData,
    JoinInfo,
    NetworkInfo,
    StaticRoute,
)
from netsim.errors import ConflictError, InvalidParameterError, NotFoundError, NotImplementedByDriverError
from netsim.kernel.base import Isolated


class _Collector:
    def __init__(self) -> None:
        self.driver: Driver | None = None

    def register_driver(self, name: str, driver: Driver, capability: Capability) -> None:
        self.driver = driver


class Wrapped(Driver):
    """The bridge driver, call for call. Subclasses break one thing."""

    name = "faulty"
    capability = Capability()

    def __init__(self, config: Mapping[str, Any]) -> None:
        collector = _Collector()
        bridge_init(collector, config)
        assert collector.driver is not None
        self.inner = collector.driver
        self.config = config

    def network_allocate(
        self, nid: str, options: Mapping[str, str], v4: Sequence[IPAMData], v6: Sequence[IPAMData]
    ) -> dict[str, str]:
        return self.inner.network_allocate(nid, options, v4, v6)

    def network_free(self, nid: str) -> None:
        self.inner.network_free(nid)

    def create_network(
        self, nid: str, options: Mapping[str, Any], ninfo: NetworkInfo, v4: Sequence[IPAMData], v6: Sequence[IPAMData]
    ) -> None:
        self.inner.create_network(nid, options, ninfo, v4, v6)

    def delete_network(self, nid: str) -> None:
        self.inner.delete_network(nid)

    def create_endpoint(self, nid: str, eid: str, ifinfo: InterfaceInfo, options: Mapping[str, Any]) -> None:
        self.inner.create_endpoint(nid, eid, ifinfo, options)

    def delete_endpoint(self, nid: str, eid: str) -> None:
        self.inner.delete_endpoint(nid, eid)

    def endpoint_oper_info(self, nid: str, eid: str) -> dict[str, Any]:
        return self.inner.endpoint_oper_info(nid, eid)

    def join(self, nid: str, eid: str, sbox_key: str, jinfo: JoinInfo, options: Mapping[str, Any]) -> None:
        self.inner.join(nid, eid, sbox_key, jinfo, options)

    def leave(self, nid: str, eid: str) -> None:
        self.inner.leave(nid, eid)

    def program_external_connectivity(self, nid: str, eid: str, options: Mapping[str, Any]) -> None:
        self.inner.program_external_connectivity(nid, eid, options)

    def revoke_external_connectivity(self, nid: str, eid: str) -> None:
        self.inner.revoke_external_connectivity(nid, eid)

    def type(self) -> str:
        return "faulty"

    def is_builtin(self) -> bool:
        return False


def _bad_capability() -> Capability:
    cap = object.__new__(Capability)  # bypasses the constructor's validation on purpose
    object.__setattr__(cap, "data_scope", "galactic")
    object.__setattr__(cap, "connectivity_scope", "local")
    return cap


class BadScope(Wrapped):
    capability = _bad_capability()


class EmptyType(Wrapped):
    def type(self) -> str:
        return ""


class BuiltinNotBool(Wrapped):
    def is_builtin(self) -> bool:
        return "no"  # type: ignore[return-value]


class LeakyDeleteNetwork(Wrapped):
    """Forgets the network but leaves its bridge in the kernel."""

    def delete_network(self, nid: str) -> None:
        return None


class DuplicateCreateAccepted(Wrapped):
    def create_network(
        self, nid: str, options: Mapping[str, Any], ninfo: NetworkInfo, v4: Sequence[IPAMData], v6: Sequence[IPAMData]
    ) -> None:
        try:
            super().create_network(nid, options, ninfo, v4, v6)
        except ConflictError:
            return


class DeleteUnknownSilent(Wrapped):
    def delete_network(self, nid: str) -> None:
        try:
            super().delete_network(nid)
        except NotFoundError:
            return


class AllocateAsymmetric(Wrapped):
    """Allocates a new token every time and never frees it."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        self.tokens = 0

    def network_allocate(
        self, nid: str, options: Mapping[str, str], v4: Sequence[IPAMData], v6: Sequence[IPAMData]
    ) -> dict[str, str]:
        self.tokens += 1
        return {"token": str(self.tokens)}

    def network_free(self, nid: str) -> None:
        return None


class OverwritesAddress(Wrapped):
    def create_endpoint(self, nid: str, eid: str, ifinfo: InterfaceInfo, options: Mapping[str, Any]) -> None:
        super().create_endpoint(nid, eid, ifinfo, options)
        ifinfo._address = ipaddress.ip_interface("10.77.0.250/24")  # behind the setter's back


class BadMac(Wrapped):
    def create_endpoint(self, nid: str, eid: str, ifinfo: InterfaceInfo, options: Mapping[str, Any]) -> None:
        super().create_endpoint(nid, eid, ifinfo, options)
        ifinfo._mac = "zz:zz:zz:zz:zz:zz"


class OperInfoList(Wrapped):
    def endpoint_oper_info(self, nid: str, eid: str) -> dict[str, Any]:
        return []  # type: ignore[return-value]


class AcceptsUnknownNetwork(Wrapped):
    def create_endpoint(self, nid: str, eid: str, ifinfo: InterfaceInfo, options: Mapping[str, Any]) -> None:
        try:
            super().create_endpoint(nid, eid, ifinfo, options)
        except NotFoundError:
            return


class LeakyDeleteEndpoint(Wrapped):
    """Deletes its record of the endpoint but leaves the veth in the kernel."""

    def delete_endpoint(self, nid: str, eid: str) -> None:
        links = {link.name for link in self.inner.kernel.links(self.inner.host.namespace)}  # type: ignore[attr-defined]
        super().delete_endpoint(nid, eid)
        host = self.inner.host  # type: ignore[attr-defined]
        gone = links - {link.name for link in self.inner.kernel.links(host.namespace)}  # type: ignore[attr-defined]
        for name in sorted(gone)[:1]:
            self.inner.kernel.add_bridge(host.namespace, name)  # type: ignore[attr-defined]


class RandomNames(Wrapped):
    """Names its links from a fresh random id each time it is told about an
    endpoint, so a restart's replay names them differently."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        self.aliases: dict[str, str] = {}

    def _alias(self, eid: str) -> str:
        return self.aliases.setdefault(eid, uuid.uuid4().hex * 2)

    def create_endpoint(self, nid: str, eid: str, ifinfo: InterfaceInfo, options: Mapping[str, Any]) -> None:
        super().create_endpoint(nid, self._alias(eid), ifinfo, options)

    def delete_endpoint(self, nid: str, eid: str) -> None:
        super().delete_endpoint(nid, self._alias(eid))

    def endpoint_oper_info(self, nid: str, eid: str) -> dict[str, Any]:
        return super().endpoint_oper_info(nid, self._alias(eid))

    def join(self, nid: str, eid: str, sbox_key: str, jinfo: JoinInfo, options: Mapping[str, Any]) -> None:
        super().join(nid, self._alias(eid), sbox_key, jinfo, options)

    def leave(self, nid: str, eid: str) -> None:
        super().leave(nid, self._alias(eid))

    def program_external_connectivity(self, nid: str, eid: str, options: Mapping[str, Any]) -> None:
        super().program_external_connectivity(nid, self._alias(eid), options)

    def revoke_external_connectivity(self, nid: str, eid: str) -> None:
        super().revoke_external_connectivity(nid, self._alias(eid))


class BadPrefix(Wrapped):
    def join(self, nid: str, eid: str, sbox_key: str, jinfo: JoinInfo, options: Mapping[str, Any]) -> None:
        super().join(nid, eid, sbox_key, jinfo, options)
        jinfo.dst_prefix = "bad/prefix"


class GatewayOutside(Wrapped):
    def join(self, nid: str, eid: str, sbox_key: str, jinfo: JoinInfo, options: Mapping[str, Any]) -> None:
        super().join(nid, eid, sbox_key, jinfo, options)
        jinfo.gateway = ipaddress.IPv4Address("192.0.2.1")


class BadStaticRoute(Wrapped):
    def join(self, nid: str, eid: str, sbox_key: str, jinfo: JoinInfo, options: Mapping[str, Any]) -> None:
        super().join(nid, eid, sbox_key, jinfo, options)
        jinfo.static_routes.append(StaticRoute(ipaddress.ip_network("10.99.0.0/16"), NEXTHOP, None))


class LeaveForgetsJoin(Wrapped):
    """Refuses a second join because leave never clears the joined state."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        self.joined: set[str] = set()

    def join(self, nid: str, eid: str, sbox_key: str, jinfo: JoinInfo, options: Mapping[str, Any]) -> None:
        if eid in self.joined:
            raise ConflictError(f"endpoint {eid[:12]} already joined")
        self.joined.add(eid)
        super().join(nid, eid, sbox_key, jinfo, options)


class RevokeNoop(Wrapped):
    def revoke_external_connectivity(self, nid: str, eid: str) -> None:
        return None


class RevokeTwiceRaises(Wrapped):
    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        self.revoked: set[str] = set()

    def program_external_connectivity(self, nid: str, eid: str, options: Mapping[str, Any]) -> None:
        self.revoked.discard(eid)
        super().program_external_connectivity(nid, eid, options)

    def revoke_external_connectivity(self, nid: str, eid: str) -> None:
        if eid in self.revoked:
            raise NotFoundError(f"nothing programmed for {eid[:12]}")
        self.revoked.add(eid)
        super().revoke_external_connectivity(nid, eid)


class GlobalBadEvents(Wrapped):
    capability = Capability(data_scope="global", connectivity_scope="global")

    def network_allocate(
        self, nid: str, options: Mapping[str, str], v4: Sequence[IPAMData], v6: Sequence[IPAMData]
    ) -> dict[str, str]:
        return {}

    def network_free(self, nid: str) -> None:
        return None

    def event_notify(self, event: EventType, nid: str, table_name: str, key: str, value: bytes) -> None:
        raise NotImplementedByDriverError("no table events")

    def decode_table_entry(self, table_name: str, key: str, value: bytes) -> tuple[str, dict[str, str]]:
        return None  # type: ignore[return-value]


class DiscoveryRaises(Wrapped):
    def discover_new(self, dtype: DiscoveryType, data: Any) -> None:
        raise ConflictError("discovery not supported")

    def discover_delete(self, dtype: DiscoveryType, data: Any) -> None:
        raise ConflictError("discovery not supported")


class NotThreadSafe(Wrapped):
    """Keeps the endpoint being created in one shared slot: concurrent calls trample it."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        self.current: str | None = None
        self.guard = threading.Lock()

    def create_endpoint(self, nid: str, eid: str, ifinfo: InterfaceInfo, options: Mapping[str, Any]) -> None:
        self.current = eid
        time.sleep(0.002)
        super().create_endpoint(nid, self.current, ifinfo, options)


class IccAlwaysOff(Wrapped):
    """Drops traffic between its own endpoints whatever the options say."""

    def create_network(
        self, nid: str, options: Mapping[str, Any], ninfo: NetworkInfo, v4: Sequence[IPAMData], v6: Sequence[IPAMData]
    ) -> None:
        generic = dict(options.get("com.docker.network.generic") or {})
        generic["com.docker.network.bridge.enable_icc"] = "false"
        super().create_network(nid, {**options, "com.docker.network.generic": generic}, ninfo, v4, v6)


class NoIsolation(Wrapped):
    """Removes the drop rules that keep bridge networks apart."""

    def create_network(
        self, nid: str, options: Mapping[str, Any], ninfo: NetworkInfo, v4: Sequence[IPAMData], v6: Sequence[IPAMData]
    ) -> None:
        super().create_network(nid, options, ninfo, v4, v6)
        kernel, ns = self.inner.kernel, self.inner.host.namespace  # type: ignore[attr-defined]
        for rule in kernel.rules(ns):
            if isinstance(rule, Isolated):
                kernel.delete_rule(ns, rule)


class CalicoGateway(Wrapped):
    """Not faulty: Calico's design, a link-local gateway outside the subnet reached
    through a CONNECTED /32 route. libnetwork accepts it, so the suite must too."""

    def join(self, nid: str, eid: str, sbox_key: str, jinfo: JoinInfo, options: Mapping[str, Any]) -> None:
        super().join(nid, eid, sbox_key, jinfo, options)
        jinfo.gateway = ipaddress.IPv4Address("169.254.1.1")
        jinfo.static_routes.append(StaticRoute(ipaddress.ip_network("169.254.1.1/32"), CONNECTED, None))


class DuplicateEndpointLeaks(Wrapped):
    """Takes a second create_endpoint with a known id as a new endpoint under
    another name: a second veth nobody will ever delete."""

    def create_endpoint(self, nid: str, eid: str, ifinfo: InterfaceInfo, options: Mapping[str, Any]) -> None:
        try:
            super().create_endpoint(nid, eid, ifinfo, options)
        except ConflictError:
            super().create_endpoint(nid, uuid.uuid4().hex * 2, InterfaceInfo(address=ifinfo.address), options)


class MalformedMtuBareError(Wrapped):
    """Parses the MTU option with a bare int(): a malformed value escapes as ValueError."""

    def create_network(
        self, nid: str, options: Mapping[str, Any], ninfo: NetworkInfo, v4: Sequence[IPAMData], v6: Sequence[IPAMData]
    ) -> None:
        generic = options.get("com.docker.network.generic") or {}
        if "com.docker.network.driver.mtu" in generic:
            int(generic["com.docker.network.driver.mtu"])
        super().create_network(nid, options, ninfo, v4, v6)


class NoDualStack(Wrapped):
    """Refuses any network with an IPv6 pool: no dual stack."""

    def create_network(
        self, nid: str, options: Mapping[str, Any], ninfo: NetworkInfo, v4: Sequence[IPAMData], v6: Sequence[IPAMData]
    ) -> None:
        if v6:
            raise InvalidParameterError("faulty: IPv6 pools are not supported")
        super().create_network(nid, options, ninfo, v4, v6)


class PublishesToTheWrongPort(Wrapped):
    """Reports the requested port map but forwards each host port to the
    container port + 1, where nothing listens: the port never answers."""

    def program_external_connectivity(self, nid: str, eid: str, options: Mapping[str, Any]) -> None:
        bindings = options.get(netlabel.PORT_MAP) or []
        shifted = [
            {**b, "ContainerPort": int(b["ContainerPort"]) + 1}
            if isinstance(b, Mapping)
            else dataclasses.replace(b, container_port=b.container_port + 1)
            for b in bindings
        ]
        super().program_external_connectivity(nid, eid, {**options, netlabel.PORT_MAP: shifted})
