"""Known divergences between the fake and the real kernel, each with its reason.

The agreement test (tests/linux/test_kernel_agreement.py) is their only
user: an operation named in ``skip_ops`` is not generated; an
``(op, fake error kind, linux error kind)`` triple in ``tolerated`` is
accepted as agreement; ``normalize`` rewrites *both* snapshots the same way
before they are compared, so the test keeps passing once the fake catches up.

``accepted=False`` marks a fake bug reported but not yet fixed (the entry
goes once the fake is fixed); ``accepted=True`` a difference that stays, and
why. Anything not listed here that differs is a bug.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Snapshot = dict[str, Any]


@dataclass(frozen=True)
class Divergence:
    name: str
    reason: str
    accepted: bool = True
    #: operation names (agreement-test rules) not generated because of it
    skip_ops: tuple[str, ...] = ()
    #: (operation, fake error kind, linux error kind) accepted as the same outcome
    tolerated: tuple[tuple[str, str, str], ...] = ()
    #: applied to both kernels' normalized snapshots before comparing
    normalize: Callable[[Snapshot], Snapshot] | None = None


def _drop_vxlan_default_destinations(snapshot: Snapshot) -> Snapshot:
    """Remove the all-zero FDB entry Linux derives from a vxlan's remote/group."""
    result = copy.deepcopy(snapshot)
    for space in result.values():
        implied = {
            (link["name"], link["attrs"].get("remote") or link["attrs"].get("group"))
            for link in space["links"]
            if link["kind"] == "vxlan"
        }
        space["fdb"] = [
            entry
            for entry in space["fdb"]
            if not (entry["mac"] == "00:00:00:00:00:00" and (entry["dev"], entry["dst"]) in implied)
        ]
    return result


def _drop_loopback_neighbours(snapshot: Snapshot) -> Snapshot:
    result = copy.deepcopy(snapshot)
    for space in result.values():
        space["neighbours"] = [entry for entry in space["neighbours"] if entry["dev"] != "lo"]
    return result


DIVERGENCES: tuple[Divergence, ...] = (
    Divergence(
        name="no-8021q-here",
        reason=(
            "The CI machine's kernel has no 8021q support: `ip link add ... type vlan` fails with "
            "EOPNOTSUPP ('Unknown device type'), so add_vlan cannot agree here. The fake models VLAN "
            "sub-interfaces as Linux does where 8021q exists."
        ),
        skip_ops=("add_vlan",),
    ),
    Divergence(
        name="rename-while-up",
        reason=(
            "Linux 6.x (6.18 on the CI machine) renames an UP interface; older kernels refused with EBUSY, "
            "which is what Kernel.rename_link documents and the fake does. One kernel generation disagrees "
            "either way, so the agreement test renames only links that are down."
        ),
    ),
    Divergence(
        name="listeners-and-probes",
        reason=(
            "Listeners, probes and captures are compared by the reachability tests, not by the snapshot "
            "state machine: a real listener is a socket served by a thread, whose setup would dominate a "
            "stateful run."
        ),
        skip_ops=("add_listener", "delete_listener"),
    ),
    Divergence(
        name="vxlan-default-destination",
        accepted=False,
        reason=(
            "Linux stores a vxlan's `remote`/`group` as an all-zero FDB entry (`00:00:00:00:00:00 dst "
            "REMOTE self permanent`), so fdb() lists it right after add_vxlan and delete_fdb can remove it; "
            "the fake keeps the remote only as a link attribute. Fake fix pending: list (and allow deleting) "
            "that entry."
        ),
        normalize=_drop_vxlan_default_destinations,
    ),
    Divergence(
        name="fdb-on-non-ethernet",
        accepted=False,
        reason=(
            "rtnl_fdb_add refuses devices that are not ARPHRD_ETHER (lo) with EINVAL before it asks the "
            "device; the fake answers EOPNOTSUPP there (right for Ethernet links that are neither bridge "
            "ports nor vxlans). Fake fix pending."
        ),
        tolerated=(
            ("add_fdb", "kernel-invalid:ENOTSUP", "kernel-invalid:EINVAL"),
            ("delete_fdb", "kernel-invalid:ENOTSUP", "kernel-invalid:EINVAL"),
        ),
    ),
    Divergence(
        name="newlink-validates-before-name-check",
        accepted=False,
        reason=(
            "rtnl_newlink runs the link kind's validate() (vxlan: VNI < 2^24, else ERANGE) before it looks "
            "for an existing device of that name (EEXIST); the fake checks the name first. Fake fix pending."
        ),
        tolerated=(("add_vxlan", "kernel-exists:EEXIST", "kernel-invalid:ERANGE"),),
    ),
    Divergence(
        name="gateway-before-link-state",
        accepted=False,
        reason=(
            "fib_check_nh looks up the gateway (ENETUNREACH when no connected route covers it) before it "
            "checks that the device is up (ENETDOWN); the fake checks the device first. Fake fix pending."
        ),
        tolerated=(("add_route", "kernel:ENETDOWN", "kernel-unreachable:ENETUNREACH"),),
    ),
    Divergence(
        name="neighbours-on-loopback",
        accepted=False,
        reason=(
            "On IFF_LOOPBACK (and point-to-point) devices Linux keys every IPv4 neighbour as 0.0.0.0 "
            "(`ip neigh add 10.0.0.9 ... dev lo` shows `0.0.0.0 dev lo`); the fake keeps the address. "
            "Rare in practice; the fake may model it later. Until then neighbours on lo are not compared."
        ),
        normalize=_drop_loopback_neighbours,
    ),
    Divergence(
        name="master-checked-before-port",
        accepted=False,
        reason=(
            "do_set_master asks the *master* first (a non-bridge master has no ndo_add_slave: EOPNOTSUPP); "
            "only a bridge then refuses a bridge as its port (ELOOP). The fake checks the port first. Fake "
            "fix pending."
        ),
        tolerated=(("set_master", "kernel:ELOOP", "kernel-invalid:ENOTSUP"),),
    ),
    Divergence(
        name="ipv6-default-route-delete",
        accepted=False,
        reason=(
            "Deleting an absent IPv6 *default* route answers ENOENT (`ip -6 route del default`: No such "
            "file or directory) while other absent IPv6 prefixes answer ESRCH; the fake answers ESRCH for "
            "both. Fake fix pending."
        ),
        tolerated=(("delete_route", "kernel-not-found:ESRCH", "kernel-not-found:ENOENT"),),
    ),
    Divergence(
        name="ipv6-gone-below-1280",
        accepted=False,
        reason=(
            "A link whose MTU drops below 1280 loses its IPv6 state (inet6_dev) in Linux; deleting an IPv6 "
            "address there answers ENXIO, where the fake answers EADDRNOTAVAIL. Fake fix pending."
        ),
        tolerated=(("delete_address", "kernel-not-found:EADDRNOTAVAIL", "kernel:ENXIO"),),
    ),
    Divergence(
        name="delete-invalid-rule",
        accepted=False,
        reason=(
            "LinuxKernel.delete_rule validates the rule first (an invalid rule is InvalidParameterError "
            "naming the problem, as for add_rule); the fake looks it up and answers ENOENT. Fake fix "
            "pending: validate on delete too."
        ),
        tolerated=(("delete_rule", "kernel-not-found:ENOENT", "invalid-parameter"),),
    ),
)


def skipped_ops() -> frozenset[str]:
    """Every operation some divergence keeps out of the agreement test."""
    return frozenset(op for divergence in DIVERGENCES for op in divergence.skip_ops)


def tolerated(op: str, fake_kind: str, linux_kind: str) -> bool:
    """Whether differing outcomes of ``op`` are a listed divergence."""
    return any((op, fake_kind, linux_kind) in divergence.tolerated for divergence in DIVERGENCES)


def normalize(snapshot: Snapshot) -> Snapshot:
    """Apply every divergence's snapshot normalizer (to either kernel's snapshot)."""
    for divergence in DIVERGENCES:
        if divergence.normalize is not None:
            snapshot = divergence.normalize(snapshot)
    return snapshot


def by_name(name: str) -> Divergence:
    for divergence in DIVERGENCES:
        if divergence.name == name:
            return divergence
    raise KeyError(name)
