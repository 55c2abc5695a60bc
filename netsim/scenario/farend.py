"""Where an expectation's probe ends up on a built scenario, and who it
should be seen from there: the runtime half of ``to: host``, ``family:``
and ``seen_from:`` (their load-time half is :mod:`netsim.scenario.expectkeys`).
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from netsim.scenario.model import Expectation, host_target, outside_host
from netsim.scenario.observe import own_addresses

if TYPE_CHECKING:
    from netsim.scenario.runner import BuiltScenario


def probe_host(world: BuiltScenario, exp: Expectation) -> str:
    """The host a probe's relative words (``outside``, ``host``) refer to:
    the source container's host; for ``from: outside@H``, H; else the target's host."""
    source = world.containers.get(exp.source)
    if source is not None:
        return str(source.spec.host)
    return outside_host(exp.source) or world._target_host(exp)


def target_host_name(world: BuiltScenario, exp: Expectation) -> str | None:
    """For ``to: host``/``host@H``: the host meant (None for any other target)."""
    pinned = host_target(exp.target)
    if pinned is None:
        return None
    return pinned or probe_host(world, exp)


def container_address(world: BuiltScenario, exp: Expectation, shared: set[str]) -> str:
    """The target container's address of ``exp.family`` (on a network shared
    with the source first); "" when it has none (removed, or not of that family)."""
    target = world.containers.get(exp.target)
    if target is None:
        return ""
    want_v6 = exp.family == 6
    ordered = [a for a in target.attached if a.network in shared] + list(target.attached)
    for att in ordered:
        address = att.ipv6 if want_v6 else att.ipv4
        if address:
            return str(address)
    return ""


def far_end_namespace(world: BuiltScenario, exp: Expectation) -> str | None:
    """The namespace the probe is delivered to (None: unknown, e.g. an IP literal)."""
    outside = outside_host(exp.target)
    if outside is not None:
        return str(world.controllers[outside or probe_host(world, exp)].host.outside_namespace)
    host = target_host_name(world, exp)
    port = exp.published_port if host is None else exp.port
    if exp.published_port is not None:
        host = world._target_host(exp)
    if host is not None:
        for ctr in world.containers.values():  # DNAT delivers a published port to its container
            if ctr.spec.host == host and any(
                p.fixed and (p.host_port, p.proto) == (port, exp.proto) for p in ctr.spec.publish
            ):
                return str(ctr.namespace)
        return str(world.controllers[host].host.namespace)
    target = world.containers.get(exp.target)
    return str(target.namespace) if target is not None else None


def _global(addresses: set[str]) -> tuple[str, ...]:
    """Sorted, without loopback and link-local addresses (never a routed packet's source)."""
    kept = {a for a in addresses if not (ipaddress.ip_address(a).is_loopback or ipaddress.ip_address(a).is_link_local)}
    return tuple(sorted(kept))


def expected_sources(world: BuiltScenario, exp: Expectation, src_ns: str) -> tuple[str, ...]:
    """The addresses ``seen_from`` accepts, sorted (empty: it names nothing live)."""
    seen = exp.seen_from or ""
    if seen == "" or ":" in seen or seen.replace(".", "").isdigit():
        return (seen,) if seen else ()
    pinned = host_target(seen)
    if pinned is not None:  # the host itself: its uplink address, or a bridge gateway it masquerades to
        host = pinned or probe_host(world, exp)
        return _global(own_addresses(world.kernel, world.controllers[host].host.namespace))
    outside = outside_host(seen)
    if outside is not None:
        ns = world.controllers[outside].host.outside_namespace if outside else None
        if ns is None:  # plain "outside": the outside the probe came from, else the target host's
            source_is_outside = outside_host(exp.source) is not None
            ns = src_ns if source_is_outside else world.controllers[probe_host(world, exp)].host.outside_namespace
        return _global(own_addresses(world.kernel, ns))
    ctr = world.containers.get(seen)
    if ctr is None:
        return ()
    if ctr.on_host_network:
        return _global(own_addresses(world.kernel, ctr.namespace))
    return tuple(sorted({a for att in ctr.attached for a in (att.ipv4, att.ipv6) if a}))
