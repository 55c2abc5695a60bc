"""Accepted divergences between the fake and the real kernel, each with its reason.

The agreement test (tests/linux/test_kernel_agreement.py) consults this list:
an operation listed under ``skip_ops`` is not generated at all, and a
``normalize`` hook rewrites both snapshots before they are compared. Anything
not listed here that differs is a bug (usually in the fake).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Divergence:
    name: str
    reason: str
    #: operation names (agreement-test rules) not generated because of it
    skip_ops: tuple[str, ...] = ()


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
            "which is what Kernel.rename_link documents. Whichever the fake picks, one kernel generation "
            "disagrees, so the agreement test renames only links that are down."
        ),
    ),
    Divergence(
        name="listeners-and-probes",
        reason=(
            "Listeners, probes and captures are compared by the reachability tests, not by the snapshot "
            "state machine: a real listener is a socket in a thread, and its setup cost would dominate a "
            "stateful run."
        ),
        skip_ops=("add_listener", "delete_listener"),
    ),
)


def skipped_ops() -> frozenset[str]:
    """Every operation some accepted divergence keeps out of the agreement test."""
    return frozenset(op for divergence in DIVERGENCES for op in divergence.skip_ops)


def by_name(name: str) -> Divergence:
    for divergence in DIVERGENCES:
        if divergence.name == name:
            return divergence
    raise KeyError(name)
