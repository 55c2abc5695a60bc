"""libnetwork's default IPAM driver: address spaces, pools, sub-pools, addresses.

Each pool (a parent subnet) owns one ``Bitmap`` of its addresses. Sub-pools
(ip-ranges) share the parent's bitmap and only narrow the range searched; a
preferred address may lie anywhere in the parent. Pool IDs are libnetwork's
strings: ``LocalDefault/10.0.0.0/24`` and ``LocalDefault/10.0.0.0/24/10.0.0.128/25``.

Every public call takes one lock, so concurrent callers never share an
address, and validates everything before touching state, so a failed call
changes nothing.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Mapping
from typing import Any

from ipam._address import ordinal_of, parse_network
from ipam._state import _Handle, _Pool, _pool_id, _Space, parse_pool_id
from ipam.bitmap import Bitmap
from ipam.pools import (
    DOCKER_GLOBAL_POOLS,
    DOCKER_LOCAL_POOLS,
    PredefinedPool,
    docker_pools,
    first_free_subnet,
    parse_pools,
    resized,
)
from netsim.driverapi import CONFIG_GLOBAL_STORE, CONFIG_PERSISTENT, CONFIG_STORE, IPAddress, IPInterface, IPNetwork
from netsim.errors import ConflictError, InvalidParameterError, NoSpaceError, NotFoundError
from netsim.ipamapi import (
    ALLOC_SERIAL,
    DEFAULT_IPAM,
    GLOBAL_DEFAULT,
    LOCAL_DEFAULT,
    Ipam,
    IpamCallback,
    IpamCapability,
)

_JSON_FORMAT = 1

# Re-exported: ipam.stored builds on them.
__all__ = ["DefaultIpam", "_Handle", "_Pool", "_Space", "init"]


class DefaultIpam(Ipam):
    """The built-in IPAM driver (libnetwork's ``ipams/defaultipam``).

    Pool requests are O(log pools) (dynamic ones O(pools log pools) at worst);
    address requests and releases are O(log64 pool size), whatever the
    fragmentation.

    >>> ipam = DefaultIpam()
    >>> pool_id, pool, _ = ipam.request_pool("LocalDefault", "10.0.0.0/24", "10.0.0.128/25", {}, False)
    >>> pool_id, str(ipam.request_address(pool_id, None, {})[0])
    ('LocalDefault/10.0.0.0/24/10.0.0.128/25', '10.0.0.128/24')
    """

    def __init__(
        self,
        local_pools: tuple[PredefinedPool, ...] | None = None,
        global_pools: tuple[PredefinedPool, ...] | None = None,
    ) -> None:
        self._lock = threading.Lock()
        if local_pools is None:
            local_pools = docker_pools(DOCKER_LOCAL_POOLS)
        if global_pools is None:
            global_pools = docker_pools(DOCKER_GLOBAL_POOLS)
        self._spaces = {
            LOCAL_DEFAULT: _Space(LOCAL_DEFAULT, local_pools),
            GLOBAL_DEFAULT: _Space(GLOBAL_DEFAULT, global_pools),
        }
        self._handles: dict[str, _Handle] = {}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> DefaultIpam:
        """``local_pools`` / ``global_pools`` override Docker's predefined pools."""
        if not isinstance(config, Mapping):
            raise InvalidParameterError("default IPAM config must be a mapping")
        local = parse_pools(config["local_pools"], "local_pools") if "local_pools" in config else None
        global_ = parse_pools(config["global_pools"], "global_pools") if "global_pools" in config else None
        return cls(local, global_)

    # -- the Ipam contract ----------------------------------------------

    def get_default_address_spaces(self) -> tuple[str, str]:
        return LOCAL_DEFAULT, GLOBAL_DEFAULT

    def is_builtin(self) -> bool:
        return True

    def capabilities(self) -> IpamCapability:
        # libnetwork's defaultipam.Register: the controller replays its requests
        # after a restart (the allocator keeps nothing across one).
        return IpamCapability(requires_mac_address=False, requires_request_replay=True)

    def _space(self, address_space: object) -> _Space:
        """Unknown or empty spaces are invalid parameters (libnetwork's
        ``ErrInvalidAddressSpace`` and ``getAddrSpace``), not "not found"."""
        if not isinstance(address_space, str) or not address_space:
            raise InvalidParameterError(f"invalid address space {address_space!r}")
        space = self._spaces.get(address_space)
        if space is None:
            known = ", ".join(self._spaces)
            raise InvalidParameterError(f"unknown address space {address_space!r} (known: {known})")
        return space

    def request_pool(
        self, address_space: str, pool: str, sub_pool: str, options: Mapping[str, str], v6: bool
    ) -> tuple[str, IPNetwork, dict[str, str]]:
        if not isinstance(pool, str) or not isinstance(sub_pool, str) or not isinstance(v6, bool):
            raise InvalidParameterError("pool and sub-pool must be strings ('' for none) and v6 a bool")
        _check_options(options)
        with self._lock:
            space = self._space(address_space)
            network = parse_network(pool, "pool", v6) if pool else None
            if network is None or network.network_address.is_unspecified:
                # "" or a size only (0.0.0.0/24, ::/64): the next predefined subnet
                # (of that size), as libnetwork's RequestPool since moby 27.
                if sub_pool:
                    raise InvalidParameterError(f"sub-pool {sub_pool!r} requested without a pool")
                size = network.prefixlen if network is not None and network.prefixlen else None
                network = self._next_predefined(space, 6 if v6 else 4, size)
                return self._hold(space, network, None), network, {}
            sub = parse_network(sub_pool, "sub-pool", v6) if sub_pool else None
            if sub is not None and not sub.subnet_of(network):  # type: ignore[arg-type]
                raise InvalidParameterError(f"sub-pool {sub} is not inside pool {network}")
            existing = space.pools.get(network)
            if existing is not None:
                if sub is None or sub in existing.children:
                    raise ConflictError(f"pool {_pool_id(space.name, network, sub)} overlaps an existing pool")
            elif sub is None and space.overlap(network):
                # A sub-pool's new parent is not checked for overlap: libnetwork's
                # allocateSubnetL grants it (moby#46756), so netsim does too.
                raise ConflictError(f"pool {network} overlaps another pool in address space {space.name}")
            return self._hold(space, network, sub), network, {}

    @staticmethod
    def _next_predefined(space: _Space, version: int, size: int | None) -> IPNetwork:
        """Both failures are invalid parameters in libnetwork (``ErrInvalidPool``,
        ``ErrNoMoreSubnets``), whatever the words."""
        family = "IPv6" if version == 6 else "IPv4"
        pools = resized(space.predefined, version, size)
        if not pools:
            wanted = f"/{size} subnets" if size is not None else "subnets"
            raise InvalidParameterError(f"no {family} predefined pool of {space.name} can give {wanted}")
        network = first_free_subnet(pools, version, space.indexes[version])
        if network is None:
            raise InvalidParameterError(f"no free {family} subnet left in the predefined pools of {space.name}")
        return network

    def _hold(self, space: _Space, network: IPNetwork, sub: IPNetwork | None) -> str:
        pool = space.pools.get(network)
        if pool is None:
            pool = _Pool(network)
            space.add(network, pool)
        if sub is None:
            pool.held = True
        else:
            pool.children.add(sub)
        pool_id = _pool_id(space.name, network, sub)
        self._handles[pool_id] = _Handle(pool, sub)
        return pool_id

    def release_pool(self, pool_id: str) -> None:
        with self._lock:
            try:
                handle = self._handle(pool_id)
            except NotFoundError as exc:
                # libnetwork's releaseSubnet: ErrBadPool, an invalid parameter.
                raise InvalidParameterError(f"{exc}: released already or never requested") from exc
            pool = handle.pool
            if handle.sub_pool is None:
                pool.held = False
            else:
                pool.children.discard(handle.sub_pool)
            # A master id may be answered for a pool only its sub-pools keep (not in _handles).
            self._handles.pop(pool_id, None)
            if not pool.held and not pool.children:
                self._spaces[pool_id.split("/", 1)[0]].remove(pool.network)

    def _handle(self, pool_id: object) -> _Handle:
        """The handle of ``pool_id``: malformed ids and unknown spaces are invalid
        parameters, well-formed ids of no pool "not found" (libnetwork's
        requestAddress). A master pool's id (``SPACE/POOL``) answers while the
        pool lives, held or not: libnetwork looks pools up by subnet alone."""
        handle = self._handles.get(pool_id) if isinstance(pool_id, str) else None
        if handle is not None:
            return handle
        name, network, sub = parse_pool_id(pool_id)
        pool = self._space(name).pools.get(network)
        if pool is None or sub is not None:
            raise NotFoundError(f"unknown pool id {pool_id!r}")
        return _Handle(pool, None)

    def request_address(
        self, pool_id: str, preferred: IPAddress | None, options: Mapping[str, str]
    ) -> tuple[IPInterface, dict[str, str]]:
        # Serial even for a gateway request: libnetwork's getAddress looks at
        # the serial option only (Swarm's allocator sends both).
        serial = False
        if options:
            if type(options) is not dict:
                _check_options(options)
            serial = options.get(ALLOC_SERIAL) == "true"
        # acquire/try/finally, not ``with``: the same guarantee at half the cost
        # (a lock's ``with`` costs ~0.2 µs in CPython 3.11, most of this call's overhead).
        lock = self._lock
        lock.acquire()
        try:
            try:
                handle: _Handle | None = self._handles[pool_id]
            except (KeyError, TypeError):  # unknown, or not even hashable
                handle = None
            if handle is None:  # outside the except block: no KeyError chained to its error
                handle = self._handle(pool_id)
            if preferred is not None:
                pool = handle.pool
                ordinal = ordinal_of(pool.network, preferred)
                try:
                    pool.bitmap.set(ordinal)
                except ConflictError as exc:
                    raise ConflictError(f"address {preferred} already allocated in pool {pool_id}") from exc
                return pool.interfaces.make(pool.base + ordinal), {}
            try:
                if handle.whole:
                    ordinal = handle.bitmap.set_any(serial)
                else:
                    ordinal = handle.bitmap.set_any_in_range(handle.start, handle.end, serial)
            except NoSpaceError as exc:
                raise NoSpaceError(f"no free address left in pool {pool_id}") from exc
            value = handle.base + ordinal
            # The maker's cache of recent interfaces, looked up here: a hit costs no call.
            iface = handle.recent.get(value)
            return (iface if iface is not None else handle.pool.interfaces.make(value)), {}
        finally:
            lock.release()

    def release_address(self, pool_id: str, address: IPAddress) -> None:
        lock = self._lock
        lock.acquire()
        try:
            try:
                handle: _Handle | None = self._handles[pool_id]
            except (KeyError, TypeError):  # unknown, or not even hashable
                handle = None
            if handle is None:  # outside the except block: no KeyError chained to its error
                handle = self._handle(pool_id)
            # ``_ip`` is the integer inside an exact IPv4Address/IPv6Address (checked
            # first); int() would add a Python-level call to the hot path.
            ordinal = address._ip - handle.base if type(address) is handle.address_type else -1  # type: ignore[union-attr]
            pool = handle.pool
            if ordinal in handle.reserved:
                raise InvalidParameterError(f"address {address} is reserved in pool {pool.network}")
            try:
                # The bitmap checks the range (once, not twice on the hot path).
                handle.bitmap.unset(ordinal)
            except InvalidParameterError:
                # Outside the pool or not an address of its family: ordinal_of names
                # the problem, or converts what is acceptable after all.
                ordinal = ordinal_of(pool.network, address)
                if ordinal in pool.reserved:
                    raise InvalidParameterError(f"address {address} is reserved in pool {pool.network}") from None
                pool.bitmap.unset(ordinal)
        finally:
            lock.release()

    # -- persistence ----------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """Everything needed to rebuild this driver exactly, as JSON-able data."""
        with self._lock:
            spaces: dict[str, list[dict[str, Any]]] = {}
            for name, space in self._spaces.items():
                spaces[name] = [
                    {
                        "network": str(network),
                        "held": pool.held,
                        "children": sorted(str(child) for child in pool.children),
                        "bitmap": base64.b64encode(pool.bitmap.to_bytes()).decode("ascii"),
                    }
                    for network, pool in space.pools.items()
                ]
            return {
                "format": _JSON_FORMAT,
                "local_pools": [pool.to_json() for pool in self._spaces[LOCAL_DEFAULT].predefined],
                "global_pools": [pool.to_json() for pool in self._spaces[GLOBAL_DEFAULT].predefined],
                "spaces": spaces,
            }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DefaultIpam:
        """Inverse of ``to_json``; InvalidParameterError naming the bad field."""
        if not isinstance(data, Mapping) or data.get("format") != _JSON_FORMAT:
            raise InvalidParameterError(f"default IPAM state: expected a mapping with format {_JSON_FORMAT}")
        driver = cls.from_config({key: data[key] for key in ("local_pools", "global_pools") if key in data})
        spaces = data.get("spaces")
        if not isinstance(spaces, Mapping) or set(spaces) - set(driver._spaces):
            raise InvalidParameterError("default IPAM state: 'spaces' must map known address spaces to pool lists")
        for name, entries in spaces.items():
            space = driver._spaces[name]
            if not isinstance(entries, list):
                raise InvalidParameterError(f"default IPAM state: spaces.{name} must be a list")
            for position, entry in enumerate(entries):
                driver._restore_pool(space, entry, f"spaces.{name}[{position}]")
        return driver

    def _restore_pool(self, space: _Space, entry: object, where: str) -> None:
        if not isinstance(entry, Mapping) or set(entry) != {"network", "held", "children", "bitmap"}:
            raise InvalidParameterError(f"default IPAM state: {where} must have network, held, children, bitmap")
        network = parse_network(entry["network"], f"{where}.network")
        if network in space.pools:
            # Overlaps are legitimate (a sub-pool's parent is never checked); duplicates are not.
            raise InvalidParameterError(f"default IPAM state: {where} repeats pool {network}")
        try:
            bitmap = Bitmap.from_bytes(base64.b64decode(entry["bitmap"], validate=True))
        except (ValueError, TypeError) as exc:
            raise InvalidParameterError(f"default IPAM state: {where}.bitmap: {exc}") from exc
        if bitmap.bits != network.num_addresses:
            raise InvalidParameterError(f"default IPAM state: {where}.bitmap size does not match the network")
        held, children = entry["held"], entry["children"]
        if not isinstance(held, bool) or not isinstance(children, list) or not (held or children):
            raise InvalidParameterError(f"default IPAM state: {where} is neither held nor has sub-pools")
        subs = [parse_network(child, f"{where}.children", network.version == 6) for child in children]
        if any(not sub.subnet_of(network) for sub in subs):  # type: ignore[arg-type]
            raise InvalidParameterError(f"default IPAM state: {where} has a sub-pool outside the pool")
        pool = _Pool(network, bitmap)
        if any(not bitmap.is_set(ordinal) for ordinal in pool.reserved):
            raise InvalidParameterError(f"default IPAM state: {where} has a reserved address free")
        space.add(network, pool)
        if held:
            self._hold(space, network, None)
        for sub in subs:
            self._hold(space, network, sub)


def _check_options(options: object) -> None:
    if not isinstance(options, Mapping):
        raise InvalidParameterError(f"IPAM options must be a mapping of strings, not {type(options).__name__}")


def init(registry: IpamCallback, config: Mapping[str, Any]) -> None:
    """Register the default IPAM driver, with the pools ``config`` overrides.

    With stores in ``config`` (libnetwork's ``Init(cb, lDs, gDs)``) the pools
    of LocalDefault live in the local store and those of GlobalDefault in the
    global one (:class:`ipam.stored.StoredIpam`); without, in memory only.
    """
    driver = DefaultIpam.from_config(config)
    stores = {
        space: config[key]
        for space, key in ((LOCAL_DEFAULT, CONFIG_STORE), (GLOBAL_DEFAULT, CONFIG_GLOBAL_STORE))
        if config.get(key) is not None and config.get(CONFIG_PERSISTENT)
    }
    if stores:
        from ipam.stored import StoredIpam  # it builds on this module

        driver = StoredIpam(stores, driver._spaces[LOCAL_DEFAULT].predefined, driver._spaces[GLOBAL_DEFAULT].predefined)
    registry.register_ipam_driver(DEFAULT_IPAM, driver, driver.capabilities())
