"""The fake kernel's in-memory state, shared by its control plane
(``kernel.py``: what netlink/nft calls change) and its dataplane
(``dataplane/``: what packets read and learn).

Objects refer to each other directly (a veth's peer, a macvlan's parent, a
bridge port's master) because those relations cross namespaces in Linux too:
a macvlan moved into a container keeps its parent in the host namespace.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from netsim.kernel.base import LinkKind, Listener, Rule
from netsim.kernel.dns import DnsLookup

IPIface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
IPNet = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddr = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(eq=False)
class FdbEntry:
    """On a bridge: ``port`` is the bridge port the MAC lives behind.
    On a vxlan device: ``dst`` is the remote VTEP (all-zero MAC = flood list)."""

    mac: str
    port: FakeLink | None = None
    dst: IPAddr | None = None
    permanent: bool = False


@dataclass(eq=False)
class FakeLink:
    name: str
    kind: LinkKind
    ifindex: int
    mac: str
    ns: FakeNamespace
    up: bool = False
    mtu: int = 1500
    #: bridge this link is a port of (same namespace)
    master: FakeLink | None = None
    #: veth peer (any namespace)
    peer: FakeLink | None = None
    #: macvlan/vlan parent, vxlan underlay device (may be in another namespace after a move)
    parent: FakeLink | None = None
    #: macvlan "mode"; vlan "vlan_id"; vxlan "vni","local","remote","group","dstport","learning"
    attrs: dict[str, Any] = field(default_factory=dict)
    #: in the order added (Linux lists addresses per link in that order)
    addresses: list[IPIface] = field(default_factory=list)
    #: bridge and vxlan devices: forwarding database, keyed by (mac, dst or None)
    fdb: dict[tuple[str, IPAddr | None], FdbEntry] = field(default_factory=dict)

    @property
    def oper_up(self) -> bool:
        """Carrier as Linux sees it: admin up, and for veth the peer up too,
        for macvlan/vlan the parent up."""
        if not self.up:
            return False
        if self.kind == "veth":
            return self.peer is not None and self.peer.up
        if self.kind in ("macvlan", "vlan", "ipvlan") and self.parent is not None:
            return self.parent.oper_up
        return True


@dataclass(frozen=True)
class FakeRoute:
    dst: IPNet  # default is 0.0.0.0/0 or ::/0
    dev: str | None
    via: IPAddr | None
    metric: int
    scope: str  # "universe" | "link" | "host"
    proto: str  # "kernel" | "static"


@dataclass(eq=False)
class FakeNeighbour:
    dev: str
    ip: IPAddr
    mac: str | None  # None = INCOMPLETE/FAILED
    permanent: bool = False


@dataclass
class ConntrackEntry:
    """One NATed flow: the original 5-tuple and what it was rewritten to."""

    proto: str
    orig_src: tuple[str, int]
    orig_dst: tuple[str, int]
    reply_src: tuple[str, int]
    reply_dst: tuple[str, int]


@dataclass(eq=False)
class FakeNamespace:
    name: str
    links: dict[str, FakeLink] = field(default_factory=dict)
    routes: list[FakeRoute] = field(default_factory=list)
    neighbours: dict[tuple[str, IPAddr], FakeNeighbour] = field(default_factory=dict)
    sysctls: dict[str, str] = field(
        default_factory=lambda: {"net.ipv4.ip_forward": "0", "net.ipv6.conf.all.forwarding": "0"}
    )
    #: rules in insertion (evaluation) order, as dict keys: membership and
    #: removal in O(1), however many networks a host has
    rules: dict[Rule, None] = field(default_factory=dict)
    #: isolation group -> its members (the Isolated rules of ``rules``)
    isolation: dict[str, set[str]] = field(default_factory=dict)
    #: interfaces no Dnat applies to arriving packets from (the DnatExempt rules of ``rules``)
    dnat_exempt: set[str] = field(default_factory=set)
    #: how many bridge-layer Filters ``rules`` holds (a bridged frame skips the rules when none)
    bridge_filters: int = 0
    listeners: list[Listener] = field(default_factory=list)
    #: DNS servers by address (``"127.0.0.11"``): their lookup (netsim.kernel.dns)
    dns_servers: dict[str, DnsLookup] = field(default_factory=dict)
    conntrack: list[ConntrackEntry] = field(default_factory=list)

    def link_by_index(self, ifindex: int) -> FakeLink | None:
        for link in self.links.values():
            if link.ifindex == ifindex:
                return link
        return None


@dataclass(eq=False)
class FakeWorld:
    """Everything one FakeKernel holds."""

    namespaces: dict[str, FakeNamespace] = field(default_factory=dict)
    next_ifindex: int = 2
    #: (ns, link) -> MAC for MACs set explicitly (see Kernel.explicit_macs)
    explicit_macs: dict[tuple[str, str], str] = field(default_factory=dict)
    #: active packet captures (dataplane/pcap.py ``Tap`` objects); every frame
    #: crossing a tapped (namespace, link) is written while the tap is here
    taps: list[Any] = field(default_factory=list)
