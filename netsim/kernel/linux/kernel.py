"""LinuxKernel: the Kernel contract on the real kernel, inside netsim's own namespaces.

Safety: every namespace name must start with this kernel's per-run prefix;
netlink sockets are only ever opened *inside* such a namespace (never in the
root one); veth peers are created directly in their target namespace; nft
and sysctls run inside the namespace (libnftables or nsenter / a setns'd thread). close()
removes every namespace by exact name and verifies that none is left.

Layer 3 and below (addresses, routes, neighbours, FDB, sysctls) live in
:mod:`netsim.kernel.linux.layer3`; this module holds namespaces, links,
rules and the delegation to the traffic manager.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import struct
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from netsim.errors import InvalidParameterError, KernelError, kernel_error
from netsim.kernel.base import Filter, IpvlanFlag, IpvlanMode, LinkInfo, Listener, MacvlanMode, ProbeResult, Proto, Rule
from netsim.kernel.dns import DNS_PORT, RESOLVE_TIMEOUT, RESOLVER_ADDRESS, DnsLookup, DnsResult
from netsim.kernel.linux import links as decode
from netsim.kernel.linux import rtnl
from netsim.kernel.linux.layer3 import LinuxNamespaces
from netsim.kernel.linux.netns import (
    NamespaceHandle,
    create_namespace,
    namespace_fd,
    open_namespace,
    remove_namespace,
)
from netsim.kernel.linux.nft import NftNamespace
from netsim.kernel.linux.reaper import LinkReaper
from netsim.kernel.linux.ties import CrossNamespaceLinks, LinkRef, Tie, read_link
from netsim.naming import NAMESPACE_ROOT, check_ifname, check_nsname
from netsim.safety import namespaces_with_prefix
from netsim.validate import parse_ip, parse_mac

if TYPE_CHECKING:
    from netsim.kernel.linux.traffic import TrafficManager


class LinuxKernel(LinuxNamespaces):
    """The real kernel through pyroute2. See the module docstring."""

    kind = "linux"

    def __init__(self, run_id: str | None = None) -> None:
        super().__init__(run_id)
        self._handles: dict[str, NamespaceHandle] = {}
        self._nft: dict[str, NftNamespace] = {}
        #: (ns, link) -> MAC set with set_mac; checked against the kernel when read
        self._macs: dict[tuple[str, str], str] = {}
        #: namespaces of other runs used but never removed (borrow_namespace)
        self._borrowed: set[str] = set()
        #: links tied to another namespace than their own, recorded as they are made or moved
        self._ties = CrossNamespaceLinks()
        #: namespaces opened, not made, by this object (adopted, borrowed): their ties predate the record
        self._inherited: set[str] = set()
        self._closed = False
        #: link deletions whose kernel side (the grace period) is still running
        self._reaper = LinkReaper()
        self._traffic: TrafficManager | None = None
        self._traffic_import_error: ImportError | None = None
        try:
            from netsim.kernel.linux.traffic import TrafficManager
        except ImportError as exc:  # written in parallel; everything else works without it
            self._traffic_import_error = exc
        else:
            self._traffic = TrafficManager(self)
        atexit.register(self.close)

    # --- helpers ---------------------------------------------------------------
    def _nsid(self, handle: NamespaceHandle, other: str) -> int | None:
        """The id ``handle``'s namespace uses for ``other`` (cached once assigned)."""
        if other not in handle.nsids:
            with namespace_fd(other) as fd:
                nsid = handle.rtnl.nsid(fd)
            if nsid is None:
                return None
            handle.nsids[other] = nsid
        return handle.nsids[other]

    def _resolver(self, handle: NamespaceHandle, names: Mapping[int, str]) -> decode.Resolver:
        def resolve(ifindex: int, nsid: int | None) -> tuple[str, str] | None:
            if nsid is None:
                return (handle.name, names[ifindex]) if ifindex in names else None
            for other, other_handle in self._handles.items():
                if other != handle.name and self._nsid(handle, other) == nsid:
                    name = other_handle.rtnl.link_name(ifindex)
                    return None if name is None else (other, name)
            return None

        return resolve

    def _bridge_ports(self, ns: str) -> dict[str, frozenset[str]]:
        ports: dict[str, set[str]] = {}
        for link in self.links(ns):
            if link.master:
                ports.setdefault(link.master, set()).add(link.name)
        return {bridge: frozenset(names) for bridge, names in ports.items()}

    def _links_changed(self, *namespaces: str) -> None:
        """Keep bridge-layer filter sets in step with bridge membership."""
        for ns in namespaces:
            tables = self._nft.get(ns)
            if tables is not None and tables.bridge_ports and ns in self._handles:
                tables.sync_bridge_ports(self._bridge_ports(ns))

    def _all_links_changed(self) -> None:
        self._links_changed(*[ns for ns, tables in self._nft.items() if tables.bridge_ports])

    # --- namespaces ---------------------------------------------------------
    def add_namespace(self, name: str) -> None:
        if not isinstance(name, str) or not name.startswith(self.prefix):
            raise InvalidParameterError(
                f"refusing namespace {name!r}: real-kernel namespaces must start with this run's prefix {self.prefix!r}"
            )
        check_nsname(name)
        if name in self._handles:
            raise kernel_error(errno.EEXIST, f"namespace {name!r} exists")
        self._handles[name] = create_namespace(name)  # defaults written (netns.write_namespace_defaults)
        self._nft[name] = NftNamespace(name)

    def adopt_namespaces(self, wanted: Callable[[str], bool]) -> list[str]:
        adopted = []
        for name in namespaces_with_prefix(self.prefix):
            if name in self._handles or not wanted(name):
                continue
            try:
                handle = open_namespace(name)
            except KernelError:
                # Half-made by a process killed inside ``ip netns add`` (a file, no
                # namespace mounted on it): open_namespace removed it; nothing to adopt.
                continue
            tables = NftNamespace(name)
            try:
                tables.flush_left_over()
            except BaseException:
                tables.close()
                handle.close()
                raise
            self._handles[name], self._nft[name] = handle, tables
            self._inherited.add(name)
            adopted.append(name)
        return adopted

    def borrow_namespace(self, name: str) -> None:
        """Use a namespace of another netsim run on this machine (a cluster's
        underlay, made by the process that runs the cluster) without owning
        it: links can be made into it, but this kernel never deletes it."""
        if not isinstance(name, str) or not name.startswith(NAMESPACE_ROOT) or name.startswith(self.prefix):
            raise InvalidParameterError(f"can only borrow another netsim run's namespace, not {name!r}")
        if name in self._handles:
            return
        self._handles[name] = open_namespace(name, remove_on_failure=False)
        self._nft[name] = NftNamespace(name)
        self._borrowed.add(name)
        self._inherited.add(name)

    def _dependents(self, name: str) -> list[tuple[NamespaceHandle, int]]:
        """Links elsewhere tied to namespace ``name`` (veth peers, macvlans/vxlans made on its
        devices): Linux destroys them with the namespace. The recorded ties (netsim.kernel.linux.ties),
        each checked against the kernel; for a namespace made by an earlier process, also a scan
        of the namespaces whose links may predate the record."""
        found = []
        for other, index in self._ties.tied_to(name):
            handle = self._handles.get(other)
            if handle is None:
                continue
            # Still a link there, and still tied to ``name`` (an outdated entry is skipped). The
            # link is read first: reporting it gives its namespace an id for ``name`` if it had none.
            link, nsid = read_link(handle.rtnl, index), self._nsid(handle, name)
            if link is not None and nsid is not None and link.link_netnsid == nsid:
                found.append((handle, index))
        if name in self._inherited:
            recorded = set(found)
            for other in sorted(self._inherited - {name}):
                handle = self._handles[other]
                # Dump first: Linux gives a namespace an id for another when it first reports
                # a link tied there, not when the link is made (unless someone listens).
                tied = [link for link in handle.rtnl.dump_links() if link.link_netnsid is not None]
                nsid = self._nsid(handle, name) if tied else None
                found += [
                    (handle, link.index)
                    for link in tied
                    if link.link_netnsid == nsid and (handle, link.index) not in recorded
                ]
        return found

    def _delete_dependents(self, name: str) -> None:
        """Delete the links elsewhere that Linux would destroy with namespace ``name``.

        Linux dismantles a removed namespace later, in a workqueue (cleanup_net): its
        veth peers elsewhere would linger for 10-50 ms. Deleting them first (the reaper
        returns once each is unlisted; a veth's end in ``name`` goes in the same batch)
        makes delete_namespace synchronous, as the contract (and the fake) has it,
        without waiting for the namespace's own teardown."""
        for handle, index in self._dependents(name):
            try:
                self._reaper.delete(handle.rtnl, index, what=f"delete link {index} tied to namespace {name!r}")
            except KernelError as exc:
                if exc.errno != errno.ENODEV:  # gone with an earlier one (both ends of a pair)
                    raise

    def delete_namespace(self, name: str) -> None:
        if name in self._borrowed:
            raise kernel_error(errno.EPERM, f"namespace {name!r} is borrowed from another run: not ours to delete")
        handle = self._handle(name)
        self._delete_dependents(name)
        if self._traffic is not None:
            self._traffic.close_namespace(name)
        handle.close()
        del self._handles[name]
        tables = self._nft.pop(name, None)
        if tables is not None:
            tables.close()  # its libnftables socket would keep the namespace alive
        for other in self._handles.values():
            other.nsids.pop(name, None)
        self._ties.forget_namespace(name)
        self._inherited.discard(name)
        self._macs = {key: mac for key, mac in self._macs.items() if key[0] != name}
        remove_namespace(name)
        self._all_links_changed()

    def namespaces(self) -> list[str]:
        return sorted(self._handles)

    # --- links --------------------------------------------------------------
    def add_veth(self, ns: str, name: str, peer: str, peer_ns: str | None = None) -> None:
        check_ifname(name)
        check_ifname(peer)
        handle = self._handle(ns)
        peer_info = rtnl.ifinfo() + rtnl.nla_str(3, peer)
        with namespace_fd(self._handle(peer_ns or ns).name) as fd:
            if peer_ns is not None and peer_ns != ns:
                peer_info += rtnl.nla_u32(rtnl.IFLA_NET_NS_FD, fd)
            handle.rtnl.new_link(name, "veth", data=rtnl.nla(1, peer_info))
        if peer_ns is not None and peer_ns != ns:
            peer_handle = self._handle(peer_ns)
            index, peer_index = handle.rtnl.link_index(name), peer_handle.rtnl.link_index(peer)
            if index is not None and peer_index is not None:
                self._ties.record(ns, index, Tie(peer_ns, peer_index))
                self._ties.record(peer_ns, peer_index, Tie(ns, index))

    def add_bridge(self, ns: str, name: str) -> None:
        check_ifname(name)
        self._handle(ns).rtnl.new_link(name, "bridge")

    def add_macvlan(self, ns: str, name: str, parent: str, mode: MacvlanMode = "bridge") -> None:
        check_ifname(name)
        if mode not in rtnl.MACVLAN_MODE_NUMBER:
            raise InvalidParameterError(f"invalid macvlan mode {mode!r}: expected one of {decode.MACVLAN_MODES}")
        handle = self._handle(ns)
        data = rtnl.nla_u32(1, rtnl.MACVLAN_MODE_NUMBER[mode])
        handle.rtnl.new_link(name, "macvlan", link=self._index(handle, parent), data=data)

    def add_ipvlan(self, ns: str, name: str, parent: str, mode: IpvlanMode = "l2", flag: IpvlanFlag = "bridge") -> None:
        check_ifname(name)
        if mode not in rtnl.IPVLAN_MODE_NUMBER or flag not in rtnl.IPVLAN_FLAG_NUMBER:
            raise InvalidParameterError(f"invalid ipvlan mode {mode!r} or flag {flag!r}")
        handle = self._handle(ns)
        # IFLA_IPVLAN_MODE, IFLA_IPVLAN_FLAGS (u16 each)
        data = rtnl.nla(1, struct.pack("=H", rtnl.IPVLAN_MODE_NUMBER[mode]))
        data += rtnl.nla(2, struct.pack("=H", rtnl.IPVLAN_FLAG_NUMBER[flag]))
        try:
            handle.rtnl.new_link(name, "ipvlan", link=self._index(handle, parent), data=data)
        except KernelError as exc:
            if exc.errno != errno.EOPNOTSUPP:
                raise
            # rtnl_newlink found no "ipvlan" rtnl_link_ops (nothing was created)
            raise kernel_error(
                errno.EOPNOTSUPP,
                f"this kernel has no ipvlan link kind (built without CONFIG_IPVLAN, no module to load): {exc.strerror}",
            ) from exc

    def add_vlan(self, ns: str, name: str, parent: str, vlan_id: int) -> None:
        check_ifname(name)
        if not isinstance(vlan_id, int) or isinstance(vlan_id, bool) or not 0 <= vlan_id < 2**16:
            raise InvalidParameterError(f"invalid VLAN id {vlan_id!r}: expected an integer")
        handle = self._handle(ns)
        data = rtnl.nla(1, struct.pack("=H", vlan_id))
        handle.rtnl.new_link(name, "vlan", link=self._index(handle, parent), data=data)

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
        check_ifname(name)
        if remote is not None and group is not None:
            raise InvalidParameterError("a vxlan takes a remote or a group, not both")
        for number, what in ((vni, "VNI"), (dstport, "destination port")):
            if not isinstance(number, int) or isinstance(number, bool) or not 0 <= number < 2**32:
                raise InvalidParameterError(f"invalid vxlan {what} {number!r}")
        if not 0 <= dstport < 2**16:
            raise InvalidParameterError(f"invalid vxlan destination port {dstport!r}")
        handle = self._handle(ns)
        data = rtnl.nla_u32(1, vni) + rtnl.nla(15, struct.pack(">H", dstport)) + rtnl.nla(7, bytes([int(learning)]))
        # IFLA_VXLAN_PROXY, _L2MISS, _L3MISS
        data += b"".join(rtnl.nla(kind, bytes([int(flag)])) for kind, flag in ((11, proxy), (13, l2miss), (14, l3miss)))
        for v4_kind, v6_kind, value in ((4, 17, local), (2, 16, remote or group)):
            if value is not None:
                address = parse_ip(value, what="vxlan address")
                data += rtnl.nla(v4_kind if address.version == 4 else v6_kind, address.packed)
        if dev is not None:
            data += rtnl.nla_u32(3, self._index(handle, dev))
        handle.rtnl.new_link(name, "vxlan", data=data)

    def delete_link(self, ns: str, name: str) -> None:
        handle = self._handle(ns)
        index = self._index(handle, name)
        self._reaper.delete(handle.rtnl, index, what=f"delete link {name!r}")
        self._ties.forget_link(ns, index)
        self._macs.pop((ns, name), None)
        self._all_links_changed()

    def _set(self, ns: str, name: str, what: str, attrs: bytes = b"", up: bool | None = None) -> None:
        handle = self._handle(ns)
        handle.rtnl.set_link(self._index(handle, name), attrs, up=up, what=f"set {what} of link {name!r}")

    def set_link_up(self, ns: str, name: str, up: bool = True) -> None:
        self._set(ns, name, "state", up=bool(up))

    def set_mtu(self, ns: str, name: str, mtu: int) -> None:
        if not isinstance(mtu, int) or isinstance(mtu, bool) or not 0 < mtu < 2**31:
            raise InvalidParameterError(f"invalid MTU {mtu!r}: expected a positive integer")
        self._set(ns, name, "mtu", rtnl.nla_u32(rtnl.IFLA_MTU, mtu))

    def set_mac(self, ns: str, name: str, mac: str) -> None:
        normalized = parse_mac(mac)
        self._set(ns, name, "MAC", rtnl.nla(rtnl.IFLA_ADDRESS, bytes.fromhex(normalized.replace(":", ""))))
        self._macs[(ns, name)] = normalized

    def set_master(self, ns: str, name: str, master: str | None) -> None:
        handle = self._handle(ns)
        master_index = 0 if master is None else self._index(handle, master)
        self._set(ns, name, "master", rtnl.nla_u32(rtnl.IFLA_MASTER, master_index))
        self._links_changed(ns)

    def move_link(self, ns: str, name: str, new_ns: str, new_name: str | None = None) -> None:
        handle = self._handle(ns)
        if new_name is not None:
            check_ifname(new_name)
        index = self._index(handle, name)
        target = self._handle(new_ns)
        if new_name is not None and new_ns != ns and target.rtnl.link_index(new_name) is not None:
            # Linux moves first and renames after: the rename's EEXIST would leave the link
            # moved under its old name. Refuse up front so that the call changes nothing.
            raise kernel_error(errno.EEXIST, f"a link {new_name!r} exists in namespace {new_ns!r}")
        before = read_link(handle.rtnl, index)
        with namespace_fd(target.name) as fd:
            attrs = rtnl.nla_u32(rtnl.IFLA_NET_NS_FD, fd) + (rtnl.nla_str(3, new_name) if new_name else b"")
            handle.rtnl.set_link(index, attrs, what=f"move link {name!r} to namespace {new_ns!r}")
        self._record_move(ns, index, before, new_ns, new_name or name)
        mac = self._macs.pop((ns, name), None)
        if mac is not None:
            self._macs[(new_ns, new_name or name)] = mac
        self._links_changed(ns, new_ns)

    def _record_move(self, ns: str, index: int, before: LinkRef | None, new_ns: str, new_name: str) -> None:
        """Update the ties of a link moved from ``ns`` (``before``: read there) to ``new_ns``,
        and of its veth peer: each now dies with the other's namespace, if another."""
        old_tie = self._ties.forget(ns, index)
        after = read_link(self._handle(new_ns).rtnl, name=new_name)
        if before is None or after is None:
            return
        if after.link_netnsid is None:
            home: str | None = new_ns  # its peer, parent or creation namespace is where it went
        elif before.link_netnsid is None:
            home = ns
        else:
            home = (
                old_tie.namespace if old_tie is not None else self._namespace_of(self._handle(ns), before.link_netnsid)
            )
        peer = before.link if before.kind == "veth" else None
        if home is not None and after.link_netnsid is not None:
            self._ties.record(new_ns, after.index, Tie(home, peer))
        if home is not None and peer is not None and home in self._handles:
            self._ties.record(home, peer, Tie(new_ns, after.index))

    def _namespace_of(self, handle: NamespaceHandle, nsid: int) -> str | None:
        """Which of this kernel's namespaces ``handle``'s namespace calls ``nsid`` (a scan: only
        for links whose tie is not recorded, made before this process)."""
        for other in self._handles:
            if other != handle.name and self._nsid(handle, other) == nsid:
                return other
        return None

    def rename_link(self, ns: str, name: str, new_name: str) -> None:
        check_ifname(new_name)
        self._set(ns, name, "name", rtnl.nla_str(3, new_name))
        mac = self._macs.pop((ns, name), None)
        if mac is not None:
            self._macs[(ns, new_name)] = mac
        self._links_changed(ns)

    def link_names(self, ns: str) -> list[str]:
        found = self._handle(ns).rtnl.dump_links()
        return sorted(link.name for link in found if decode.summary_kind(link.kind, link.flags) is not None)

    def links(self, ns: str) -> list[LinkInfo]:
        handle = self._handle(ns)
        messages = self._link_messages(handle)
        names = {int(m["index"]): str(m.get_attr("IFLA_IFNAME")) for m in messages}
        resolve = self._resolver(handle, names)
        found = (decode.decode_link(msg, names, resolve) for msg in messages)
        return sorted((info for info in found if info is not None), key=lambda info: info.name)

    def explicit_macs(self) -> Mapping[tuple[str, str], str]:
        current: dict[tuple[str, str], str] = {}
        for ns in {key[0] for key in self._macs}:
            if ns in self._handles:
                for link in self.links(ns):
                    mac = self._macs.get((ns, link.name))
                    if mac is not None and link.mac == mac:
                        current[(ns, link.name)] = mac
        self._macs = current
        return dict(current)

    # --- NAT / filter -------------------------------------------------------
    def add_rule(self, ns: str, rule: Rule) -> None:
        self._handle(ns)
        bridged = isinstance(rule, Filter) and rule.layer == "bridge"
        self._nft[ns].add(rule, self._bridge_ports(ns) if bridged else {})

    def delete_rule(self, ns: str, rule: Rule) -> None:
        self._handle(ns)
        self._nft[ns].delete(rule)

    def rules(self, ns: str) -> list[Rule]:
        self._handle(ns)
        return self._nft[ns].rules()

    # --- listeners and packets: netsim.kernel.linux.traffic -----------------
    def _traffic_manager(self) -> TrafficManager:
        if self._traffic is None:
            raise kernel_error(
                errno.ENOSYS,
                f"listeners, probes and captures need netsim.kernel.linux.traffic: {self._traffic_import_error}",
            )
        return self._traffic

    def add_listener(self, ns: str, listener: Listener) -> None:
        self._handle(ns)
        self._traffic_manager().add_listener(ns, listener)

    def delete_listener(self, ns: str, listener: Listener) -> None:
        self._handle(ns)
        self._traffic_manager().delete_listener(ns, listener)

    def listeners(self, ns: str) -> list[Listener]:
        self._handle(ns)
        if self._traffic is None:
            return []
        return list(self._traffic.listeners(ns))

    # --- DNS servers: netsim.kernel.linux.traffic_dns --------------------------
    def add_dns_server(self, ns: str, addr: str, lookup: DnsLookup) -> None:
        from netsim.kernel.linux.traffic_listen import check_listener

        self._handle(ns)
        check_listener(Listener("udp", DNS_PORT, addr))
        traffic = self._traffic_manager()
        if Listener("udp", DNS_PORT, addr) in traffic.listeners(ns):
            raise kernel_error(errno.EADDRINUSE, f"udp {addr}:{DNS_PORT} is taken in {ns!r}")
        traffic.dns.add(ns, addr, lookup)

    def delete_dns_server(self, ns: str, addr: str) -> None:
        self._handle(ns)
        self._traffic_manager().dns.delete(ns, addr)

    def dns_servers(self, ns: str) -> list[str]:
        self._handle(ns)
        return [] if self._traffic is None else self._traffic.dns.servers(ns)

    def resolve(
        self, ns: str, name: str, qtype: str = "A", server: str = RESOLVER_ADDRESS, timeout: float = RESOLVE_TIMEOUT
    ) -> DnsResult:
        from netsim.kernel.linux.traffic_dns import resolve

        self._handle(ns)
        return resolve(ns, name, qtype, server, timeout)

    def probe(
        self,
        ns: str,
        dst: str,
        proto: Proto = "icmp",
        port: int | None = None,
        timeout: float = 1.0,
        src: str | None = None,
    ) -> ProbeResult:
        self._handle(ns)
        return self._traffic_manager().probe(ns, dst, proto, port, timeout, src)

    def capture(self, ns: str, ifaces: list[str], path: str) -> contextlib.AbstractContextManager[None]:
        self._handle(ns)
        return self._traffic_manager().capture(ns, ifaces, path)

    # --- teardown -----------------------------------------------------------
    def close(self) -> None:
        """Close traffic, then each namespace's socket, remove each namespace, verify. Idempotent."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        problems: list[str] = [f"deleting a link: {failure}" for failure in self._reaper.wait()]
        if self._traffic is not None:
            try:
                self._traffic.close()
            except Exception as exc:  # keep tearing down; report at the end
                problems.append(f"closing traffic: {exc}")
        for name in sorted(self._handles):
            self._handles[name].close()
        for tables in self._nft.values():
            tables.close()
        for name in sorted(set(self._handles) - self._borrowed):
            try:
                remove_namespace(name)
            except Exception as exc:
                problems.append(f"removing namespace {name!r}: {exc}")
        self._handles.clear()
        self._nft.clear()
        self._macs.clear()
        # Namespaces with this run's exact prefix that this object did not register
        # (half made when a signal hit ``ip netns add``, or made by a process of the
        # same run that died) are the run's: remove them too, by exact name.
        for name in namespaces_with_prefix(self.prefix):
            try:
                remove_namespace(name)
            except Exception as exc:
                problems.append(f"removing unregistered namespace {name!r}: {exc}")
        left = namespaces_with_prefix(self.prefix)
        if left:
            problems.append(f"namespaces left behind: {left}")
        if problems:
            raise kernel_error(errno.EBUSY, f"close of linux kernel {self.run_id!r}: " + "; ".join(problems))
