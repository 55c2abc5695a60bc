"""libnetwork's default gateway (``default_gateway.go``): a container whose
networks give it no way out gets one through ``docker_gwbridge``.

An overlay endpoint has no gateway (the overlay is a layer-2 segment between
hosts), so a container on a non-internal overlay and nothing else could not
reach the world, nor publish a port. libnetwork's sandbox then connects it to
a local bridge network named ``docker_gwbridge`` (created on first use, with
ICC off and masquerading on), through a second endpoint
``gateway_<sandbox id[:12]>``: a second interface in the container and its
default route. The container's published ports go on that endpoint, as
Docker's sandbox-level port bindings do. When a later endpoint brings a
gateway (a bridge network), or the last endpoint needing one leaves, the
gateway endpoint goes (``clearDefaultGW``).

:func:`needs_gateway` is libnetwork's ``needDefaultGW``: endpoints on the
gateway network itself, on null or host networks and on internal networks
do not count; one endpoint with a gateway (IPv4 or IPv6) or a default static
route means no. Two differences, both so that a container's connect and
disconnect leave a host as they found it (what the conformance suite checks
of every driver):

* only endpoints of global-scope networks (overlay) ask for the gateway;
  libnetwork also gives one to a container whose only networks are local
  ones without a gateway (a remote driver's, say);
* ``docker_gwbridge`` goes with its last endpoint; Docker keeps it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from netsim import netlabel
from netsim.errors import NetsimError
from netsim.netlabel import PortBinding
from netsim.undo import rollback_on_error

if TYPE_CHECKING:
    from netsim.controller import Controller

log = logging.getLogger(__name__)

GW_NETWORK = "docker_gwbridge"
#: what libnetwork's createGWNetwork passes to the bridge driver
GW_OPTIONS = {
    netlabel.BRIDGE_NAME: GW_NETWORK,
    netlabel.BRIDGE_ENABLE_ICC: "false",
    netlabel.BRIDGE_ENABLE_IP_MASQUERADE: "true",
}
GW_ENDPOINT_PREFIX = "gateway_"
#: network types whose endpoints never ask for a gateway
_NO_GATEWAY_TYPES = ("null", "host")


def _endpoints(ctrl: Controller, sandbox: dict[str, Any], gw_nid: str | None) -> list[tuple[str, dict[str, Any]]]:
    """The sandbox's endpoints that count for the decision, with their records."""
    counted = []
    for nid, eid in sandbox["endpoints"]:
        if nid == gw_nid:
            continue
        network = ctrl.records.network(nid)
        if network["internal"] or ctrl.registry.driver(network["driver"]).driver.type() in _NO_GATEWAY_TYPES:
            continue
        counted.append((nid, ctrl.records.endpoint_view(nid, eid)))
    return counted


def needs_gateway(ctrl: Controller, sandbox: dict[str, Any]) -> bool:
    """libnetwork's ``needDefaultGW`` (see the module doc). O(endpoints)."""
    counted = _endpoints(ctrl, sandbox, ctrl.records.lookup_name("network", GW_NETWORK))
    for _, endpoint in counted:
        if endpoint["gateway"] or endpoint["gateway6"]:
            return False
        if any(route["dst"] in ("0.0.0.0/0", "::/0") for route in endpoint["static_routes"]):
            return False
    return any(_global_scope(ctrl, nid) for nid, _ in counted)


def _on_global_network(ctrl: Controller, sandbox: dict[str, Any]) -> bool:
    """Whether any of the sandbox's endpoints is on a global-scope network: without
    one, :func:`needs_gateway` is false (the common case, checked first on every
    join and leave). O(endpoints)."""
    # a plain loop: any(generator) costs twice as much, and this runs on every join and leave
    for nid, _ in sandbox["endpoints"]:  # noqa: SIM110
        if _global_scope(ctrl, nid):
            return True
    return False


def _global_scope(ctrl: Controller, nid: str) -> bool:
    entry = ctrl.registry.driver(ctrl.records.network(nid)["driver"])
    return entry.capability.data_scope in ("global", "swarm")


def gateway_endpoint(ctrl: Controller, sandbox: dict[str, Any]) -> str | None:
    """The sandbox's endpoint on ``docker_gwbridge`` (its id), if any."""
    gw_nid = ctrl.records.lookup_name("network", GW_NETWORK)
    return next((eid for nid, eid in sandbox["endpoints"] if nid == gw_nid), None)


def may_change(ctrl: Controller, sid: str) -> bool:
    """False when :func:`reconcile` has nothing to do: a host-network container
    (it uses the host's own routes), or no gateway endpoint to drop and no
    global network's endpoint to ask for one (the common case, checked on
    every join and leave)."""
    sandbox = ctrl.records.sandbox_view(sid)
    if not sandbox["own_namespace"]:
        return False
    return ctrl.records.name_taken("network", GW_NETWORK) or _on_global_network(ctrl, sandbox)


def reconcile(ctrl: Controller, sid: str) -> None:
    """After a join or a leave: connect the sandbox to ``docker_gwbridge`` if
    it now needs a gateway, disconnect it if it no longer does. A failed
    connection raises (the caller undoes its join, as libnetwork's sbJoin
    fails); a failed disconnection is logged, as libnetwork logs it."""
    if not may_change(ctrl, sid):
        return
    sandbox = ctrl.records.sandbox_view(sid)
    current = gateway_endpoint(ctrl, sandbox)
    wanted = needs_gateway(ctrl, sandbox)
    if wanted and current is None:
        _connect(ctrl, sandbox)
    elif not wanted and current is not None:
        try:
            _disconnect(ctrl, sandbox["container"], current)
        except NetsimError as exc:
            log.warning("container %s: clearing its docker_gwbridge endpoint failed: %s", sandbox["container"], exc)


def _gw_network(ctrl: Controller) -> str:
    """``docker_gwbridge``'s id, creating it on first use."""
    nid = ctrl.records.lookup_name("network", GW_NETWORK)
    if nid is None:
        nid = ctrl.create_network(GW_NETWORK, "bridge", GW_OPTIONS).id
    return str(nid)


def _connect(ctrl: Controller, sandbox: dict[str, Any]) -> None:
    ports = [
        PortBinding.from_json(binding)
        for _, endpoint in _endpoints(ctrl, sandbox, None)
        for binding in endpoint["ports"]
    ]
    nid = _gw_network(ctrl)
    with rollback_on_error() as undo:
        name = GW_ENDPOINT_PREFIX + sandbox["id"][:12]
        # the sandbox is known: the bridge driver makes the interface right in the container
        endpoint = ctrl.create_endpoint(nid, name, ports=ports, sandbox=sandbox["container"])
        undo.push("delete the gateway endpoint", lambda: ctrl.delete_endpoint(endpoint))
        ctrl.join(endpoint, sandbox["container"])


def _disconnect(ctrl: Controller, container: str, eid: str) -> None:
    from netsim.controller.views import Endpoint

    nid = ctrl.records.lookup_name("network", GW_NETWORK)
    assert nid is not None  # the sandbox has an endpoint on it
    endpoint = Endpoint(ctrl, nid, eid, ctrl.records.endpoint_view(nid, eid)["name"])
    ctrl.leave(endpoint, container)
    ctrl.delete_endpoint(endpoint)
    if not ctrl.records.endpoints(nid):
        ctrl.delete_network(nid)
