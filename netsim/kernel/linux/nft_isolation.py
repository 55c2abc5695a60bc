"""Isolation groups (``netsim.kernel.base.Isolated``) on nftables: two sets and one rule per group.

For group ``G`` the inet table holds::

    set iso_<G>      type ifname;           elements: the members
    set isoself_<G>  type ifname . ifname;  elements: (m . m) for each member m
    chain forward { iifname @iso_<G> oifname @iso_<G> iifname . oifname != @isoself_<G> drop; ... }

so a packet routed from one member out of a *different* member is dropped,
one routed in and out of the same member is not (nftables cannot compare
two meta keys with each other; the pair set stands for "in == out"). The
group's rule is inserted at the top of the forward chain, ahead of every
Filter, when its first member comes, and goes with its last; in between a
member is two set elements, so adding or removing one costs the same
whatever the group's size (Docker's iptables backend needs two rules per
network in its DOCKER-ISOLATION chains for the same verdicts).

Set names carry the group in hex, as the bridge port sets do, so any valid
group name is a legal set name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

TABLE = "netsim"
FAMILY = "inet"


def members_set(group: str) -> str:
    return "iso_" + group.encode().hex()


def pairs_set(group: str) -> str:
    return "isoself_" + group.encode().hex()


@dataclass
class IsolationGroup:
    """One group's members and the handle of its drop rule in the forward chain."""

    handle: int
    members: set[str] = field(default_factory=set)


def _element(name: str, elements: list[Any]) -> dict[str, Any]:
    return {"family": FAMILY, "table": TABLE, "name": name, "elem": elements}


def member_elements(group: str, iface: str) -> list[tuple[str, list[Any]]]:
    """``(set, elements)`` a member adds to (or deletes from) its group's sets."""
    return [(members_set(group), [iface]), (pairs_set(group), [{"concat": [iface, iface]}])]


def create_group(group: str) -> list[dict[str, Any]]:
    """The sets and the drop rule of a new group (the rule is echoed: its handle is kept)."""
    members, pairs = members_set(group), pairs_set(group)
    base = {"family": FAMILY, "table": TABLE}
    rule = [
        {"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "@" + members}},
        {"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": "@" + members}},
        {
            "match": {
                "op": "!=",
                "left": {"concat": [{"meta": {"key": "iifname"}}, {"meta": {"key": "oifname"}}]},
                "right": "@" + pairs,
            }
        },
        {"drop": None},
    ]
    return [
        {"add": {"set": {**base, "name": members, "type": "ifname"}}},
        {"add": {"set": {**base, "name": pairs, "type": ["ifname", "ifname"]}}},
        {"insert": {"rule": {**base, "chain": "forward", "expr": rule}}},
    ]


def add_member(group: str, iface: str) -> list[dict[str, Any]]:
    return [{"add": {"element": _element(name, elements)}} for name, elements in member_elements(group, iface)]


def delete_member(group: str, iface: str) -> list[dict[str, Any]]:
    return [{"delete": {"element": _element(name, elements)}} for name, elements in member_elements(group, iface)]


def delete_group(group: str, handle: int) -> list[dict[str, Any]]:
    """The group's rule and its two sets (the rule first: a set in use cannot go)."""
    base = {"family": FAMILY, "table": TABLE}
    return [
        {"delete": {"rule": {**base, "chain": "forward", "handle": handle}}},
        {"delete": {"set": {**base, "name": members_set(group)}}},
        {"delete": {"set": {**base, "name": pairs_set(group)}}},
    ]


def inserted_rule_handle(echoed: list[dict[str, Any]]) -> int:
    """The handle nft echoed for the group's rule (an ``insert`` echoes as ``insert`` or ``add``)."""
    for item in echoed:
        for verb in ("insert", "add"):
            rule = item.get(verb, {}).get("rule")
            if rule is not None and "handle" in rule:
                return int(rule["handle"])
    raise LookupError("nft echoed no handle for the isolation rule")
