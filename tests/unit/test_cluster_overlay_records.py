"""Pure parts of multi-host overlay: peer records, flood counts, VNI allocation."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.overlay.peers import FloodRefs, PeerRecord
from drivers.overlay.vni import FIRST_VNI, LAST_VNI, VniAllocator, parse_vni
from netsim.errors import ConflictError, InvalidParameterError, NotFoundError
from netsim.store import MemoryStore


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_garbage_peer_values_are_invalid_parameters(value: bytes) -> None:
    try:
        record = PeerRecord.decode(value)
    except InvalidParameterError as exc:
        assert "peer record" in str(exc)
    else:  # only a well-formed record decodes, and it round-trips
        assert PeerRecord.decode(record.encode()) == record


@settings(max_examples=100, deadline=None)
@given(st.ip_addresses(v=4), st.integers(0, 32), st.binary(min_size=6, max_size=6), st.ip_addresses(v=4))
def test_peer_record_round_trips(address: ipaddress.IPv4Address, prefix: int, mac: bytes, vtep: object) -> None:
    # A unicast, locally administered MAC: the only kind an endpoint gets.
    unicast = bytes([(mac[0] & 0xFE) | 0x02]) + mac[1:]
    record = PeerRecord(ipaddress.ip_interface(f"{address}/{prefix}"), ":".join(f"{b:02x}" for b in unicast), str(vtep))
    assert PeerRecord.decode(record.encode()) == record
    assert record.decode_fields() == {"Host IP": str(vtep)}


@pytest.mark.parametrize(
    "value",
    [
        b'{"EndpointIP": "fd00::2/64", "EndpointMAC": "02:42:00:00:00:01", "TunnelEndpointIP": "198.19.0.2"}',
        b'{"EndpointIP": "10.0.0.2/24", "EndpointMAC": "nope", "TunnelEndpointIP": "198.19.0.2"}',
        b'{"EndpointIP": "10.0.0.2/24", "EndpointMAC": "02:42:00:00:00:01"}',
        b"[1, 2]",
        b"\xff\xfe",
    ],
)
def test_malformed_peer_records_name_the_problem(value: bytes) -> None:
    with pytest.raises(InvalidParameterError, match="peer record"):
        PeerRecord.decode(value)


def test_flood_refs_count_peers_per_vtep() -> None:
    refs = FloodRefs()
    assert refs.add("a") and not refs.add("a") and refs.add("b")
    assert refs.vteps() == ["a", "b"]
    assert not refs.remove("a") and refs.remove("a")
    refs._check()
    with pytest.raises(InvalidParameterError, match="no overlay peer"):
        refs.remove("a")
    assert refs.vteps() == ["b"]


def test_vni_allocation_is_lowest_free_and_shared_through_the_store() -> None:
    store = MemoryStore()
    first, second = VniAllocator(store), VniAllocator(store)  # two hosts, one global store
    assert first.allocate("n1") == FIRST_VNI
    assert second.allocate("n2") == FIRST_VNI + 1
    assert second.lookup("n1") == FIRST_VNI and first.owner(FIRST_VNI + 1) == "n2"
    assert first.allocate("n3", wanted=7) == 7
    assert first.free("n1") == FIRST_VNI
    assert second.allocate("n4") == FIRST_VNI


def test_vni_conflicts_and_unknowns_leave_the_store_unchanged() -> None:
    store = MemoryStore()
    vnis = VniAllocator(store)
    vnis.allocate("n1", wanted=5000)
    before = [(p.key, p.value) for p in store.list("")]
    with pytest.raises(ConflictError, match="already used"):
        vnis.allocate("n2", wanted=5000)
    with pytest.raises(ConflictError, match="already has"):
        vnis.allocate("n1")
    with pytest.raises(NotFoundError, match="no VXLAN id"):
        vnis.free("n2")
    assert [(p.key, p.value) for p in store.list("")] == before


@pytest.mark.parametrize("text", ["", "0", "-1", "abc", str(LAST_VNI + 1), "1.5"])
def test_invalid_vxlan_ids_are_refused(text: str) -> None:
    with pytest.raises(InvalidParameterError, match="invalid VXLAN id"):
        parse_vni(text)


def test_vxlan_id_list_takes_the_first() -> None:
    assert parse_vni("4097,4098") == 4097
