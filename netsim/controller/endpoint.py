"""Endpoint creation and deletion: addresses from IPAM, then the driver."""

from __future__ import annotations

import functools
import ipaddress
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from netsim import netlabel
from netsim.controller.config import check_name, parse_address, parse_ports
from netsim.controller.network import SPECIAL_DRIVERS
from netsim.controller.records import endpoint_key
from netsim.controller.services import check_aliases
from netsim.controller.views import Endpoint
from netsim.driverapi import InterfaceInfo, IPAddress, IPInterface
from netsim.errors import ConflictError, InvalidParameterError, NoSpaceError
from netsim.ipamapi import Ipam
from netsim.netlabel import PortBinding
from netsim.undo import Undo, rollback_on_error
from netsim.validate import parse_mac

if TYPE_CHECKING:
    from netsim.controller import Controller


def endpoint_index(nid: str) -> str:
    return f"endpoint/{nid}"


@functools.lru_cache(maxsize=4096)
def _plain_ip(address: str) -> IPAddress:
    """The IP of a stored ``address/prefix`` text (memoized: an endpoint's address
    comes back with every churn of its network, and parsing costs more than the release)."""
    return ipaddress.ip_address(address.partition("/")[0])


def allocate_address(
    ipam: Ipam, network: dict[str, Any], family: str, preferred: IPAddress | None, undo: Undo
) -> tuple[IPInterface | None, str | None]:
    """An address from the network's pools of ``family`` ("ipv4"/"ipv6_pools"):
    the pool holding ``preferred``, else the first pool with room. The rollback
    step's description is formatted only if it runs (an address costs ~1 µs to format)."""
    entries = network[family]
    if preferred is not None:
        entries = [e for e in entries if preferred in ipaddress.ip_network(e["data"]["Pool"])]
        if not entries:
            raise InvalidParameterError(f"address {preferred} is not in any subnet of network {network['name']!r}")
    options = dict(network["ipam_options"])
    last_error: NoSpaceError | None = None
    for entry in entries:
        try:
            result = ipam.request_address(entry["pool_id"], preferred, options)
        except NoSpaceError as exc:
            last_error = exc
            continue
        if result is None or result[0] is None:
            return None, None
        address, pool_id = result[0], entry["pool_id"]
        undo.push(lambda a=address: f"release {a}", lambda a=address, p=pool_id: ipam.release_address(p, a.ip))  # type: ignore[misc]
        return address, pool_id
    if last_error is not None:
        raise last_error
    return None, None


def create_endpoint(
    ctrl: Controller,
    nid: str,
    name: str,
    ipv4: str | None,
    ipv6: str | None,
    mac: str | None,
    ports: Sequence[PortBinding] | None,
    sid: str | None = None,
    aliases: Sequence[str] | None = None,
) -> Endpoint:
    """``sid``: the sandbox the endpoint is made for, if known; its namespace goes to
    the driver (InterfaceInfo.sandbox_key), which may create the interface there."""
    network = ctrl.records.network(nid)
    check_name(name, "endpoint")
    names = check_aliases(aliases)
    wanted_mac = parse_mac(mac) if mac else None
    bindings = parse_ports(ports)
    preferred4 = parse_address(ipv4, 4, "IPv4 address")
    preferred6 = parse_address(ipv6, 6, "IPv6 address")
    entry = ctrl.registry.driver(network["driver"])
    special = entry.driver.type() in SPECIAL_DRIVERS
    if special and (preferred4 or preferred6 or wanted_mac):
        raise InvalidParameterError(f"endpoints of the {network['driver']} driver take no address or MAC")
    if preferred6 is not None and not network["ipv6"]:
        raise InvalidParameterError(f"network {network['name']!r} has no IPv6: cannot use {preferred6}")
    sandbox_ns = None
    if sid is not None:
        sandbox = ctrl.records.sandbox_view(sid)
        sandbox_ns = sandbox["namespace"] if sandbox["own_namespace"] else None
    eid = ctrl.new_id()
    with rollback_on_error() as undo:
        ctrl.records.claim_name(
            endpoint_index(nid), name, eid, lambda: f"endpoint in network {network['name']!r} named"
        )
        undo.push("release endpoint name", lambda: ctrl.records.release_name(endpoint_index(nid), name))
        address = address6 = None
        pool4 = pool6 = None
        if network["ipv4"] or network["ipv6_pools"]:
            ipam = ctrl.registry.ipam(network["ipam_driver"]).driver
            address, pool4 = allocate_address(ipam, network, "ipv4", preferred4, undo)
            if network["ipv6"]:
                address6, pool6 = allocate_address(ipam, network, "ipv6_pools", preferred6, undo)
        ifinfo = InterfaceInfo(wanted_mac, address, address6, sandbox_ns)
        options = {netlabel.MAC_ADDRESS: wanted_mac or "", netlabel.PORT_MAP: [b.to_json() for b in bindings]}
        entry.driver.create_endpoint(nid, eid, ifinfo, options)
        undo.push("driver delete_endpoint", lambda: entry.driver.delete_endpoint(nid, eid))
        record = {
            "id": eid,
            "name": name,
            "network": nid,
            "address": str(ifinfo.address) if ifinfo.address else None,
            "address_ipv6": str(ifinfo.address_ipv6) if ifinfo.address_ipv6 else None,
            "pool_id": pool4,
            "pool_id6": pool6,
            "mac": ifinfo.mac_address,
            "ports": [b.to_json() for b in bindings],
            "sandbox": None,
            "iface": None,
            "src_name": None,
            # where the driver made the interface when not in the host (see join's plug_interface)
            "iface_ns": sandbox_ns if ifinfo.created_in_container else None,
            "gateway": None,
            "gateway6": None,
            "static_routes": [],
            "created": time.time_ns(),
            **({"aliases": names} if names else {}),
        }
        ctrl.records.put(endpoint_key(nid, eid), record)
    return Endpoint(ctrl, nid, eid, name)


def delete_endpoint(ctrl: Controller, nid: str, eid: str) -> None:
    """Addresses go back to IPAM first (re-requested if the driver then fails),
    the driver call comes last, so a failure anywhere leaves the endpoint whole."""
    record = ctrl.records.endpoint_view(nid, eid)
    if record["sandbox"]:
        container = ctrl.records.sandbox_view(record["sandbox"])["container"]
        raise ConflictError(f"endpoint {record['name']!r} is still joined to container {container!r}: leave first")
    network = ctrl.records.network(nid)
    driver = ctrl.registry.driver(network["driver"]).driver
    with rollback_on_error() as undo:
        for address, pool_id in ((record["address"], record["pool_id"]), (record["address_ipv6"], record["pool_id6"])):
            if address and pool_id:
                ipam = ctrl.registry.ipam(network["ipam_driver"]).driver
                ip = _plain_ip(address)
                ipam.release_address(pool_id, ip)
                undo.push(
                    f"re-request {address}",
                    lambda ipam=ipam, pool_id=pool_id, ip=ip: ipam.request_address(
                        pool_id, ip, network["ipam_options"]
                    ),  # type: ignore[misc]
                )
        driver.delete_endpoint(nid, eid)
    ctrl.records.delete(endpoint_key(nid, eid))
    ctrl.records.release_name(endpoint_index(nid), record["name"])
