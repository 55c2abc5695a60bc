"""Checking state assertions against the kernel itself.

A container's facts come from its namespace through the Kernel contract's
read methods (``links``, ``addresses``, ``routes``: netlink through pyroute2
on the real kernel, the model's tables on the fake one), never from the
controller's records, so an assertion fails when a driver's records and the
kernel disagree. A network's facts come from its bridge in the host's
namespace; which link that is follows Docker's naming rule
(``com.docker.network.bridge.name``, else ``br-`` and the network id's first
12 characters), and the values are read from the kernel.
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from netsim import netlabel
from netsim.errors import NetsimError, error_kind
from netsim.kernel.base import LinkInfo, RouteInfo
from netsim.scenario.statecheck import NO_ROUTE, RouteFact, StateCheck

if TYPE_CHECKING:
    from netsim.scenario.runner import BuiltScenario

NOT_RUN = "not-run"
HOLDS = "holds"
DIFFERS = "differs"


@dataclass
class StateResult:
    """One state assertion's verdict: ``got`` is what the kernel showed for
    each asserted key, ``problems`` the keys that differ."""

    check: StateCheck
    phase: str
    outcome: str = NOT_RUN
    got: list[tuple[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.outcome == HOLDS


def check_state(world: BuiltScenario, check: StateCheck, phase: str) -> StateResult:
    """Read the kernel and compare; a kernel error is the outcome, never raised."""
    result = StateResult(check, phase)
    started = time.perf_counter()
    try:
        if check.subject == "container":
            _container(world, check, result)
        else:
            _network(world, check, result)
    except NetsimError as exc:
        result.outcome = f"error: {error_kind(exc)}: {exc}"
    else:
        result.outcome = DIFFERS if result.problems else HOLDS
    result.seconds = time.perf_counter() - started
    return result


def bridge_name(network_id: str, options: dict[str, str]) -> str:
    """Docker's name for a bridge network's bridge.

    >>> bridge_name("0123456789abcdef", {}), bridge_name("0123", {netlabel.BRIDGE_NAME: "docker0"})
    ('br-0123456789ab', 'docker0')
    """
    return options.get(netlabel.BRIDGE_NAME) or f"br-{network_id[:12]}"


def _container(world: BuiltScenario, check: StateCheck, out: StateResult) -> None:
    ns = world.containers[check.name].namespace
    where = check.interface
    kernel = world.kernel
    links = {link.name: link for link in kernel.links(ns)}
    if check.interfaces is not None:
        names = ",".join(sorted(links)) or "(none)"
        out.got.append(("interfaces", names))
        if tuple(sorted(links)) != check.interfaces:
            out.problems.append(f"interfaces are {names}, not {','.join(check.interfaces) or '(none)'}")
    link = links.get(where) if where is not None else None
    if where is not None and link is None:
        out.problems.append(f"no interface {where} (has {', '.join(sorted(links))})")
    pairs = kernel.addresses(ns)
    held = [cidr for dev, cidr in pairs if where is None or dev == where]
    if check.addresses or check.no_addresses:
        # what the table shows: the container's own addresses (not loopback or link-local, unless asked)
        shown = [c for dev, c in pairs if (dev == where if where else dev != "lo") and not c.startswith("fe80:")]
        out.got.append(("address", ",".join(shown) or "(none)"))
    for wanted in check.addresses:
        if not _has_address(held, wanted):
            out.problems.append(f"no address {wanted} on {where or check.name}")
    for unwanted in check.no_addresses:
        if _has_address(held, unwanted):
            out.problems.append(f"address {unwanted} is on {where or check.name}")
    if link is not None:
        _link_facts(check, link, out)
    routes = kernel.routes(ns)
    for key, family, gateway in (("default_via", 4, check.default_via), ("default_via_v6", 6, check.default_via_v6)):
        if gateway is None:
            continue
        vias = [r.via or f"dev {r.dev}" for r in routes if r.dst == "default" and r.family == family]
        out.got.append((key, ",".join(vias) or NO_ROUTE))
        if gateway == NO_ROUTE and vias:
            out.problems.append(f"{key}: a default route via {vias[0]} exists")
        elif gateway != NO_ROUTE and gateway not in vias:
            out.problems.append(f"{key}: {', '.join(vias) or 'no default route'}, not {gateway}")
    for fact in check.routes:
        found = [r for r in routes if _route_matches(r, fact)]
        out.got.append(("route", _describe_route(found[0]) if found else "(none)"))
        if not found:
            same_dst = [_describe_route(r) for r in routes if r.dst == fact.to]
            out.problems.append(f"no route {fact}" + (f" (found {'; '.join(same_dst)})" if same_dst else ""))


def _link_facts(check: StateCheck, link: LinkInfo, out: StateResult) -> None:
    if check.mtu is not None:
        out.got.append(("mtu", str(link.mtu)))
        if link.mtu != check.mtu:
            out.problems.append(f"mtu of {link.name} is {link.mtu}, not {check.mtu}")
    if check.mac is not None:
        out.got.append(("mac", link.mac))
        if link.mac.lower() != check.mac:
            out.problems.append(f"mac of {link.name} is {link.mac}, not {check.mac}")
    if check.up is not None:
        out.got.append(("up", str(link.up).lower()))
        if link.up != check.up:
            out.problems.append(f"{link.name} is {'up' if link.up else 'down'}")


def _has_address(held: list[str], wanted: str) -> bool:
    """``wanted`` with a prefix must match exactly; without, any prefix will do."""
    if "/" in wanted:
        return any(ipaddress.ip_interface(c) == ipaddress.ip_interface(wanted) for c in held)
    return any(ipaddress.ip_interface(c).ip == ipaddress.ip_address(wanted) for c in held)


def _route_matches(route: RouteInfo, fact: RouteFact) -> bool:
    if fact.to == "default":
        if route.dst != "default":
            return False
        if fact.via is not None and route.family != ipaddress.ip_address(fact.via).version:
            return False
    elif route.dst != fact.to:
        return False
    return (fact.via is None or route.via == fact.via) and (fact.dev is None or route.dev == fact.dev)


def _describe_route(route: RouteInfo) -> str:
    return route.dst + (f" via {route.via}" if route.via else "") + (f" dev {route.dev}" if route.dev else "")


def _network(world: BuiltScenario, check: StateCheck, out: StateResult) -> None:
    spec = world.scenario.network(check.name)
    ctrl = world.controllers[spec.host]
    ns = ctrl.host.namespace
    name = bridge_name(ctrl.network(check.name).id, spec.options)
    links = {link.name: link for link in world.kernel.links(ns)}
    if check.bridge is not None:
        out.got.append(("bridge", name if name in links else "(none)"))
        if name != check.bridge:
            out.problems.append(f"the bridge is {name}, not {check.bridge}")
    link = links.get(name)
    if link is None:
        out.problems.append(f"no bridge {name} in the host's namespace")
        return
    if check.mtu is not None:
        out.got.append(("mtu", str(link.mtu)))
        if link.mtu != check.mtu:
            out.problems.append(f"mtu of {name} is {link.mtu}, not {check.mtu}")
    on_bridge = [ipaddress.ip_interface(c) for dev, c in world.kernel.addresses(ns) if dev == name]
    for version, gateway, subnet, suffix in (
        (4, check.gateway, check.subnet, ""),
        (6, check.gateway_v6, check.subnet_v6, "_v6"),
    ):
        mine = [a for a in on_bridge if a.version == version and not a.ip.is_link_local]
        if gateway is not None:
            out.got.append(("gateway" + suffix, ",".join(str(a.ip) for a in mine) or "(none)"))
            if not any(str(a.ip) == gateway for a in mine):
                out.problems.append(f"{name} does not have the gateway {gateway}")
        if subnet is not None:
            out.got.append(("subnet" + suffix, ",".join(str(a.network) for a in mine) or "(none)"))
            if not any(str(a.network) == subnet for a in mine):
                out.problems.append(f"{name} has no address in subnet {subnet}")
