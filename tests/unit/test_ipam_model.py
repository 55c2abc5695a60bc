"""Default IPAM against a plain model (sets of addresses), plus concurrency."""

from __future__ import annotations

import ipaddress
import random
import threading
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, rule

from ipam.default import DefaultIpam
from netsim.driverapi import IPNetwork
from netsim.errors import ConflictError, InvalidParameterError, NoSpaceError, NotFoundError
from netsim.ipamapi import ALLOC_SERIAL, GATEWAY_TYPE, GLOBAL_DEFAULT, LOCAL_DEFAULT, REQUEST_ADDRESS_TYPE

# Candidate (pool, sub-pool) requests: small so pools fill up, overlapping so refusals happen.
REQUESTS = [
    ("10.0.0.0/29", ""),
    ("10.0.0.0/28", ""),
    ("10.0.0.0/29", "10.0.0.4/30"),
    ("10.0.0.0/29", "10.0.0.0/30"),
    ("10.0.1.0/31", ""),
    ("10.0.1.4/32", ""),
    ("2001:db8::/125", ""),
    ("2001:db8::/125", "2001:db8::4/126"),
    ("2001:db8::/64", "2001:db8::ffff:ffff:ffff:fff8/125"),
    ("2001:db8::8/127", ""),
]


@dataclass
class ModelPool:
    network: IPNetwork
    taken: set[int]
    cursor: int = 0
    held: bool = False
    children: set[IPNetwork] = field(default_factory=set)


class IpamMachine(RuleBasedStateMachine):
    pool_ids = Bundle("pool_ids")

    def __init__(self) -> None:
        super().__init__()
        self.driver = DefaultIpam()
        self.pools: dict[IPNetwork, ModelPool] = {}
        self.ranges: dict[str, tuple[ModelPool, int, int]] = {}

    @rule(target=pool_ids, request=st.sampled_from(REQUESTS))
    def request_pool(self, request: tuple[str, str]) -> str:
        pool_text, sub_text = request
        network = ipaddress.ip_network(pool_text)
        sub = ipaddress.ip_network(sub_text) if sub_text else None
        existing = self.pools.get(network)
        overlaps = any(
            other.version == network.version and other != network and other.overlaps(network) for other in self.pools
        )
        # libnetwork's allocateSubnetL checks overlap for master pools only (moby#46756).
        refused = (sub is None and overlaps) or (existing is not None and (sub is None or sub in existing.children))
        if refused:
            before = self.driver.to_json()
            with pytest.raises(ConflictError):
                self.driver.request_pool(LOCAL_DEFAULT, pool_text, sub_text, {}, network.version == 6)
            assert self.driver.to_json() == before
            return "LocalDefault/none"
        pool_id, got, _ = self.driver.request_pool(LOCAL_DEFAULT, pool_text, sub_text, {}, network.version == 6)
        assert got == network
        if existing is None:
            size = network.num_addresses
            reserved = {0} if network.version == 6 else ({0, size - 1} if size > 2 else set())
            existing = self.pools[network] = ModelPool(network, reserved)
        if sub is None:
            existing.held = True
            start, end = 0, network.num_addresses - 1
        else:
            existing.children.add(sub)
            start = int(sub.network_address) - int(network.network_address)
            end = start + sub.num_addresses - 1
        self.ranges[pool_id] = (existing, start, end)
        return pool_id

    def _master_alive(self, pool_id: str) -> ModelPool | None:
        """The pool a master id (SPACE/POOL) still designates although not held."""
        parts = pool_id.split("/")
        if len(parts) != 3 or parts[1] == "none":
            return None
        return self.pools.get(ipaddress.ip_network("/".join(parts[1:])))

    @rule(pool_id=consumes(pool_ids))
    def release_pool(self, pool_id: str) -> None:
        if pool_id not in self.ranges:
            if self._master_alive(pool_id) is not None:
                self.driver.release_pool(pool_id)  # libnetwork: no error while sub-pools live
                return
            with pytest.raises(InvalidParameterError):
                self.driver.release_pool(pool_id)
            return
        self.driver.release_pool(pool_id)
        pool, _, _ = self.ranges.pop(pool_id)
        parts = pool_id.split("/")
        if len(parts) == 3:
            pool.held = False
        else:
            pool.children.discard(ipaddress.ip_network("/".join(parts[3:])))
        if not pool.held and not pool.children:
            del self.pools[pool.network]

    @rule(pool_id=pool_ids, serial=st.booleans(), gateway=st.booleans())
    def request_any(self, pool_id: str, serial: bool, gateway: bool) -> None:
        options = {}
        if serial:
            options[ALLOC_SERIAL] = "true"
        if gateway:
            options[REQUEST_ADDRESS_TYPE] = GATEWAY_TYPE
        if pool_id not in self.ranges:
            alive = self._master_alive(pool_id)
            if alive is None:
                error = InvalidParameterError if pool_id.endswith("none") else NotFoundError
                with pytest.raises(error):
                    self.driver.request_address(pool_id, None, options)
                return
            pool, start, end = alive, 0, alive.network.num_addresses - 1
        else:
            pool, start, end = self.ranges[pool_id]
        free = [ordinal for ordinal in range(start, end + 1) if ordinal not in pool.taken]
        expected = None
        if serial and pool.cursor > start:
            expected = next((ordinal for ordinal in free if ordinal >= pool.cursor), None)
        if expected is None and free:
            expected = free[0]
        if expected is None:
            with pytest.raises(NoSpaceError):
                self.driver.request_address(pool_id, None, options)
            return
        address, _ = self.driver.request_address(pool_id, None, options)
        assert address.network == pool.network
        assert int(address.ip) - int(pool.network.network_address) == expected
        pool.taken.add(expected)
        pool.cursor = expected + 1

    @rule(pool_id=pool_ids, offset=st.integers(-2, 20))
    def request_preferred(self, pool_id: str, offset: int) -> None:
        if pool_id not in self.ranges:
            return
        pool, start, _ = self.ranges[pool_id]
        value = int(pool.network.network_address) + start + offset
        address = ipaddress.ip_address(value)
        ordinal = value - int(pool.network.network_address)
        if not 0 <= ordinal < pool.network.num_addresses:
            with pytest.raises(InvalidParameterError, match="out of range"):
                self.driver.request_address(pool_id, address, {})
        elif ordinal in pool.taken:
            with pytest.raises(ConflictError, match="already allocated"):
                self.driver.request_address(pool_id, address, {})
        else:
            got, _ = self.driver.request_address(pool_id, address, {})
            assert got.ip == address
            pool.taken.add(ordinal)

    @rule(pool_id=pool_ids, offset=st.integers(0, 20))
    def release_address(self, pool_id: str, offset: int) -> None:
        if pool_id not in self.ranges:
            return
        pool, _, _ = self.ranges[pool_id]
        ordinal = offset % pool.network.num_addresses
        address = ipaddress.ip_address(int(pool.network.network_address) + ordinal)
        size = pool.network.num_addresses
        reserved = ordinal == 0 if pool.network.version == 6 else size > 2 and ordinal in (0, size - 1)
        if reserved:
            with pytest.raises(InvalidParameterError, match="reserved"):
                self.driver.release_address(pool_id, address)
            return
        self.driver.release_address(pool_id, address)
        pool.taken.discard(ordinal)

    @rule()
    def persist_and_restore(self) -> None:
        state = self.driver.to_json()
        self.driver = DefaultIpam.from_json(state)
        assert self.driver.to_json() == state

    @invariant()
    def agrees_with_model(self) -> None:
        spaces = self.driver._spaces
        assert set(spaces[LOCAL_DEFAULT].pools) == set(self.pools)
        for network, pool in spaces[LOCAL_DEFAULT].pools.items():
            pool.bitmap._check()
            assert set(pool.bitmap) == self.pools[network].taken
        assert set(self.driver._handles) == set(self.ranges)


TestIpamMachine = IpamMachine.TestCase
TestIpamMachine.settings = settings(
    max_examples=60, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def test_threads_never_share_an_address() -> None:
    """8 threads x 10,000 request/release operations on one /16: no address is ever held twice."""
    driver = DefaultIpam()
    pool_id = driver.request_pool(LOCAL_DEFAULT, "10.20.0.0/16", "", {}, False)[0]
    live: set[str] = set()
    live_lock = threading.Lock()
    duplicates: list[str] = []
    errors: list[BaseException] = []
    operations = [0] * 8

    def worker(number: int) -> None:
        rng = random.Random(number)
        mine: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
        try:
            for _ in range(10_000):
                if mine and rng.random() < 0.45:
                    address = mine.pop(rng.randrange(len(mine)))
                    with live_lock:
                        live.discard(str(address))
                    driver.release_address(pool_id, address)
                else:
                    options = {ALLOC_SERIAL: "true"} if rng.random() < 0.5 else {}
                    got, _ = driver.request_address(pool_id, None, options)
                    with live_lock:
                        if str(got.ip) in live:
                            duplicates.append(str(got.ip))
                        live.add(str(got.ip))
                    mine.append(got.ip)
                operations[number] += 1
        except BaseException as exc:  # reported below, not swallowed
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(number,)) for number in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert duplicates == []
    assert sum(operations) == 80_000
    bitmap = driver._spaces[LOCAL_DEFAULT].pools[ipaddress.ip_network("10.20.0.0/16")].bitmap
    bitmap._check()
    assert bitmap.count_set() == len(live) + 2  # plus network and broadcast


def test_threads_never_share_a_dynamic_pool() -> None:
    driver = DefaultIpam()
    got: list[str] = []
    got_lock = threading.Lock()

    def worker() -> None:
        for _ in range(20):
            network = str(driver.request_pool(GLOBAL_DEFAULT, "", "", {}, False)[1])
            with got_lock:
                got.append(network)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(got) == 160
    assert len(set(got)) == 160
