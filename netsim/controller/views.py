"""Read-only views of networks, endpoints and sandboxes.

A view holds only ids; every property reads the current record from the
store, so a view never goes stale (and raises NotFoundError once its object
is deleted).
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from netsim.driverapi import IPAMData, IPInterface
from netsim.netlabel import PortBinding

if TYPE_CHECKING:
    from netsim.controller import Controller


def ipam_data_of(entries: list[dict[str, Any]]) -> list[IPAMData]:
    return [IPAMData.from_json(e["data"]) for e in entries]


def _iface(text: str | None) -> IPInterface | None:
    return ipaddress.ip_interface(text) if text else None


class Network:
    def __init__(self, ctrl: Controller, nid: str, name: str) -> None:
        self._ctrl = ctrl
        self.id = nid
        self.name = name

    @property
    def _record(self) -> dict[str, Any]:
        return self._ctrl.records.network(self.id)

    @property
    def driver(self) -> str:
        return str(self._record["driver"])

    @property
    def options(self) -> dict[str, str]:
        return dict(self._record["options"])

    @property
    def ipv6(self) -> bool:
        return bool(self._record["ipv6"])

    @property
    def internal(self) -> bool:
        return bool(self._record["internal"])

    @property
    def labels(self) -> dict[str, str]:
        return dict(self._record["labels"])

    @property
    def scope(self) -> str:
        return str(self._record["scope"])

    @property
    def ipv4_data(self) -> list[IPAMData]:
        return ipam_data_of(self._record["ipv4"])

    @property
    def ipv6_data(self) -> list[IPAMData]:
        return ipam_data_of(self._record["ipv6_pools"])

    def endpoints(self) -> list[Endpoint]:
        return [Endpoint(self._ctrl, self.id, r["id"], r["name"]) for r in self._ctrl.records.endpoints(self.id)]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Network) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        return f"Network(name={self.name!r}, id={self.id[:12]})"


class Endpoint:
    def __init__(self, ctrl: Controller, nid: str, eid: str, name: str) -> None:
        self._ctrl = ctrl
        self.network_id = nid
        self.id = eid
        self.name = name

    @property
    def _record(self) -> dict[str, Any]:
        return self._ctrl.records.endpoint(self.network_id, self.id)

    @property
    def network(self) -> Network:
        record = self._ctrl.records.network(self.network_id)
        return Network(self._ctrl, self.network_id, record["name"])

    @property
    def address(self) -> IPInterface | None:
        return _iface(self._record["address"])

    @property
    def address_ipv6(self) -> IPInterface | None:
        return _iface(self._record["address_ipv6"])

    @property
    def mac(self) -> str | None:
        mac = self._record["mac"]
        return str(mac) if mac else None

    @property
    def ports(self) -> list[PortBinding]:
        return [PortBinding.from_json(p) for p in self._record["ports"]]

    @property
    def aliases(self) -> list[str]:
        """``--network-alias`` names (lowercased) the embedded DNS answers with this endpoint."""
        return list(self._record.get("aliases", []))

    @property
    def sandbox(self) -> Sandbox | None:
        sid = self._record["sandbox"]
        if not sid:
            return None
        record = self._ctrl.records.sandbox(sid)
        return Sandbox(self._ctrl, sid, record["container"])

    @property
    def iface(self) -> str | None:
        iface = self._record["iface"]
        return str(iface) if iface else None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Endpoint) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        return f"Endpoint(name={self.name!r}, id={self.id[:12]})"


class Sandbox:
    def __init__(self, ctrl: Controller, sid: str, container: str) -> None:
        self._ctrl = ctrl
        self.id = sid
        self.container = container

    @property
    def _record(self) -> dict[str, Any]:
        return self._ctrl.records.sandbox(self.id)

    @property
    def key(self) -> str:
        """The namespace name, handed to drivers as ``sbox_key``."""
        return str(self._record["namespace"])

    @property
    def namespace(self) -> str:
        return str(self._record["namespace"])

    @property
    def shares_host_namespace(self) -> bool:
        return not self._record["own_namespace"]

    def endpoints(self) -> list[Endpoint]:
        out = []
        for nid, eid in self._record["endpoints"]:
            record = self._ctrl.records.endpoint(nid, eid)
            out.append(Endpoint(self._ctrl, nid, eid, record["name"]))
        return out

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sandbox) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        return f"Sandbox(container={self.container!r}, id={self.id[:12]})"
