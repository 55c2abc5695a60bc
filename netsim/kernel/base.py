"""The Kernel contract: everything netsim does to a network goes through it.

Two implementations live beside this file, like an HTTP client's transports:
``fake`` (an in-memory model of Linux's stack that forwards scapy packets) and
``linux`` (the real kernel through pyroute2, inside namespaces netsim made).
Both must behave the same: equal snapshots, equal error kinds (errno
included), equal reachability. Divergences are listed in ``divergences.py``.

Addresses are strings in CIDR form (``"10.0.0.2/24"``, ``"fd00::2/64"``);
plain IPs are strings too. Names are exactly as the kernel shows them.
Every mutating call either succeeds completely or raises a
:class:`netsim.errors.KernelError` (errno kept) and changes nothing.

A kernel object is not thread-safe: one caller at a time (the real kernel
keeps one netlink socket per namespace). A driver called from several
threads serializes its kernel work under its own lock.
"""

from __future__ import annotations

import abc
import contextlib
import errno
import ipaddress
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from netsim.errors import InvalidParameterError, kernel_error
from netsim.kernel.dns import RESOLVE_TIMEOUT, RESOLVER_ADDRESS, DnsLookup, DnsResult
from netsim.naming import MAX_IFNAME, check_ifname, new_run_id, run_prefix

__all__ = ["MAX_IFNAME"]

LinkKind = Literal["loopback", "veth", "bridge", "macvlan", "vlan", "vxlan", "ipvlan"]
MacvlanMode = Literal["bridge", "private", "vepa", "passthru"]
IpvlanMode = Literal["l2", "l3", "l3s"]
IpvlanFlag = Literal["bridge", "private", "vepa"]
Proto = Literal["icmp", "tcp", "udp"]
ListenProto = Literal["tcp", "udp"]


@dataclass(frozen=True)
class LinkInfo:
    """One link as the kernel reports it."""

    name: str
    kind: LinkKind
    ifindex: int
    up: bool
    mtu: int
    mac: str
    master: str | None = None
    #: veth: ``(namespace, name)`` of the peer; None when it is not visible.
    peer: tuple[str, str] | None = None
    #: macvlan/vlan: the parent link; vxlan: the underlay device (or None).
    parent: str | None = None
    #: kind-specific: macvlan ``mode``; vlan ``vlan_id``; vxlan ``vni``,
    #: ``local``, ``remote``, ``group``, ``dstport``, ``learning``, ``proxy``,
    #: ``l2miss``, ``l3miss``.
    attrs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RouteInfo:
    """One route of a namespace's main table, as :meth:`Kernel.routes` lists it."""

    #: ``"default"`` or a CIDR (``"10.0.0.0/24"``, ``"fd00::/64"``)
    dst: str
    #: the output link (None for a route that names only a gateway)
    dev: str | None = None
    #: the gateway (None for an on-link route)
    via: str | None = None
    metric: int = 0
    #: ``"link"`` for on-link routes (connected, or added with ``scope="link"``)
    scope: Literal["universe", "link", "host"] = "universe"
    #: "kernel" for routes the kernel adds for an address, "static" otherwise.
    proto: Literal["kernel", "static"] = "static"
    family: Literal[4, 6] = 4


@dataclass(frozen=True)
class NeighbourInfo:
    """A static (``permanent``) or learned ARP/ND entry."""

    dev: str
    ip: str
    mac: str
    permanent: bool = True


@dataclass(frozen=True)
class FdbInfo:
    """A bridge or vxlan forwarding entry. ``dst`` is the vxlan remote VTEP."""

    dev: str
    mac: str
    dst: str | None = None
    master: str | None = None
    permanent: bool = True


# --- the NAT / filter rule model -------------------------------------------
# Deliberately small: what container networking needs, expressible both in the
# fake dataplane and in one nftables table per namespace.


@dataclass(frozen=True)
class Masquerade:
    """SNAT to the outgoing address for packets from ``src`` leaving the host.

    Matches when ``out_iface`` (if set) is the egress link and
    ``not_out_iface`` (if set) is not (Docker: ``-s SUBNET ! -o BRIDGE``).
    """

    src: str
    out_iface: str | None = None
    not_out_iface: str | None = None


@dataclass(frozen=True)
class Dnat:
    """Rewrite ``dst:dport`` (``dst`` None = any local address) to ``to_addr:to_port``.

    Applies to packets arriving from outside (prerouting) and to locally
    generated ones (output), like Docker's DOCKER chain. ``not_in_iface``
    excludes packets coming in on that link (Docker's ``! -i BRIDGE``);
    leave it None to allow hairpin from the same bridge.
    """

    proto: Literal["tcp", "udp"]
    dport: int
    to_addr: str
    to_port: int
    dst: str | None = None
    not_in_iface: str | None = None


@dataclass(frozen=True)
class Filter:
    """A forward-path verdict; rules are evaluated in insertion order.

    ``layer="ip"`` filters routed packets (nftables inet forward);
    ``layer="bridge"`` filters frames bridged between ports of the bridge
    named by ``in_iface``/``out_iface`` (which are then *bridge* names,
    matched with nftables ``ibrname``/``obrname``) — that is how ICC=false is
    expressed. Unset fields match anything. The default verdict is accept.
    """

    action: Literal["drop", "accept"]
    in_iface: str | None = None
    out_iface: str | None = None
    src: str | None = None
    dst: str | None = None
    layer: Literal["ip", "bridge"] = "ip"


@dataclass(frozen=True)
class Isolated:
    """``iface`` is a member of isolation group ``group``: a packet routed in
    from one member and out of a *different* member of the same group is
    dropped (traffic in and out of the same member is ICC's business, not
    this rule's). It is Docker's inter-network isolation
    (``DOCKER-ISOLATION-STAGE-1``: ``-i BR ! -o BR -j STAGE-2``;
    ``STAGE-2``: ``-o BR -j DROP``) with one rule per network instead of
    one per pair of networks: adding or deleting a member costs the same
    however many members the group has.

    Isolation is judged in the forward path before every ip-layer
    :class:`Filter`, wherever the membership sits in :meth:`Kernel.rules`,
    so an accepting Filter does not let isolated traffic through (Docker
    jumps to the isolation chain ahead of its accepts). A group exists while
    it has members. ``group`` is 1-32 characters of ``[A-Za-z0-9_.-]``.
    """

    iface: str
    group: str = "bridge"


#: an isolation group's name (see :class:`Isolated`)
ISOLATION_GROUP_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,32}")


def check_isolated(rule: Isolated) -> None:
    """Refuse a malformed membership before anything changes (both kernels check alike):
    InvalidParameterError for a bad group, EINVAL for a bad interface name."""
    group = rule.group
    if not isinstance(group, str) or not ISOLATION_GROUP_PATTERN.fullmatch(group):
        raise InvalidParameterError(
            f"invalid isolation group {group!r}: expected 1-32 characters of letters, digits, '_', '.', '-'"
        )
    _check_exact_ifname(rule.iface, "isolation")


def _check_exact_ifname(name: object, what: str) -> None:
    """EINVAL for a name Linux refuses; InvalidParameterError for one nftables cannot match exactly."""
    if not isinstance(name, str):
        raise kernel_error(errno.EINVAL, f"invalid interface name {name!r}")
    check_ifname(name)
    if name.endswith("*") or name.startswith("@"):
        # Linux allows such names, but nftables reads them as a wildcard or a set reference
        raise InvalidParameterError(f"{what} cannot match {name!r} exactly: a trailing '*' or leading '@'")


@dataclass(frozen=True)
class DnatExempt:
    """No :class:`Dnat` rewrites a packet that arrives on ``in_iface``, wherever
    this rule sits in :meth:`Kernel.rules` (it is judged before every Dnat).
    Locally generated packets have no in-interface and are not affected.

    Docker <= 28 with its userland proxy (the default) starts its DOCKER nat
    chain with ``-i BRIDGE -j RETURN`` for every non-internal bridge network
    (libnetwork/drivers/bridge/setup_ip_tables_linux.go), so a container that
    connects to a published port at the host's address is answered by the
    docker-proxy on the host instead of being forwarded to the backend: that
    is how it reaches a published container on *another* network, whose
    forwarded traffic the isolation rules drop.
    """

    in_iface: str


def check_dnat_exempt(rule: DnatExempt) -> None:
    """Refuse a malformed exemption before anything changes (both kernels check alike)."""
    _check_exact_ifname(rule.in_iface, "a DNAT exemption")


Rule = Masquerade | Dnat | Filter | Isolated | DnatExempt


@dataclass(frozen=True)
class Listener:
    """A socket accepting TCP or echoing UDP on ``addr:port``.

    ``"0.0.0.0"`` is every IPv4 address; ``"::"`` every IPv6 address and IPv6
    only (IPV6_V6ONLY), so both may listen on one port independently.
    """

    proto: ListenProto
    port: int
    addr: str = "0.0.0.0"  # "::" for IPv6 any
    #: a proxy, as the bridge driver's docker-proxy: ``(address, port)`` it relays
    #: to from this namespace. TCP is accepted at once (docker-proxy accepts before
    #: it dials); each UDP datagram is relayed and only the backend's answer is
    #: sent back (none when the backend does not answer).
    forward_to: tuple[str, int] | None = None


def check_forward_to(listener: Listener) -> None:
    """A proxy's target: ``(address, port)`` (EINVAL otherwise; both kernels check alike)."""
    target = listener.forward_to
    if target is None:
        return
    try:
        address, port = target
        ipaddress.ip_address(address)
        valid = isinstance(port, int) and not isinstance(port, bool) and 1 <= port <= 65535
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise kernel_error(errno.EINVAL, f"invalid listener forward_to {target!r}: expected (address, port)")


@dataclass
class ProbeResult:
    """The answer to "does this packet get there and back?"."""

    reachable: bool
    proto: Proto
    src_namespace: str
    dst: str
    port: int | None
    #: scapy packet of the reply (None when nothing came back).
    reply: Any = None
    #: "echo-reply", "syn-ack", "rst", "udp-reply", "port-unreachable",
    #: "host-unreachable", "time-exceeded", "timeout", ...
    outcome: str = "timeout"
    rtt: float | None = None
    #: fake kernel only: hop-by-hop list of :class:`TraceHop`.
    trace: list[TraceHop] = field(default_factory=list)


@dataclass(frozen=True)
class TraceHop:
    """One step of a packet's path through the fake kernel (``netsim trace`` prints these)."""

    namespace: str
    iface: str | None
    action: str  # "rx", "tx", "route", "bridge", "dnat", "snat", "deliver", "drop", ...
    detail: str = ""
    summary: str = ""  # scapy one-line summary of the packet at that point


class Kernel(abc.ABC):
    """A network stack made of namespaces. See the module docstring."""

    #: "fake" or "linux"
    kind: str

    def __init__(self, run_id: str | None = None) -> None:
        self.run_id = run_id or new_run_id()
        #: every namespace this kernel creates starts with this
        self.prefix = run_prefix(self.run_id)

    def ns(self, role: str) -> str:
        """The full namespace name for a role: ``ns("h1")`` → ``netsim-<run>-h1``."""
        return self.prefix + role

    # --- namespaces ---------------------------------------------------------
    @abc.abstractmethod
    def add_namespace(self, name: str) -> None:
        """Create a namespace; ``lo`` exists in it, down. EEXIST if taken."""

    @abc.abstractmethod
    def delete_namespace(self, name: str) -> None:
        """Destroy it with its links (veth peers elsewhere go too)."""

    @abc.abstractmethod
    def namespaces(self) -> list[str]:
        """Namespaces this kernel object created and still holds, sorted."""

    # --- links --------------------------------------------------------------
    @abc.abstractmethod
    def add_veth(self, ns: str, name: str, peer: str, peer_ns: str | None = None) -> None:
        """A veth pair: ``name`` in ``ns``, ``peer`` in ``peer_ns`` (default ``ns``)."""

    @abc.abstractmethod
    def add_bridge(self, ns: str, name: str) -> None:
        """A bridge, down, no ports. EEXIST if the name is taken; EINVAL over 15 bytes."""

    @abc.abstractmethod
    def add_macvlan(self, ns: str, name: str, parent: str, mode: MacvlanMode = "bridge") -> None:
        """A macvlan child of ``parent`` (in ``ns``) in the given mode; ENODEV without the parent."""

    @abc.abstractmethod
    def add_ipvlan(self, ns: str, name: str, parent: str, mode: IpvlanMode = "l2", flag: IpvlanFlag = "bridge") -> None:
        """An ipvlan slave of ``parent`` sharing its MAC (attrs ``mode``, ``flag``).
        Mode and flag belong to the parent's port in Linux: a new slave's apply to
        every slave of that parent. ENODEV without the parent; a kernel without the
        ipvlan link kind answers EOPNOTSUPP (see divergences.py)."""

    @abc.abstractmethod
    def add_vlan(self, ns: str, name: str, parent: str, vlan_id: int) -> None:
        """An 802.1q sub-interface (``eth0.10``) of ``parent``."""

    @abc.abstractmethod
    def add_vxlan(
        self,
        ns: str,
        name: str,
        vni: int,
        *,
        local: str | None = None,
        remote: str | None = None,
        group: str | None = None,
        dstport: int = 4789,
        learning: bool = True,
        dev: str | None = None,
        proxy: bool = False,
        l2miss: bool = False,
        l3miss: bool = False,
    ) -> None:
        """A VXLAN device: ``remote`` for point-to-point, ``group`` for multicast,
        neither for FDB-driven (overlay's design); ``dev`` is the underlay link.

        ``proxy`` (Linux's ``VXLAN_F_PROXY``): every ARP request and IPv6
        neighbour solicitation sent out of the device is consumed there, and
        answered from the device's own neighbour table when it holds the
        target (never flooded to VTEPs). ``l2miss``/``l3miss`` ask the kernel
        to report FDB/neighbour misses on netlink (nobody in netsim listens:
        the flags are kept and reported, as libnetwork sets them). The device's
        UDP socket stays in the namespace it was created in when it moves."""

    @abc.abstractmethod
    def delete_link(self, ns: str, name: str) -> None:
        """Delete a link; a veth's peer goes with it."""

    @abc.abstractmethod
    def set_link_up(self, ns: str, name: str, up: bool = True) -> None:
        """Up (or down with ``up=False``). A link's routes need it up: a route
        through a link that is down is refused (ENETDOWN) and goes when it goes down."""

    @abc.abstractmethod
    def set_mtu(self, ns: str, name: str, mtu: int) -> None:
        """EINVAL outside the link's range (a macvlan or vlan never above its parent)."""

    @abc.abstractmethod
    def set_mac(self, ns: str, name: str, mac: str) -> None:
        """Set a unicast MAC; only MACs set this way appear in :meth:`snapshot`."""

    @abc.abstractmethod
    def set_master(self, ns: str, name: str, master: str | None) -> None:
        """Enslave to a bridge, or release with ``None``."""

    @abc.abstractmethod
    def move_link(self, ns: str, name: str, new_ns: str, new_name: str | None = None) -> None:
        """Move into another namespace (optionally renaming on the way)."""

    @abc.abstractmethod
    def rename_link(self, ns: str, name: str, new_name: str) -> None:
        """Rename, up or down (Linux >= 6.2 allows renaming a link that is up)."""

    @abc.abstractmethod
    def links(self, ns: str) -> list[LinkInfo]:
        """All links of ``ns`` sorted by name."""

    def link_names(self, ns: str) -> list[str]:
        """The names :meth:`links` lists, sorted. The real kernel reads them from one dump
        without decoding the links (a join picks the sandbox's free ``ethN`` with it)."""
        return [info.name for info in self.links(ns)]

    def link(self, ns: str, name: str) -> LinkInfo:
        """One link; KernelNotFoundError (ENODEV) if absent."""
        import errno

        from netsim.errors import kernel_error

        for info in self.links(ns):
            if info.name == name:
                return info
        raise kernel_error(errno.ENODEV, f"no link {name!r} in namespace {ns!r}")

    # --- addresses, routes, neighbours, fdb -----------------------------------
    @abc.abstractmethod
    def add_address(self, ns: str, dev: str, cidr: str) -> None:
        """Add ``cidr`` (``"10.0.0.2/24"``) to ``dev``; with the link up the kernel adds the
        connected route (none for a /32 or /128). The same address may sit on several links."""

    @abc.abstractmethod
    def delete_address(self, ns: str, dev: str, cidr: str) -> None:
        """Remove it (and its connected route); EADDRNOTAVAIL if absent."""

    @abc.abstractmethod
    def addresses(self, ns: str) -> list[tuple[str, str]]:
        """``(dev, cidr)`` pairs sorted, IPv6 link-local ones included."""

    @abc.abstractmethod
    def add_route(
        self,
        ns: str,
        dst: str,
        *,
        via: str | None = None,
        dev: str | None = None,
        metric: int = 0,
        scope: Literal["universe", "link"] | None = None,
    ) -> None:
        """``dst`` is "default" (IPv4; "default6" for IPv6) or a CIDR.

        A ``via`` not reachable through a connected route is ENETUNREACH.
        """

    @abc.abstractmethod
    def delete_route(
        self, ns: str, dst: str, *, via: str | None = None, dev: str | None = None, metric: int | None = None
    ) -> None:
        """Delete the route matching what is given; ESRCH if none does."""

    @abc.abstractmethod
    def routes(self, ns: str) -> list[RouteInfo]:
        """The main table, kernel (connected) routes included, sorted."""

    @abc.abstractmethod
    def add_neighbour(self, ns: str, dev: str, ip: str, mac: str) -> None:
        """A permanent ARP (IPv4) or ND (IPv6) entry."""

    @abc.abstractmethod
    def delete_neighbour(self, ns: str, dev: str, ip: str) -> None:
        """Remove a neighbour entry."""

    @abc.abstractmethod
    def neighbours(self, ns: str) -> list[NeighbourInfo]:
        """Permanent entries, sorted."""

    @abc.abstractmethod
    def add_fdb(self, ns: str, dev: str, mac: str, dst: str | None = None) -> None:
        """Static FDB entry on a bridge port or a vxlan (``dst`` = remote VTEP)."""

    @abc.abstractmethod
    def delete_fdb(self, ns: str, dev: str, mac: str, dst: str | None = None) -> None:
        """Remove a static FDB entry."""

    @abc.abstractmethod
    def fdb(self, ns: str) -> list[FdbInfo]:
        """Static (permanent) entries only; learned ones are not compared."""

    # --- sysctls ----------------------------------------------------------------
    @abc.abstractmethod
    def set_sysctl(self, ns: str, key: str, value: str) -> None:
        """Keys as in /proc/sys with dots, per namespace (``net.*`` only).

        The fake kernel models exactly ``net.ipv4.ip_forward`` (alias
        ``net.ipv4.conf.all.forwarding``), ``net.ipv6.conf.all.forwarding``
        and ``net.ipv6.conf.{all,default,<dev>}.disable_ipv6``: its packets
        obey them. Any other ``net.*`` key is ENOENT there, so a driver that
        must run on both kernels relies on Linux's defaults for the rest
        (no ``proxy_arp``; ``arp_ignore=0``: a namespace answers ARP for any
        of its addresses on any link). A key outside ``net.*`` is
        InvalidParameterError on both.

        A simulated host starts with IPv4 forwarding on
        (:func:`netsim.controller.hostsetup.build_host`); a driver that routes
        IPv6 turns ``net.ipv6.conf.all.forwarding`` on itself.
        """

    @abc.abstractmethod
    def get_sysctl(self, ns: str, key: str) -> str:
        """The value as a string (``"1"``); ENOENT for a per-device key of a missing link."""

    # --- NAT / filter -------------------------------------------------------------
    @abc.abstractmethod
    def add_rule(self, ns: str, rule: Rule) -> None:
        """Append a rule; EEXIST if an equal rule is present."""

    @abc.abstractmethod
    def delete_rule(self, ns: str, rule: Rule) -> None:
        """ENOENT if no equal rule is present."""

    @abc.abstractmethod
    def rules(self, ns: str) -> list[Rule]:
        """In evaluation order (:class:`Isolated` memberships are listed where
        they were added; isolation is judged before every Filter)."""

    # --- listeners ------------------------------------------------------------------
    @abc.abstractmethod
    def add_listener(self, ns: str, listener: Listener) -> None:
        """Accept TCP connections / UDP datagrams (echoed back) on addr:port.
        EADDRINUSE if taken."""

    @abc.abstractmethod
    def delete_listener(self, ns: str, listener: Listener) -> None:
        """Close the listener's socket."""

    @abc.abstractmethod
    def listeners(self, ns: str) -> list[Listener]:
        """Listeners of ``ns``, sorted."""

    # --- DNS servers (the embedded resolver: netsim.kernel.dns) -------------------------
    @abc.abstractmethod
    def add_dns_server(self, ns: str, addr: str, lookup: DnsLookup) -> None:
        """Answer DNS queries over UDP on ``addr:53`` in ``ns``, each through
        ``lookup`` (replies as :mod:`netsim.kernel.dns` builds them). It takes
        precedence over a wildcard UDP listener on port 53, as a more specific
        bound socket does on Linux; EADDRINUSE if a DNS server or a UDP listener
        holds ``addr:53`` itself, EADDRNOTAVAIL if ``addr`` is not local."""

    @abc.abstractmethod
    def delete_dns_server(self, ns: str, addr: str) -> None:
        """Stop it and close its socket; ENOENT if there is none."""

    @abc.abstractmethod
    def dns_servers(self, ns: str) -> list[str]:
        """Addresses of ``ns`` with a DNS server, sorted."""

    @abc.abstractmethod
    def resolve(
        self, ns: str, name: str, qtype: str = "A", server: str = RESOLVER_ADDRESS, timeout: float = RESOLVE_TIMEOUT
    ) -> DnsResult:
        """Send one DNS query from ``ns`` to ``server:53`` over UDP and return
        the answer (``rcode`` is the probe outcome, e.g. ``"port-unreachable"``
        or ``"timeout"``, when no DNS answer came). ``qtype`` is A, AAAA, PTR,
        MX, SRV or TXT (InvalidParameterError otherwise); PTR takes the reverse
        name (:func:`netsim.kernel.dns.reverse_name`)."""

    # --- packets ----------------------------------------------------------------------
    @abc.abstractmethod
    def probe(
        self,
        ns: str,
        dst: str,
        proto: Proto = "icmp",
        port: int | None = None,
        timeout: float = 1.0,
        src: str | None = None,
    ) -> ProbeResult:
        """Send one ICMP echo, TCP SYN or UDP datagram from ``ns`` to ``dst``.

        Use :func:`netsim.probe.probe`, which validates its arguments first.
        """

    @abc.abstractmethod
    def capture(self, ns: str, ifaces: list[str], path: str) -> contextlib.AbstractContextManager[None]:
        """Within the ``with`` block, write what crosses ``ifaces`` to a pcap."""

    # --- whole-kernel views ---------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """A normalized, comparable dump of every namespace this kernel holds.

        Volatile values are left out so that the fake and the real kernel
        compare equal: ifindexes, random MACs (only MACs set with
        :meth:`set_mac` appear), IPv6 link-local addresses and their routes.
        """
        from netsim.kernel.snapshot import build_snapshot

        return build_snapshot(self)

    @abc.abstractmethod
    def explicit_macs(self) -> Mapping[tuple[str, str], str]:
        """``(ns, link) -> mac`` for MACs set with :meth:`set_mac` still in place."""

    @abc.abstractmethod
    def close(self) -> None:
        """Remove everything this kernel created, verify it is gone. Idempotent."""

    def __enter__(self) -> Kernel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def iter_namespaces(self) -> Iterator[str]:
        yield from self.namespaces()

    def adopt_namespaces(self, wanted: Callable[[str], bool]) -> list[str]:
        """Take over namespaces of this run that another process created and
        left (a controller restarting after a crash), for each name ``wanted``
        accepts; returns the names adopted. Adopted namespaces are this
        kernel's from then on (``close`` removes them). Their NAT/filter rules
        are flushed: whoever owns them puts them back. The fake kernel's
        state lives in the object itself, so it has nothing to adopt."""
        return []
