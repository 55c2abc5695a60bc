"""SharedIpam: one allocation replayed on every host, reference-counted releases."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipam.default import DefaultIpam
from netsim.cluster.ipam import SharedIpam
from netsim.errors import ConflictError
from netsim.ipamapi import GATEWAY_TYPE, GLOBAL_DEFAULT, REQUEST_ADDRESS_TYPE

GATEWAY = {REQUEST_ADDRESS_TYPE: GATEWAY_TYPE}


def _create_on(shared: SharedIpam, hosts: int, subnet: str = "") -> tuple[str, str]:
    """What the cluster does: the first host records pool + gateway, the others replay."""
    shared.start_recording()
    pool_id, _, _ = shared.request_pool(*shared.get_default_address_spaces()[:1], subnet, "", {}, False)
    gateway, _ = shared.request_address(pool_id, None, GATEWAY)
    recorded = shared.stop_recording()
    for _ in range(hosts - 1):
        shared.start_replay(recorded)
        again_id, _, _ = shared.request_pool(GLOBAL_DEFAULT, subnet, "", {}, False)
        again_gw, _ = shared.request_address(again_id, None, GATEWAY)
        shared.stop_replay()
        assert (again_id, again_gw) == (pool_id, gateway)
    return pool_id, str(gateway.ip)


def test_pools_come_from_the_global_space() -> None:
    shared = SharedIpam(DefaultIpam())
    assert shared.get_default_address_spaces() == (GLOBAL_DEFAULT, GLOBAL_DEFAULT)
    _, gateway = _create_on(shared, 3)
    assert gateway == "10.0.0.1" and shared.held() == (3, 3)


def test_last_release_gives_the_pool_back() -> None:
    shared = SharedIpam(DefaultIpam())
    pool_id, gateway = _create_on(shared, 2, "10.9.0.0/24")
    for _ in range(2):
        shared.release_address(pool_id, ipaddress.ip_address(gateway))
        shared.release_pool(pool_id)
    assert shared.held() == (0, 0)
    # The static pool is free again: a second network may take it.
    _create_on(shared, 1, "10.9.0.0/24")


def test_replay_refuses_a_different_request_and_changes_nothing() -> None:
    shared = SharedIpam(DefaultIpam())
    shared.start_recording()
    shared.request_pool(GLOBAL_DEFAULT, "10.1.0.0/24", "", {}, False)
    recorded = shared.stop_recording()
    shared.start_replay(recorded)
    with pytest.raises(ConflictError, match="first host asked"):
        shared.request_pool(GLOBAL_DEFAULT, "10.2.0.0/24", "", {}, False)
    assert shared.held() == (1, 0)
    with pytest.raises(ConflictError, match="not replayed"):
        shared.stop_replay()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.booleans()), min_size=1, max_size=60))
def test_addresses_are_unique_across_hosts(ops: list[tuple[int, bool]]) -> None:
    """Model: every host asks the one shared instance; a set of held addresses
    must never see the same address twice, and releasing everything empties it."""
    shared = SharedIpam(DefaultIpam())
    pool_id, gateway = _create_on(shared, 3, "10.7.0.0/28")
    held: dict[str, int] = {}
    for host, release in ops:
        if release and any(owner == host for owner in held.values()):
            address = next(a for a, owner in held.items() if owner == host)
            shared.release_address(pool_id, ipaddress.ip_address(address))
            del held[address]
            continue
        if len(held) == 13:  # /28: 14 usable, one is the gateway
            continue
        address_if, _ = shared.request_address(pool_id, None, {})
        address = str(address_if.ip)
        assert address not in held and address != gateway
        held[address] = host
    for address in list(held):
        shared.release_address(pool_id, ipaddress.ip_address(address))
    assert shared.held() == (3, 3)
