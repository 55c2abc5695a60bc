"""Load-time checks of the lifecycle steps and of state assertions.

The steps ``create_container``, ``start``, ``stop``, ``restart`` and
``create_network`` change what exists and what runs at that point of the
scenario; :mod:`netsim.scenario.checks` walks the steps in order and hands
these to :func:`check_lifecycle_step`. State assertions are checked against
the same point by :func:`check_state_assertions`. As everywhere at load,
every problem is ``fail(key_path, message)`` before anything is built.

Docker's rules modelled here: a container is *running* or not (``docker
create`` and ``docker stop`` leave it with its configuration and no network
namespace); ``start`` of a running container and ``stop`` of a stopped one
are refused (Docker makes them no-ops; a scenario that writes one means
something else); only a running container can send a probe or have its
namespace inspected.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from netsim.scenario.hostcheck import HOST_ACTIONS, check_host_step
from netsim.scenario.model import HOST, OUTSIDE, ContainerSpec, Scenario, Step
from netsim.scenario.statecheck import StateCheck
from netsim.scenario.subnets import Fail

if TYPE_CHECKING:
    from netsim.scenario.checks import _State

LIFECYCLE_ACTIONS = ("create_container", "start", "stop", "restart", "create_network", *HOST_ACTIONS)
#: state assertions on a network read its bridge in the host's namespace
STATE_DRIVERS = ("bridge",)


def check_new_names(scenario: Scenario, fail: Fail) -> None:
    """Names created by steps are unique over the whole file (a removed
    container's or network's name is not reused: results and traces name
    objects, and one name must mean one thing)."""
    containers = {c.name: "containers" for c in scenario.containers}
    networks = {n.name: "networks" for n in scenario.networks}
    for i, step in enumerate(scenario.steps):
        path = f"steps[{i}].{step.action}.name"
        for new, taken, what in (
            (step.new_container, containers, "container"),
            (step.new_network, networks, "network"),
        ):
            if new is None:
                continue
            if new.name in (OUTSIDE, HOST):
                fail(path, f"{new.name!r} is reserved")
            if new.name in taken:
                fail(path, f"duplicate {what} {new.name!r} (already in {taken[new.name]}); names are not reused")
            taken[new.name] = f"steps[{i}]"


def absent_reason(state: _State, name: str) -> str | None:
    """Why container ``name`` cannot act at this point (None: it is running)."""
    if name not in state.containers:
        return "was removed in an earlier step" if name in state.attached else "does not exist yet at this point"
    if name in state.stopped:
        return "is not running at this point (stopped or only created): start it first"
    return None


def check_lifecycle_step(scenario: Scenario, state: _State, step: Step, path: str, fail: Fail) -> None:
    """One lifecycle step against the state at its point; updates the state."""
    from netsim.scenario import checks

    where = f"{path}.{step.action}"
    if step.action in HOST_ACTIONS:
        check_host_step(scenario, state, step, where, fail)
        return
    if step.action == "create_network" and step.new_network is not None:
        net = step.new_network
        for key, name in (("driver", net.driver), ("ipam.driver", net.ipam.driver)):
            plugin = scenario.plugin(name)
            if plugin is not None and net.host not in plugin.hosts:
                hosts = ", ".join(plugin.hosts)
                fail(f"{where}.{key}", f"plugin {name!r} does not run on host {net.host!r} (its hosts: {hosts})")
        first_exclusive = {(n.driver, n.host): n.name for n in reversed(list(state.networks.values()))}
        first_exclusive.setdefault((net.driver, net.host), net.name)
        checks._check_network(scenario, state, net, where, first_exclusive, fail)
        _check_overlap(state, net.name, net.ipam.subnet, net.ipam.subnet_v6, net.host, net.is_global, where, fail)
        state.networks[net.name] = net
        return
    if step.action == "create_container" and step.new_container is not None:
        ctr = step.new_container
        if state.hosts.problem(ctr.host):
            fail(f"{where}.host", str(state.hosts.problem(ctr.host)))
        state.containers.add(ctr.name)
        state.attached[ctr.name] = []
        for j, att in enumerate(ctr.networks):
            checks._attach(state, ctr.name, ctr.host, att, f"{where}.networks[{j}]", fail)
        state.published |= {(p.host_port, p.proto) for p in ctr.publish if p.fixed}
        if ctr.state == "created":
            state.stopped.add(ctr.name)
        else:
            _check_port_clash(state, ctr, f"{where}.publish", fail)
        return
    name = step.container
    if name not in state.containers:
        fail(where, f"container {name!r} " + (absent_reason(state, name) or "does not exist"))
    if step.action == "start":
        if name not in state.stopped:
            fail(where, f"container {name!r} is already running")
        _check_port_clash(state, state.specs[name], where, fail)
        state.stopped.discard(name)
    elif step.action == "stop":
        if name in state.stopped:
            fail(where, f"container {name!r} is not running")
        state.stopped.add(name)
    elif step.action == "restart" and name in state.stopped:
        fail(where, f"container {name!r} is not running: use start")


def _check_port_clash(state: _State, ctr: ContainerSpec, where: str, fail: Fail) -> None:
    """Docker allocates a container's host ports when it starts: one held by
    another running container on the same host (and address) is refused."""
    for pub in (p for p in ctr.publish if p.fixed):
        for other in sorted(state.containers - state.stopped - {ctr.name}):
            spec = state.specs[other]
            if spec.host != ctr.host:
                continue
            for held in spec.publish:
                same_address = "" in (held.host_ip, pub.host_ip) or held.host_ip == pub.host_ip
                if held.fixed and (held.host_port, held.proto) == (pub.host_port, pub.proto) and same_address:
                    fail(where, f"host port {pub.host_port}/{pub.proto} is already published by running {other!r}")


def _check_overlap(
    state: _State,
    name: str,
    subnet: str | None,
    subnet_v6: str | None,
    host: str,
    is_global: bool,
    path: str,
    fail: Fail,
) -> None:
    """A network created mid-run may not overlap a network that exists then on its host."""
    for key, text in (("subnet", subnet), ("subnet_v6", subnet_v6)):
        if text is None:
            continue
        mine = ipaddress.ip_network(text)
        for other in state.networks.values():
            if other.name == name or not (is_global or other.is_global or other.host == host):
                continue
            for theirs in (other.ipam.subnet, other.ipam.subnet_v6):
                if theirs is None:
                    continue
                net = ipaddress.ip_network(theirs)
                if net.version == mine.version and net.overlaps(mine):
                    fail(f"{path}.ipam.{key}", f"subnet {mine} overlaps {net} of network {other.name!r}")


def check_state_assertions(state: _State, checks: tuple[StateCheck, ...], fail: Fail) -> None:
    """Each assertion names something that exists (and runs) at this point."""
    for check in checks:
        if check.subject == "container":
            reason = absent_reason(state, check.name) if check.name in state.specs else "is unknown"
            if reason is not None:
                fail(f"{check.path}.container", f"container {check.name!r} {reason}")
            continue
        net: Any = state.networks.get(check.name)
        if net is None:
            fail(f"{check.path}.network", f"unknown or removed network {check.name!r}")
        if net.driver not in STATE_DRIVERS:
            fail(
                f"{check.path}.network",
                f"network state is read from the network's bridge in the host's namespace; "
                f"{net.driver!r} network {net.name!r} has none (assert its containers' state instead)",
            )
