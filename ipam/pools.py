"""Predefined pools (Docker's defaults, or the operator's) and the overlap index.

A predefined pool is a base network carved lazily into subnets of one size:
the next free subnet is found by jumping over allocated networks, never by
enumerating the candidates (10.0.0.0/8 in /24s is 65,536 of them).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from sortedcontainers import SortedList  # type: ignore[import-untyped]

from ipam._address import parse_network
from netsim.driverapi import IPNetwork
from netsim.errors import InvalidParameterError

# Docker's predefined address pools (daemon defaults).
DOCKER_LOCAL_POOLS: tuple[tuple[str, int], ...] = (
    ("172.17.0.0/16", 16),
    ("172.18.0.0/16", 16),
    ("172.19.0.0/16", 16),
    ("172.20.0.0/14", 16),
    ("172.24.0.0/14", 16),
    ("172.28.0.0/14", 16),
    ("192.168.0.0/16", 20),
)
DOCKER_GLOBAL_POOLS: tuple[tuple[str, int], ...] = (("10.0.0.0/8", 24),)


@dataclass(frozen=True)
class PredefinedPool:
    """``base`` split into subnets of prefix length ``size``."""

    base: IPNetwork
    size: int

    def to_json(self) -> dict[str, object]:
        return {"base": str(self.base), "size": self.size}


def parse_pools(entries: object, key: str) -> tuple[PredefinedPool, ...]:
    """Config entries ``[{"base": CIDR, "size": prefix length}, ...]``; errors name the entry.

    >>> parse_pools([{"base": "10.0.0.0/8", "size": 24}], "global_pools")[0].size
    24
    """
    if isinstance(entries, (str, bytes)) or not isinstance(entries, Sequence):
        raise InvalidParameterError(f"{key}: expected a list of {{'base', 'size'}} entries")
    pools = []
    for position, entry in enumerate(entries):
        where = f"{key}[{position}]"
        if not isinstance(entry, Mapping) or set(entry) != {"base", "size"}:
            raise InvalidParameterError(f"{where}: expected exactly the keys 'base' and 'size'")
        base = parse_network(entry["base"], f"{where}.base")
        size = entry["size"]
        if type(size) is not int or not base.prefixlen <= size <= base.max_prefixlen:
            raise InvalidParameterError(
                f"{where}.size: {size!r} must be a prefix length between {base.prefixlen} and {base.max_prefixlen}"
            )
        pools.append(PredefinedPool(base, size))
    return tuple(pools)


def docker_pools(table: tuple[tuple[str, int], ...]) -> tuple[PredefinedPool, ...]:
    return tuple(PredefinedPool(ipaddress.ip_network(base), size) for base, size in table)


class NetworkIndex:
    """Networks (prefixes) of one family, keyed by first address; members may nest.

    libnetwork grants a sub-pool's parent without any overlap check (its
    ``allocateSubnetL``, moby#46756), so 10.0.0.0/16 may live inside 10.0.0.0/8.
    A member overlapping a range either starts inside it (one bisection) or
    contains its first address; prefixes containing an address are found by
    one lookup per member size present (a handful in practice). Add, remove
    and query are O(log n + distinct sizes).

    >>> index = NetworkIndex(); index.add(ipaddress.ip_network("10.0.1.0/24"))
    >>> index.overlapping(int(ipaddress.ip_address("10.0.0.0")), int(ipaddress.ip_address("10.0.255.255")))
    (167772416, 167772671)
    >>> index.overlapping(0, 100) is None
    True
    >>> index.add(ipaddress.ip_network("10.0.0.0/8"))
    >>> index.overlapping(int(ipaddress.ip_address("10.9.0.0")), int(ipaddress.ip_address("10.9.0.255")))
    (167772160, 184549375)
    """

    def __init__(self) -> None:
        self._members: SortedList = SortedList()
        self._present: set[tuple[int, int]] = set()
        #: member sizes (address counts, powers of two) and how many members have each
        self._sizes: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self._members)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter(self._members)

    def overlapping(self, first: int, last: int) -> tuple[int, int] | None:
        """A member sharing an address with ``[first, last]``, or None: the
        largest member containing ``first`` if one does, else the first member
        starting inside the range."""
        for size in sorted(self._sizes, reverse=True):
            start = first - first % size
            if start < first and (start, start + size - 1) in self._present:
                return (start, start + size - 1)
        position = self._members.bisect_left((first, -1))
        if position < len(self._members):
            member: tuple[int, int] = self._members[position]
            if member[0] <= last:
                return member
        return None

    def add(self, network: IPNetwork) -> None:
        member = (int(network.network_address), int(network.broadcast_address))
        if member in self._present:
            raise ValueError(f"{network} is in the index already")
        self._members.add(member)
        self._present.add(member)
        size = network.num_addresses
        self._sizes[size] = self._sizes.get(size, 0) + 1

    def remove(self, network: IPNetwork) -> None:
        member = (int(network.network_address), int(network.broadcast_address))
        self._members.remove(member)
        self._present.remove(member)
        size = network.num_addresses
        self._sizes[size] -= 1
        if not self._sizes[size]:
            del self._sizes[size]

    def _check(self) -> None:
        """Invariant: the three views hold the same members."""
        assert set(self._members) == self._present and len(self._members) == len(self._present)
        counted: dict[int, int] = {}
        for first, last in self._members:
            counted[last - first + 1] = counted.get(last - first + 1, 0) + 1
        assert counted == self._sizes


def resized(pools: Sequence[PredefinedPool], version: int, size: int | None) -> list[PredefinedPool]:
    """The predefined pools of ``version``, split into /``size`` when a size is asked
    (a request for ``0.0.0.0/24``): pools that cannot hold one are left out, as
    libnetwork's ``allocatePredefinedPool`` filters them.

    >>> [str(p.base) for p in resized(docker_pools(DOCKER_LOCAL_POOLS), 4, 15)]
    ['172.20.0.0/14', '172.24.0.0/14', '172.28.0.0/14']
    """
    family = [pool for pool in pools if pool.base.version == version]
    if size is None:
        return family
    fits = [pool for pool in family if pool.base.prefixlen <= size <= pool.base.max_prefixlen]
    return [PredefinedPool(pool.base, size) for pool in fits]


def first_free_subnet(pools: Sequence[PredefinedPool], version: int, taken: NetworkIndex) -> IPNetwork | None:
    """The first subnet of the predefined pools of ``version`` that overlaps
    nothing in ``taken``. O(k log n): each step skips past one taken network.

    >>> taken = NetworkIndex(); taken.add(ipaddress.ip_network("172.17.0.0/16"))
    >>> first_free_subnet(docker_pools(DOCKER_LOCAL_POOLS), 4, taken)
    IPv4Network('172.18.0.0/16')
    """
    for pool in pools:
        if pool.base.version != version:
            continue
        step = 1 << (pool.base.max_prefixlen - pool.size)
        base_first = int(pool.base.network_address)
        base_last = int(pool.base.broadcast_address)
        candidate = base_first
        while candidate + step - 1 <= base_last:
            hit = taken.overlapping(candidate, candidate + step - 1)
            if hit is None:
                return ipaddress.ip_network((candidate, pool.size))
            # Next aligned candidate past the taken network.
            skipped = hit[1] + 1 - base_first
            candidate = base_first + -(-skipped // step) * step
    return None
