"""Known divergences between the fake and the real kernel, each with its reason.

The agreement test (tests/linux/test_kernel_agreement.py) is their only
user: an operation named in ``skip_ops`` is not generated; an
``(op, fake error kind, linux error kind)`` triple in ``tolerated`` is
accepted as agreement; ``normalize`` rewrites *both* snapshots the same way
before they are compared, so the test keeps passing once the fake catches up.

``accepted=False`` marks a fake bug reported but not yet fixed (the entry
goes once the fake is fixed); ``accepted=True`` a difference that stays, and
why. Anything not listed here that differs is a bug.

Found by the agreement machine and fixed in the fake since (kept here as the
record of what it catches): a vxlan's remote/group as an all-zero FDB entry;
EINVAL for FDB entries on non-Ethernet links; newlink validating kind data
(VNI range) before the name check; gateway lookup before the link-state
check; IPv4 neighbours on loopback keyed 0.0.0.0; the master checked before
the port in set_master; ENOENT for an absent IPv6 default route; validating
a rule before deleting it; renaming a link that is up (Linux 6.x allows it);
ENXIO for deleting an IPv6 address from a link below MTU 1280 (no inet6_dev);
a gateway that is one of the namespace's own addresses (Linux's local table
decides first: EINVAL for IPv6, the address's link and its state for IPv4);
neighbour entries surviving a MAC change (Linux flushes the device's, permanent
ones too). Found by the reachability agreement test (tests/linux/
test_reachability_agreement.py): two probes from one source port to two host
addresses DNATed to one target left two conntrack entries with one reply
tuple, and the target's answers to the second were un-NATed with the first
one's address (Linux keeps reply tuples unique).

Closed on the Linux side instead: every namespace LinuxKernel creates has
IPv6 DAD off (``accept_dad`` 0 for ``all`` and ``default``) and IPv4 ICMP
redirects off (``send_redirects`` 0), so IPv6 addresses, link-local included,
are usable at once and a router's ICMP error budget is not spent on
redirects: the fake models neither DAD nor redirects.
"""

from __future__ import annotations

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
        name="no-ipvlan-here",
        reason=(
            "The CI machine's kernel has no ipvlan link kind: `ip link add ... type ipvlan` fails with "
            "EOPNOTSUPP and creates nothing, so add_ipvlan cannot agree here. LinuxKernel.add_ipvlan "
            "refuses with a KernelInvalidError naming the missing link kind; the ipvlan driver probes the "
            "kernel at create_network, so a network (and a scenario) is refused before any container. "
            "The fake models ipvlan as Documentation/networking/ipvlan.rst describes it."
        ),
        skip_ops=("add_ipvlan",),
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
