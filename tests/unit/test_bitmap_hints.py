"""The bitmap's persisted bytes, hints included, against a model that applies
libnetwork's allocation rules eagerly: a set of ordinals, the serial cursor and
the first-fit hint, each updated on every operation exactly as the bitmap
defines them, with no run, queue or pending take. Whatever the bitmap caches,
its answers, its error kinds and ``to_bytes`` (which records both hints) must
equal the model's after any sequence; reads happen only at drawn steps, so
pending takes live across the operations in between."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ipam._bitmap_codec import encode
from ipam._words import level_sizes, padding_masks
from ipam.bitmap import Bitmap
from netsim.errors import ConflictError, InvalidParameterError, NoSpaceError


class EagerModel:
    """The bitmap's contract, spelt out: ``low`` (no free ordinal below it) and
    ``cursor`` (one past the last ``set_any``/``set_any_in_range`` take)."""

    def __init__(self, bits: int) -> None:
        self.bits = bits
        self.taken: set[int] = set()
        self.cursor = 0
        self.low = 0

    def first_free(self, start: int, end: int) -> int:
        ordinal = start
        while ordinal <= end and ordinal in self.taken:
            ordinal += 1
        return ordinal if ordinal <= end else -1

    def take(self, found: int, from_low: bool) -> int:
        self.taken.add(found)
        self.cursor = found + 1
        if from_low:
            self.low = found + 1
        return found

    def set(self, ordinal: int) -> None:
        if ordinal in self.taken:
            raise ConflictError(str(ordinal))
        self.taken.add(ordinal)
        if ordinal == self.low:
            self.low = ordinal + 1

    def unset(self, ordinal: int) -> None:
        if ordinal in self.taken:
            self.taken.discard(ordinal)
            if ordinal < self.low:
                self.low = ordinal

    def set_any(self, serial: bool) -> int:
        low, cursor, last = self.low, self.cursor, self.bits - 1
        origin = cursor if serial and cursor > low else low
        found = self.first_free(origin, last) if origin <= last else -1
        if found >= 0:
            return self.take(found, origin == low)
        if origin != low and low <= last:
            found = self.first_free(low, last)  # serial wraps around
            if found >= 0:
                return self.take(found, True)
        raise NoSpaceError("full")

    def set_any_in_range(self, start: int, end: int, serial: bool) -> int:
        resume = serial and self.cursor > start
        origin = max(self.cursor if resume else start, self.low)
        found = self.first_free(origin, end) if origin <= end else -1
        if found < 0 and resume:
            origin = max(start, self.low)
            found = self.first_free(origin, end) if origin <= end else -1
        if found < 0:
            raise NoSpaceError("full")
        return self.take(found, origin == self.low)

    def to_bytes(self) -> bytes:
        words = dict(padding_masks(self.bits, level_sizes(self.bits))[0])
        for ordinal in self.taken:
            words[ordinal >> 6] = words.get(ordinal >> 6, 0) | 1 << (ordinal & 63)
        return encode(self.bits, self.cursor, self.low, sorted(words.items()))


def outcome(call: object, *args: object) -> tuple[str, object]:
    try:
        return "ok", call(*args)  # type: ignore[operator]
    except (ConflictError, NoSpaceError, InvalidParameterError) as exc:
        return type(exc).__name__, None


# (operation, draw) pairs; the draws are turned into ordinals near the hints.
OPS = st.lists(
    st.tuples(
        st.sampled_from(["take", "take", "take", "serial", "set", "unset", "range", "read"]),
        st.integers(0, 2**16),
        st.booleans(),
    ),
    max_size=120,
)


def play(bits: int, scattered: list[int], ops: list[tuple[str, int, bool]]) -> None:
    bitmap, model = Bitmap(bits), EagerModel(bits)
    for ordinal in scattered:
        if ordinal < bits and ordinal not in model.taken:
            bitmap.set(ordinal)
            model.set(ordinal)
    for step, (op, draw, flag) in enumerate(ops):
        near = max(0, min(bits - 1, model.cursor - 70 + draw % 140))
        if op in ("take", "serial"):
            for _ in range(1 + draw % 70 if flag else 1):
                assert outcome(bitmap.set_any, op == "serial") == outcome(model.set_any, op == "serial"), step
        elif op == "set":
            assert outcome(bitmap.set, near) == outcome(model.set, near), step
        elif op == "unset":
            assert outcome(bitmap.unset, near) == outcome(model.unset, near), step
        elif op == "range":
            end = min(bits - 1, near + draw % 200)
            assert outcome(bitmap.set_any_in_range, near, end, flag) == outcome(
                model.set_any_in_range, near, end, flag
            ), step
        elif flag:
            assert bitmap.to_bytes() == model.to_bytes(), step
        else:
            assert bitmap.is_set(near) == (near in model.taken), step
            assert bitmap.count_set() == len(model.taken), step
        bitmap._check()
    assert bitmap.to_bytes() == model.to_bytes()
    assert Bitmap.from_bytes(bitmap.to_bytes()) == bitmap


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    bits=st.sampled_from([1, 3, 64, 65, 130, 700, 4097, 2**20, 2**64]),
    scattered=st.lists(st.integers(0, 64 * 6), max_size=200),
    ops=OPS,
)
def test_answers_and_bytes_equal_the_eager_model(
    bits: int, scattered: list[int], ops: list[tuple[str, int, bool]]
) -> None:
    play(bits, scattered, ops)


@pytest.mark.parametrize("seed", range(12))
def test_long_random_sequences_equal_the_eager_model(seed: int) -> None:
    """Longer than hypothesis draws: many runs start and end in one sequence."""
    rng = random.Random(seed)
    bits = rng.choice([200, 5000, 2**18, 2**64])
    scattered = rng.sample(range(64 * 40), rng.randrange(0, 1500))
    ops = [
        (
            rng.choice(["take", "take", "take", "serial", "set", "unset", "unset", "range", "read"]),
            rng.randrange(2**16),
            rng.random() < 0.5,
        )
        for _ in range(600)
    ]
    play(bits, scattered, ops)


def test_the_hint_after_a_set_right_past_a_used_up_run_is_past_it() -> None:
    """A run used up at its word's last bit leaves both hints at the next word;
    setting that ordinal before anything reads must move the first-fit hint
    past it, as it would with the takes written (the bytes record the hint)."""
    bitmap, model = Bitmap(256), EagerModel(256)
    for _ in range(64):
        assert bitmap.set_any() == model.set_any(False)
    bitmap.set(64)
    model.set(64)
    assert bitmap.to_bytes() == model.to_bytes()
