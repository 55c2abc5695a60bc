"""Subnet checks of a scenario: where a subnet may lie, overlaps, and room.

Decisions (documented in docs/scenarios.md):

* netsim's own outside world is 198.18.0.0/15 (RFC 2544): host uplinks in
  198.18.0.0/16 and the multi-host underlay in 198.19.0.0/24; and over IPv6
  2001:2::/48 (RFC 5180), a /64 per host uplink. A container subnet there
  would shadow the outside and probes would time out: refused.
* Refused too, because the kernel gives them other meanings: ``0.0.0.0/8``
  (this network) and any /0, loopback (127/8, ::1), multicast (224/4,
  ff00::/8), link-local (169.254/16, fe80::/10: every link already has its
  own link-local addresses and netsim never picks one as a probe's source)
  and IPv4-mapped IPv6 (::ffff:0:0/96).
* With the default IPAM, a subnet must leave at least one address for a
  container after the gateway and aux addresses (/32, /127 and /128 never
  do), and at no point of the scenario may more containers be attached than
  it has addresses: the dynamic ones from the ip_range (or the subnet), static
  ones anywhere in the subnet.

Overlaps are found by a sweep over subnets sorted by start address, per host
(a global network counts on every host): O(n log n) instead of pairwise.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NoReturn

from netsim.scenario.model import NetworkSpec, Scenario

Fail = Callable[[str, str], NoReturn]
IPNet = ipaddress.IPv4Network | ipaddress.IPv6Network


class ParsedNets(dict[str, IPNet]):
    """CIDR text → network, each parsed once per check (every check reads a
    subnet several times, and ``ipaddress`` parsing dominated the run time).

    >>> nets = ParsedNets()
    >>> nets["10.0.0.0/24"] is nets["10.0.0.0/24"]
    True
    """

    def __missing__(self, text: str) -> IPNet:
        net = ipaddress.ip_network(text)
        self[text] = net
        return net


#: (version, first, last address as integers, why): compared as integers, not ipaddress objects
_REFUSED: tuple[tuple[int, int, int, str], ...] = tuple(
    (net.version, int(net.network_address), int(net.broadcast_address), why)
    for net, why in (
        (ipaddress.ip_network(cidr), why)
        for cidr, why in (
            ("198.18.0.0/15", "netsim's outside world and underlay (198.18.0.0/15, RFC 2544)"),
            ("2001:2::/48", "netsim's IPv6 outside world (2001:2::/48, RFC 5180)"),
            ("0.0.0.0/8", "'this network' (0.0.0.0/8), which no interface may use"),
            ("127.0.0.0/8", "loopback (127.0.0.0/8)"),
            ("169.254.0.0/16", "link-local (169.254.0.0/16)"),
            ("224.0.0.0/4", "multicast (224.0.0.0/4)"),
            ("::1/128", "loopback (::1)"),
            ("::/128", "the unspecified address (::)"),
            ("::ffff:0:0/96", "IPv4-mapped IPv6 (::ffff:0:0/96)"),
            ("fe80::/10", "link-local (fe80::/10)"),
            ("ff00::/8", "multicast (ff00::/8)"),
        )
    )
)

#: drivers whose containers live on the host's uplink LAN (the outside range)
_ON_UPLINK_DRIVERS = ("macvlan", "ipvlan")
_OUTSIDE_WHYS = (_REFUSED[0][3], _REFUSED[1][3])

#: the default IPAM's first pool for a network without a subnet: global scope 10.0.0.0/8 in /24s
_DEFAULT_GLOBAL_POOL = 24


def check_placement(net: NetworkSpec, path: str, nets: ParsedNets, fail: Fail) -> None:
    """Refuse subnets in the ranges above (any IPAM driver: the kernel decides)."""
    for key, text in (("subnet", net.ipam.subnet), ("subnet_v6", net.ipam.subnet_v6)):
        if text is None:
            continue
        subnet = nets[text]
        if subnet.prefixlen == 0:
            fail(f"{path}.ipam.{key}", f"subnet {subnet} holds every address, the outside world's too")
        first, last = int(subnet.network_address), int(subnet.broadcast_address)
        for version, low, high, why in _REFUSED:
            if why in _OUTSIDE_WHYS and net.driver in _ON_UPLINK_DRIVERS:
                continue
            if version == subnet.version and first <= high and low <= last:
                fail(f"{path}.ipam.{key}", f"subnet {subnet} overlaps {why}: not usable for containers")


def check_overlaps(scenario: Scenario, nets: ParsedNets, fail: Fail) -> None:
    """Subnets of networks on one host must not overlap (a global network is on
    every host). The later network in the file is the one reported."""
    by_host: dict[str, list[tuple[int, int, int, str]]] = {}
    global_entries: list[tuple[int, int, int, str]] = []
    for i, net in enumerate(scenario.networks):
        for key, text in (("subnet", net.ipam.subnet), ("subnet_v6", net.ipam.subnet_v6)):
            if text is None:
                continue
            subnet = nets[text]
            # versions never overlap: keep them apart by an offset above any IPv4 address
            base = 0 if subnet.version == 4 else 1 << 33
            entry = (base + int(subnet.network_address), base + int(subnet.broadcast_address), i, key)
            (global_entries if net.is_global else by_host.setdefault(net.host, [])).append(entry)
    worst: tuple[int, int, str] | None = None  # (reported index, other index, key)
    groups = [entries + global_entries for entries in by_host.values()] or [global_entries]
    for entries in groups:
        entries.sort(key=lambda e: (e[0], -e[1]))
        reach: tuple[int, int, int, str] | None = None  # the entry reaching furthest so far
        for entry in entries:
            if reach is not None and entry[0] <= reach[1]:
                later, earlier = (entry, reach) if entry[2] > reach[2] else (reach, entry)
                found = (later[2], earlier[2], later[3])
                worst = found if worst is None or found < worst else worst
            if reach is None or entry[1] > reach[1]:
                reach = entry
    if worst is not None:
        index, other, key = worst
        net, them = scenario.networks[index], scenario.networks[other]
        mine = net.ipam.subnet if key == "subnet" else net.ipam.subnet_v6
        theirs = next(s for s in (them.ipam.subnet, them.ipam.subnet_v6) if s and _same_version(s, mine))
        fail(f"networks[{index}].ipam.{key}", f"subnet {mine} overlaps {theirs} of network {them.name!r}")


def _same_version(a: str | None, b: str | None) -> bool:
    return (":" in (a or "")) == (":" in (b or ""))


@dataclass
class AddressRoom:
    """How many containers a default-IPAM IPv4 network holds at once.

    ``total``: addresses of the subnet left after network/broadcast, gateway
    and aux addresses; ``dynamic``: those inside the ip_range (where dynamic
    addresses come from). Static addresses count against both when inside the
    range, against ``total`` only otherwise. O(1) per attach and detach.

    >>> from netsim.scenario.model import IpamSpec
    >>> room = AddressRoom.of(NetworkSpec("n", ipam=IpamSpec(subnet="10.0.0.0/30")))
    >>> (room.total, room.dynamic, room.attach(None), room.attach(None))
    (1, 1, None, 'holds 1 container address(es) and 2 are needed')
    """

    total: int
    dynamic: int
    range_net: IPNet | None = None
    live_static: int = 0
    live_static_in_range: int = 0
    live_dynamic: int = 0
    statics: dict[str, bool] = field(default_factory=dict)

    @classmethod
    def of(cls, net: NetworkSpec, nets: ParsedNets | None = None) -> AddressRoom | None:
        """None when unbounded for these checks (another IPAM driver, IPv6 only,
        or a local network on the default pools, which hold 4,093 or more)."""
        if net.ipam.driver != "default":
            return None
        nets = ParsedNets() if nets is None else nets
        if net.ipam.subnet is None:
            if not net.is_global:
                return None
            usable = (1 << (32 - _DEFAULT_GLOBAL_POOL)) - 3  # network, broadcast, gateway
            return cls(total=usable, dynamic=usable)
        subnet = nets[net.ipam.subnet]
        edges = {subnet.network_address, subnet.broadcast_address} if subnet.prefixlen < 31 else set()
        range_net = nets[net.ipam.ip_range] if net.ipam.ip_range else subnet
        taken = {ipaddress.ip_address(a) for a in net.ipam.aux_addresses.values()}
        if net.ipam.gateway:
            taken.add(ipaddress.ip_address(net.ipam.gateway))
        taken -= edges
        total = subnet.num_addresses - len(edges) - len(taken) - (0 if net.ipam.gateway else 1)
        in_range = range_net.num_addresses - sum(1 for e in edges if e in range_net)
        in_range -= sum(1 for t in taken if t in range_net) + (0 if net.ipam.gateway else 1)
        return cls(total=total, dynamic=min(in_range, total), range_net=range_net)

    def attach(self, static_ip: str | None) -> str | None:
        """Count one more container; the problem if it does not fit, else None."""
        if static_ip is None:
            self.live_dynamic += 1
        else:
            inside = self.range_net is not None and ipaddress.ip_address(static_ip) in self.range_net
            self.statics[static_ip] = inside
            self.live_static += 1
            self.live_static_in_range += inside
        if self.live_dynamic + self.live_static > self.total:
            return f"holds {self.total} container address(es) and {self.live_dynamic + self.live_static} are needed"
        if self.live_dynamic + self.live_static_in_range > self.dynamic:
            return (
                f"has {self.dynamic} address(es) for containers in its ip_range and "
                f"{self.live_dynamic + self.live_static_in_range} are needed"
            )
        return None

    def detach(self, static_ip: str | None) -> None:
        if static_ip is None:
            self.live_dynamic -= 1
            return
        inside = self.statics.pop(static_ip, False)
        self.live_static -= 1
        self.live_static_in_range -= inside


def room_problem(net: NetworkSpec, room: AddressRoom | None, nets: ParsedNets) -> str | None:
    """A default-IPAM subnet that leaves no address for any container (/32, /127, /128)."""
    if net.ipam.driver != "default":
        return None
    if net.ipam.subnet and room is not None and room.total < 1:
        return f"subnet {net.ipam.subnet} leaves no address for a container after the gateway and aux addresses"
    if net.ipam.subnet_v6:
        v6 = nets[net.ipam.subnet_v6]
        if v6.num_addresses - 2 < 1:  # IPAM reserves the first address; the gateway takes one
            return f"subnet {v6} leaves no address for a container after the gateway"
    return None
