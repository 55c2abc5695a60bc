"""Links that Linux destroys with another namespace than their own, recorded as netsim makes them.

A link whose kind has a "link namespace" (a veth's peer, a macvlan's, ipvlan's or
vlan's parent, a vxlan's creation namespace) is destroyed with that namespace
when it is another than its own: deleting a container takes the host end of its
veth, deleting a host takes the macvlans and vxlans it made and moved into
containers. ``delete_namespace`` deletes those links first, so that it is
synchronous (see ``LinuxKernel._delete_dependents``).

Finding them by asking every other namespace (a namespace id lookup and a dump of
its links each) costs a netlink round trip per namespace and a decoded link per
link on the machine, for every deletion: 206 ms per container at 1,000 containers.
So the kernel records each such tie when it makes one (a veth with its peer
elsewhere, a move into another namespace) and consults the record: the cost of a
deletion is its own ties, whatever the number of namespaces. Each recorded link is
checked against the kernel before it is deleted (its index still names a link
whose link namespace is the one deleted), so an outdated entry is skipped, never
acted on. Ties made before this process (adopted namespaces) are not in the
record; the kernel still scans for those.
"""

from __future__ import annotations

import errno
import struct
from dataclasses import dataclass, field

from netsim.errors import KernelError
from netsim.kernel.linux import rtnl

IFLA_LINK = 5
_IFINFO = struct.Struct("=BxHiII")
_NLA = struct.Struct("=HH")


@dataclass(frozen=True)
class LinkRef:
    """What one RTM_GETLINK says about a link's ties."""

    index: int
    kind: str | None
    #: IFLA_LINK: a veth's peer, a macvlan's or vlan's parent (an index in the link namespace)
    link: int | None
    #: IFLA_LINK_NETNSID: the link namespace's id, when it is another than the link's own
    link_netnsid: int | None


def read_link(channel: rtnl.RtnlChannel, index: int = 0, name: str | None = None) -> LinkRef | None:
    """Look one link up by index or name; None when there is no such link."""
    body = rtnl.ifinfo(index) + (rtnl.nla_str(rtnl.IFLA_IFNAME, name) if name is not None else b"")
    try:
        reply = channel.request(rtnl.RTM_GETLINK, body + rtnl.nla_u32(29, 0), what=f"look up link {name or index}")
    except KernelError as exc:
        if exc.errno == errno.ENODEV:
            return None
        raise
    found = int(_IFINFO.unpack_from(reply)[2])
    kind = link = netnsid = None
    offset = _IFINFO.size
    while offset + _NLA.size <= len(reply):
        length, attr_type = _NLA.unpack_from(reply, offset)
        if length < _NLA.size:
            break
        start, stop = offset + _NLA.size, offset + length
        attr_type &= 0x3FFF
        if attr_type == IFLA_LINK:
            link = int(struct.unpack_from("=i", reply, start)[0]) or None
        elif attr_type == rtnl.IFLA_LINK_NETNSID:
            netnsid = int(struct.unpack_from("=i", reply, start)[0])
        elif attr_type == rtnl.IFLA_LINKINFO:
            inner = start
            while inner + _NLA.size <= stop:
                inner_length, inner_type = _NLA.unpack_from(reply, inner)
                if inner_length < _NLA.size:
                    break
                if inner_type & 0x3FFF == rtnl.IFLA_INFO_KIND:
                    kind = reply[inner + _NLA.size : inner + inner_length].split(b"\0", 1)[0].decode()
                inner += (inner_length + 3) & ~3
        offset += (length + 3) & ~3
    return LinkRef(found, kind, link, netnsid)


@dataclass(frozen=True)
class Tie:
    """A link is destroyed with ``namespace``; ``peer``: a veth's other end's index there."""

    namespace: str
    peer: int | None = None


@dataclass(eq=False)
class CrossNamespaceLinks:
    """The record: (namespace, ifindex) of a link -> the other namespace it dies with."""

    _ties: dict[tuple[str, int], Tie] = field(default_factory=dict)
    #: namespace -> the links elsewhere tied to it
    _tied_to: dict[str, set[tuple[str, int]]] = field(default_factory=dict)
    #: namespace -> indexes of its links tied elsewhere
    _located: dict[str, set[int]] = field(default_factory=dict)

    def record(self, ns: str, index: int, tie: Tie | None) -> None:
        """Link ``index`` of ``ns`` now dies with ``tie.namespace`` (None or ``ns`` itself: with nothing else)."""
        self.forget(ns, index)
        if tie is None or tie.namespace == ns:
            return
        self._ties[(ns, index)] = tie
        self._tied_to.setdefault(tie.namespace, set()).add((ns, index))
        self._located.setdefault(ns, set()).add(index)

    def tie(self, ns: str, index: int) -> Tie | None:
        return self._ties.get((ns, index))

    def forget(self, ns: str, index: int) -> Tie | None:
        tie = self._ties.pop((ns, index), None)
        if tie is not None:
            self._tied_to[tie.namespace].discard((ns, index))
            self._located[ns].discard(index)
        return tie

    def forget_link(self, ns: str, index: int) -> None:
        """Link ``index`` of ``ns`` was deleted, and with it a veth's peer."""
        tie = self.forget(ns, index)
        if tie is not None and tie.peer is not None:
            self.forget(tie.namespace, tie.peer)

    def tied_to(self, ns: str) -> list[tuple[str, int]]:
        """The recorded links elsewhere that die with ``ns`` (possibly outdated: check each)."""
        return sorted(self._tied_to.get(ns, ()))

    def forget_namespace(self, ns: str) -> None:
        """``ns`` is gone: so are its links and the links elsewhere tied to it."""
        for other, index in self._tied_to.pop(ns, set()):
            self._ties.pop((other, index), None)
            self._located.get(other, set()).discard(index)
        for index in self._located.pop(ns, set()):
            tie = self._ties.pop((ns, index), None)
            if tie is not None:
                self._tied_to.get(tie.namespace, set()).discard((ns, index))

    def __len__(self) -> int:
        return len(self._ties)
