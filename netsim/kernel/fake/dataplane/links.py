"""Link drivers: what happens when a frame leaves a link (``transmit``) and
when it arrives on one (``receive``), per link kind.

Only links that are operationally up pass frames. A bridge port hands what
it receives to its bridge (its own stack never sees it, as with Linux's
rx_handler); a macvlan, ipvlan or vlan parent hands frames on to its children first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Packet

from netsim.kernel.fake.dataplane import bridge, ipvlan, macvlan, stack, vxlan
from netsim.kernel.fake.dataplane.packets import ETH_VLAN
from netsim.kernel.fake.dataplane.pcap import record

if TYPE_CHECKING:
    from netsim.kernel.fake.dataplane.walk import Walk
    from netsim.kernel.fake.state import FakeLink


def transmit(walk: Walk, link: FakeLink, frame: Packet) -> None:
    """``frame`` leaves through ``link`` (the driver's xmit)."""
    if not link.oper_up:
        walk.hop(link.ns, link, "drop", "tx: link is down (no carrier)", frame)
        return
    record(walk.world, link, frame)
    kind = link.kind
    if kind == "veth":
        peer = link.peer
        assert peer is not None  # oper_up implies a peer
        walk.hop(link.ns, link, "tx", f"veth to {peer.ns.name}/{peer.name}", frame)
        walk.deliver(peer, frame)
    elif kind == "bridge":
        bridge.from_host(walk, link, frame)
    elif kind == "macvlan":
        macvlan.transmit(walk, link, frame)
    elif kind == "ipvlan":
        ipvlan.transmit(walk, link, frame)
    elif kind == "vxlan":
        vxlan.transmit(walk, link, frame)
    elif kind == "vlan":
        _vlan_transmit(walk, link, frame)
    else:  # loopback: what is sent comes straight back
        walk.hop(link.ns, link, "tx", "loopback", frame)
        walk.deliver(link, frame)


def receive(walk: Walk, link: FakeLink, frame: Packet) -> None:
    """``frame`` arrives on ``link`` (the event loop calls this)."""
    if link.ns.links.get(link.name) is not link or walk.world.namespaces.get(link.ns.name) is not link.ns:
        # a learned FDB or neighbour entry may still point at a deleted link
        walk.hop(link.ns, link, "drop", "rx: link no longer exists", frame)
        return
    if not link.oper_up:
        walk.hop(link.ns, link, "drop", "rx: link is down", frame)
        return
    record(walk.world, link, frame)
    master = link.master
    if master is not None and master.kind == "bridge":
        bridge.port_input(walk, master, link, frame)
        return
    if isinstance(frame.payload, Dot1Q):
        _vlan_receive(walk, link, frame)
        return
    if macvlan.parent_input(walk, link, frame) or ipvlan.parent_input(walk, link, frame):
        return
    stack.frame_input(walk, link, frame)


def _vlan_transmit(walk: Walk, link: FakeLink, frame: Packet) -> None:
    parent = link.parent
    if parent is None:
        walk.hop(link.ns, link, "drop", "vlan without parent", frame)
        return
    payload = frame.payload
    frame.remove_payload()
    tag = Dot1Q(vlan=int(link.attrs.get("vlan_id", 0)), type=int(frame.type))
    tag.add_payload(payload)
    tagged = Ether(src=frame.src, dst=frame.dst, type=ETH_VLAN)
    tagged.add_payload(tag)
    walk.hop(link.ns, link, "tx", f"802.1q tag {tag.vlan} onto {parent.name}", tagged)
    transmit(walk, parent, tagged)


def _vlan_receive(walk: Walk, link: FakeLink, frame: Packet) -> None:
    tag = frame.payload
    vlan_id = int(tag.vlan)
    for child in walk.macvlans_of(link):
        if child.kind == "vlan" and int(child.attrs.get("vlan_id", -1)) == vlan_id:
            inner = tag.payload
            tag.remove_payload()
            untagged = Ether(src=frame.src, dst=frame.dst, type=int(tag.type))
            untagged.add_payload(inner)
            walk.hop(link.ns, link, "rx", f"802.1q tag {vlan_id} to {child.name}", untagged)
            walk.deliver(child, untagged)
            return
    walk.hop(link.ns, link, "drop", f"no vlan {vlan_id} on {link.name}", frame)
