"""The default IPAM's state: address spaces, pools, pool-id handles, and
libnetwork's pool-id strings (``defaultipam/structures.go``: ``PoolID``).

A pool is a parent subnet with one address bitmap. It lives while it is
*held* (requested without a sub-pool and not released) or has *children*
(sub-pools requested on it); a pool first made for a sub-pool is not held,
as libnetwork marks it ``autoRelease``.
"""

from __future__ import annotations

import ipaddress

from ipam._address import InterfaceMaker
from ipam.bitmap import Bitmap
from ipam.pools import NetworkIndex, PredefinedPool
from netsim.driverapi import IPNetwork
from netsim.errors import InvalidParameterError


class _Pool:
    """A parent subnet: its address bitmap and who holds it.

    ``held`` is true while the pool was requested without a sub-pool and not
    released; ``children`` are the sub-pools requested on it. The pool goes
    away when neither remains.
    """

    __slots__ = ("address_type", "base", "bitmap", "children", "held", "interfaces", "network", "reserved", "size")

    def __init__(self, network: IPNetwork, bitmap: Bitmap | None = None) -> None:
        self.network = network
        self.held = False
        self.children: set[IPNetwork] = set()
        # Cached: ipaddress recomputes these on every access.
        self.base = int(network.network_address)
        self.size = size = network.num_addresses
        self.address_type = type(network.network_address)
        self.interfaces = InterfaceMaker(network)
        if network.version == 4:
            # /31 and /32 have no network or broadcast address (RFC 3021).
            self.reserved: tuple[int, ...] = (0, size - 1) if size > 2 else ()
        else:
            # IPv6 keeps only the subnet-router anycast address (the first).
            self.reserved = (0,)
        if bitmap is None:
            bitmap = Bitmap(size)
            for ordinal in self.reserved:
                bitmap.set(ordinal)
        self.bitmap = bitmap


class _Handle:
    """What a pool ID designates: a pool and the ordinal range it allocates from."""

    __slots__ = ("address_type", "base", "bitmap", "end", "pool", "recent", "reserved", "start", "sub_pool", "whole")

    def __init__(self, pool: _Pool, sub_pool: IPNetwork | None) -> None:
        self.pool = pool
        self.sub_pool = sub_pool
        # The pool's, one attribute away for the address hot path.
        self.bitmap = pool.bitmap
        self.recent = pool.interfaces.recent
        self.base = pool.base
        self.address_type = pool.address_type
        self.reserved = pool.reserved
        if sub_pool is None:
            self.start, self.end = 0, pool.network.num_addresses - 1
        else:
            self.start = int(sub_pool.network_address) - int(pool.network.network_address)
            self.end = self.start + sub_pool.num_addresses - 1
        self.whole = self.start == 0 and self.end == pool.size - 1


class _Space:
    """One address space: its pools and, per family, an overlap index."""

    __slots__ = ("indexes", "name", "pools", "predefined")

    def __init__(self, name: str, predefined: tuple[PredefinedPool, ...]) -> None:
        self.name = name
        self.predefined = predefined
        self.pools: dict[IPNetwork, _Pool] = {}
        self.indexes = {4: NetworkIndex(), 6: NetworkIndex()}

    def overlap(self, network: IPNetwork) -> bool:
        first, last = int(network.network_address), int(network.broadcast_address)
        return self.indexes[network.version].overlapping(first, last) is not None

    def add(self, network: IPNetwork, pool: _Pool) -> None:
        self.pools[network] = pool
        self.indexes[network.version].add(network)

    def remove(self, network: IPNetwork) -> None:
        del self.pools[network]
        self.indexes[network.version].remove(network)


def _pool_id(space: str, network: IPNetwork, sub_pool: IPNetwork | None) -> str:
    return f"{space}/{network}" if sub_pool is None else f"{space}/{network}/{sub_pool}"


def parse_pool_id(pool_id: object) -> tuple[str, IPNetwork, IPNetwork | None]:
    """``(space, pool, sub-pool or None)`` from a pool id; InvalidParameterError
    for anything else, as libnetwork's ``PoolIDFromString`` (its callers answer
    ``invalid pool id``, an invalid-parameter error).

    >>> parse_pool_id("LocalDefault/10.0.0.0/24/10.0.0.128/25")
    ('LocalDefault', IPv4Network('10.0.0.0/24'), IPv4Network('10.0.0.128/25'))
    >>> parse_pool_id("nope")
    Traceback (most recent call last):
    ...
    netsim.errors.InvalidParameterError: invalid pool id 'nope': expected SPACE/POOL or SPACE/POOL/SUB-POOL
    """
    parts = pool_id.split("/") if isinstance(pool_id, str) else []
    if len(parts) not in (3, 5) or not parts[0]:
        raise InvalidParameterError(f"invalid pool id {pool_id!r}: expected SPACE/POOL or SPACE/POOL/SUB-POOL")
    try:
        network = ipaddress.ip_network(f"{parts[1]}/{parts[2]}")
        sub = ipaddress.ip_network(f"{parts[3]}/{parts[4]}") if len(parts) == 5 else None
    except ValueError as exc:
        raise InvalidParameterError(f"invalid pool id {pool_id!r}: {exc}") from exc
    return parts[0], network, sub
