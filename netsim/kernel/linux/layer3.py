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
from pathlib import Path
from typing import Any, Literal

from netsim.errors import InvalidParameterError, kernel_error
from netsim.kernel.base import FdbInfo, Kernel, NeighbourInfo, RouteInfo
from netsim.kernel.linux import links as decode
from netsim.kernel.linux.netns import NamespaceHandle, netlink_errors, run_in_namespace
from netsim.validate import parse_ip, parse_network

IFA_F_NODAD = 0x02
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
        with netlink_errors(f"look up link {name!r} in namespace {handle.name!r}"):
            found = handle.ipr.link_lookup(ifname=name)
        if not found:
            raise kernel_error(errno.ENODEV, f"no link {name!r} in namespace {handle.name!r}")
        return int(found[0])

    def _link_messages(self, handle: NamespaceHandle) -> list[Any]:
        with netlink_errors(f"list links of namespace {handle.name!r}"):
            return list(handle.ipr.get_links())

    def _names(self, handle: NamespaceHandle) -> dict[int, str]:
        return {int(m["index"]): str(m.get_attr("IFLA_IFNAME")) for m in self._link_messages(handle)}

    # --- addresses ----------------------------------------------------------
    def _address_spec(self, cidr: str) -> dict[str, Any]:
        if not isinstance(cidr, str) or "/" not in cidr:
            raise InvalidParameterError(f"invalid address {cidr!r}: expected CIDR form such as 10.0.0.2/24")
        try:
            iface = ipaddress.ip_interface(cidr)
        except ValueError as exc:
            raise InvalidParameterError(f"invalid address {cidr!r}: {exc}") from exc
        return {"address": str(iface.ip), "prefixlen": iface.network.prefixlen, "family": iface.version}

    def add_address(self, ns: str, dev: str, cidr: str) -> None:
        spec = self._address_spec(cidr)
        handle = self._handle(ns)
        index = self._index(handle, dev)
        family = socket.AF_INET6 if spec.pop("family") == 6 else socket.AF_INET
        extra: dict[str, Any] = {"flags": IFA_F_NODAD} if family == socket.AF_INET6 else {}
        with netlink_errors(f"add address {cidr} to {dev!r} in namespace {ns!r}"):
            handle.ipr.addr("add", index=index, family=family, **spec, **extra)

    def delete_address(self, ns: str, dev: str, cidr: str) -> None:
        spec = self._address_spec(cidr)
        handle = self._handle(ns)
        index = self._index(handle, dev)
        family = socket.AF_INET6 if spec.pop("family") == 6 else socket.AF_INET
        with netlink_errors(f"delete address {cidr} from {dev!r} in namespace {ns!r}"):
            handle.ipr.addr("del", index=index, family=family, **spec)

    def addresses(self, ns: str) -> list[tuple[str, str]]:
        handle = self._handle(ns)
        names = self._names(handle)
        with netlink_errors(f"list addresses of namespace {ns!r}"):
            messages = list(handle.ipr.get_addr())
        found = (decode.decode_address(msg, names) for msg in messages)
        return sorted(pair for pair in found if pair is not None)

    # --- routes ---------------------------------------------------------------
    def _route_spec(
        self, handle: NamespaceHandle, dst: str, via: str | None, dev: str | None, metric: int | None
    ) -> dict[str, Any]:
        network = parse_route_dst(dst)
        spec: dict[str, Any] = {
            "dst": str(network.network_address),
            "dst_len": network.prefixlen,
            "family": socket.AF_INET6 if network.version == 6 else socket.AF_INET,
            "table": decode.RT_TABLE_MAIN,
        }
        if via is not None:
            gateway = parse_ip(via, what="gateway")
            if gateway.version != network.version:
                raise InvalidParameterError(f"gateway {via!r} is not of the same family as {dst!r}")
            spec["gateway"] = str(gateway)
        if metric is not None:
            if not isinstance(metric, int) or isinstance(metric, bool) or not 0 <= metric < 2**32:
                raise InvalidParameterError(f"invalid metric {metric!r}: expected 0..2^32-1")
            spec["priority"] = metric
        if dev is not None:
            spec["oif"] = self._index(handle, dev)
        return spec

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
        handle = self._handle(ns)
        spec = self._route_spec(handle, dst, via, dev, metric)
        if scope is None:
            scope = "universe" if via is not None else "link"  # what `ip route add` picks
        if scope not in ("universe", "link"):
            raise InvalidParameterError(f"invalid route scope {scope!r}: expected universe or link")
        if via is None and dev is None:
            raise InvalidParameterError(f"route to {dst!r} needs a gateway or a device")
        spec.update(scope=decode.SCOPE_NUMBER[scope], proto=decode.RTPROT_STATIC, type=decode.RTN_UNICAST)
        with netlink_errors(f"add route {dst} in namespace {ns!r}"):
            handle.ipr.route("add", **spec)

    def delete_route(
        self, ns: str, dst: str, *, via: str | None = None, dev: str | None = None, metric: int | None = None
    ) -> None:
        handle = self._handle(ns)
        spec = self._route_spec(handle, dst, via, dev, metric)
        with netlink_errors(f"delete route {dst} in namespace {ns!r}"):
            handle.ipr.route("del", **spec)

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
        with netlink_errors(f"add neighbour {ip} on {dev!r} in namespace {ns!r}"):
            handle.ipr.neigh("add", dst=str(address), lladdr=lladdr, ifindex=index, state=decode.NUD_PERMANENT)

    def delete_neighbour(self, ns: str, dev: str, ip: str) -> None:
        address = parse_ip(ip, what="neighbour address")
        handle = self._handle(ns)
        index = self._index(handle, dev)
        with netlink_errors(f"delete neighbour {ip} on {dev!r} in namespace {ns!r}"):
            handle.ipr.neigh("del", dst=str(address), ifindex=index)

    def neighbours(self, ns: str) -> list[NeighbourInfo]:
        handle = self._handle(ns)
        names = self._names(handle)
        with netlink_errors(f"list neighbours of namespace {ns!r}"):
            messages = list(handle.ipr.get_neighbours())
        found = (decode.decode_neighbour(msg, names) for msg in messages)
        return sorted((n for n in found if n is not None), key=lambda n: (n.dev, n.ip))

    # --- bridge / vxlan forwarding database ---------------------------------------
    def _fdb_request(self, ns: str, dev: str, mac: str, dst: str | None) -> tuple[NamespaceHandle, dict[str, Any]]:
        lladdr = parse_fdb_mac(mac)
        handle = self._handle(ns)
        index = self._index(handle, dev)
        with netlink_errors(f"look up link {dev!r} in namespace {ns!r}"):
            message = handle.ipr.get_links(index)[0]
        spec: dict[str, Any] = {"family": socket.AF_BRIDGE, "ifindex": index, "lladdr": lladdr}
        if decode.link_kind(message) == "vxlan":
            # a vxlan's own table: remote VTEPs; "append" lets one MAC (00:..:00) flood to several
            spec.update(flags=decode.NTF_SELF, state=decode.NUD_PERMANENT | decode.NUD_NOARP)
            if dst is not None:
                spec["dst"] = str(parse_ip(dst, what="VTEP address"))
        else:
            if dst is not None:
                raise InvalidParameterError(f"an FDB entry on {dev!r} (not a vxlan) takes no remote VTEP")
            # a static entry in the bridge's table (NOARP without PERMANENT: "static", not "local")
            spec.update(flags=decode.NTF_MASTER, state=decode.NUD_NOARP)
        return handle, spec

    def add_fdb(self, ns: str, dev: str, mac: str, dst: str | None = None) -> None:
        handle, spec = self._fdb_request(ns, dev, mac, dst)
        command = "append" if spec["flags"] == decode.NTF_SELF else "add"
        with netlink_errors(f"add FDB entry {mac} on {dev!r} in namespace {ns!r}"):
            handle.ipr.neigh(command, **spec)

    def delete_fdb(self, ns: str, dev: str, mac: str, dst: str | None = None) -> None:
        handle, spec = self._fdb_request(ns, dev, mac, dst)
        with netlink_errors(f"delete FDB entry {mac} on {dev!r} in namespace {ns!r}"):
            handle.ipr.neigh("del", **spec)

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
