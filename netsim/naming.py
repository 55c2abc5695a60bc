"""Per-run names for real-kernel objects, and name validation.

Every namespace netsim creates is called ``netsim-<run>-<role>``. ``<run>`` is
random per process (or ``NETSIM_RUN_ID``), so concurrent runs never collide and
``netsim clean`` can remove the leftovers of one crashed run by exact prefix.
"""

from __future__ import annotations

import errno
import os
import re
import secrets

from netsim.errors import kernel_error

MAX_IFNAME = 15  # IFNAMSIZ - 1: Linux refuses longer names with EINVAL
NAMESPACE_ROOT = "netsim-"
_RUN_ID_RE = re.compile(r"^[a-z0-9]{4,12}$")


def new_run_id() -> str:
    forced = os.environ.get("NETSIM_RUN_ID")
    if forced:
        if not _RUN_ID_RE.match(forced):
            raise ValueError("NETSIM_RUN_ID must be 4-12 lowercase letters or digits")
        return forced
    return secrets.token_hex(3)


def run_prefix(run_id: str) -> str:
    """``netsim-<run>-``: the prefix of every namespace of that run."""
    return f"{NAMESPACE_ROOT}{run_id}-"


def check_ifname(name: str) -> None:
    """Refuse names Linux refuses, with the errno Linux gives (EINVAL)."""
    raw = name.encode()
    if not raw or len(raw) > MAX_IFNAME or name in (".", "..") or any(c in name for c in "/: \t\n\r\0"):
        raise kernel_error(errno.EINVAL, f"invalid interface name {name!r}")


def check_nsname(name: str) -> None:
    if not name or "/" in name or name in (".", "..") or len(name.encode()) > 200 or "\0" in name:
        raise kernel_error(errno.EINVAL, f"invalid namespace name {name!r}")
