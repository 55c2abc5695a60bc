"""``docker network inspect``-shaped output (one element of its list)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from netsim.controller import Controller


def _ipam_config(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for entry in entries:
        data = entry["data"]
        item: dict[str, Any] = {"Subnet": data["Pool"]}
        if entry["ip_range"]:
            item["IPRange"] = entry["ip_range"]
        if data["Gateway"]:
            item["Gateway"] = data["Gateway"].split("/")[0]
        if data["AuxAddresses"]:
            item["AuxiliaryAddresses"] = {k: v.split("/")[0] for k, v in data["AuxAddresses"].items()}
        out.append(item)
    return out


def inspect_network(ctrl: Controller, nid: str) -> dict[str, Any]:
    record = ctrl.records.network(nid)
    containers: dict[str, Any] = {}
    for endpoint in ctrl.records.endpoints(nid):
        if not endpoint["sandbox"]:
            continue
        sandbox = ctrl.records.sandbox(endpoint["sandbox"])
        containers[sandbox["id"]] = {
            "Name": sandbox["container"],
            "EndpointID": endpoint["id"],
            "MacAddress": endpoint["mac"] or "",
            "IPv4Address": endpoint["address"] or "",
            "IPv6Address": endpoint["address_ipv6"] or "",
        }
    special = not record["ipv4"] and not record["ipv6_pools"]
    return {
        "Name": record["name"],
        "Id": record["id"],
        "Scope": record["scope"],
        "Driver": record["driver"],
        "EnableIPv6": record["ipv6"],
        "IPAM": {
            "Driver": record["ipam_driver"],
            "Options": dict(record["ipam_options"]),
            "Config": [] if special else _ipam_config(record["ipv4"] + record["ipv6_pools"]),
        },
        "Internal": record["internal"],
        "Attachable": False,
        "Ingress": False,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": False,
        "Containers": containers,
        "Options": dict(record["options"]),
        "Labels": dict(record["labels"]),
    }
