"""Remove the namespaces crashed netsim runs left behind (``netsim clean``).

Only names of netsim's exact scheme qualify: ``netsim-<run>-<role>`` where
``<run>`` is a run id (4-12 lowercase letters or digits, see
:mod:`netsim.naming`). Nothing else under /run/netns is ever touched, and a
narrower ``prefix`` (``netsim-<run>-``) limits the sweep to one run.
"""

from __future__ import annotations

import errno
import re

from netsim.errors import InvalidParameterError, kernel_error
from netsim.kernel.linux.netns import remove_namespace
from netsim.naming import NAMESPACE_ROOT
from netsim.safety import namespaces_with_prefix

#: a netsim namespace: root, run id, dash, a non-empty role without '/'
NETSIM_NAMESPACE = re.compile(rf"^{re.escape(NAMESPACE_ROOT)}[a-z0-9]{{4,12}}-[^/\s]+$")


def is_netsim_namespace(name: str) -> bool:
    """True for names netsim's naming scheme produces.

    >>> is_netsim_namespace("netsim-1a2b3c-h1"), is_netsim_namespace("netsim-h1"), is_netsim_namespace("docker-1")
    (True, False, False)
    """
    return bool(NETSIM_NAMESPACE.match(name))


def leftovers(prefix: str = NAMESPACE_ROOT) -> list[str]:
    """Namespaces under /run/netns that ``clean(prefix)`` would remove, sorted."""
    if not prefix.startswith(NAMESPACE_ROOT):
        raise InvalidParameterError(f"refusing prefix {prefix!r}: it must start with {NAMESPACE_ROOT!r}")
    return [name for name in namespaces_with_prefix(prefix) if is_netsim_namespace(name)]


def clean(prefix: str = NAMESPACE_ROOT, dry_run: bool = False) -> list[str]:
    """Remove (or with ``dry_run`` only list) netsim namespaces starting with ``prefix``.

    Returns the names removed (or that would be). Removes each by exact name;
    if some cannot be removed, the others still are and a KernelError names
    the failures. Do not run it over a live run's prefix: it would pull the
    namespaces from under that run.
    """
    names = leftovers(prefix)
    if dry_run:
        return names
    removed: list[str] = []
    failures: list[str] = []
    for name in names:
        try:
            remove_namespace(name)
        except OSError as exc:  # KernelError is an OSError too
            failures.append(f"{name}: {exc}")
        else:
            removed.append(name)
    if failures:
        raise kernel_error(errno.EBUSY, "could not remove " + "; ".join(failures))
    return removed
