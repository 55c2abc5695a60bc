"""Neighbours, FDB entries, sysctls, NAT/filter rules and listeners of the
fake kernel: per-namespace tables with Linux's errnos (EEXIST for a
duplicate, ENOENT for a missing entry, EADDRINUSE for a taken port).
Each call is O(1) or O(entries of the namespace).
"""

from __future__ import annotations

import errno
import ipaddress
import re

from netsim.errors import InvalidParameterError, kernel_error
from netsim.kernel.base import (
    Dnat,
    DnatExempt,
    FdbInfo,
    Filter,
    Isolated,
    Listener,
    Masquerade,
    NeighbourInfo,
    Rule,
    check_dnat_exempt,
    check_forward_to,
    check_isolated,
)
from netsim.kernel.fake import l3sync
from netsim.kernel.fake.common import FakeBase, check_ifname, disable_ipv6_key
from netsim.kernel.fake.layer3 import cached_ip_address, fast_ip
from netsim.kernel.fake.state import FakeLink, FakeNamespace, FakeNeighbour, FdbEntry, IPAddr
from netsim.validate import parse_ip, parse_network, parse_port

FdbKey = tuple[str, ipaddress.IPv4Address | ipaddress.IPv6Address | None]
_MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
#: the sysctl keys the real kernel implementation lets netsim touch
_NAMESPACED_SYSCTLS = re.compile(
    r"^net\.(ipv4\.ip_forward|ipv4\.(conf|neigh)\.[^/]+\.[a-z0-9_]+|ipv6\.(conf|neigh)\.[^/]+\.[a-z0-9_]+"
    r"|ipv4\.ping_group_range|ipv4\.ip_unprivileged_port_start|bridge\.[a-z0-9_-]+)$"
)
_GLOBAL_SYSCTLS = (
    "net.ipv4.ip_forward",
    "net.ipv6.conf.all.forwarding",
    "net.ipv6.conf.all.disable_ipv6",
    "net.ipv6.conf.default.disable_ipv6",
)
#: Linux shows one value under two names
_ALIASES = {"net.ipv4.conf.all.forwarding": "net.ipv4.ip_forward"}
_DISABLE_IPV6 = re.compile(r"^net\.ipv6\.conf\.(?P<dev>[^/]+)\.disable_ipv6$")


def parse_fdb_mac(mac: str) -> str:
    """Lowercase colon form; the all-zero MAC is allowed (vxlan flood entries)."""
    norm = str(mac).strip().lower().replace("-", ":")
    if not _MAC_RE.match(norm):
        raise InvalidParameterError(f"invalid MAC address {mac!r}")
    return norm


def validate_rule(rule: Rule) -> None:
    """The checks the nftables backend makes before touching the kernel."""
    if isinstance(rule, Masquerade):
        parse_network(rule.src, what="masquerade source")
        names: tuple[str | None, ...] = (rule.out_iface, rule.not_out_iface)
    elif isinstance(rule, Dnat):
        if rule.proto not in ("tcp", "udp"):
            raise InvalidParameterError(f"invalid DNAT protocol {rule.proto!r}: expected tcp or udp")
        parse_port(rule.dport, what="DNAT port")
        parse_port(rule.to_port, what="DNAT target port")
        families = {fast_ip(rule.to_addr, what="DNAT target address").version}
        if rule.dst is not None:
            families.add(fast_ip(rule.dst, what="DNAT address").version)
        if len(families) > 1:
            raise InvalidParameterError(f"rule mixes IPv4 and IPv6 addresses: {rule!r}")
        names = (rule.not_in_iface,)
    elif isinstance(rule, Isolated):
        check_isolated(rule)
        return
    elif isinstance(rule, DnatExempt):
        check_dnat_exempt(rule)
        return
    elif isinstance(rule, Filter):
        if rule.action not in ("drop", "accept"):
            raise InvalidParameterError(f"invalid filter action {rule.action!r}: expected drop or accept")
        if rule.layer not in ("ip", "bridge"):
            raise InvalidParameterError(f"invalid filter layer {rule.layer!r}: expected ip or bridge")
        nets = [parse_network(c, what="filter subnet") for c in (rule.src, rule.dst) if c is not None]
        if len({n.version for n in nets}) > 1:
            raise InvalidParameterError(f"rule mixes IPv4 and IPv6 addresses: {rule!r}")
        names = (rule.in_iface, rule.out_iface)
    else:
        raise InvalidParameterError(f"not a rule: {rule!r}")
    for name in names:
        if name is not None:
            check_ifname(name)


def check_listener(listener: Listener) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if listener.proto not in ("tcp", "udp"):
        raise kernel_error(errno.EINVAL, f"invalid listener protocol {listener.proto!r}: expected tcp or udp")
    if isinstance(listener.port, bool) or not isinstance(listener.port, int) or not 1 <= listener.port <= 65535:
        raise kernel_error(errno.EINVAL, f"invalid listener port {listener.port!r}: expected 1-65535")
    try:
        text = listener.addr
        addr = cached_ip_address(text) if isinstance(text, str) else ipaddress.ip_address(text)
    except ValueError as exc:
        raise kernel_error(errno.EINVAL, f"invalid listener address {listener.addr!r}") from exc
    check_forward_to(listener)
    return addr


class TablesMixin(FakeBase):
    """Neighbours, FDB, sysctls, rules, listeners. See the module docstring."""

    # --- neighbours ---------------------------------------------------------------
    def add_neighbour(self, ns: str, dev: str, ip: str, mac: str) -> None:
        address = parse_ip(ip, what="neighbour address")
        lladdr = parse_fdb_mac(mac)
        space, link = self._link(ns, dev)
        key = self._neighbour_key(link, address)
        # Linux looks the entry up by the address given, but a loopback device
        # stores its one IPv4 entry as 0.0.0.0: other addresses miss the lookup
        # and then update that entry instead of conflicting with it
        if key == address and (link.name, key) in space.neighbours:
            raise kernel_error(errno.EEXIST, f"neighbour {ip} on {dev!r} exists")
        space.neighbours[(link.name, key)] = FakeNeighbour(link.name, key, lladdr, permanent=True)

    def delete_neighbour(self, ns: str, dev: str, ip: str) -> None:
        address = parse_ip(ip, what="neighbour address")
        space, link = self._link(ns, dev)
        if self._neighbour_key(link, address) != address or space.neighbours.pop((link.name, address), None) is None:
            raise kernel_error(errno.ENOENT, f"no neighbour {ip} on {dev!r}")

    @staticmethod
    def _neighbour_key(link: FakeLink, address: IPAddr) -> IPAddr:
        """Linux keys every IPv4 neighbour of a loopback device as 0.0.0.0."""
        if link.kind == "loopback" and address.version == 4:
            return ipaddress.IPv4Address(0)
        return address

    def neighbours(self, ns: str) -> list[NeighbourInfo]:
        space = self._ns(ns)
        found = [
            NeighbourInfo(n.dev, str(n.ip), n.mac, n.permanent) for n in space.neighbours.values() if n.mac is not None
        ]
        return sorted(found, key=lambda n: (n.dev, n.ip))

    # --- forwarding database ----------------------------------------------------------
    def _fdb_table(self, ns: str, dev: str, mac: str, dst: str | None) -> tuple[FakeLink, FakeLink, FdbKey]:
        """``(table owner, device, key)``: a vxlan holds its own table, a
        bridge port's entries live in its bridge's table."""
        lladdr = parse_fdb_mac(mac)
        _, link = self._link(ns, dev)
        if link.kind == "vxlan":
            remote = parse_ip(dst, what="VTEP address") if dst is not None else None
            return link, link, (lladdr, remote)
        if dst is not None:
            raise InvalidParameterError(f"an FDB entry on {dev!r} (not a vxlan) takes no remote VTEP")
        if link.kind == "loopback":
            raise kernel_error(errno.EINVAL, f"{dev!r} is not an Ethernet device")
        if link.master is None:
            raise kernel_error(errno.EOPNOTSUPP, f"{dev!r} is neither a bridge port nor a vxlan")
        return link.master, link, (lladdr, None)

    def add_fdb(self, ns: str, dev: str, mac: str, dst: str | None = None) -> None:
        owner, link, key = self._fdb_table(ns, dev, mac, dst)
        if owner is link and key[1] is None:
            raise kernel_error(errno.EINVAL, f"a vxlan FDB entry on {dev!r} needs a remote VTEP")
        existing = owner.fdb.get(key)
        if owner is link:
            if existing is not None and existing.permanent:
                return  # vxlan entries are appended: Linux accepts a repeat silently
        elif existing is not None or self._is_local_fdb(owner, key[0]):
            # one entry per MAC and bridge, learned or static, on whichever port
            raise kernel_error(errno.EEXIST, f"FDB entry {mac} exists on bridge {owner.name!r}")
        port = None if owner is link else link
        owner.fdb[key] = FdbEntry(key[0], port=port, dst=key[1], permanent=True)

    def _is_local_fdb(self, bridge: FakeLink, mac: str) -> bool:
        """The MACs of a bridge and its ports: Linux keeps "local" entries for them."""
        return mac == bridge.mac or any(port.mac == mac for port in self._ports[bridge].members())

    def delete_fdb(self, ns: str, dev: str, mac: str, dst: str | None = None) -> None:
        owner, link, key = self._fdb_table(ns, dev, mac, dst)
        if owner is link and key[1] is None:
            # without a remote, Linux deletes the MAC with all its remotes
            doomed = [k for k, e in owner.fdb.items() if e.permanent and e.mac == key[0]]
            if not doomed:
                raise kernel_error(errno.ENOENT, f"no FDB entry {mac} on {dev!r}")
            for k in doomed:
                del owner.fdb[k]
            return
        existing = owner.fdb.get(key)
        if owner is link and existing is None and any(e.permanent and e.mac == key[0] for e in owner.fdb.values()):
            return  # Linux: a vxlan MAC that is present but lacks this remote deletes nothing, quietly
        if owner is not link and existing is None and link.mac == key[0]:
            return  # the port's own "local" entry: Linux deletes it; the fake does not model it
        if (
            existing is None
            or (owner is link and not existing.permanent)
            or (owner is not link and existing.port is not link)
        ):
            raise kernel_error(errno.ENOENT, f"no FDB entry {mac} on {dev!r}")
        del owner.fdb[key]

    def fdb(self, ns: str) -> list[FdbInfo]:
        space = self._ns(ns)
        found: list[FdbInfo] = []
        for link in space.links.values():
            for entry in link.fdb.values():
                if not entry.permanent:
                    continue
                if link.kind == "vxlan":
                    dst = str(entry.dst) if entry.dst is not None else None
                    found.append(FdbInfo(link.name, entry.mac, dst, None, True))
                elif entry.port is not None:
                    found.append(FdbInfo(entry.port.name, entry.mac, None, link.name, True))
        return sorted(found, key=lambda f: (f.dev, f.mac, str(f.dst)))

    # --- sysctls ------------------------------------------------------------------------
    @staticmethod
    def _sysctl_key(space: FakeNamespace, key: str) -> str:
        """The key under which the value is stored; ENOENT for what the fake does not model."""
        if not isinstance(key, str) or not _NAMESPACED_SYSCTLS.match(key) or ".." in key:
            raise InvalidParameterError(f"unsupported sysctl {key!r}: only per-namespace net.* keys are allowed")
        key = _ALIASES.get(key, key)
        if key not in _GLOBAL_SYSCTLS and key not in space.sysctls:
            raise kernel_error(errno.ENOENT, f"no sysctl {key} in namespace {space.name!r}")
        return key

    def set_sysctl(self, ns: str, key: str, value: str) -> None:
        space = self._ns(ns)
        stored = self._sysctl_key(space, key)
        try:
            number = int(str(value).strip())
        except ValueError as exc:
            raise kernel_error(errno.EINVAL, f"invalid value {value!r} for sysctl {key!r}") from exc
        text = str(number)
        match = _DISABLE_IPV6.match(stored)
        if match is None or match["dev"] == "default":
            space.sysctls[stored] = text
            return
        # writing "all" writes every device, as Linux does
        devs = list(space.links) if match["dev"] == "all" else [match["dev"]]
        if match["dev"] == "all":
            space.sysctls[stored] = text
        for name in devs:
            link = space.links[name]
            if disable_ipv6_key(name) not in space.sysctls:
                continue  # no IPv6 state on this device (MTU below 1280)
            space.sysctls[disable_ipv6_key(name)] = text
            if number:
                l3sync.drop_ipv6(space, link)
            elif link.up:
                l3sync.link_up(space, link)

    def get_sysctl(self, ns: str, key: str) -> str:
        space = self._ns(ns)
        return space.sysctls.get(self._sysctl_key(space, key), "0")

    # --- rules ----------------------------------------------------------------------
    def add_rule(self, ns: str, rule: Rule) -> None:
        space = self._ns(ns)
        validate_rule(rule)
        if rule in space.rules:
            raise kernel_error(errno.EEXIST, f"rule {rule!r} exists in namespace {ns!r}")
        space.rules[rule] = None
        if isinstance(rule, Isolated):
            space.isolation.setdefault(rule.group, set()).add(rule.iface)
        elif isinstance(rule, DnatExempt):
            space.dnat_exempt.add(rule.in_iface)
        elif isinstance(rule, Filter) and rule.layer == "bridge":
            space.bridge_filters += 1

    def delete_rule(self, ns: str, rule: Rule) -> None:
        space = self._ns(ns)
        validate_rule(rule)
        if rule not in space.rules:
            raise kernel_error(errno.ENOENT, f"no rule {rule!r} in namespace {ns!r}")
        del space.rules[rule]
        if isinstance(rule, Isolated):
            members = space.isolation[rule.group]
            members.discard(rule.iface)
            if not members:
                del space.isolation[rule.group]
        elif isinstance(rule, DnatExempt):
            space.dnat_exempt.discard(rule.in_iface)
        elif isinstance(rule, Filter) and rule.layer == "bridge":
            space.bridge_filters -= 1

    def rules(self, ns: str) -> list[Rule]:
        return list(self._ns(ns).rules)

    # --- listeners --------------------------------------------------------------------
    def add_listener(self, ns: str, listener: Listener) -> None:
        space = self._ns(ns)
        addr = check_listener(listener)
        if listener.proto == "udp" and listener.port == 53 and str(addr) in space.dns_servers:
            raise kernel_error(errno.EADDRINUSE, f"udp {listener.addr}:53 is taken by a DNS server")
        for held in space.listeners:
            if held.proto != listener.proto or held.port != listener.port:
                continue
            other = ipaddress.ip_address(held.addr)
            if other.version == addr.version and (other == addr or other.is_unspecified or addr.is_unspecified):
                raise kernel_error(errno.EADDRINUSE, f"{listener.proto} {listener.addr}:{listener.port} is taken")
        if not addr.is_unspecified and not self._bindable(space, addr):
            raise kernel_error(errno.EADDRNOTAVAIL, f"{listener.addr} is not an address of namespace {ns!r}")
        space.listeners.append(listener)

    def _bindable(self, space: FakeNamespace, addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        """Linux lets a socket bind a local address, any address of a prefix on
        ``lo`` (local routes cover it), and, for IPv4 in a namespace that never
        had an IPv4 address, anything at all (no local table to say no)."""
        if addr.version == 4 and space.name not in self._local_tables:
            return True
        for link in space.links.values():
            for own in link.addresses:
                if own.ip == addr or (link.kind == "loopback" and addr in own.network):
                    return True
        return False

    def delete_listener(self, ns: str, listener: Listener) -> None:
        space = self._ns(ns)
        if listener not in space.listeners:
            raise kernel_error(errno.ENOENT, f"no {listener.proto} listener {listener.addr}:{listener.port} in {ns!r}")
        space.listeners.remove(listener)

    def listeners(self, ns: str) -> list[Listener]:
        return sorted(self._ns(ns).listeners, key=lambda lst: (lst.proto, lst.port, lst.addr))


__all__ = ["TablesMixin", "disable_ipv6_key"]
