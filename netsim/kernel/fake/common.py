"""Shared plumbing of the fake kernel's control plane: lookups that raise the
errno Linux gives, and allocation of ifindexes and MAC addresses.

The control plane is split by subject (``links``, ``layer3``, ``tables``);
each part is a mixin over :class:`FakeBase`, which holds the one
:class:`~netsim.kernel.fake.state.FakeWorld` the dataplane reads too.
"""

from __future__ import annotations

import errno
import functools
import hashlib

from netsim.errors import kernel_error
from netsim.kernel.base import Kernel
from netsim.kernel.fake.bridgeports import BridgePorts
from netsim.kernel.fake.state import FakeLink, FakeNamespace, FakeWorld
from netsim.naming import MAX_IFNAME
from netsim.naming import check_ifname as _check_ifname
from netsim.validate import parse_mac as _parse_mac

#: Linux drops a device's IPv6 state below this MTU (IPV6_MIN_MTU)
IPV6_MIN_MTU = 1280
#: Linux drops a device's IPv4 state below this MTU (only lo can go that low)
IPV4_MIN_MTU = 68
#: veth, bridge, macvlan and vxlan accept 68..65535 (ETH_MIN_MTU..ETH_MAX_MTU)
ETH_MAX_MTU = 65535
DEFAULT_MTU = 1500


_valid_ifname = functools.lru_cache(maxsize=4096)(_check_ifname)


def check_ifname(name: str) -> None:
    """:func:`netsim.naming.check_ifname`, memoized for strings: a host names
    the same devices over and over, and a refused name raises every time
    (lru_cache keeps no exceptions). A short ASCII letters-and-digits name
    (``veth0a1b2c3d4e5``, ``eth0``: every endpoint's) is valid without either:
    fresh names would only churn the memo."""
    if name.__class__ is str:
        if len(name) <= MAX_IFNAME and name.isalnum() and name.isascii():
            return
        _valid_ifname(name)
    else:
        _check_ifname(name)


_normal_mac = functools.lru_cache(maxsize=4096)(_parse_mac)


def parse_mac(mac: str) -> str:
    """:func:`netsim.validate.parse_mac`, memoized for strings (a refused MAC
    raises every time): a bridge driver sets each endpoint's MAC twice."""
    return _normal_mac(mac) if mac.__class__ is str else _parse_mac(mac)


def disable_ipv6_key(dev: str) -> str:
    return f"net.ipv6.conf.{dev}.disable_ipv6"


class FakeBase(Kernel):
    """World, lookups and allocators shared by the control-plane mixins."""

    kind = "fake"
    world: FakeWorld
    #: bridges whose MTU was set explicitly (Linux then stops following the ports)
    _mtu_pinned: set[FakeLink]
    _mac_salt: int
    #: lower device -> the macvlans, vlans and vxlans stacked on it (any namespace)
    _uppers: dict[FakeLink, list[FakeLink]]
    #: bridge -> its ports
    _ports: dict[FakeLink, BridgePorts]
    #: namespaces whose IPv4 local table exists: Linux creates it with the first
    #: IPv4 address and keeps it; until then a socket may bind any IPv4 address
    _local_tables: set[str]

    def _init_world(self) -> None:
        self.world = FakeWorld()
        self._mtu_pinned = set()
        self._uppers = {}
        self._ports = {}
        self._local_tables = set()
        # MACs must differ between kernels built in one process (two simulated
        # hosts may be compared) yet be reproducible for one run id
        self._mac_salt = hashlib.sha256(self.run_id.encode()).digest()[0]

    # --- lookups ------------------------------------------------------------
    def _ns(self, name: str) -> FakeNamespace:
        """The namespace; ENOENT like opening a missing /run/netns file."""
        found = self.world.namespaces.get(name)
        if found is None:
            raise kernel_error(errno.ENOENT, f"no namespace {name!r} in this kernel")
        return found

    @staticmethod
    def _link_in(ns: FakeNamespace, name: str) -> FakeLink:
        found = ns.links.get(name)
        if found is None:
            raise kernel_error(errno.ENODEV, f"no link {name!r} in namespace {ns.name!r}")
        return found

    def _link(self, ns: str, name: str) -> tuple[FakeNamespace, FakeLink]:
        space = self._ns(ns)
        return space, self._link_in(space, name)

    def _all_links(self) -> list[FakeLink]:
        """Every link of the world: O(links), for the rare cross-namespace scans."""
        return [link for space in self.world.namespaces.values() for link in space.links.values()]

    # --- allocation ---------------------------------------------------------
    def _next_ifindex(self) -> int:
        index = self.world.next_ifindex
        self.world.next_ifindex += 1
        return index

    def _random_mac(self, ifindex: int) -> str:
        """Locally administered unicast (02:...), unique within the world."""
        digits = f"{ifindex & 0xFFFFFFFF:08x}"
        return f"02:{self._mac_salt:02x}:{digits[0:2]}:{digits[2:4]}:{digits[4:6]}:{digits[6:8]}"

    @staticmethod
    def _check_free(ns: FakeNamespace, name: str) -> None:
        if name in ns.links:
            raise kernel_error(errno.EEXIST, f"link {name!r} exists in namespace {ns.name!r}")
