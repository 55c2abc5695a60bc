"""Load checks of where a container's published ports can answer.

Docker programs a container's port mappings on its first non-internal
network's endpoint: an internal first network hands them on, and a
non-internal overlay, which gives no gateway, hands them to the container's
``docker_gwbridge`` endpoint (libnetwork's ``setupDefaultGW`` passes the
sandbox's port bindings). The runner does the same
(``BuiltScenario._attach`` in :mod:`netsim.scenario.runner` and
:mod:`netsim.controller.default_gateway`). These checks refuse the files
whose ports could never answer, at the key that says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

from netsim.scenario.model import ContainerSpec, NetworkSpec
from netsim.scenario.subnets import Fail

#: network drivers that give a container no interface of its own to publish on
_NO_PUBLISH_DRIVERS = ("host", "null")


class PointInTime(Protocol):
    """What the meaning checks know at one point of a scenario."""

    networks: dict[str, NetworkSpec]
    containers: set[str]
    stopped: set[str]
    attached: dict[str, list[str]]
    publishers: dict[tuple[int, str], list[str]]


def is_internal(net: NetworkSpec) -> bool:
    """``internal: true`` or Docker's option for it."""
    return net.internal or net.options.get("com.docker.network.internal") in ("true", "1")


def check_publish_route(ctr: ContainerSpec, networks: Mapping[str, NetworkSpec], path: str, fail: Fail) -> None:
    """Refuse a container whose ports cannot go anywhere: host network mode
    (Docker discards them with a warning, daemon_unix.go's
    verifyPlatformContainerSettings), ``none``, or an overlay listed before a
    local network with a way out. In that last case the ports go on
    docker_gwbridge, which leaves when the local network brings a gateway
    (``clearDefaultGW``), and the ports with it: Docker gives that network
    none, since the sandbox already maps ports when it is connected (the
    daemon's ``buildPortsRelatedCreateEndpointOptions``)."""
    nets = [networks[a.network] for a in ctr.networks]
    if nets and all(n.driver in _NO_PUBLISH_DRIVERS for n in nets):
        why = "Docker discards them in host network mode" if nets[0].driver == "host" else "it has no interface out"
        fail(path, f"no port can be published on the {nets[0].driver} network {nets[0].name!r}: {why}")
    open_nets = [n for n in nets if not is_internal(n)]
    if open_nets and open_nets[0].is_global:
        local = next((n for n in open_nets if not n.is_global), None)
        if local is not None:
            fail(
                path,
                f"the ports would go on docker_gwbridge for {open_nets[0].driver} network {open_nets[0].name!r} "
                f"and leave with it when {local.driver} network {local.name!r} brings a gateway (as in Docker): "
                f"list {local.name!r} before {open_nets[0].name!r}",
            )


def publishers_by_port(specs: Iterable[ContainerSpec]) -> dict[tuple[int, str], list[str]]:
    """(host port, proto) → the containers publishing that fixed port."""
    index: dict[tuple[int, str], list[str]] = {}
    for spec in specs:
        for pub in (p for p in spec.publish if p.fixed):
            index.setdefault((pub.host_port, pub.proto), []).append(spec.name)
    return index


def port_answers(state: PointInTime, port: int, proto: str) -> bool:
    """Whether a running publisher of ``port`` is on a non-internal network at
    this point. O(publishers of that port, times their networks)."""
    for name in state.publishers.get((port, proto), ()):
        running = name in state.containers and name not in state.stopped
        if running and any(not is_internal(state.networks[n]) for n in state.attached.get(name, ())):
            return True
    return False
