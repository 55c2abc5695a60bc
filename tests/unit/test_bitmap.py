"""Bitmap: model-based (hypothesis stateful against a set), edges, bad input."""

from __future__ import annotations

import doctest
import random
import tracemalloc
from array import array
from types import ModuleType

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import ipam._bitmap_codec
import ipam._words
import ipam.bitmap
from ipam.bitmap import MAX_BITS, Bitmap
from netsim.errors import ConflictError, InvalidParameterError, NoSpaceError

SIZES = [1, 2, 63, 64, 65, 130, 4096, 4097, 64**3 + 5, 2**64, 2**128]


@pytest.mark.parametrize("module", [ipam.bitmap, ipam._words, ipam._bitmap_codec])
def test_doctests(module: ModuleType) -> None:
    failures, tried = doctest.testmod(module)
    assert tried > 0
    assert failures == 0


class BitmapMachine(RuleBasedStateMachine):
    """Every operation on Bitmap against a set of ordinals plus libnetwork's cursor rule."""

    def __init__(self) -> None:
        super().__init__()
        self.bitmap = Bitmap(1)
        self.model: set[int] = set()
        self.cursor = 0
        self.bits = 1

    @initialize(bits=st.sampled_from(SIZES))
    def start(self, bits: int) -> None:
        self.bitmap = Bitmap(bits)
        self.bits = bits

    def ordinals(self) -> st.SearchStrategy[int]:
        top = self.bits - 1
        return st.one_of(
            st.integers(0, min(top, 300)),
            st.integers(max(0, top - 300), top),
            st.integers(0, top),
        )

    def first_free(self, start: int, end: int) -> int:
        ordinal = start
        while ordinal <= end:
            if ordinal not in self.model:
                return ordinal
            ordinal += 1
        return -1

    def expect_any(self, start: int, end: int, serial: bool) -> int:
        # libnetwork: serial resumes at the cursor if it lies past start, else wraps to start.
        found = -1
        if serial and self.cursor > start and self.cursor <= end:
            found = self.first_free(self.cursor, end)
        return found if found >= 0 else self.first_free(start, end)

    @rule(data=st.data())
    def set_one(self, data: st.DataObject) -> None:
        ordinal = data.draw(self.ordinals())
        if ordinal in self.model:
            before = self.bitmap.to_bytes()
            with pytest.raises(ConflictError):
                self.bitmap.set(ordinal)
            assert self.bitmap.to_bytes() == before
        else:
            self.bitmap.set(ordinal)
            self.model.add(ordinal)

    @rule(data=st.data())
    def unset_one(self, data: st.DataObject) -> None:
        ordinal = data.draw(self.ordinals())
        self.bitmap.unset(ordinal)
        self.model.discard(ordinal)

    @precondition(lambda self: bool(self.model))
    @rule(data=st.data())
    def unset_allocated(self, data: st.DataObject) -> None:
        ordinal = data.draw(st.sampled_from(sorted(self.model)))
        self.bitmap.unset(ordinal)
        self.model.discard(ordinal)

    @rule(serial=st.booleans(), data=st.data())
    def set_any_in_range(self, serial: bool, data: st.DataObject) -> None:
        start = data.draw(self.ordinals())
        end = data.draw(st.integers(start, min(self.bits - 1, start + 400)))
        expected = self.expect_any(start, end, serial)
        if expected < 0:
            before = self.bitmap.to_bytes()
            with pytest.raises(NoSpaceError):
                self.bitmap.set_any_in_range(start, end, serial)
            assert self.bitmap.to_bytes() == before
            return
        assert self.bitmap.set_any_in_range(start, end, serial) == expected
        self.model.add(expected)
        self.cursor = expected + 1

    @rule(serial=st.booleans())
    def set_any(self, serial: bool) -> None:
        # The model's scans stay short: they stop at the first free ordinal.
        expected = self.expect_any(0, self.bits - 1, serial)
        if expected < 0:
            with pytest.raises(NoSpaceError):
                self.bitmap.set_any(serial)
            return
        assert self.bitmap.set_any(serial) == expected
        self.model.add(expected)
        self.cursor = expected + 1

    @precondition(lambda self: self.bits <= 200)
    @rule(serial=st.booleans())
    def fill_up(self, serial: bool) -> None:
        while len(self.model) < self.bits:
            self.set_any(serial)
        self.set_any(serial)

    @rule(data=st.data())
    def bad_input(self, data: st.DataObject) -> None:
        before = self.bitmap.to_bytes()
        bad = data.draw(st.sampled_from([-1, self.bits, self.bits + 5, True, 1.0, "3"]))
        for call in (self.bitmap.set, self.bitmap.unset, self.bitmap.is_set):
            with pytest.raises(InvalidParameterError):
                call(bad)  # type: ignore[arg-type]
        with pytest.raises(InvalidParameterError):
            self.bitmap.set_any_in_range(0, self.bits)
        if self.bits > 1:
            with pytest.raises(InvalidParameterError):
                self.bitmap.set_any_in_range(1, 0)
        assert self.bitmap.to_bytes() == before

    @rule()
    def round_trip(self) -> None:
        copy = Bitmap.from_bytes(self.bitmap.to_bytes())
        copy._check()
        assert copy == self.bitmap
        self.bitmap = copy

    @invariant()
    def agrees_with_model(self) -> None:
        self.bitmap._check()
        assert self.bitmap.count_set() == len(self.model)
        assert self.bitmap.count_unset() == self.bits - len(self.model)
        assert list(self.bitmap) == sorted(self.model)
        for ordinal in list(self.model)[:20]:
            assert self.bitmap.is_set(ordinal)


TestBitmapMachine = BitmapMachine.TestCase
TestBitmapMachine.settings = settings(
    max_examples=60, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@pytest.mark.parametrize("bits", SIZES)
def test_top_ordinal_and_exhaustion(bits: int) -> None:
    bitmap = Bitmap(bits)
    top = bits - 1
    bitmap.set(top)
    assert bitmap.is_set(top)
    assert list(bitmap) == [top]
    if bits > 1:
        assert bitmap.set_any_in_range(max(0, top - 3), top) == max(0, top - 3)
    bitmap._check()
    assert Bitmap.from_bytes(bitmap.to_bytes()) == bitmap


@pytest.mark.parametrize("bits", [1, 64, 65, 4097])
def test_full_bitmap_refuses_and_stays_unchanged(bits: int) -> None:
    bitmap = Bitmap(bits)
    assert [bitmap.set_any() for _ in range(bits)] == list(range(bits))
    before = bitmap.to_bytes()
    with pytest.raises(NoSpaceError):
        bitmap.set_any()
    with pytest.raises(NoSpaceError):
        bitmap.set_any(serial=True)
    assert bitmap.to_bytes() == before
    bitmap._check()
    bitmap.unset(bits // 2)
    assert bitmap.set_any(serial=True) == bits // 2


def test_serial_wraps_after_the_end() -> None:
    bitmap = Bitmap(8)
    assert [bitmap.set_any(serial=True) for _ in range(8)] == list(range(8))
    bitmap.unset(2)
    bitmap.unset(5)
    assert bitmap.set_any(serial=True) == 2
    assert bitmap.set_any(serial=True) == 5


def test_serial_in_range_resumes_after_last_allocation() -> None:
    bitmap = Bitmap(100)
    assert bitmap.set_any_in_range(10, 20, serial=True) == 10
    assert bitmap.set_any_in_range(10, 20, serial=True) == 11
    bitmap.unset(10)
    assert bitmap.set_any_in_range(10, 20, serial=True) == 12
    assert bitmap.set_any_in_range(10, 20) == 10


@pytest.mark.parametrize("bits", [0, -1, MAX_BITS + 1, 2.0, True])
def test_bad_size(bits: object) -> None:
    with pytest.raises(InvalidParameterError, match="bitmap size"):
        Bitmap(bits)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "data",
    [b"", b"\x09", b"\x01\x80", b"\x01\x0a\x00\x00\x01\x00\x01" + b"\x00" * 8, b"\x01\x0a\x00\x00\x00\x00"],
)
def test_from_bytes_rejects_garbage(data: bytes) -> None:
    with pytest.raises(InvalidParameterError, match="bitmap"):
        Bitmap.from_bytes(data)


def test_from_bytes_rejects_a_hint_that_skips_a_free_ordinal() -> None:
    encoded = bytearray(Bitmap(10).to_bytes())
    encoded[3] = 5  # first-fit hint says nothing below 5 is free: false
    with pytest.raises(InvalidParameterError, match="hint"):
        Bitmap.from_bytes(bytes(encoded))


def test_dense_fill_converts_dict_levels_to_arrays_and_back_to_bytes() -> None:
    bits = 2**20
    bitmap = Bitmap(bits)
    assert not isinstance(bitmap._levels[0], array)
    for _ in range(bits // 2):
        bitmap.set_any()
    assert isinstance(bitmap._levels[0], array)
    rng = random.Random(7)
    for ordinal in rng.sample(range(bits // 2), 1000):
        bitmap.unset(ordinal)
    bitmap._check()
    copy = Bitmap.from_bytes(bitmap.to_bytes())
    copy._check()
    assert copy == bitmap
    assert copy.count_set() == bits // 2 - 1000


def test_memory_tracks_allocation_in_huge_maps() -> None:
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        bitmap = Bitmap(2**128)
        empty = tracemalloc.get_traced_memory()[0] - before
        rng = random.Random(3)
        for _ in range(1000):
            bitmap.set(rng.randrange(2**128))
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert empty < 16 * 1024
    assert used < 1000 * 400
    bitmap._check()


def test_fragmented_first_fit_finds_every_hole_in_order() -> None:
    bitmap = Bitmap(5000)
    for _ in range(5000):
        bitmap.set_any()
    holes = sorted(random.Random(5).sample(range(5000), 700))
    for ordinal in reversed(holes):
        bitmap.unset(ordinal)
    assert [bitmap.set_any() for _ in holes] == holes
    bitmap._check()
