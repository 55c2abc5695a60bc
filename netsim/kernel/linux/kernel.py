"""LinuxKernel: the Kernel contract on the real kernel, inside netsim's own namespaces.

Safety: every namespace name must start with this kernel's per-run prefix;
netlink sockets are only ever opened *inside* such a namespace (never in the
root one); veth peers are created directly in their target namespace; nft
and sysctls run inside the namespace (nsenter / a setns'd thread). close()
removes every namespace by exact name and verifies that none is left.

Layer 3 and below (addresses, routes, neighbours, FDB, sysctls) live in
:mod:`netsim.kernel.linux.layer3`; this module holds namespaces, links,
rules and the delegation to the traffic manager.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from netsim.errors import InvalidParameterError, kernel_error
from netsim.kernel.base import Filter, LinkInfo, Listener, MacvlanMode, ProbeResult, Proto, Rule
from netsim.kernel.linux import links as decode
from netsim.kernel.linux.layer3 import LinuxNamespaces
from netsim.kernel.linux.netns import (
    NamespaceHandle,
    create_namespace,
    namespace_path,
    netlink_errors,
    remove_namespace,
)
from netsim.kernel.linux.nft import NftNamespace
from netsim.naming import check_ifname, check_nsname
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
        self._closed = False
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
            with netlink_errors(f"open namespace {other!r}"):
                fd = os.open(namespace_path(other), os.O_RDONLY)
            try:
                with netlink_errors(f"netnsid of {other!r}"):
                    reply = handle.ipr.get_netnsid(fd=fd)
            finally:
                os.close(fd)
            nsid = reply.get("nsid") if reply else None
            if nsid is None or nsid < 0:
                return None
            handle.nsids[other] = int(nsid)
        return handle.nsids[other]

    def _resolver(self, handle: NamespaceHandle, names: Mapping[int, str]) -> decode.Resolver:
        def resolve(ifindex: int, nsid: int | None) -> tuple[str, str] | None:
            if nsid is None:
                return (handle.name, names[ifindex]) if ifindex in names else None
            for other, other_handle in self._handles.items():
                if other != handle.name and self._nsid(handle, other) == nsid:
                    with contextlib.suppress(Exception):
                        for msg in other_handle.ipr.get_links(ifindex):
                            return other, str(msg.get_attr("IFLA_IFNAME"))
                    return None
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
        handle = create_namespace(name)
        self._handles[name] = handle
        self._nft[name] = NftNamespace(name)
        # Bridged frames must not traverse the inet hooks: the rule model keeps
        # routed (layer "ip") and bridged (layer "bridge") filtering apart.
        for key in ("net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables"):
            with contextlib.suppress(Exception):
                self.set_sysctl(name, key, "0")

    def delete_namespace(self, name: str) -> None:
        handle = self._handle(name)
        if self._traffic is not None:
            self._traffic.close_namespace(name)
        handle.close()
        del self._handles[name]
        self._nft.pop(name, None)
        for other in self._handles.values():
            other.nsids.pop(name, None)
        self._macs = {key: mac for key, mac in self._macs.items() if key[0] != name}
        remove_namespace(name)
        self._all_links_changed()

    def namespaces(self) -> list[str]:
        return sorted(self._handles)

    # --- links --------------------------------------------------------------
    def _add_link(self, ns: str, name: str, **spec: Any) -> None:
        check_ifname(name)
        handle = self._handle(ns)
        with netlink_errors(f"add {spec.get('kind')} link {name!r} in namespace {ns!r}"):
            handle.ipr.link("add", ifname=name, **spec)

    def add_veth(self, ns: str, name: str, peer: str, peer_ns: str | None = None) -> None:
        check_ifname(name)
        check_ifname(peer)
        self._handle(ns)
        if peer_ns is None or peer_ns == ns:
            self._add_link(ns, name, kind="veth", peer=peer)
        else:
            self._handle(peer_ns)
            self._add_link(ns, name, kind="veth", peer={"ifname": peer, "net_ns_fd": namespace_path(peer_ns)})

    def add_bridge(self, ns: str, name: str) -> None:
        self._add_link(ns, name, kind="bridge")

    def add_macvlan(self, ns: str, name: str, parent: str, mode: MacvlanMode = "bridge") -> None:
        check_ifname(name)
        if mode not in decode.MACVLAN_MODES:
            raise InvalidParameterError(f"invalid macvlan mode {mode!r}: expected one of {decode.MACVLAN_MODES}")
        parent_index = self._index(self._handle(ns), parent)
        self._add_link(ns, name, kind="macvlan", link=parent_index, macvlan_mode=mode)

    def add_vlan(self, ns: str, name: str, parent: str, vlan_id: int) -> None:
        check_ifname(name)
        if not isinstance(vlan_id, int) or isinstance(vlan_id, bool):
            raise InvalidParameterError(f"invalid VLAN id {vlan_id!r}: expected an integer")
        parent_index = self._index(self._handle(ns), parent)
        self._add_link(ns, name, kind="vlan", link=parent_index, vlan_id=vlan_id)

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
    ) -> None:
        check_ifname(name)
        if remote is not None and group is not None:
            raise InvalidParameterError("a vxlan takes a remote or a group, not both")
        spec: dict[str, Any] = {
            "kind": "vxlan",
            "vxlan_id": vni,
            "vxlan_port": dstport,
            "vxlan_learning": int(learning),
        }
        for key, value in (("local", local), ("group", remote or group)):
            if value is not None:
                address = parse_ip(value, what=f"vxlan {key}")
                spec[f"vxlan_{key}{'6' if address.version == 6 else ''}"] = str(address)
        if dev is not None:
            spec["vxlan_link"] = self._index(self._handle(ns), dev)
        self._add_link(ns, name, **spec)

    def delete_link(self, ns: str, name: str) -> None:
        handle = self._handle(ns)
        index = self._index(handle, name)
        with netlink_errors(f"delete link {name!r} in namespace {ns!r}"):
            handle.ipr.link("del", index=index)
        self._macs.pop((ns, name), None)
        self._all_links_changed()

    def _set(self, ns: str, name: str, what: str, **spec: Any) -> None:
        handle = self._handle(ns)
        index = self._index(handle, name)
        with netlink_errors(f"set {what} of link {name!r} in namespace {ns!r}"):
            handle.ipr.link("set", index=index, **spec)

    def set_link_up(self, ns: str, name: str, up: bool = True) -> None:
        self._set(ns, name, "state", state="up" if up else "down")

    def set_mtu(self, ns: str, name: str, mtu: int) -> None:
        if not isinstance(mtu, int) or isinstance(mtu, bool) or not 0 < mtu < 2**31:
            raise InvalidParameterError(f"invalid MTU {mtu!r}: expected a positive integer")
        self._set(ns, name, "mtu", mtu=mtu)

    def set_mac(self, ns: str, name: str, mac: str) -> None:
        normalized = parse_mac(mac)
        self._set(ns, name, "MAC", address=normalized)
        self._macs[(ns, name)] = normalized

    def set_master(self, ns: str, name: str, master: str | None) -> None:
        handle = self._handle(ns)
        master_index = 0 if master is None else self._index(handle, master)
        self._set(ns, name, "master", master=master_index)
        self._links_changed(ns)

    def move_link(self, ns: str, name: str, new_ns: str, new_name: str | None = None) -> None:
        handle = self._handle(ns)
        if new_name is not None:
            check_ifname(new_name)
        index = self._index(handle, name)
        self._handle(new_ns)
        spec: dict[str, Any] = {"net_ns_fd": namespace_path(new_ns)}
        if new_name is not None:
            spec["ifname"] = new_name
        with netlink_errors(f"move link {name!r} from namespace {ns!r} to {new_ns!r}"):
            handle.ipr.link("set", index=index, **spec)
        mac = self._macs.pop((ns, name), None)
        if mac is not None:
            self._macs[(new_ns, new_name or name)] = mac
        self._links_changed(ns, new_ns)

    def rename_link(self, ns: str, name: str, new_name: str) -> None:
        check_ifname(new_name)
        self._set(ns, name, "name", ifname=new_name)
        mac = self._macs.pop((ns, name), None)
        if mac is not None:
            self._macs[(ns, new_name)] = mac
        self._links_changed(ns)

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
        problems: list[str] = []
        if self._traffic is not None:
            try:
                self._traffic.close()
            except Exception as exc:  # keep tearing down; report at the end
                problems.append(f"closing traffic: {exc}")
        for name in sorted(self._handles):
            self._handles[name].close()
        for name in sorted(self._handles):
            try:
                remove_namespace(name)
            except Exception as exc:
                problems.append(f"removing namespace {name!r}: {exc}")
        self._handles.clear()
        self._nft.clear()
        self._macs.clear()
        left = namespaces_with_prefix(self.prefix)
        if left:
            problems.append(f"namespaces left behind: {left}")
        if problems:
            raise kernel_error(errno.EBUSY, f"close of linux kernel {self.run_id!r}: " + "; ".join(problems))
