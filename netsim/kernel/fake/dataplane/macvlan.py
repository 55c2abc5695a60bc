"""Macvlan, by mode, as Linux's drivers/net/macvlan.c behaves.

* bridge: siblings on one parent reach each other directly; everything else
  leaves through the parent's wire. The parent's own stack never sees frames
  from its macvlans, and its own frames never reach them.
* private: no sibling traffic at all; vepa: sibling traffic leaves through
  the parent and comes back only if an external switch hairpins it (modelled
  as not coming back); passthru: one macvlan owns the parent.

Frames arriving on the parent from the wire go to the macvlan owning the
destination MAC; broadcasts go to every macvlan and to the parent's stack.
A frame shared by several receivers is copied for each: receivers rewrite
frames in place (an 802.1q parent re-tags the one it transmits).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scapy.packet import Packet

from netsim.kernel.fake.dataplane import links
from netsim.kernel.fake.dataplane.packets import is_multicast_mac

if TYPE_CHECKING:
    from netsim.kernel.fake.dataplane.walk import Walk
    from netsim.kernel.fake.state import FakeLink


def _mode(link: FakeLink) -> str:
    return str(link.attrs.get("mode", "bridge"))


def _macvlans(walk: Walk, parent: FakeLink) -> list[FakeLink]:
    return [child for child in walk.macvlans_of(parent) if child.kind == "macvlan"]


def transmit(walk: Walk, link: FakeLink, frame: Packet) -> None:
    """A macvlan sends ``frame``."""
    parent = link.parent
    if parent is None:
        walk.hop(link.ns, link, "drop", "macvlan without parent", frame)
        return
    mode = _mode(link)
    dst = frame.dst
    if mode == "bridge":
        siblings = [s for s in _macvlans(walk, parent) if s is not link and _mode(s) == "bridge"]
        if is_multicast_mac(dst):
            for sibling in siblings:
                if sibling.oper_up:
                    walk.hop(link.ns, link, "tx", f"macvlan bridge: broadcast to sibling {sibling.name}", frame)
                    # a copy each: the original goes on through the parent, and a VLAN
                    # parent's tagging takes its payload away before the sibling reads it
                    walk.deliver(sibling, frame.copy())
        else:
            for sibling in siblings:
                if sibling.mac == dst:
                    walk.hop(link.ns, link, "tx", f"macvlan bridge: to sibling {sibling.name}", frame)
                    if sibling.oper_up:
                        walk.deliver(sibling, frame)
                    else:
                        walk.hop(sibling.ns, sibling, "drop", "sibling is down", frame)
                    return
    walk.hop(link.ns, link, "tx", f"macvlan {mode}: out through parent {parent.ns.name}/{parent.name}", frame)
    _to_wire(walk, parent, frame)


def _to_wire(walk: Walk, parent: FakeLink, frame: Packet) -> None:
    """Leave through the parent without passing its stack: a frame addressed
    to the parent's own MAC goes out to the wire like any other, so the
    parent's addresses are unreachable from its macvlans."""
    links.transmit(walk, parent, frame)


def parent_input(walk: Walk, parent: FakeLink, frame: Packet) -> bool:
    """A frame arrived on ``parent`` from the wire; True if a macvlan took it
    (the parent's stack must then not see it)."""
    children = _macvlans(walk, parent)
    if not children:
        return False
    dst = frame.dst
    for child in children:
        if _mode(child) == "passthru":
            walk.hop(parent.ns, parent, "rx", f"macvlan passthru: to {child.name}", frame)
            walk.deliver(child, frame)
            return True
    if is_multicast_mac(dst):
        source = frame.src
        for child in children:
            # vepa/private: a broadcast a sibling sent out comes back via a
            # hairpinning switch only; with no hairpin it never returns here.
            if child.oper_up and child.mac != source:
                walk.deliver(child, frame.copy())  # the parent's stack gets the original
        return False
    for child in children:
        if child.mac == dst:
            walk.hop(parent.ns, parent, "rx", f"macvlan: to {child.ns.name}/{child.name}", frame)
            walk.deliver(child, frame)
            return True
    return False
