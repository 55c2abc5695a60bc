"""The lifecycle steps on a built scenario, as Docker's daemon does them.

* ``start`` (moby's ``allocateNetwork``): a new sandbox, then the container's
  configured networks joined in order, then its listeners (its processes).
  Static addresses and MACs come from the configuration, so they are the same
  again; dynamic addresses are requested from IPAM anew, and are the same
  only if still free.
* ``stop`` (moby's ``releaseNetwork``): listeners go with the processes, the
  sandbox is deleted, which leaves every network and deletes every endpoint
  (``sb.Delete()``), releasing the addresses; the configuration (networks,
  static addresses, published ports) stays for the next start.
* ``restart``: stop, then start.
* ``create_container``: ``docker create`` (``state: created``) or ``docker run``.
* ``create_network``: ``docker network create`` mid-run.
* ``add_host``: a node joins the swarm (:meth:`netsim.cluster.Cluster.add_host`):
  it learns the other nodes, the cluster's networks and every live peer
  entry, so its first container reaches the others on its first packet.
* ``remove_host``: a node leaves. moby's ``Cluster.Leave`` force-removes the
  node's task containers and ``DaemonLeavesCluster`` disconnects the others
  from swarm networks; here the host itself goes away, so every container
  on it is stopped and removed (its endpoints' peer entries are deleted,
  and every other host withdraws them, as networkdb's node-left handling
  would), then the cluster closes the host and removes its namespaces.

``connect``/``disconnect`` on a stopped container change only its
configuration, as ``docker network connect`` does: the next start joins.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from netsim.errors import InvalidParameterError
from netsim.kernel.base import Listener
from netsim.scenario.model import Attachment, ContainerSpec, NetworkSpec, Scenario, Step, StoreChoice

if TYPE_CHECKING:
    from netsim.scenario.runner import BuiltScenario, _Container

LIFECYCLE_STEPS = ("create_container", "start", "stop", "restart", "create_network", "add_host", "remove_host")


def create_network(world: BuiltScenario, net: NetworkSpec) -> None:
    """``docker network create`` mid-run, as the build creates the file's networks."""
    world._create_network(net)


def create_container(world: BuiltScenario, spec: ContainerSpec) -> None:
    """``docker create`` (``state: created``), or ``docker run``: create and start."""
    from netsim.scenario.runner import _Container

    ctr = world.containers[spec.name] = _Container(spec, config=list(spec.networks))
    if spec.state != "created":
        start_container(world, ctr)


def start_container(world: BuiltScenario, ctr: _Container) -> None:
    """A sandbox, the configured networks joined in order, then the listeners."""
    spec = ctr.spec
    ctrl = world.controllers[spec.host]
    on_host = any(world.scenario.network(a.network).driver == "host" for a in ctr.config)
    ctr.sandbox = ctrl.create_sandbox(spec.name, host_namespace=on_host)
    ctr.namespace = ctr.sandbox.namespace
    ctr.on_host_network = on_host
    ctr.running = True
    for att in ctr.config:
        world._attach(ctr, att)
    for lst in spec.listen:
        # one socket per family: on Linux netsim's "::" listeners are IPv6-only
        for any_addr in ("0.0.0.0", "::"):
            listener = Listener(proto=lst.proto, port=lst.port, addr=any_addr)
            world.kernel.add_listener(ctr.namespace, listener)
            ctr.listeners.append(listener)


def stop_container(world: BuiltScenario, ctr: _Container) -> None:
    """Listeners go, every endpoint leaves and is deleted, the sandbox is deleted."""
    world._remove_listeners(ctr)
    for att in list(reversed(ctr.attached)):
        world._detach(ctr, att.network)
    world.controllers[ctr.spec.host].delete_sandbox(ctr.sandbox)
    ctr.sandbox = None
    ctr.running = False


def connect(world: BuiltScenario, ctr: _Container, att: Attachment) -> None:
    """``docker network connect``: joined now if running, else at the next start."""
    ctr.config.append(att)
    if ctr.running:
        world._attach(ctr, att)


def disconnect(world: BuiltScenario, ctr: _Container, network: str) -> None:
    ctr.config = [a for a in ctr.config if a.network != network]
    if ctr.running:
        world._detach(ctr, network)


def _membership(world: BuiltScenario, verb: str) -> Any:
    """The cluster's ``add_host``/``remove_host``; refused cleanly by a cluster without them."""
    method = getattr(world.cluster, verb, None)
    if method is None:  # a single controller (checked at load: cannot happen for a file) or another cluster
        what = "a single controller" if world.cluster is None else type(world.cluster).__name__
        raise InvalidParameterError(f"{verb}: this scenario is built on {what}, which cannot change its hosts")
    return method


def refuse_shared_local_store(scenario: Scenario, stores: StoreChoice | None) -> None:
    """Hosts never share a local store: the Cluster refuses one without ``{host}``
    for several hosts at once, and a host joining later must not find out mid-run."""
    if stores is None or stores.local is None or "{host}" in stores.local:
        return
    if len(scenario.all_hosts()) > 1:
        raise InvalidParameterError(f"hosts cannot share the local store {stores.local!r}: put {{host}} in it")


def add_host(world: BuiltScenario, name: str) -> None:
    """A node joins: a new controller in the cluster; the outside beyond it listens as the file says."""
    ctrl = _membership(world, "add_host")(name)
    if ctrl is None:  # ProcessCluster's hosts answer over pipes: there is no controller here to drive
        raise InvalidParameterError(f"add_host: host {name!r} joined in another process; a scenario cannot use it")
    world.controllers[name] = ctrl
    world.outside.start_host(world.scenario, name, ctrl.host.outside_namespace)


def remove_host(world: BuiltScenario, name: str) -> None:
    """A node leaves: its containers are removed (their peers withdrawn
    everywhere), the listeners beyond it stop, then the cluster closes it."""
    leave = _membership(world, "remove_host")
    for ctr in [c for c in world.containers.values() if c.spec.host == name]:
        if ctr.running:
            stop_container(world, ctr)
        world.forget(ctr.spec.name)  # a later "to: name" probes where it was
        del world.containers[ctr.spec.name]
    world.outside.stop_host(world.controllers[name].host.outside_namespace)
    try:
        leave(name)
    finally:  # gone from the cluster even if its teardown was incomplete (the leak check tells)
        del world.controllers[name]


def apply_lifecycle(world: BuiltScenario, step: Step) -> None:
    """One of :data:`LIFECYCLE_STEPS` (validated at load: names exist, states fit)."""
    if step.action == "add_host":
        add_host(world, step.host)
    elif step.action == "remove_host":
        remove_host(world, step.host)
    elif step.action == "create_network" and step.new_network is not None:
        create_network(world, step.new_network)
    elif step.action == "create_container" and step.new_container is not None:
        create_container(world, step.new_container)
    else:
        ctr: Any = world.containers[step.container]
        if step.action in ("stop", "restart"):
            stop_container(world, ctr)
        if step.action in ("start", "restart"):
            start_container(world, ctr)
