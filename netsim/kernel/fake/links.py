"""Links of the fake kernel: creation, deletion cascades, state changes.

Validation order follows the real kernel implementation (``netsim.kernel.linux``):
argument checks first (InvalidParameterError), then the namespace (ENOENT),
then referenced links (ENODEV), then what the kernel itself refuses. Every
check happens before the first mutation, so a refused call changes nothing.
Costs: creating, renaming or changing one link is O(1) plus O(routes of its
namespace) for route bookkeeping; deleting costs O(what goes with it) through
the kernel's lower->upper and bridge->ports indexes.
"""

from __future__ import annotations

import errno
import ipaddress
from typing import Any

from netsim.errors import InvalidParameterError, kernel_error
from netsim.kernel.base import IpvlanFlag, IpvlanMode, LinkInfo, LinkKind, MacvlanMode
from netsim.kernel.fake import l3sync
from netsim.kernel.fake.bridgeports import BridgePorts
from netsim.kernel.fake.common import DEFAULT_MTU, ETH_MAX_MTU, IPV4_MIN_MTU, FakeBase, check_ifname, parse_mac
from netsim.kernel.fake.state import FakeLink, FakeNamespace, FdbEntry
from netsim.validate import parse_ip

MACVLAN_MODES = ("private", "vepa", "bridge", "passthru")
IPVLAN_MODES = ("l2", "l3", "l3s")
IPVLAN_FLAGS = ("bridge", "private", "vepa")
#: upper devices that hold their parent's rx_handler (one per device in Linux)
RX_HANDLER_UPPERS = ("macvlan", "ipvlan")
VLAN_ID_LIMIT = 4095  # ids 0..4094; Linux answers ERANGE from 4095 on
VNI_LIMIT = 1 << 24
VXLAN_HEADROOM = {4: 50, 6: 70}
LINUX_VXLAN_PORT = 8472  # what Linux uses when asked for port 0
ZERO_MAC = "00:00:00:00:00:00"  # a vxlan's flood-list entries carry the all-zero MAC
#: links Linux will not move between namespaces (NETIF_F_NETNS_LOCAL)
NETNS_LOCAL: tuple[LinkKind, ...] = ("loopback", "bridge")


class LinksMixin(FakeBase):
    """The link half of the Kernel contract on the fake world."""

    #: Linux >= 6.2 renames links while up; older kernels answer EBUSY
    allows_live_rename = True

    # --- creation -------------------------------------------------------------
    def _new_link(self, ns: FakeNamespace, name: str, kind: LinkKind, **fields: Any) -> FakeLink:
        index = self._next_ifindex()
        mac = fields.pop("mac", None) or self._random_mac(index)
        link = FakeLink(name=name, kind=kind, ifindex=index, mac=mac, ns=ns, **fields)
        ns.links[name] = link
        if link.parent is not None:
            self._uppers.setdefault(link.parent, []).append(link)
        if kind == "bridge":
            self._ports[link] = BridgePorts()
        l3sync.arrive_link(ns, link)
        return link

    def add_veth(self, ns: str, name: str, peer: str, peer_ns: str | None = None) -> None:
        check_ifname(name)
        check_ifname(peer)
        space = self._ns(ns)
        peer_space = space if peer_ns is None else self._ns(peer_ns)
        self._check_free(space, name)
        self._check_free(peer_space, peer)
        if peer_space is space and peer == name:
            raise kernel_error(errno.EEXIST, f"veth peer {peer!r} has the same name in namespace {ns!r}")
        first = self._new_link(space, name, "veth")
        second = self._new_link(peer_space, peer, "veth")
        first.peer, second.peer = second, first

    def add_bridge(self, ns: str, name: str) -> None:
        check_ifname(name)
        space = self._ns(ns)
        self._check_free(space, name)
        self._new_link(space, name, "bridge")

    def add_macvlan(self, ns: str, name: str, parent: str, mode: MacvlanMode = "bridge") -> None:
        check_ifname(name)
        if mode not in MACVLAN_MODES:
            raise InvalidParameterError(f"invalid macvlan mode {mode!r}: expected one of {MACVLAN_MODES}")
        space, lower = self._link(ns, parent)
        self._check_free(space, name)
        if lower.kind == "macvlan" and lower.parent is not None:
            lower = lower.parent  # Linux stacks a macvlan on a macvlan's own lower device
        if lower.kind == "loopback":
            raise kernel_error(errno.EINVAL, f"loopback {parent!r} cannot carry a macvlan")
        if lower.master is not None:
            raise kernel_error(errno.EBUSY, f"{parent!r} is a bridge port and cannot carry a macvlan")
        if any(link.kind == "ipvlan" for link in self._uppers.get(lower, [])):
            raise kernel_error(errno.EBUSY, f"{parent!r} carries ipvlans and cannot carry a macvlan")
        siblings = [link for link in self._uppers.get(lower, []) if link.kind == "macvlan"]
        if siblings and (mode == "passthru" or any(s.attrs.get("mode") == "passthru" for s in siblings)):
            raise kernel_error(errno.EINVAL, f"a passthru macvlan must be alone on {parent!r}")
        self._new_link(space, name, "macvlan", parent=lower, mtu=lower.mtu, attrs={"mode": mode})

    def add_ipvlan(self, ns: str, name: str, parent: str, mode: IpvlanMode = "l2", flag: IpvlanFlag = "bridge") -> None:
        check_ifname(name)
        if mode not in IPVLAN_MODES:
            raise InvalidParameterError(f"invalid ipvlan mode {mode!r}: expected one of {IPVLAN_MODES}")
        if flag not in IPVLAN_FLAGS:
            raise InvalidParameterError(f"invalid ipvlan flag {flag!r}: expected one of {IPVLAN_FLAGS}")
        space, lower = self._link(ns, parent)
        self._check_free(space, name)
        if lower.kind == "ipvlan" and lower.parent is not None:
            lower = lower.parent  # ipvlan_link_new: a slave's slave sits on the port's device
        if lower.kind == "loopback":
            raise kernel_error(errno.EINVAL, f"loopback {parent!r} cannot carry an ipvlan")
        if lower.master is not None:
            raise kernel_error(errno.EBUSY, f"{parent!r} is a bridge port and cannot carry an ipvlan")
        siblings = [link for link in self._uppers.get(lower, []) if link.kind == "ipvlan"]
        if any(link.kind == "macvlan" for link in self._uppers.get(lower, [])):
            raise kernel_error(errno.EBUSY, f"{parent!r} carries macvlans and cannot carry an ipvlan")
        attrs = {"mode": mode, "flag": flag}
        for sibling in siblings:  # mode and flag are the port's: the newest slave sets them for all
            sibling.attrs.update(attrs)
        self._new_link(space, name, "ipvlan", parent=lower, mtu=lower.mtu, mac=lower.mac, attrs=attrs)

    def add_vlan(self, ns: str, name: str, parent: str, vlan_id: int) -> None:
        check_ifname(name)
        if not isinstance(vlan_id, int) or isinstance(vlan_id, bool):
            raise InvalidParameterError(f"invalid VLAN id {vlan_id!r}: expected an integer")
        space, lower = self._link(ns, parent)
        # attribute validation comes before the name check in rtnl_newlink
        if not 0 <= vlan_id < VLAN_ID_LIMIT:
            raise kernel_error(errno.ERANGE, f"VLAN id {vlan_id} out of range 0..4094")
        self._check_free(space, name)
        if lower.kind == "loopback":
            raise kernel_error(errno.EOPNOTSUPP, f"{parent!r} cannot carry VLANs")
        for link in self._uppers.get(lower, []):
            if link.kind == "vlan" and link.attrs.get("vlan_id") == vlan_id:
                raise kernel_error(errno.EEXIST, f"VLAN {vlan_id} exists on {parent!r}")
        self._new_link(space, name, "vlan", parent=lower, mtu=lower.mtu, mac=lower.mac, attrs={"vlan_id": vlan_id})

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
        local_ip = parse_ip(local, what="vxlan local") if local is not None else None
        peer_text = remote or group
        peer_ip = parse_ip(peer_text, what="vxlan group") if peer_text is not None else None
        space = self._ns(ns)
        lower = self._link_in(space, dev) if dev is not None else None
        # attribute validation comes before the name check in rtnl_newlink
        if not isinstance(vni, int) or not 0 <= vni < VNI_LIMIT:
            raise kernel_error(errno.ERANGE, f"VNI {vni!r} out of range 0..2^24-1")
        if not isinstance(dstport, int) or not 0 <= dstport <= 65535:
            raise kernel_error(errno.EINVAL, f"invalid vxlan port {dstport!r}")
        self._check_free(space, name)
        dstport = dstport or LINUX_VXLAN_PORT
        if local_ip is not None and peer_ip is not None and local_ip.version != peer_ip.version:
            raise kernel_error(errno.EINVAL, "vxlan local and remote must be of one address family")
        if peer_ip is not None and peer_ip.is_multicast and lower is None:
            raise kernel_error(errno.EINVAL, "a multicast vxlan group needs an underlay device")
        family = (peer_ip or local_ip or ipaddress.IPv4Address(0)).version
        for link in space.links.values():
            if link.kind == "vxlan" and (link.attrs["vni"], link.attrs["dstport"]) == (vni, dstport):
                raise kernel_error(errno.EEXIST, f"VNI {vni} port {dstport} is used by {link.name!r}")
        multicast = peer_ip is not None and peer_ip.is_multicast
        attrs = {
            "vni": vni,
            "local": str(local_ip) if local_ip is not None else None,
            "remote": str(peer_ip) if peer_ip is not None and not multicast else None,
            "group": str(peer_ip) if multicast else None,
            "dstport": dstport,
            "learning": bool(learning),
            "proxy": bool(proxy),
            "l2miss": bool(l2miss),
            "l3miss": bool(l3miss),
        }
        mtu = lower.mtu - VXLAN_HEADROOM[family] if lower is not None else DEFAULT_MTU
        link = self._new_link(space, name, "vxlan", parent=lower, mtu=mtu, attrs=attrs)
        if peer_ip is not None:
            # Linux seeds the flood list with the configured remote or group
            link.fdb[(ZERO_MAC, peer_ip)] = FdbEntry(ZERO_MAC, dst=peer_ip, permanent=True)

    # --- deletion ---------------------------------------------------------------
    def _doomed_with(self, first: FakeLink) -> list[FakeLink]:
        """``first`` plus what Linux deletes with it: veth peers, and upper
        devices (macvlan, vlan, vxlan) whose lower device goes. O(result)."""
        doomed = [first]
        seen = {first}
        i = 0
        while i < len(doomed):
            link = doomed[i]
            i += 1
            related = [link.peer] if link.peer is not None else []
            related += self._uppers.get(link, [])
            for other in related:
                if other not in seen:
                    seen.add(other)
                    doomed.append(other)
        return doomed

    def _destroy(self, doomed: list[FakeLink]) -> None:
        gone = set(doomed)
        for link in doomed:
            space = link.ns
            if link.master is not None and link.master not in gone:
                self._release_port(link)
            ports = self._ports.pop(link, None)
            for port in ports.members() if ports is not None else ():
                port.master = None
            if link.parent is not None and link.parent not in gone:
                self._uppers[link.parent].remove(link)
            self._uppers.pop(link, None)
            l3sync.forget_link(space, link)
            self.world.explicit_macs.pop((space.name, link.name), None)
            self._mtu_pinned.discard(link)
            space.links.pop(link.name, None)
        for link in doomed:
            link.peer = None

    def delete_link(self, ns: str, name: str) -> None:
        _, link = self._link(ns, name)
        if link.kind == "loopback":
            raise kernel_error(errno.EOPNOTSUPP, f"{name!r} cannot be deleted")
        self._destroy(self._doomed_with(link))

    # --- state ------------------------------------------------------------------
    def set_link_up(self, ns: str, name: str, up: bool = True) -> None:
        space, link = self._link(ns, name)
        if link.up == bool(up):
            return
        link.up = bool(up)
        if link.up:
            l3sync.link_up(space, link)
            if any(a.version == 4 for a in link.addresses):
                self._local_tables.add(space.name)  # lo's 127.0.0.1/8
        else:
            l3sync.link_down(space, link)

    def _mtu_range(self, link: FakeLink) -> tuple[int, int]:
        if link.kind == "loopback":
            return 0, 2**31 - 1
        high = ETH_MAX_MTU
        if link.kind in ("macvlan", "vlan", "ipvlan") and link.parent is not None:
            high = link.parent.mtu
        elif link.kind == "vxlan":
            family = 6 if ":" in str(link.attrs.get("remote") or link.attrs.get("group") or "") else 4
            base = link.parent.mtu if link.parent is not None else ETH_MAX_MTU
            high = base - VXLAN_HEADROOM[family]
        return IPV4_MIN_MTU, high

    def _apply_mtu(self, link: FakeLink, mtu: int) -> None:
        old = link.mtu
        if old == mtu:
            return
        link.mtu = mtu
        l3sync.mtu_changed(link.ns, link, old)
        # macvlans and vlans never exceed their lower device's MTU
        if mtu < old:
            for upper in self._uppers.get(link, []):
                if upper.kind in ("macvlan", "vlan", "ipvlan") and upper.mtu > mtu:
                    self._apply_mtu(upper, mtu)
        if link.master is not None:
            self._ports[link.master].mtu_changed(old, mtu)
            self._bridge_follow_ports(link.master)

    def set_mtu(self, ns: str, name: str, mtu: int) -> None:
        if not isinstance(mtu, int) or isinstance(mtu, bool) or not 0 < mtu < 2**31:
            raise InvalidParameterError(f"invalid MTU {mtu!r}: expected a positive integer")
        _, link = self._link(ns, name)
        low, high = self._mtu_range(link)
        if not low <= mtu <= high:
            raise kernel_error(errno.EINVAL, f"MTU {mtu} of {name!r} outside {low}..{high}")
        if link.kind == "bridge":
            self._mtu_pinned.add(link)
        self._apply_mtu(link, mtu)

    def set_mac(self, ns: str, name: str, mac: str) -> None:
        normalized = parse_mac(mac)
        space, link = self._link(ns, name)
        if link.kind == "ipvlan":
            raise kernel_error(errno.EOPNOTSUPP, f"ipvlan {name!r} shares its parent's MAC (no ndo_set_mac_address)")
        for upper in self._uppers.get(link, []):
            if upper.kind == "ipvlan":
                upper.mac = normalized  # NETDEV_CHANGEADDR: ipvlan slaves follow their parent
                l3sync.flush_neighbours(upper.ns, upper.name)
        old, link.mac = link.mac, normalized
        self.world.explicit_macs[(space.name, link.name)] = normalized
        # NETDEV_CHANGEADDR flushes the device's neighbour entries, permanent
        # ones included, even when the address given is the one it had
        l3sync.flush_neighbours(space, link.name)
        if link.master is not None:
            self._ports[link.master].mac_changed(old, normalized)
            self._bridge_follow_ports(link.master)

    # --- bridges ------------------------------------------------------------------
    def _bridge_follow_ports(self, bridge: FakeLink) -> None:
        """Linux keeps an unpinned bridge at its ports' smallest MTU, and a
        bridge without an explicit MAC at its ports' smallest MAC."""
        ports = self._ports[bridge]
        if bridge not in self._mtu_pinned:
            self._apply_mtu(bridge, ports.min_mtu() or DEFAULT_MTU)
        smallest = ports.min_mac()
        follows = (bridge.ns.name, bridge.name) not in self.world.explicit_macs
        if smallest is not None and smallest != bridge.mac and follows:
            bridge.mac = smallest
            l3sync.flush_neighbours(bridge.ns, bridge.name)  # a new bridge id is a NETDEV_CHANGEADDR too

    def _release_port(self, port: FakeLink) -> None:
        bridge = port.master
        if bridge is None:
            return
        port.master = None
        self._ports[bridge].remove(port)
        # a port leaving takes its static FDB entries with it
        if bridge.fdb:
            bridge.fdb = {key: entry for key, entry in bridge.fdb.items() if entry.port is not port}
        self._bridge_follow_ports(bridge)

    def set_master(self, ns: str, name: str, master: str | None) -> None:
        space, link = self._link(ns, name)
        bridge = self._link_in(space, master) if master is not None else None
        if bridge is None:
            self._release_port(link)
            return
        # do_set_master asks the master first: only a bridge has ndo_add_slave
        if bridge.kind != "bridge":
            raise kernel_error(errno.EOPNOTSUPP, f"{master!r} is a {bridge.kind}, not a bridge")
        if link.kind == "bridge":
            raise kernel_error(errno.ELOOP, f"bridge {name!r} cannot be a bridge port")
        if link.kind == "loopback":
            raise kernel_error(errno.EINVAL, f"cannot enslave {name!r} to {master!r}")
        if link.master is bridge:
            return
        if any(upper.kind in RX_HANDLER_UPPERS for upper in self._uppers.get(link, [])):
            raise kernel_error(errno.EBUSY, f"{name!r} carries macvlans or ipvlans and cannot be a bridge port")
        if link in self._stacked_above(bridge):
            raise kernel_error(errno.EBUSY, f"{name!r} is stacked on {master!r}: enslaving it would make a loop")
        self._release_port(link)
        link.master = bridge
        self._ports[bridge].add(link)
        self._bridge_follow_ports(bridge)

    def _stacked_above(self, lower: FakeLink) -> set[FakeLink]:
        """Every device stacked on ``lower``, directly or not: O(devices above it)."""
        found: set[FakeLink] = set()
        pending = [lower]
        while pending:
            for upper in self._uppers.get(pending.pop(), []):
                if upper not in found:
                    found.add(upper)
                    pending.append(upper)
        return found

    # --- moves and renames ---------------------------------------------------------
    def move_link(self, ns: str, name: str, new_ns: str, new_name: str | None = None) -> None:
        space = self._ns(ns)
        if new_name is not None:
            check_ifname(new_name)
        link = self._link_in(space, name)
        target = self._ns(new_ns)
        final = new_name or name
        if target is space:
            if final != name:
                self.rename_link(ns, name, final)
            return
        if new_name is not None:
            # the contract refuses a taken new name before anything else: Linux itself would
            # move the link first and fail the rename after, leaving it half moved
            self._check_free(target, final)
        if link.kind in NETNS_LOCAL:
            raise kernel_error(errno.EINVAL, f"{link.kind} {name!r} cannot change namespace")
        self._check_free(target, final)
        # Linux closes the device, unlinks it from its bridge and forgets its
        # layer-3 state before it reappears, down and bare, in the new namespace
        self._release_port(link)
        l3sync.forget_link(space, link)
        del space.links[name]
        mac = self.world.explicit_macs.pop((space.name, name), None)
        link.name = final
        link.ns = target
        target.links[final] = link
        l3sync.arrive_link(target, link)
        if mac is not None:
            self.world.explicit_macs[(target.name, final)] = mac

    def rename_link(self, ns: str, name: str, new_name: str) -> None:
        check_ifname(new_name)
        space, link = self._link(ns, name)
        if new_name == name:
            return
        self._check_free(space, new_name)
        if link.up and not self.allows_live_rename:
            raise kernel_error(errno.EBUSY, f"{name!r} is up")
        del space.links[name]
        link.name = new_name
        space.links[new_name] = link
        l3sync.rename_refs(space, name, new_name)
        mac = self.world.explicit_macs.pop((space.name, name), None)
        if mac is not None:
            self.world.explicit_macs[(space.name, new_name)] = mac

    # --- views --------------------------------------------------------------------
    @staticmethod
    def _info(link: FakeLink) -> LinkInfo:
        peer = (link.peer.ns.name, link.peer.name) if link.peer is not None else None
        return LinkInfo(
            name=link.name,
            kind=link.kind,
            ifindex=link.ifindex,
            up=link.up,
            mtu=link.mtu,
            mac=link.mac,
            master=link.master.name if link.master is not None else None,
            peer=peer,
            parent=link.parent.name if link.parent is not None else None,
            attrs=dict(link.attrs),
        )

    def links(self, ns: str) -> list[LinkInfo]:
        space = self._ns(ns)
        return [self._info(space.links[name]) for name in sorted(space.links)]
