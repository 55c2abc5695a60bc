"""Bitmap set_any's slow paths (first-fit descent from the top, serial climb)
and the IPAM interface cache, checked against plain models: every layout
where the hint's word is full, on dense (array) and sparse (dict) levels."""

from __future__ import annotations

import ipaddress
import random

import pytest

from ipam._address import RECENT_INTERFACES, InterfaceMaker
from ipam.bitmap import Bitmap
from netsim.errors import NoSpaceError


def _varint(value: int) -> list[int]:
    out = []
    while True:
        out.append((value & 0x7F) | (0x80 if value > 0x7F else 0))
        value >>= 7
        if not value:
            return out


def full_map(bits: int) -> Bitmap:
    """Every ordinal set, loaded in one go (dense levels)."""
    words = bits // 64
    header = bytes([1, *_varint(bits), *_varint(bits), *_varint(bits), 1, 0, *_varint(words)])
    return Bitmap.from_bytes(header + b"\xff" * (8 * words))


@pytest.mark.parametrize("bits", [2**12, 2**16, 2**20])
def test_one_hole_per_4096_first_fit_takes_the_holes_in_order(bits: int) -> None:
    bitmap = full_map(bits)
    holes = list(range(2048, bits, 4096))
    for _ in range(2):  # the second round starts from hints the first one left
        for ordinal in reversed(holes):
            bitmap.unset(ordinal)
        assert [bitmap.set_any() for _ in holes] == holes
        bitmap._check()
        with pytest.raises(NoSpaceError):
            bitmap.set_any()
        with pytest.raises(NoSpaceError):
            bitmap.set_any(serial=True)


def test_one_hole_per_4096_serial_climbs_from_the_cursor_and_wraps() -> None:
    bits = 2**16
    bitmap = full_map(bits)
    holes = list(range(2048, bits, 4096))
    for ordinal in holes:
        bitmap.unset(ordinal)
    # The first call starts at the first-fit hint (cursor 0 is not past it).
    assert bitmap.set_any(serial=True) == holes[0]
    assert bitmap.set_any(serial=True) == holes[1]
    bitmap.unset(holes[0])  # below the cursor: serial goes on, then wraps to it
    assert [bitmap.set_any(serial=True) for _ in holes[2:]] == holes[2:]
    assert bitmap.set_any(serial=True) == holes[0]
    bitmap._check()


@pytest.mark.parametrize("bits", [2**64, 2**20 + 7])
def test_slow_paths_on_sparse_levels_match_a_set_model(bits: int) -> None:
    """Dict levels, words filled and emptied at random spots near the low end:
    set_any (both modes) agrees with a linear-scan model at every step."""
    rng = random.Random(bits)
    bitmap = Bitmap(bits)
    taken: set[int] = set()
    cursor = 0
    span = 64 * 200
    for _ in range(3000):
        action = rng.random()
        if action < 0.25:
            start = rng.randrange(0, span, 64)  # a whole leaf word: the hint's word is full afterwards
            for ordinal in range(start, start + 64):
                if ordinal not in taken:
                    bitmap.set(ordinal)
                    taken.add(ordinal)
        elif action < 0.5 and taken:
            ordinal = rng.choice(sorted(taken))
            bitmap.unset(ordinal)
            taken.discard(ordinal)
        else:
            serial = action > 0.8
            expected = _model_set_any(taken, cursor if serial else 0, bits)
            assert bitmap.set_any(serial) == expected
            taken.add(expected)
            cursor = expected + 1
    bitmap._check()
    assert set(bitmap) == taken


def _model_set_any(taken: set[int], start: int, bits: int) -> int:
    for origin in (start, 0):
        ordinal = origin
        while ordinal < bits and ordinal in taken:
            ordinal += 1
        if ordinal < bits:
            return ordinal
    raise AssertionError("model full")


def test_interface_maker_hands_out_equal_immutable_interfaces_and_stays_bounded() -> None:
    network = ipaddress.ip_network("10.1.0.0/16")
    maker = InterfaceMaker(network)
    base = int(network.network_address)
    first = maker.make(base + 5)
    assert first == ipaddress.ip_interface("10.1.0.5/16") and first.network is network
    assert maker.make(base + 5) is first  # served from the recent ones
    for offset in range(6, 6 + 2 * RECENT_INTERFACES):
        assert maker.make(base + offset) == ipaddress.ip_interface(f"{network[offset]}/16")
    again = maker.make(base + 5)
    assert again == first and again is not first  # evicted long ago, built anew
    assert len(maker.recent) <= RECENT_INTERFACES
