"""The real kernel's namespace bookkeeping plus addresses, routes, neighbours,
FDB entries and sysctls (the parts below links that need no nft).

:class:`LinuxNamespaces` is the base LinuxKernel builds on: it owns the
``namespace -> NamespaceHandle`` map and the name lookups every call needs.
"""

from __future__ import annotations

import errno
import ipaddress
import re
import socket
import struct
from pathlib import Path
from typing import Any, Literal

from netsim.errors import InvalidParameterError, kernel_error
from netsim.kernel.base import FdbInfo, Kernel, NeighbourInfo, RouteInfo
from netsim.kernel.linux import links as decode
from netsim.kernel.linux import rtnl
from netsim.kernel.linux.netns import NamespaceHandle, netlink_errors, run_in_namespace
from netsim.validate import parse_ip, parse_network

IFA_F_NODAD = 0x02
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_PRIORITY, RTA_TABLE = 1, 4, 5, 6, 15
RT_SCOPE_NOWHERE = 255
NDA_DST, NDA_LLADDR = 1, 2
_MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
#: sysctls that belong to a network namespace; anything else could change the whole host
_NAMESPACED_SYSCTLS = re.compile(
    r"^net\.(ipv4\.ip_forward|ipv4\.(conf|neigh)\.[^/]+\.[a-z0-9_]+|ipv6\.(conf|neigh)\.[^/]+\.[a-z0-9_]+"
    r"|ipv4\.ping_group_range|ipv4\.ip_unprivileged_port_start|bridge\.[a-z0-9_-]+)$"
)


def sysctl_path(key: str) -> Path:
    """``net.ipv6.conf.eth0.10.disable_ipv6`` -> /proc/sys/net/ipv6/conf/eth0.10/disable_ipv6.

    Only namespaced keys are accepted (InvalidParameterError otherwise):
    a thread inside a namespace still shares the host's global sysctls.
    """
    if not isinstance(key, str) or not _NAMESPACED_SYSCTLS.match(key) or ".." in key:
        raise InvalidParameterError(f"unsupported sysctl {key!r}: only per-namespace net.* keys are allowed")
    parts = key.split(".")
    if parts[1] in ("ipv4", "ipv6") and parts[2] in ("conf", "neigh"):
        return Path("/proc/sys/net", parts[1], parts[2], ".".join(parts[3:-1]), parts[-1])
    return Path("/proc/sys", *parts)


def parse_fdb_mac(mac: str) -> str:
    """Lowercase colon form; the all-zero MAC is allowed (vxlan flood entries)."""
    norm = str(mac).strip().lower().replace("-", ":")
    if not _MAC_RE.match(norm):
        raise InvalidParameterError(f"invalid MAC address {mac!r}")
    return norm


def mac_bytes(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", ""))


def ndmsg(family: int, ifindex: int, state: int, flags: int) -> bytes:
    return struct.pack("=BxxxiHBB", family, ifindex, state, flags, 0)


def parse_route_dst(dst: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    if dst == "default":
        return ipaddress.IPv4Network("0.0.0.0/0")
    if dst == "default6":
        return ipaddress.IPv6Network("::/0")
    return parse_network(dst, what="route destination")


class LinuxNamespaces(Kernel):
    """Namespace handles and the layer-3 calls of LinuxKernel."""

    _handles: dict[str, NamespaceHandle]

    # --- lookups ------------------------------------------------------------
    def _handle(self, ns: str) -> NamespaceHandle:
        handle = self._handles.get(ns)
        if handle is None:
            raise kernel_error(errno.ENOENT, f"no namespace {ns!r} in this kernel")
        return handle

    def _index(self, handle: NamespaceHandle, name: str) -> int:
        if not isinstance(name, str):
            raise InvalidParameterError(f"invalid link name {name!r}")
        index = handle.rtnl.link_index(name)
        if index is None:
            raise kernel_error(errno.ENODEV, f"no link {name!r} in namespace {handle.name!r}")
        return index

    def _link_messages(self, handle: NamespaceHandle) -> list[Any]:
        with netlink_errors(f"list links of namespace {handle.name!r}"):
            return list(handle.ipr.get_links())

    def _names(self, handle: NamespaceHandle) -> dict[int, str]:
        return {int(m["index"]): str(m.get_attr("IFLA_IFNAME")) for m in self._link_messages(handle)}

    # --- addresses ----------------------------------------------------------
    def _address_spec(self, cidr: str) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
        if not isinstance(cidr, str) or "/" not in cidr:
            raise InvalidParameterError(f"invalid address {cidr!r}: expected CIDR form such as 10.0.0.2/24")
        try:
            iface = ipaddress.ip_interface(cidr)
        except ValueError as exc:
            raise InvalidParameterError(f"invalid address {cidr!r}: {exc}") from exc
        return iface

    def _change_address(self, add: bool, ns: str, dev: str, cidr: str) -> None:
        iface = self._address_spec(cidr)
        handle = self._handle(ns)
        index = self._index(handle, dev)
        family = socket.AF_INET6 if iface.version == 6 else socket.AF_INET
        # no duplicate address detection: a test bench owns every address on its links
        flags = IFA_F_NODAD if add and family == socket.AF_INET6 else 0
        what = f"add address {cidr} to {dev!r}" if add else f"delete address {cidr} from {dev!r}"
        handle.rtnl.address(add, index, family, iface.ip.packed, iface.network.prefixlen, flags, what=what)

    def add_address(self, ns: str, dev: str, cidr: str) -> None:
        self._change_address(True, ns, dev, cidr)

    def delete_address(self, ns: str, dev: str, cidr: str) -> None:
        self._change_address(False, ns, dev, cidr)

    def addresses(self, ns: str) -> list[tuple[str, str]]:
        handle = self._handle(ns)
        names = self._names(handle)
        with netlink_errors(f"list addresses of namespace {ns!r}"):
            messages = list(handle.ipr.get_addr())
        found = (decode.decode_address(msg, names) for msg in messages)
        return sorted(pair for pair in found if pair is not None)

    # --- routes ---------------------------------------------------------------
    def _route_request(
        self,
        add: bool,
        ns: str,
        dst: str,
        via: str | None,
        dev: str | None,
        metric: int | None,
        scope: str | None = None,
    ) -> None:
        handle = self._handle(ns)
        network = parse_route_dst(dst)
        family = socket.AF_INET6 if network.version == 6 else socket.AF_INET
        attrs = rtnl.nla_u32(RTA_TABLE, decode.RT_TABLE_MAIN)
        if network.prefixlen:
            attrs += rtnl.nla(RTA_DST, network.network_address.packed)
        if via is not None:
            gateway = parse_ip(via, what="gateway")
            if gateway.version != network.version:
                raise InvalidParameterError(f"gateway {via!r} is not of the same family as {dst!r}")
            attrs += rtnl.nla(RTA_GATEWAY, gateway.packed)
        if metric is not None:
            if not isinstance(metric, int) or isinstance(metric, bool) or not 0 <= metric < 2**32:
                raise InvalidParameterError(f"invalid metric {metric!r}: expected 0..2^32-1")
            attrs += rtnl.nla_u32(RTA_PRIORITY, metric)
        if add:
            if scope is None:
                scope = "universe" if via is not None else "link"  # what `ip route add` picks
            if scope not in ("universe", "link"):
                raise InvalidParameterError(f"invalid route scope {scope!r}: expected universe or link")
            if via is None and dev is None:
                raise InvalidParameterError(f"route to {dst!r} needs a gateway or a device")
            scope_number, proto, kind = decode.SCOPE_NUMBER[scope], decode.RTPROT_STATIC, decode.RTN_UNICAST
        else:
            scope_number, proto, kind = RT_SCOPE_NOWHERE, 0, 0  # match any, like `ip route del`
        if dev is not None:
            attrs += rtnl.nla_u32(RTA_OIF, self._index(handle, dev))
        header = struct.pack(
            "=BBBBBBBBI", family, network.prefixlen, 0, 0, decode.RT_TABLE_MAIN, proto, scope_number, kind, 0
        )
        where = f" via {via}" if via else ""
        handle.rtnl.route(add, header, attrs, what=f"{'add' if add else 'delete'} route {dst}{where}")

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
        self._route_request(True, ns, dst, via, dev, metric, scope)

    def delete_route(
        self, ns: str, dst: str, *, via: str | None = None, dev: str | None = None, metric: int | None = None
    ) -> None:
        self._route_request(False, ns, dst, via, dev, metric)

    def routes(self, ns: str) -> list[RouteInfo]:
        handle = self._handle(ns)
        names = self._names(handle)
        with netlink_errors(f"list routes of namespace {ns!r}"):
            messages = list(handle.ipr.get_routes(family=socket.AF_UNSPEC, table=decode.RT_TABLE_MAIN))
        found = (decode.decode_route(msg, names) for msg in messages)
        return sorted(
            (route for route in found if route is not None),
            key=lambda r: (r.family, r.dst, r.metric, str(r.dev), str(r.via)),
        )

    # --- neighbours -------------------------------------------------------------
    def add_neighbour(self, ns: str, dev: str, ip: str, mac: str) -> None:
        address = parse_ip(ip, what="neighbour address")
        lladdr = parse_fdb_mac(mac)
        handle = self._handle(ns)
        index = self._index(handle, dev)
        family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
        body = ndmsg(family, index, decode.NUD_PERMANENT, 0) + rtnl.nla(NDA_DST, address.packed)
        body += rtnl.nla(NDA_LLADDR, mac_bytes(lladdr))
        handle.rtnl.neighbour("add", body, what=f"add neighbour {ip} on {dev!r}")

    def delete_neighbour(self, ns: str, dev: str, ip: str) -> None:
        address = parse_ip(ip, what="neighbour address")
        handle = self._handle(ns)
        index = self._index(handle, dev)
        family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
        body = ndmsg(family, index, 0, 0) + rtnl.nla(NDA_DST, address.packed)
        handle.rtnl.neighbour("del", body, what=f"delete neighbour {ip} on {dev!r}")

    def neighbours(self, ns: str) -> list[NeighbourInfo]:
        handle = self._handle(ns)
        names = self._names(handle)
        with netlink_errors(f"list neighbours of namespace {ns!r}"):
            messages = list(handle.ipr.get_neighbours())
        found = (decode.decode_neighbour(msg, names) for msg in messages)
        return sorted((n for n in found if n is not None), key=lambda n: (n.dev, n.ip))

    # --- bridge / vxlan forwarding database ---------------------------------------
    def _fdb_request(self, ns: str, dev: str, mac: str, dst: str | None) -> tuple[NamespaceHandle, bytes, bool]:
        """The AF_BRIDGE neighbour message for an entry, and whether it is a vxlan (self) entry."""
        lladdr = parse_fdb_mac(mac)
        handle = self._handle(ns)
        index = self._index(handle, dev)
        with netlink_errors(f"look up link {dev!r} in namespace {ns!r}"):
            message = handle.ipr.get_links(index)[0]
        attrs = rtnl.nla(NDA_LLADDR, mac_bytes(lladdr))
        if decode.link_kind(message) == "vxlan":
            # a vxlan's own table of remote VTEPs; "append" lets one MAC (00:..:00) flood to several
            if dst is not None:
                attrs += rtnl.nla(NDA_DST, parse_ip(dst, what="VTEP address").packed)
            state, flags, is_vxlan = decode.NUD_PERMANENT | decode.NUD_NOARP, decode.NTF_SELF, True
        else:
            if dst is not None:
                raise InvalidParameterError(f"an FDB entry on {dev!r} (not a vxlan) takes no remote VTEP")
            # a static entry in the bridge's table (NOARP without PERMANENT: "static", not "local")
            state, flags, is_vxlan = decode.NUD_NOARP, decode.NTF_MASTER, False
        return handle, ndmsg(socket.AF_BRIDGE, index, state, flags) + attrs, is_vxlan

    def add_fdb(self, ns: str, dev: str, mac: str, dst: str | None = None) -> None:
        handle, body, is_vxlan = self._fdb_request(ns, dev, mac, dst)
        handle.rtnl.neighbour("append" if is_vxlan else "add", body, what=f"add FDB entry {mac} on {dev!r}")

    def delete_fdb(self, ns: str, dev: str, mac: str, dst: str | None = None) -> None:
        handle, body, _ = self._fdb_request(ns, dev, mac, dst)
        handle.rtnl.neighbour("del", body, what=f"delete FDB entry {mac} on {dev!r}")

    def fdb(self, ns: str) -> list[FdbInfo]:
        handle = self._handle(ns)
        messages = self._link_messages(handle)
        names = {int(m["index"]): str(m.get_attr("IFLA_IFNAME")) for m in messages}
        kinds = {int(m["index"]): decode.link_kind(m) or "" for m in messages}
        with netlink_errors(f"list FDB of namespace {ns!r}"):
            entries = list(handle.ipr.fdb("dump"))
        found = (decode.decode_fdb(msg, names, kinds) for msg in entries)
        return sorted((f for f in found if f is not None), key=lambda f: (f.dev, f.mac, str(f.dst)))

    # --- sysctls ------------------------------------------------------------------
    def set_sysctl(self, ns: str, key: str, value: str) -> None:
        path = sysctl_path(key)
        self._handle(ns)
        text = str(value)
        if "\n" in text or "\0" in text:
            raise InvalidParameterError(f"invalid value {value!r} for sysctl {key!r}")

        def write() -> None:
            with netlink_errors(f"set sysctl {key} in namespace {ns!r}"), path.open("w") as stream:
                stream.write(text)

        run_in_namespace(ns, write)

    def get_sysctl(self, ns: str, key: str) -> str:
        path = sysctl_path(key)
        self._handle(ns)

        def read() -> str:
            with netlink_errors(f"read sysctl {key} in namespace {ns!r}"):
                return path.read_text().strip()

        return run_in_namespace(ns, read)
