"""Sandboxes (a namespace per container) and the sandbox side of a join:
moving the driver's interface in, addressing it, static routes, and the
choice of the default gateway among the sandbox's endpoints.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from netsim.controller.config import check_name
from netsim.controller.records import sandbox_key
from netsim.controller.views import Sandbox
from netsim.driverapi import CONNECTED, JoinInfo
from netsim.errors import KernelNotFoundError
from netsim.kernel.base import Kernel
from netsim.undo import Undo, rollback_on_error

if TYPE_CHECKING:
    from netsim.controller import Controller

SANDBOX_INDEX = "sandbox"


def sandbox_namespace_role(host: str, container: str) -> str:
    return f"{host}-c-{container}"


def create_sandbox(ctrl: Controller, container: str, host_namespace: bool) -> Sandbox:
    check_name(container, "container")
    sid = ctrl.new_id()
    kernel = ctrl.kernel
    with rollback_on_error() as undo:
        ctrl.records.claim_name(SANDBOX_INDEX, container, sid, "sandbox for container")
        undo.push("release sandbox name", lambda: ctrl.records.release_name(SANDBOX_INDEX, container))
        if host_namespace:
            ns = ctrl.host.namespace
        else:
            ns = kernel.ns(sandbox_namespace_role(ctrl.host.name, container))
            make_namespace(kernel, ns, undo)
        record = {
            "id": sid,
            "container": container,
            "namespace": ns,
            "own_namespace": not host_namespace,
            "endpoints": [],
            "gw4": None,
            "gw6": None,
        }
        ctrl.records.put(sandbox_key(sid), record)
    return Sandbox(ctrl, sid, container)


def make_namespace(kernel: Kernel, ns: str, undo: Undo) -> None:
    kernel.add_namespace(ns)
    undo.push(f"delete namespace {ns}", lambda: kernel.delete_namespace(ns))
    kernel.set_link_up(ns, "lo")


def free_iface_name(kernel: Kernel, ns: str, prefix: str) -> str:
    """The lowest ``<prefix><n>`` not taken in ``ns`` (eth0, eth1, ...)."""
    taken = set(kernel.link_names(ns))
    n = 0
    while f"{prefix}{n}" in taken:
        n += 1
    return f"{prefix}{n}"


def plug_interface(
    ctrl: Controller, sandbox: dict[str, Any], endpoint: dict[str, Any], jinfo: JoinInfo, undo: Undo
) -> str:
    """Move the driver's interface into the sandbox (or rename it there, when the
    driver made it there), name, address and raise it."""
    kernel, host_ns, ns = ctrl.kernel, ctrl.host.namespace, sandbox["namespace"]
    src = jinfo.src_name
    assert src is not None and jinfo.dst_prefix is not None
    name = free_iface_name(kernel, ns, jinfo.dst_prefix)
    where = endpoint.get("iface_ns") or host_ns
    if where == ns:
        # The driver made it in the sandbox (InterfaceInfo.sandbox_key): no move.
        kernel.rename_link(ns, src, name)
        undo.push(f"rename {name} back", lambda: kernel.rename_link(ns, name, src))
    else:
        kernel.move_link(where, src, ns, name)
        undo.push(f"move {name} back", lambda: kernel.move_link(ns, name, where, src))
    if endpoint["mac"]:
        # Unconditional: reading the link back costs more than setting it (bridge and
        # macvlan set this MAC already at create_endpoint, so it is a no-op for them).
        kernel.set_mac(ns, name, endpoint["mac"])
    if not endpoint["address_ipv6"]:
        ipv6_off(kernel, ns, name, undo)
    # Up before addressing, and addresses off before down on the way back:
    # Linux drops IPv6 addresses from a link that goes down.
    kernel.set_link_up(ns, name)
    undo.push(f"{name} down", lambda: kernel.set_link_up(ns, name, False))
    for address in (endpoint["address"], endpoint["address_ipv6"]):
        if address:
            kernel.add_address(ns, name, address)
            undo.push(f"remove {address}", lambda address=address: kernel.delete_address(ns, name, address))  # type: ignore[misc]
    for route in jinfo.static_routes:
        dst = str(route.destination)
        if route.route_type == CONNECTED:
            kernel.add_route(ns, dst, dev=name, scope="link")
            undo.push(f"route {dst}", lambda dst=dst: kernel.delete_route(ns, dst, dev=name))  # type: ignore[misc]
        else:
            via = str(route.next_hop)
            kernel.add_route(ns, dst, via=via)
            undo.push(f"route {dst}", lambda dst=dst, via=via: kernel.delete_route(ns, dst, via=via))  # type: ignore[misc]
    return name


def ipv6_off(kernel: Kernel, ns: str, name: str, undo: Undo) -> None:
    """IPv6 off on an interface whose network gives it no IPv6 address, before
    it comes up (libnetwork's setInterfaceIPv6): otherwise it would take a
    link-local address, join multicast groups and send router solicitations
    on an IPv4-only network, and the bridge would learn its MAC from them."""
    key = f"net.ipv6.conf.{name}.disable_ipv6"
    try:
        kernel.set_sysctl(ns, key, "1")
    except KernelNotFoundError:
        return  # below IPv6's minimum MTU the link has no IPv6 to turn off (Docker ignores it too)
    undo.push(f"{name} IPv6 back on", lambda: kernel.set_sysctl(ns, key, "0"))


def unplug_interface(
    ctrl: Controller, sandbox: dict[str, Any], endpoint: dict[str, Any], undo: Undo, in_place: bool = False
) -> None:
    """The reverse of :func:`plug_interface`: routes, addresses, down, back to the host
    (``in_place``: renamed back but left where the driver made it, in the sandbox)."""
    kernel, host_ns, ns = ctrl.kernel, ctrl.host.namespace, sandbox["namespace"]
    name, src = endpoint["iface"], endpoint["src_name"]
    for route in reversed(endpoint["static_routes"]):
        dst, via = route["dst"], route["via"]
        if via:
            kernel.delete_route(ns, dst, via=via)
            undo.push(f"route {dst}", lambda dst=dst, via=via: kernel.add_route(ns, dst, via=via))  # type: ignore[misc]
        else:
            kernel.delete_route(ns, dst, dev=name)
            undo.push(f"route {dst}", lambda dst=dst: kernel.add_route(ns, dst, dev=name, scope="link"))  # type: ignore[misc]
    for address in (endpoint["address_ipv6"], endpoint["address"]):
        if address:
            kernel.delete_address(ns, name, address)
            undo.push(f"add {address}", lambda address=address: kernel.add_address(ns, name, address))  # type: ignore[misc]
    kernel.set_link_up(ns, name, False)
    undo.push(f"{name} up", lambda: kernel.set_link_up(ns, name))
    if in_place:
        kernel.rename_link(ns, name, src)
        undo.push(f"rename {src} back", lambda: kernel.rename_link(ns, src, name))
    else:
        kernel.move_link(ns, name, host_ns, src)
        undo.push(f"move {src} in", lambda: kernel.move_link(host_ns, src, ns, name))


def gateway_choices(ctrl: Controller, sandbox: dict[str, Any]) -> dict[str, dict[str, str] | None]:
    """libnetwork's choice, per family (``gateway``, ``gateway6``): the first
    endpoint joined, in join order, that has a gateway (drivers give none for
    internal networks). One pass over the sandbox's endpoints, O(endpoints)."""
    gw4, gw6 = _choices(ctrl, sandbox)
    return {"gateway": gw4, "gateway6": gw6}


def _choices(ctrl: Controller, sandbox: dict[str, Any]) -> tuple[dict[str, str] | None, dict[str, str] | None]:
    gw4 = gw6 = None
    for nid, eid in sandbox["endpoints"]:
        endpoint = ctrl.records.endpoint_view(nid, eid)
        dev = endpoint["iface"]
        if not dev:
            continue
        if gw4 is None and endpoint["gateway"]:
            gw4 = {"endpoint": eid, "via": endpoint["gateway"], "dev": dev}
        if gw6 is None and endpoint["gateway6"]:
            gw6 = {"endpoint": eid, "via": endpoint["gateway6"], "dev": dev}
        if gw4 is not None and gw6 is not None:
            break
    return gw4, gw6


def update_default_routes(ctrl: Controller, sandbox: dict[str, Any], undo: Undo) -> None:
    """Point the sandbox's default routes at the chosen gateway endpoints (mutates ``sandbox``)."""
    if not sandbox["own_namespace"]:
        return  # never touch the host's own routes
    gw4, gw6 = _choices(ctrl, sandbox)
    if gw4 != sandbox["gw4"]:
        _move_default_route(ctrl.kernel, sandbox["namespace"], "default", sandbox["gw4"], gw4, undo)
        sandbox["gw4"] = gw4
    if gw6 != sandbox["gw6"]:
        _move_default_route(ctrl.kernel, sandbox["namespace"], "default6", sandbox["gw6"], gw6, undo)
        sandbox["gw6"] = gw6


def _move_default_route(
    kernel: Kernel, ns: str, dst: str, current: dict[str, str] | None, wanted: dict[str, str] | None, undo: Undo
) -> None:
    if current is not None:
        old = current
        kernel.delete_route(ns, dst, via=old["via"], dev=old["dev"])
        undo.push(f"restore {dst}", lambda: kernel.add_route(ns, dst, via=old["via"], dev=old["dev"]))
    if wanted is not None:
        new = wanted
        kernel.add_route(ns, dst, via=new["via"], dev=new["dev"])
        undo.push(f"drop {dst}", lambda: kernel.delete_route(ns, dst, via=new["via"], dev=new["dev"]))


def delete_sandbox(ctrl: Controller, sid: str) -> None:
    """Leave and delete every endpoint (libnetwork's Sandbox.Delete), then the namespace.

    An interface the driver made in this namespace is not moved out first: the
    driver's delete_endpoint removes it where it is (on Linux a move costs an RCU
    barrier, 10-30 ms)."""
    from netsim.controller.discovery import sandbox_deleted
    from netsim.controller.endpoint import delete_endpoint
    from netsim.controller.join import leave

    record = ctrl.records.sandbox_view(sid)
    for nid, eid in reversed(record["endpoints"]):
        leave(ctrl, nid, eid, sid, sandbox_going=True)
        delete_endpoint(ctrl, nid, eid)
    sandbox_deleted(ctrl, record)
    if record["own_namespace"]:
        ctrl.kernel.delete_namespace(record["namespace"])
    ctrl.records.delete(sandbox_key(sid))
    ctrl.records.release_name(SANDBOX_INDEX, record["container"])
