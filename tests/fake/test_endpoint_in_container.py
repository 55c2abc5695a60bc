"""An endpoint created for a known container (libnetwork's NetnsPath /
SetCreatedInContainer): the bridge driver makes the veth's container end in
the container's namespace, join renames it in place, and removal never moves
it back out. Both kernels, same observable states."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from netsim.controller import Controller, ControllerConfig, IpamConfig, PoolConfig
from netsim.controller.testing import ensure_default_ipam
from netsim.driverapi import InterfaceInfo
from netsim.errors import InvalidParameterError
from netsim.kernel.base import Kernel
from netsim.probe import probe


@pytest.fixture
def ctrl(kernel: Kernel) -> Iterator[Controller]:
    controller = Controller(kernel, ControllerConfig(host="h1"))
    ensure_default_ipam(controller)
    controller.create_network("front", "bridge", ipam=IpamConfig(pools=[PoolConfig(subnet="10.10.0.0/24")]))
    try:
        yield controller
    finally:
        controller.close()


def veths(kernel: Kernel, ns: str) -> list[str]:
    return [link.name for link in kernel.links(ns) if link.kind == "veth"]


def test_the_container_end_is_born_in_the_container(ctrl: Controller) -> None:
    kernel, host = ctrl.kernel, ctrl.host.namespace
    sandbox = ctrl.create_sandbox("c")
    before = set(veths(kernel, host))
    ep = ctrl.create_endpoint("front", "web", sandbox="c")
    host_side = set(veths(kernel, host)) - before
    inside = veths(kernel, sandbox.namespace)
    assert len(host_side) == 1 and len(inside) == 1, (host_side, inside)
    assert kernel.link(sandbox.namespace, inside[0]).peer == (host, host_side.pop())
    ctrl.join(ep, "c")
    assert veths(kernel, sandbox.namespace) == ["eth0"]
    eth0 = kernel.link(sandbox.namespace, "eth0")
    assert eth0.up and eth0.mac == ep.mac
    assert ("eth0", "10.10.0.2/24") in kernel.addresses(sandbox.namespace)
    assert probe(kernel, sandbox.namespace, "10.10.0.1").reachable


def test_container_removal_takes_the_pair_without_moving_it(ctrl: Controller) -> None:
    kernel, host = ctrl.kernel, ctrl.host.namespace
    before = veths(kernel, host)
    ctrl.create_sandbox("c")
    ep = ctrl.create_endpoint("front", "web", sandbox="c")
    ctrl.join(ep, "c")
    moves = _count_calls(kernel, "move_link")
    ctrl.delete_sandbox("c")
    assert moves() == 0
    assert veths(kernel, host) == before
    assert ctrl.network("front").endpoints() == []


def test_disconnect_unplugs_in_place_and_deletes(ctrl: Controller) -> None:
    kernel, host = ctrl.kernel, ctrl.host.namespace
    before = veths(kernel, host)
    sandbox = ctrl.create_sandbox("c")
    ctrl.connect("c", "front")
    assert veths(kernel, sandbox.namespace) == ["eth0"]
    moves = _count_calls(kernel, "move_link")
    ctrl.disconnect("c", "front")
    assert moves() == 0
    assert veths(kernel, sandbox.namespace) == [] and veths(kernel, host) == before
    ctrl.connect("c", "front")  # and again: a fresh pair, eth0 again
    assert veths(kernel, sandbox.namespace) == ["eth0"]


def test_leave_moves_it_to_the_host_as_docker_does_and_a_rejoin_works(ctrl: Controller) -> None:
    kernel, host = ctrl.kernel, ctrl.host.namespace
    first, second = ctrl.create_sandbox("a"), ctrl.create_sandbox("b")
    ep = ctrl.create_endpoint("front", "web", sandbox="a")
    ctrl.join(ep, "a")
    ctrl.leave(ep, "a")
    assert veths(kernel, first.namespace) == []
    assert len(veths(kernel, host)) >= 2  # both ends, as libnetwork's RemoveInterface leaves them
    ctrl.join(ep, "b")  # from the host now
    assert veths(kernel, second.namespace) == ["eth0"]
    assert probe(kernel, second.namespace, "10.10.0.1").reachable
    ctrl.leave(ep, "b")
    ctrl.delete_endpoint(ep)


def test_joining_another_container_moves_it_from_where_it_was_made(ctrl: Controller) -> None:
    kernel = ctrl.kernel
    first, second = ctrl.create_sandbox("a"), ctrl.create_sandbox("b")
    ep = ctrl.create_endpoint("front", "web", sandbox="a")
    ctrl.join(ep, "b")
    assert veths(kernel, first.namespace) == [] and veths(kernel, second.namespace) == ["eth0"]
    ctrl.delete_sandbox("b")
    assert ctrl.network("front").endpoints() == []


def test_a_host_network_sandbox_gets_no_sandbox_key(ctrl: Controller) -> None:
    kernel, host = ctrl.kernel, ctrl.host.namespace
    ctrl.create_sandbox("h", host_namespace=True)
    before = veths(kernel, host)
    ep = ctrl.create_endpoint("front", "web", sandbox="h")
    assert len(veths(kernel, host)) == len(before) + 2  # both ends in the host, as without a sandbox
    ctrl.delete_endpoint(ep)


def test_link_names_are_what_links_lists(ctrl: Controller) -> None:
    kernel = ctrl.kernel
    ctrl.connect("c", "front")
    for ns in kernel.namespaces():
        assert kernel.link_names(ns) == [link.name for link in kernel.links(ns)]


def test_created_in_container_needs_a_sandbox_key() -> None:
    info = InterfaceInfo()
    with pytest.raises(InvalidParameterError, match="no sandbox"):
        info.set_created_in_container(True)
    keyed = InterfaceInfo(sandbox_key="netsim-x-c")
    keyed.set_created_in_container(True)
    assert keyed.created_in_container and keyed.sandbox_key == "netsim-x-c"


def _count_calls(kernel: Kernel, method: str) -> Callable[[], int]:
    """Counts calls of ``kernel.<method>`` from now on (the instance attribute shadows the class's)."""
    calls = [0]
    original = getattr(kernel, method)

    def counting(*args: object, **kwargs: object) -> object:
        calls[0] += 1
        return original(*args, **kwargs)

    setattr(kernel, method, counting)
    return lambda: calls[0]
