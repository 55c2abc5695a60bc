"""Network creation and deletion: validation, IPAM pools, the driver call.

Everything a creation does is pushed onto an undo log, so a failure at any
step (IPAM, driver, kernel, store) releases what was taken.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from netsim import netlabel
from netsim.controller.config import IpamConfig, ParsedPool, check_name, parse_pool
from netsim.controller.records import network_key, normalized
from netsim.controller.views import Network, ipam_data_of
from netsim.driverapi import IPAMData, IPInterface, NetworkInfo
from netsim.errors import ConflictError, InvalidParameterError
from netsim.ipamapi import GATEWAY_TYPE, REQUEST_ADDRESS_TYPE, Ipam
from netsim.undo import Undo, rollback_on_error

if TYPE_CHECKING:
    from netsim.controller import Controller

#: libnetwork's hasSpecialDriver: no IPAM for these
SPECIAL_DRIVERS = ("host", "null")
NETWORK_INDEX = "network"


def string_map(value: Mapping[str, Any] | None, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidParameterError(f"{what} must be a mapping of strings")
    out = {}
    for key, item in value.items():
        if not isinstance(key, str) or not isinstance(item, str):
            raise InvalidParameterError(f"{what}: {key!r}={item!r} is not a string pair")
        out[key] = item
    return out


def _check_overlaps(ctrl: Controller, name: str, pools: list[ParsedPool]) -> None:
    """Explicit subnets may not overlap each other or another network's explicit subnets."""
    mine = [p.subnet for p in pools if p.subnet is not None]
    for i, subnet in enumerate(mine):
        for other in mine[i + 1 :]:
            if subnet.version == other.version and subnet.overlaps(other):
                raise InvalidParameterError(f"subnets {subnet} and {other} of network {name!r} overlap")
    for record in ctrl.records.networks():
        for entry in record["ipv4"] + record["ipv6_pools"]:
            if not entry["requested"]:
                continue
            theirs = ipaddress.ip_network(entry["requested"])
            for subnet in mine:
                if subnet.version == theirs.version and subnet.overlaps(theirs):
                    raise ConflictError(f"subnet {subnet} overlaps with subnet {theirs} of network {record['name']!r}")


def _request_address(
    ipam: Ipam, pool_id: str, preferred: Any, options: Mapping[str, str], undo: Undo
) -> IPInterface | None:
    result = ipam.request_address(pool_id, preferred, options)
    if result is None or result[0] is None:  # the null IPAM hands out nothing
        return None
    address = result[0]
    undo.push(f"release {address}", lambda: ipam.release_address(pool_id, address.ip))
    return address


def allocate_pools(
    ipam: Ipam, config: IpamConfig, pools: list[ParsedPool], v6: bool, undo: Undo
) -> list[dict[str, Any]]:
    """Request each pool, its gateway and aux addresses; return the records' pool entries."""
    local_space, _ = ipam.get_default_address_spaces()
    options = dict(config.options)
    entries = []
    for parsed in pools or [ParsedPool(None, None, None, {})]:
        pool_id, pool, _data = ipam.request_pool(
            local_space, str(parsed.subnet or ""), str(parsed.ip_range or ""), options, v6
        )
        undo.push(f"release pool {pool_id}", lambda pool_id=pool_id: ipam.release_pool(pool_id))  # type: ignore[misc]
        gateway = _request_address(ipam, pool_id, parsed.gateway, {**options, REQUEST_ADDRESS_TYPE: GATEWAY_TYPE}, undo)
        aux: dict[str, IPInterface] = {}
        for key, address in parsed.aux_addresses.items():
            taken = _request_address(ipam, pool_id, address, options, undo)
            if taken is not None:
                aux[key] = taken
        data = IPAMData(address_space=local_space, pool=pool, gateway=gateway, aux_addresses=aux)
        entries.append(
            {
                "pool_id": pool_id,
                "requested": str(parsed.subnet or ""),
                "ip_range": str(parsed.ip_range or ""),
                "data": data.to_json(),
            }
        )
    return entries


def create_network(
    ctrl: Controller,
    name: str,
    driver: str,
    options: Mapping[str, str] | None,
    ipam: IpamConfig | None,
    ipv6: bool,
    internal: bool,
    labels: Mapping[str, str] | None,
    ipv4: bool = True,
) -> Network:
    """``ipv4=False`` is Docker's ``--ipv4=false`` (API EnableIPv4): no IPv4 pool is
    requested at all, so the network is IPv6-only and needs ``ipv6``."""
    check_name(name, "network")
    driver_options = string_map(options, "network options")
    labels_map = string_map(labels, "network labels")
    ipam = ipam or IpamConfig()
    if not isinstance(ipam, IpamConfig):
        raise InvalidParameterError("ipam must be an IpamConfig")
    internal = bool(internal) or netlabel.flag(driver_options, netlabel.INTERNAL)
    entry = ctrl.registry.driver(driver)
    pools_v4 = [parse_pool(p, 4) for p in ipam.pools]
    pools_v6 = [parse_pool(p, 6) for p in ipam.pools_v6]
    if pools_v6 and not ipv6:
        raise InvalidParameterError(f"network {name!r} has IPv6 pools but ipv6 is not enabled")
    if not ipv4 and not ipv6:
        raise InvalidParameterError(f"network {name!r} has neither IPv4 nor IPv6 enabled")
    if pools_v4 and not ipv4:
        raise InvalidParameterError(f"network {name!r} has IPv4 pools but IPv4 is disabled")
    # As libnetwork (hasSpecialDriver): host and null networks skip IPAM; a pool
    # configuration given for them is validated above but otherwise ignored.
    special = entry.driver.type() in SPECIAL_DRIVERS
    _check_overlaps(ctrl, name, pools_v4 + pools_v6)
    nid = ctrl.new_id()
    with rollback_on_error() as undo:
        ctrl.records.claim_name(NETWORK_INDEX, name, nid, "network")
        undo.push("release network name", lambda: ctrl.records.release_name(NETWORK_INDEX, name))
        ipv4_entries: list[dict[str, Any]] = []
        ipv6_entries: list[dict[str, Any]] = []
        if not special:
            ipam_driver = ctrl.registry.ipam(ipam.driver).driver
            if ipv4:
                ipv4_entries = allocate_pools(ipam_driver, ipam, pools_v4, False, undo)
            if ipv6:
                ipv6_entries = allocate_pools(ipam_driver, ipam, pools_v6, True, undo)
        record = {
            "id": nid,
            "name": name,
            "driver": driver,
            "options": driver_options,
            "ipv6": bool(ipv6),
            "internal": internal,
            "labels": labels_map,
            "scope": entry.capability.data_scope,
            "ipam_driver": ipam.driver,
            "ipam_options": dict(ipam.options),
            "ipv4": ipv4_entries,
            "ipv6_pools": ipv6_entries,
            # Creation order, for replay after a restart (drivers set up in this order).
            "created": time.time_ns(),
        }
        ctrl.records.put(network_key(nid), normalized(record))
        undo.push("delete network record", lambda: ctrl.records.delete(network_key(nid)))
        ninfo = NetworkInfo()
        driver_opts = {
            netlabel.GENERIC_DATA: driver_options,
            netlabel.ENABLE_IPV6: bool(ipv6),
            netlabel.INTERNAL: internal,
        }
        entry.driver.create_network(nid, driver_opts, ninfo, ipam_data_of(ipv4_entries), ipam_data_of(ipv6_entries))
        undo.push("driver delete_network", lambda: entry.driver.delete_network(nid))
        if ninfo.tables:
            # Which table events this network's driver wants (multi-host delivery reads it).
            record["tables"] = {table: int(kind) for table, kind in ninfo.tables.items()}
            ctrl.records.put(network_key(nid), normalized(record))
        if ninfo.ipam_updates:
            for pool_entry, data in zip(ipv4_entries, ninfo.ipam_updates, strict=False):
                pool_entry["data"] = data.to_json()
            ctrl.records.put(network_key(nid), normalized(record))
    return Network(ctrl, nid, name)


def release_pools(ipam: Ipam, entries: list[dict[str, Any]]) -> list[str]:
    """Give back aux addresses, gateway and pool of each entry; return problems."""
    problems = []
    for pool_entry in entries:
        data = IPAMData.from_json(pool_entry["data"])
        addresses = [a.ip for a in data.aux_addresses.values()] + ([data.gateway.ip] if data.gateway else [])
        for address in addresses:
            try:
                ipam.release_address(pool_entry["pool_id"], address)
            except Exception as exc:  # keep releasing the rest
                problems.append(f"release {address}: {exc!r}")
        try:
            ipam.release_pool(pool_entry["pool_id"])
        except Exception as exc:
            problems.append(f"release pool {pool_entry['pool_id']}: {exc!r}")
    return problems


def delete_network(ctrl: Controller, nid: str) -> None:
    record = ctrl.records.network(nid)
    count = len(ctrl.records.endpoints(nid))
    if count:
        raise ConflictError(f"network {record['name']!r} has {count} active endpoint(s)")
    entry = ctrl.registry.driver(record["driver"])
    entry.driver.delete_network(nid)
    entries = record["ipv4"] + record["ipv6_pools"]
    problems = release_pools(ctrl.registry.ipam(record["ipam_driver"]).driver, entries) if entries else []
    ctrl.records.delete(network_key(nid))
    ctrl.records.release_name(NETWORK_INDEX, record["name"])
    if problems:
        raise ConflictError(f"network {record['name']!r} deleted, but IPAM release failed: {'; '.join(problems)}")
