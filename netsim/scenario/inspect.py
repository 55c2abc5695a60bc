"""``netsim inspect``: ``docker network inspect``-shaped data for every
network of a built scenario.

A local network is inspected on its host. A global-scope network (overlay)
is one element for the whole cluster: its containers on every host, and what
``docker network inspect --verbose`` adds on a swarm node, ``Peers`` (the
hosts with endpoints on it and their underlay addresses) and, per remote
endpoint, the peer-table entry as the driver decodes it
(``decode_table_entry``), under ``PeerEntries``.
"""

from __future__ import annotations

from typing import Any

from netsim.scenario.model import NetworkSpec
from netsim.scenario.runner import BuiltScenario


def inspect_networks(world: BuiltScenario) -> list[dict[str, Any]]:
    """One inspect document per network of the scenario, in file order. O(networks * endpoints)."""
    return [_inspect(world, net) for net in world.scenario.networks]


def _inspect(world: BuiltScenario, net: NetworkSpec) -> dict[str, Any]:
    if not net.is_global or world.cluster is None:
        data: dict[str, Any] = world.controllers[net.host].inspect_network(net.name)
        return data
    hosts = list(world.scenario.hosts)
    data = world.controllers[hosts[0]].inspect_network(net.name)
    # the cluster wraps the IPAM driver to share it between hosts; users named the driver itself
    data["IPAM"]["Driver"] = net.ipam.driver
    for host in hosts[1:]:
        data["Containers"].update(world.controllers[host].inspect_network(net.name)["Containers"])
    peers: dict[str, str] = {}
    entries = []
    for entry, object_id, fields in world.cluster.peer_entries(net.name):
        peers.setdefault(entry.origin, fields.get("Host IP", ""))
        entries.append({"Host": entry.origin, "EndpointID": object_id, "Table": entry.table, "Info": dict(fields)})
    data["Peers"] = [{"Name": host, "IP": peers[host]} for host in hosts if host in peers]
    data["PeerEntries"] = entries
    return data
