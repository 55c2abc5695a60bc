"""A Linux bridge: MAC learning, FDB lookup, flooding, and the bridge device
itself as a host port (frames for its MAC, or any port's MAC, go up its stack).

Frames bridged between two ports pass the bridge-layer filter rules (how
ICC=false is expressed); frames to or from the host port do not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scapy.packet import Packet

from netsim.kernel.fake.dataplane import filters, links, stack
from netsim.kernel.fake.dataplane.packets import fget, is_multicast_mac
from netsim.kernel.fake.dataplane.pcap import record
from netsim.kernel.fake.state import FdbEntry

if TYPE_CHECKING:
    from netsim.kernel.fake.dataplane.walk import Walk
    from netsim.kernel.fake.state import FakeLink


def ports_of(bridge: FakeLink) -> list[FakeLink]:
    return [link for link in bridge.ns.links.values() if link.master is bridge]


def _is_local(bridge: FakeLink, mac: str) -> bool:
    """Linux keeps the bridge's and every port's own MAC as local FDB entries."""
    return mac == bridge.mac or any(port.mac == mac for port in ports_of(bridge))


def _learn(walk: Walk, bridge: FakeLink, port: FakeLink, mac: str) -> None:
    if is_multicast_mac(mac) or _is_local(bridge, mac):
        return
    entry = bridge.fdb.get((mac, None))
    if entry is not None and (entry.permanent or entry.port is port):
        return
    bridge.fdb[(mac, None)] = FdbEntry(mac, port=port, permanent=False)


def port_input(walk: Walk, bridge: FakeLink, port: FakeLink, frame: Packet) -> None:
    """A frame arrived on ``port`` of ``bridge``."""
    if not bridge.up:
        walk.hop(bridge.ns, port, "drop", f"bridge {bridge.name} is down", frame)
        return
    src, dst = fget(frame, "src"), fget(frame, "dst")
    _learn(walk, bridge, port, src)
    if is_multicast_mac(dst):
        walk.hop(bridge.ns, port, "bridge", f"{bridge.name}: flood {dst}", frame)
        _flood(walk, bridge, port, frame, to_host=True)
        return
    if _is_local(bridge, dst):
        walk.hop(bridge.ns, port, "bridge", f"{bridge.name}: to host port", frame)
        _to_host(walk, bridge, frame)
        return
    entry = bridge.fdb.get((dst, None))
    if entry is None or entry.port is None or entry.port.master is not bridge:
        walk.hop(bridge.ns, port, "bridge", f"{bridge.name}: unknown {dst}, flood", frame)
        _flood(walk, bridge, port, frame, to_host=False)
        return
    if entry.port is port:
        walk.hop(bridge.ns, port, "drop", f"{bridge.name}: {dst} is behind the ingress port", frame)
        return
    walk.hop(bridge.ns, port, "bridge", f"{bridge.name}: {dst} via {entry.port.name}", frame)
    _forward(walk, bridge, entry.port, frame)


def from_host(walk: Walk, bridge: FakeLink, frame: Packet) -> None:
    """The bridge device's own stack sends ``frame`` into the bridge."""
    dst = fget(frame, "dst")
    entry = None if is_multicast_mac(dst) else bridge.fdb.get((dst, None))
    if entry is not None and entry.port is not None and entry.port.master is bridge:
        walk.hop(bridge.ns, bridge, "tx", f"{bridge.name}: {dst} via {entry.port.name}", frame)
        links.transmit(walk, entry.port, frame)
        return
    walk.hop(bridge.ns, bridge, "tx", f"{bridge.name}: flood {dst}", frame)
    targets = [port for port in ports_of(bridge) if port.oper_up]
    _send_each(walk, targets, frame, copy=not is_multicast_mac(dst))


def _forward(walk: Walk, bridge: FakeLink, out_port: FakeLink, frame: Packet) -> None:
    rule = filters.bridge_verdict(bridge.ns, bridge.name, frame)
    if rule is not None:
        walk.hop(bridge.ns, out_port, "drop", f"{bridge.name}: bridge filter {rule}", frame)
        return
    links.transmit(walk, out_port, frame)


def _to_host(walk: Walk, bridge: FakeLink, frame: Packet) -> None:
    record(walk.world, bridge, frame)
    stack.frame_input(walk, bridge, frame)


def _flood(walk: Walk, bridge: FakeLink, in_port: FakeLink, frame: Packet, *, to_host: bool) -> None:
    targets = [port for port in ports_of(bridge) if port is not in_port and port.oper_up]
    if filters.has_bridge_rules(bridge.ns) and filters.bridge_verdict(bridge.ns, bridge.name, frame) is not None:
        walk.hop(bridge.ns, in_port, "drop", f"{bridge.name}: bridge filter on flooded frame", frame)
        targets = []
    # IP frames may be rewritten by whoever receives them; broadcast ones
    # (ARP, ND) are only read, so they are shared instead of copied.
    copy = not is_multicast_mac(frame.dst)
    if to_host:
        _to_host(walk, bridge, frame.copy() if copy and targets else frame)
    _send_each(walk, targets, frame, copy=copy)


def _send_each(walk: Walk, targets: list[FakeLink], frame: Packet, *, copy: bool) -> None:
    for index, port in enumerate(targets):
        last = index == len(targets) - 1
        links.transmit(walk, port, frame if last or not copy else frame.copy())
