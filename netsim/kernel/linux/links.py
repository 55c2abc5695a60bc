"""Decoding pyroute2 netlink messages into the Kernel contract's dataclasses.

Pure functions over already-dumped messages: every name lookup goes through
an ``ifindex -> name`` map the caller built from one dump, so decoding a
namespace costs one RTM_GETLINK dump plus one per cross-namespace reference.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from typing import Any

from netsim.kernel.base import FdbInfo, LinkInfo, NeighbourInfo, RouteInfo

IFF_UP = 0x1
IFF_LOOPBACK = 0x8
NUD_NOARP = 0x40
NUD_PERMANENT = 0x80
NTF_SELF = 0x02
NTF_MASTER = 0x04
RTN_UNICAST = 1
RTPROT_KERNEL = 2
RTPROT_STATIC = 4
RT_TABLE_MAIN = 254
SCOPE_BY_NUMBER = {0: "universe", 253: "link", 254: "host"}
SCOPE_NUMBER = {"universe": 0, "link": 253, "host": 254}
MACVLAN_MODES = ("private", "vepa", "bridge", "passthru")
KNOWN_KINDS = ("veth", "bridge", "macvlan", "vlan", "vxlan", "ipvlan")
IPVLAN_MODES = ("l2", "l3", "l3s")
IPVLAN_FLAGS = ("bridge", "private", "vepa")

#: resolves (ifindex, link-netnsid or None) to ``(namespace, name)``, or None when not ours
Resolver = Callable[[int, int | None], tuple[str, str] | None]


def attr(msg: Any, name: str, default: Any = None) -> Any:
    value = msg.get_attr(name)
    return default if value is None else value


def link_kind(msg: Any) -> str | None:
    """ "loopback", one of KNOWN_KINDS, or None for kinds the contract does not model."""
    info = msg.get_attr("IFLA_LINKINFO")
    return summary_kind(info.get_attr("IFLA_INFO_KIND") if info is not None else None, msg["flags"])


def summary_kind(info_kind: str | None, flags: int) -> str | None:
    """:func:`link_kind` from the raw IFLA_INFO_KIND and ifinfomsg flags."""
    if info_kind is None:
        return "loopback" if flags & IFF_LOOPBACK else None
    return str(info_kind) if info_kind in KNOWN_KINDS else None


def _info_data(msg: Any) -> Any:
    info = msg.get_attr("IFLA_LINKINFO")
    return info.get_attr("IFLA_INFO_DATA") if info is not None else None


def _vxlan_attrs(data: Any) -> tuple[dict[str, Any], int | None]:
    local = attr(data, "IFLA_VXLAN_LOCAL") or attr(data, "IFLA_VXLAN_LOCAL6")
    peer = attr(data, "IFLA_VXLAN_GROUP") or attr(data, "IFLA_VXLAN_GROUP6")
    remote = group = None
    if peer is not None and peer not in ("0.0.0.0", "::"):
        if ipaddress.ip_address(peer).is_multicast:
            group = str(peer)
        else:
            remote = str(peer)
    attrs = {
        "vni": int(attr(data, "IFLA_VXLAN_ID", 0)),
        "local": str(local) if local not in (None, "0.0.0.0", "::") else None,
        "remote": remote,
        "group": group,
        "dstport": int(attr(data, "IFLA_VXLAN_PORT", 0)),
        "learning": bool(attr(data, "IFLA_VXLAN_LEARNING", 0)),
        "proxy": bool(attr(data, "IFLA_VXLAN_PROXY", 0)),
        "l2miss": bool(attr(data, "IFLA_VXLAN_L2MISS", 0)),
        "l3miss": bool(attr(data, "IFLA_VXLAN_L3MISS", 0)),
    }
    underlay = attr(data, "IFLA_VXLAN_LINK")
    return attrs, (int(underlay) if underlay else None)


def decode_link(msg: Any, names: Mapping[int, str], resolve: Resolver) -> LinkInfo | None:
    """One RTM_NEWLINK message as LinkInfo; None for kinds outside the contract."""
    kind = link_kind(msg)
    if kind is None:
        return None
    master_index = attr(msg, "IFLA_MASTER")
    link_netnsid = msg.get_attr("IFLA_LINK_NETNSID")
    peer = parent = None
    attrs: dict[str, Any] = {}
    data = _info_data(msg)
    linked = attr(msg, "IFLA_LINK")
    if kind == "veth" and linked:
        peer = resolve(int(linked), link_netnsid)
    elif kind in ("macvlan", "vlan", "ipvlan") and linked:
        found = resolve(int(linked), link_netnsid)
        parent = found[1] if found else None
        if kind == "ipvlan":
            attrs["mode"] = IPVLAN_MODES[int(attr(data, "IFLA_IPVLAN_MODE", 0))] if data is not None else "l2"
            attrs["flag"] = IPVLAN_FLAGS[int(attr(data, "IFLA_IPVLAN_FLAGS", 0))] if data is not None else "bridge"
        elif kind == "macvlan":
            attrs["mode"] = str(attr(data, "IFLA_MACVLAN_MODE", "bridge")) if data is not None else "bridge"
        else:
            attrs["vlan_id"] = int(attr(data, "IFLA_VLAN_ID", 0)) if data is not None else 0
    elif kind == "vxlan" and data is not None:
        attrs, underlay = _vxlan_attrs(data)
        if underlay:
            found = resolve(underlay, link_netnsid)
            parent = found[1] if found else None
    return LinkInfo(
        name=str(attr(msg, "IFLA_IFNAME")),
        kind=kind,  # type: ignore[arg-type]
        ifindex=int(msg["index"]),
        up=bool(msg["flags"] & IFF_UP),
        mtu=int(attr(msg, "IFLA_MTU", 0)),
        mac=str(attr(msg, "IFLA_ADDRESS", "00:00:00:00:00:00")),
        master=names.get(int(master_index)) if master_index else None,
        peer=peer,
        parent=parent,
        attrs=attrs,
    )


def decode_address(msg: Any, names: Mapping[int, str]) -> tuple[str, str] | None:
    address = attr(msg, "IFA_ADDRESS") if msg["family"] == 10 else attr(msg, "IFA_LOCAL", attr(msg, "IFA_ADDRESS"))
    dev = names.get(int(msg["index"]))
    if address is None or dev is None:
        return None
    cidr = ipaddress.ip_interface(f"{address}/{msg['prefixlen']}")
    return dev, cidr.with_prefixlen


def decode_route(msg: Any, names: Mapping[int, str]) -> RouteInfo | None:
    """A main-table unicast route; None for anything else (local, multicast, other tables)."""
    table = attr(msg, "RTA_TABLE", msg["table"])
    if table != RT_TABLE_MAIN or msg["type"] != RTN_UNICAST:
        return None
    family = 6 if msg["family"] == 10 else 4
    dst_addr = attr(msg, "RTA_DST")
    dst = "default" if dst_addr is None else ipaddress.ip_network(f"{dst_addr}/{msg['dst_len']}").with_prefixlen
    oif = attr(msg, "RTA_OIF")
    gateway = attr(msg, "RTA_GATEWAY")
    return RouteInfo(
        dst=dst,
        dev=names.get(int(oif)) if oif else None,
        via=str(gateway) if gateway else None,
        metric=int(attr(msg, "RTA_PRIORITY", 0)),
        scope=SCOPE_BY_NUMBER.get(int(msg["scope"]), "universe"),  # type: ignore[arg-type]
        proto="kernel" if msg["proto"] == RTPROT_KERNEL else "static",
        family=family,  # type: ignore[arg-type]
    )


def decode_neighbour(msg: Any, names: Mapping[int, str]) -> NeighbourInfo | None:
    """A resolved ARP/NDP entry; None for NOARP (multicast/local) and unresolved ones."""
    state = int(msg["state"])
    mac = attr(msg, "NDA_LLADDR")
    dev = names.get(int(msg["ifindex"]))
    if state & NUD_NOARP or mac is None or dev is None:
        return None
    return NeighbourInfo(dev=dev, ip=str(attr(msg, "NDA_DST")), mac=str(mac), permanent=bool(state & NUD_PERMANENT))


def decode_fdb(msg: Any, names: Mapping[int, str], kinds: Mapping[int, str]) -> FdbInfo | None:
    """A static FDB entry netsim could have added; None for kernel-made ones.

    Kept: ``self`` permanent entries on vxlan devices (remote VTEPs) and
    ``master`` static (NOARP, not local) entries on bridge ports. Dropped:
    bridge "local" entries for the ports' own MACs, the multicast
    addresses devices list as ``self permanent``, and learned entries.
    """
    ifindex = int(msg["ifindex"])
    dev = names.get(ifindex)
    mac = attr(msg, "NDA_LLADDR")
    state, flags = int(msg["state"]), int(msg["flags"])
    if dev is None or mac is None:
        return None
    master_index = attr(msg, "NDA_MASTER")
    if master_index and not state & NUD_PERMANENT and state & NUD_NOARP:
        return FdbInfo(dev=dev, mac=str(mac), dst=None, master=names.get(int(master_index)), permanent=True)
    if kinds.get(ifindex) == "vxlan" and flags & NTF_SELF and not master_index and state & NUD_PERMANENT:
        dst = attr(msg, "NDA_DST")
        return FdbInfo(dev=dev, mac=str(mac), dst=str(dst) if dst else None, master=None, permanent=True)
    return None
