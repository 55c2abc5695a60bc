"""VXLAN: encapsulation over the underlay and decapsulation back.

Sending: the destination MAC's FDB entry names the remote VTEP; unknown and
broadcast frames go to every all-zero-MAC entry and to the device's
``remote``; with ``proxy`` on, ARP and neighbour solicitations are answered
or consumed on the device first (:mod:`.vxlan_proxy`). The frame travels as UDP (device's ``dstport``) from ``local``
through the underlay namespace's normal IP output. Receiving: a UDP datagram
to a local address on a vxlan port is decapsulated into the device whose VNI
and port match (learning the inner source MAC's VTEP); a VNI nobody serves is
dropped, as Linux's vxlan socket does.
"""

from __future__ import annotations

import ipaddress
import zlib
from typing import TYPE_CHECKING

from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet

from netsim.kernel.fake.dataplane import routing, stack, vxlan_proxy
from netsim.kernel.fake.dataplane.packets import ZERO_MAC, is_multicast_mac
from netsim.kernel.fake.state import FdbEntry

if TYPE_CHECKING:
    from netsim.kernel.fake.dataplane.walk import Walk
    from netsim.kernel.fake.state import FakeLink, FakeNamespace, IPAddr

#: Linux picks the outer source port from a flow hash in the ephemeral range
_SPORT_BASE, _SPORT_SPAN = 49152, 16384
#: the VXLAN header flag saying "the VNI is valid"
_VNI_VALID = 0x08


def underlay_namespace(link: FakeLink) -> FakeNamespace:
    """Where the device's UDP socket lives: its underlay device's namespace."""
    return link.parent.ns if link.parent is not None else link.ns


def _remotes(link: FakeLink, dst_mac: str) -> list[IPAddr]:
    if not is_multicast_mac(dst_mac):
        known = [entry.dst for entry in link.fdb.values() if entry.mac == dst_mac and entry.dst is not None]
        if known:
            return known[:1]
    flood = [entry.dst for entry in link.fdb.values() if entry.mac == ZERO_MAC and entry.dst is not None]
    remote = link.attrs.get("remote")
    if remote:
        address = ipaddress.ip_address(remote)
        if address not in flood:
            flood.append(address)
    return flood


def transmit(walk: Walk, link: FakeLink, frame: Packet) -> None:
    """Encapsulate ``frame`` (sent out of vxlan ``link``) towards its VTEP(s)."""
    if link.attrs.get("proxy") and vxlan_proxy.consumes(walk, link, frame):
        return
    targets = _remotes(link, frame.dst)
    if not targets:
        walk.hop(link.ns, link, "drop", f"vxlan: no FDB entry or remote for {frame.dst}", frame)
        return
    under = underlay_namespace(link)
    vni = int(link.attrs.get("vni", 0))
    dstport = int(link.attrs.get("dstport", 4789))
    sport = _SPORT_BASE + zlib.crc32(f"{frame.src}{frame.dst}".encode()) % _SPORT_SPAN
    for index, target in enumerate(targets):
        inner = frame if index == len(targets) - 1 else frame.copy()
        local = link.attrs.get("local")
        if local is None:
            hop = routing.lookup(under, target)
            chosen = routing.source_for(under, hop.link, target.version) if hop is not None else None
            local = str(chosen) if chosen is not None else None
        family = IP if target.version == 4 else IPv6
        outer = family(src=local, dst=str(target)) if local else family(dst=str(target))
        datagram = UDP(sport=sport, dport=dstport, chksum=0) if target.version == 4 else UDP(sport=sport, dport=dstport)
        header = VXLAN(flags=_VNI_VALID, vni=vni)
        header.add_payload(inner)
        datagram.add_payload(header)
        outer.add_payload(datagram)
        # recorded where the packet now is: the socket's (underlay) namespace, as decap is
        walk.hop(under, link, "encap", f"vxlan vni {vni} to {target}:{dstport}", outer)
        failure = stack.local_output(walk, under, outer)
        if failure is not None:
            walk.hop(under, None, "drop", f"vxlan underlay: {failure}", outer)


def udp_input(walk: Walk, ns: FakeNamespace, ip: Packet) -> bool:
    """Decapsulate if a vxlan device listens on this port; True if consumed."""
    datagram = ip.payload
    dport = int(datagram.dport)
    devices = [
        link
        for link in _vxlan_links(walk)
        if link.up and underlay_namespace(link) is ns and int(link.attrs.get("dstport", 4789)) == dport
    ]
    if not devices:
        return False
    header = datagram.payload
    if not isinstance(header, VXLAN):
        header = VXLAN(bytes(header))
    vni = int(header.vni)
    for device in devices:
        if int(device.attrs.get("vni", -1)) != vni:
            continue
        inner = header.payload
        header.remove_payload()
        if device.attrs.get("learning", True) and not is_multicast_mac(inner.src):
            _learn(device, inner.src, ipaddress.ip_address(ip.src))
        walk.hop(ns, device, "decap", f"vxlan vni {vni} from {ip.src}", inner)
        walk.deliver(device, inner)
        return True
    walk.hop(ns, None, "drop", f"vxlan: no device for vni {vni} on port {dport}", ip)
    return True


def _vxlan_links(walk: Walk) -> list[FakeLink]:
    return [link for ns in walk.world.namespaces.values() for link in ns.links.values() if link.kind == "vxlan"]


def _learn(device: FakeLink, mac: str, vtep: IPAddr) -> None:
    for key, entry in list(device.fdb.items()):
        if entry.mac == mac:
            if entry.permanent:
                return
            del device.fdb[key]
    device.fdb[(mac, vtep)] = FdbEntry(mac, dst=vtep, permanent=False)
