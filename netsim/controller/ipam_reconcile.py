"""Recovery, step 6: the IPAM's books against the records (see
:mod:`netsim.controller.recovery`). Only the local address space of an IPAM
that can enumerate what it holds (``pool_ids`` / ``allocated``, the default
IPAM): other hosts own addresses in global pools, and a remote IPAM keeps
its own books."""

from __future__ import annotations

import contextlib
import ipaddress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from netsim.errors import NetsimError, NotFoundError

if TYPE_CHECKING:
    from netsim.controller import Controller
    from netsim.controller.recovery import RecoveryReport, _State

Record = dict[str, Any]


def parse_ip_text(text: str) -> Any:
    """The address of ``10.0.0.2/24`` (ip_interface would build a network too: 20x the cost)."""
    return ipaddress.ip_address(text.partition("/")[0])


def endpoint_addresses(endpoint: Record) -> list[tuple[str | None, str | None]]:
    return [(endpoint["address"], endpoint["pool_id"]), (endpoint["address_ipv6"], endpoint["pool_id6"])]


def quietly(action: Any, *args: Any) -> None:
    with contextlib.suppress(NetsimError):
        action(*args)


def reconcile_ipam(ctrl: Controller, state: _State, report: RecoveryReport) -> None:
    by_driver: dict[str, list[Record]] = {}
    for network in state.networks.values():
        by_driver.setdefault(network["ipam_driver"], []).append(network)
    for name, entry in ctrl.registry.ipam_drivers().items():
        ipam = entry.driver
        if not hasattr(ipam, "pool_ids") or not hasattr(ipam, "allocated"):
            continue  # cannot enumerate what it holds (a remote IPAM keeps its own books)
        local_space, _ = ipam.get_default_address_spaces()
        owners = _owned_addresses(by_driver.get(name, []), state)
        for pool_id in ipam.pool_ids(local_space):
            if pool_id not in owners:
                quietly(ipam.release_pool, pool_id)
                report.released.append(f"pool {pool_id}: no network owns it")
        for pool_id, owned in owners.items():
            if not pool_id.startswith(f"{local_space}/"):
                continue
            try:
                taken = ipam.allocated(pool_id)
            except NotFoundError:
                continue  # the pool itself was lost with the IPAM's store: nothing to compare
            for address in sorted(taken - owned.all_of_pool, key=int):
                quietly(ipam.release_address, pool_id, address)
                report.released.append(f"address {address} in {pool_id}: no record owns it")
            for address in sorted(owned.mine - taken, key=int):
                quietly(ipam.request_address, pool_id, address, {})
                report.released.append(f"address {address} in {pool_id}: owned but free, taken back")


@dataclass
class _Owned:
    mine: set[Any] = field(default_factory=set)
    #: addresses owned through any pool id sharing this pool's subnet (sub-pools share the bitmap)
    all_of_pool: set[Any] = field(default_factory=set)


def _owned_addresses(networks: list[Record], state: _State) -> dict[str, _Owned]:
    owners: dict[str, _Owned] = {}
    subnet_of: dict[str, str] = {}
    for network in networks:
        for entry in network["ipv4"] + network["ipv6_pools"]:
            owned = owners.setdefault(entry["pool_id"], _Owned())
            subnet_of[entry["pool_id"]] = entry["data"]["Pool"]
            data = entry["data"]
            for text in [data.get("Gateway"), *(data.get("AuxAddresses") or {}).values()]:
                if text:
                    owned.mine.add(parse_ip_text(text))
    for endpoint in state.endpoints.values():
        for address, pool_id in (
            (endpoint["address"], endpoint["pool_id"]),
            (endpoint["address_ipv6"], endpoint["pool_id6"]),
        ):
            if address and pool_id in owners:
                owners[pool_id].mine.add(parse_ip_text(address))
    for pool_id, owned in owners.items():
        for other, other_owned in owners.items():
            if subnet_of[other] == subnet_of[pool_id]:
                owned.all_of_pool |= other_owned.mine
    return owners
