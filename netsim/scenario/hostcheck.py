"""Load-time checks of the host steps: ``add_host`` and ``remove_host``.

A scenario's hosts are its ``hosts:`` at first. ``add_host: NAME`` is a node
joining the swarm at that point of the file (netsim's
:meth:`netsim.cluster.Cluster.add_host`: it learns the other nodes, the
cluster's networks and, through networkdb's bulk sync, every live peer
entry). ``remove_host: NAME`` is a node leaving: its containers go, every
other host withdraws the peer entries it owned (networkdb's node-left
handling deletes a departed node's table entries and the overlay driver's
``peerDelete`` removes their neighbour and FDB entries), and its namespaces
are removed. From then on the name means nothing.

What exists at each point is a :class:`HostTimeline`; the meaning checks
(:mod:`netsim.scenario.checks`) ask it whether a host named by a container,
a network or an expectation is in the cluster at that point, and
:func:`check_host_step` moves it along. As everywhere at load, every problem
is ``fail(key_path, message)`` before anything is built.

>>> from netsim.scenario.model import Scenario, Step
>>> s = Scenario("s", hosts=("h1", "h2"), steps=(Step("add_host", host="h3"), Step("remove_host", host="h2")))
>>> line = HostTimeline.of(s)
>>> line.problem("h3"), line.problem("h9")
("host 'h3' does not exist yet at this point (steps[0] adds it)", "unknown host 'h9'")
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from netsim.scenario.model import Scenario, Step
from netsim.scenario.subnets import Fail

if TYPE_CHECKING:
    from netsim.scenario.checks import _State

HOST_ACTIONS = ("add_host", "remove_host")
#: the cluster's underlay namespace has this role (netsim.cluster.UNDERLAY_ROLE; a test keeps them equal)
UNDERLAY_NAME = "underlay"
#: a cluster's hosts at once (netsim.cluster.MAX_CLUSTER_HOSTS: .2-.254 of the underlay /24)
MAX_HOSTS = 253


@dataclass
class HostTimeline:
    """The hosts in the cluster at one point of the scenario."""

    #: in joining order: the first holds the cluster's address allocation
    live: list[str]
    #: host → the step that adds it (``steps[i]``)
    added_at: dict[str, str] = field(default_factory=dict)
    #: host → the step it left in
    removed_at: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, scenario: Scenario) -> HostTimeline:
        added = {s.host: f"steps[{i}]" for i, s in enumerate(scenario.steps) if s.action == "add_host"}
        return cls(list(scenario.hosts), added)

    def problem(self, host: str) -> str | None:
        """Why ``host`` cannot be named at this point (None: it is in the cluster)."""
        if host in self.live:
            return None
        if host in self.removed_at:
            return f"host {host!r} left the cluster in {self.removed_at[host]}"
        if host in self.added_at:
            return f"host {host!r} does not exist yet at this point ({self.added_at[host]} adds it)"
        return f"unknown host {host!r}"

    def problem_in(self, host: str, text: str) -> str | None:
        """The same, for a host named inside ``text`` (``outside@h2``, ``host@h2``)."""
        problem = self.problem(host)
        if problem is None:
            return None
        return f"{problem} in {text!r}" if problem.startswith("unknown") else f"{text!r}: {problem}"


def check_host_names(scenario: Scenario, fail: Fail) -> None:
    """Host names are unique over the whole file (a host that left is not
    added again: results and traces name hosts, and one name must mean one
    machine), and none takes the underlay's namespace or another host's."""
    if scenario.multi_host:
        for i, host in enumerate(scenario.hosts):
            if host == UNDERLAY_NAME:
                fail(f"hosts[{i}]", f"{host!r} is reserved for the cluster's underlay namespace")
    seen = {host: "hosts" for host in scenario.hosts}
    # a host's namespaces are <host>, <host>-out, <host>-ov-<net>, ...: a host named
    # <other>-<anything> clashes with <other>'s; each name's "-" prefixes, kept once (linear)
    prefixes = {head: host for host in scenario.hosts for head in _dash_prefixes(host)}
    for i, step in enumerate(scenario.steps):
        if step.action != "add_host":
            continue
        path, name = f"steps[{i}].add_host", step.host
        if name == UNDERLAY_NAME:
            fail(path, f"{name!r} is reserved for the cluster's underlay namespace")
        if name in seen:
            fail(path, f"duplicate host {name!r} (already in {seen[name]}); names are not reused")
        other = next((head for head in _dash_prefixes(name) if head in seen), None) or prefixes.get(name)
        if other is not None:
            fail(
                path,
                f"host {name!r} would clash with the namespaces of host {other!r} "
                "(a host's are NAME, NAME-out, NAME-ov-..., NAME-c-...)",
            )
        seen[name] = f"steps[{i}]"
        prefixes.update((head, name) for head in _dash_prefixes(name))


def _dash_prefixes(name: str) -> list[str]:
    """``a-b-c`` → ``["a", "a-b"]``: the names whose namespaces ``name``'s would fall among."""
    return [name[:i] for i, char in enumerate(name) if char == "-" and i > 0]


def check_host_step(scenario: Scenario, state: _State, step: Step, where: str, fail: Fail) -> None:
    """One ``add_host``/``remove_host`` against the hosts at its point; updates the state."""
    from netsim.scenario.checks import _detach

    line = state.hosts
    name = step.host
    if step.action == "add_host":
        if len(line.live) >= MAX_HOSTS:
            fail(where, f"a cluster holds at most {MAX_HOSTS} hosts at once")
        line.live.append(name)
        return
    problem = line.problem(name)
    if problem is not None:
        fail(where, problem)
    if name == line.live[0]:
        fail(
            where,
            f"host {name!r} is the cluster's first host: it allocates the addresses of every global "
            "network (a swarm manager's role) and cannot leave",
        )
    for plugin in scenario.plugins:
        if plugin.command and name in plugin.hosts:  # a plugin process keeps the host's namespace alive
            fail(where, f"plugin {plugin.name!r} runs inside host {name!r}: a host serving plugins cannot leave")
    # its containers go with it, as remove_container: later steps and probes may still name them
    for ctr in sorted(c for c in state.containers if state.specs[c].host == name):
        for network in list(state.attached[ctr]):
            _detach(state, ctr, network)
        state.containers.discard(ctr)
        state.stopped.discard(ctr)
    # and so do its local networks; global ones live on in the other hosts
    for net in [n for n in state.networks.values() if not n.is_global and n.host == name]:
        del state.networks[net.name]
    line.live.remove(name)
    line.removed_at[name] = where.rsplit(".", 1)[0]
