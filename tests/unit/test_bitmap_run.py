"""The bitmap's run (``Bitmap._run_*``, the queues): takes handed out from the
run (a stretch counter, or a queue of a fragmented word's clear positions) stay
pending (not yet written to the leaf word) until something else looks, so
every operation must see them as set. Checked against a set model with nothing
that flushes between steps unless the step itself reads."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from ipam.bitmap import Bitmap
from netsim.errors import ConflictError, NoSpaceError

SIZES = [1, 2, 63, 64, 65, 130, 1000, 64**2 + 7, 2**20, 2**64]


class RunMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.bitmap = Bitmap(1)
        self.model: set[int] = set()
        self.cursor = 0
        self.bits = 1

    @initialize(
        bits=st.sampled_from(SIZES),
        prefill=st.integers(0, 70),
        scattered=st.lists(st.integers(0, 64 * 4 - 1), max_size=120),
    )
    def start(self, bits: int, prefill: int, scattered: list[int]) -> None:
        """A contiguous prefix (stretch runs) and scattered ordinals above it
        (words with gaps: queue runs)."""
        self.bitmap = Bitmap(bits)
        self.bits = bits
        for ordinal in [*range(prefill), *(prefill + offset for offset in scattered)]:
            if ordinal < bits and ordinal not in self.model:
                self.bitmap.set(ordinal)
                self.model.add(ordinal)

    def near_the_run(self) -> st.SearchStrategy[int]:
        """Ordinals of the run's word and around the hints, where the pending takes are."""
        top = self.bits - 1
        cursor = self.bitmap._hints()[0]
        base = self.bitmap._run_base if self.bitmap._run_base >= 0 else cursor & ~63
        return st.one_of(
            st.integers(min(base, top), min(base + 64, top)),  # the run's word and the next ordinal
            st.integers(min(max(0, cursor - 3), top), min(cursor + 3, top)),  # pending, next take
            st.integers(max(0, cursor - 66), min(top, cursor + 66)),
        )

    def expected(self, serial: bool) -> int:
        if serial and self.cursor < self.bits:
            for ordinal in range(self.cursor, min(self.bits, self.cursor + 5000)):
                if ordinal not in self.model:
                    return ordinal
        ordinal = 0
        while ordinal < self.bits and ordinal in self.model:
            ordinal += 1
        return ordinal if ordinal < self.bits else -1

    @rule(serial=st.booleans(), takes=st.integers(1, 80))
    def set_any_burst(self, serial: bool, takes: int) -> None:
        self.take(serial, takes)

    def take(self, serial: bool, takes: int) -> None:
        for _ in range(takes):
            expected = self.expected(serial)
            if expected < 0:
                with pytest.raises(NoSpaceError):
                    self.bitmap.set_any(serial)
                return
            assert self.bitmap.set_any(serial) == expected
            self.model.add(expected)
            self.cursor = expected + 1

    def warm_up(self, data: st.DataObject) -> None:
        """A few takes first, so the next step usually meets an armed run with takes pending."""
        self.take(data.draw(st.booleans()), data.draw(st.integers(0, 12)))

    @rule(data=st.data())
    def set_near(self, data: st.DataObject) -> None:
        self.warm_up(data)
        ordinal = data.draw(self.near_the_run())
        if ordinal in self.model:
            with pytest.raises(ConflictError):
                self.bitmap.set(ordinal)
        else:
            self.bitmap.set(ordinal)
            self.model.add(ordinal)

    @rule(data=st.data())
    def unset_near(self, data: st.DataObject) -> None:
        self.warm_up(data)
        ordinal = data.draw(self.near_the_run())
        self.bitmap.unset(ordinal)
        self.model.discard(ordinal)

    @rule(data=st.data())
    def is_set_near(self, data: st.DataObject) -> None:
        self.warm_up(data)
        ordinal = data.draw(self.near_the_run())
        assert self.bitmap.is_set(ordinal) == (ordinal in self.model)

    @rule(serial=st.booleans(), data=st.data())
    def set_any_in_range_near(self, serial: bool, data: st.DataObject) -> None:
        self.warm_up(data)
        start = data.draw(self.near_the_run())
        end = min(self.bits - 1, start + data.draw(st.integers(0, 100)))
        candidates = [o for o in range(start, end + 1) if o not in self.model]
        resumed = [o for o in candidates if o >= self.cursor] if serial and self.cursor > start else []
        if not candidates:
            with pytest.raises(NoSpaceError):
                self.bitmap.set_any_in_range(start, end, serial)
            return
        expected = (resumed or candidates)[0]
        assert self.bitmap.set_any_in_range(start, end, serial) == expected
        self.model.add(expected)
        self.cursor = expected + 1

    @rule()
    def round_trip(self) -> None:
        copy = Bitmap.from_bytes(self.bitmap.to_bytes())
        assert copy == self.bitmap
        self.bitmap = copy

    @invariant()
    def consistent_without_flushing(self) -> None:
        # _check and count_set read the pending takes without writing them.
        self.bitmap._check()
        assert self.bitmap.count_set() == len(self.model)


TestRunMachine = RunMachine.TestCase
TestRunMachine.settings = settings(
    max_examples=80, stateful_step_count=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def test_a_fill_hands_out_runs_and_writes_them_when_read() -> None:
    bitmap = Bitmap(200)
    assert [bitmap.set_any() for _ in range(70)] == list(range(70))
    assert bitmap._pending()  # takes pending: the run is in use
    bitmap._check()
    assert bitmap.count_set() == 70 and bitmap.is_set(69) and not bitmap.is_set(70)
    assert not bitmap._pending()  # the read wrote them
    assert list(bitmap) == list(range(70))


def test_pending_takes_conflict_and_release_like_written_ones() -> None:
    bitmap = Bitmap(1 << 16)
    taken = [bitmap.set_any() for _ in range(10)]
    assert bitmap._pending()
    bitmap.unset(taken[7])
    assert bitmap.count_set() == 9
    assert bitmap.set_any() == taken[7]
    assert bitmap.set_any(serial=True) == 10
    assert [bitmap.set_any() for _ in range(3)] == [11, 12, 13]
    with pytest.raises(ConflictError):
        bitmap.set(taken[5])
    with pytest.raises(ConflictError):
        bitmap.set(12)
    bitmap.set(14)  # next in the run: the run ends, first-fit moves past it
    assert bitmap.set_any() == 15
    bitmap._check()


def test_a_run_that_fills_its_word_marks_the_summaries() -> None:
    bitmap = Bitmap(64 * 64 * 2)
    for ordinal in range(40, 64):
        bitmap.set(ordinal)
    assert [bitmap.set_any() for _ in range(40)] == list(range(40))
    bitmap._check()  # pending takes would fill word 0
    assert bitmap.count_set() == 64
    assert bitmap.set_any() == 64
    bitmap._check()
    assert bitmap._levels[1][0] & 1  # word 0 is marked full


@pytest.mark.parametrize("serial", [False, True])
def test_a_range_allocation_inside_the_run_ends_it(serial: bool) -> None:
    bitmap = Bitmap(1 << 16)
    assert [bitmap.set_any() for _ in range(10)] == list(range(10))
    assert bitmap.set_any_in_range(5, 20, serial) == 10
    assert [bitmap.set_any(serial) for _ in range(3)] == [11, 12, 13]
    bitmap._check()


def test_a_fill_runs_on_a_counter_and_a_word_with_gaps_on_a_queue() -> None:
    bitmap = Bitmap(1 << 16)
    assert bitmap.set_any() == 0
    assert bitmap._run_stop == 64 and not bitmap._queue  # one stretch: a counter
    gappy = Bitmap(1 << 16)
    for ordinal in (3, 5, 6, 40):
        gappy.set(ordinal)
    assert [gappy.set_any() for _ in range(6)] == [0, 1, 2, 4, 7, 8]
    assert gappy._queue and not gappy._run_stop  # clear bits with gaps between: a queue
    gappy._check()


def test_a_take_right_after_a_release_below_starts_no_run() -> None:
    """Take-release-take of one ordinal (a container restarted): the hints
    disagree at each take, and a run would be ended by the next release anyway."""
    bitmap = Bitmap(1 << 16)
    for ordinal in range(0, 64, 2):
        bitmap.set(ordinal)
    for _ in range(3):
        found = bitmap.set_any()
        assert bitmap._run_base < 0
        bitmap.unset(found)
    assert found == 1


def test_a_take_by_descent_starts_a_run_only_where_the_hints_agreed() -> None:
    """First-fit's descent from the top (the hint's word is full) starts a run
    like the hint's word does: only after a take from both hints."""
    bitmap = Bitmap(1 << 16)
    for ordinal in [*range(1, 64), 65, 67]:
        if ordinal != 10:
            bitmap.set(ordinal)
    bitmap.set(0)  # the hint moves to 1 (a full word but for 10), the cursor stays at 0
    assert bitmap.set_any() == 10  # from the hint's word; the hints now agree at 11
    assert bitmap._run_base < 0
    assert bitmap.set_any() == 64  # word 0 is full: the descent, hints agreeing
    assert bitmap._queue  # 66, 68, 69, ...: a run with gaps
    assert [bitmap.set_any() for _ in range(3)] == [66, 68, 69]
    bitmap._check()

    disagreeing = Bitmap(1 << 16)
    for ordinal in [*range(1, 64), 65, 67]:
        disagreeing.set(ordinal)
    disagreeing.set(0)  # the hint at 1 in a full word, the cursor at 0
    assert disagreeing.set_any() == 64  # the descent, hints disagreeing: no run
    assert disagreeing._run_base < 0
    assert disagreeing.set_any() == 66


def test_serial_takes_past_the_hint_run_and_writes_below_keep_the_run() -> None:
    """Serial allocation with the cursor past the first-fit hint (addresses
    released behind it): a serial run serves the cursor's word, first-fit takes
    still start at the hint, and releases and sets below the run's word leave
    the run alone while moving the hint it keeps."""
    bitmap = Bitmap(1 << 16)
    for ordinal in [*range(0, 64), *range(64, 128, 2)]:
        bitmap.set(ordinal)
    assert [bitmap.set_any(serial=True) for _ in range(2)] == [65, 67]
    bitmap.unset(10)  # below: the first-fit hint moves to 10, the cursor stays at 68
    assert bitmap.set_any(serial=True) == 69
    assert bitmap._serial_queue and bitmap._run_low == 10  # a serial run on 71, 73, ...
    bitmap.unset(5)
    bitmap.set(5)  # the kept hint moves back past 5
    assert bitmap._run_base >= 0 and bitmap._run_low == 6
    assert bitmap.set_any(serial=True) == 71
    assert bitmap.set_any() == 10  # first-fit: from the hint, the run ended first
    assert bitmap._run_base < 0
    assert [bitmap.set_any(serial=True) for _ in range(2)] == [73, 75]
    bitmap._check()


def test_a_serial_take_release_take_starts_no_run() -> None:
    bitmap = Bitmap(1 << 16)
    for ordinal in [*range(0, 64), *range(64, 128, 2)]:
        bitmap.set(ordinal)
    bitmap.unset(3)  # the first-fit hint behind the cursor
    assert bitmap.set_any(serial=True) == 3  # the cursor (0) is not past the hint (3)
    bitmap.unset(3)
    for _ in range(3):
        found = bitmap.set_any(serial=True)
        assert bitmap._run_base < 0
        bitmap.unset(found)
    assert found == 69  # 65, 67, 69: serial resumes after each (released) take


def test_a_serial_take_release_take_across_a_word_boundary_starts_no_run() -> None:
    """The previous take is checked in its own word: at a word's first ordinal
    it lies in the word before."""
    bitmap = Bitmap(1 << 16)
    for ordinal in [*range(0, 127), 129, 131, 191]:
        bitmap.set(ordinal)
    bitmap.unset(3)
    bitmap.set_any(serial=True)  # 3, from the hint; the cursor at 4, the hint at 4
    bitmap.unset(3)  # the hint behind the cursor again
    assert bitmap.set_any(serial=True) == 127  # the last ordinal of word 1
    bitmap.unset(127)
    assert bitmap.set_any(serial=True) == 128  # word 2's first: 127 was released
    assert bitmap._run_base < 0


def test_a_used_up_serial_run_gives_first_fit_its_hint_back() -> None:
    bitmap = Bitmap(1 << 16)
    for ordinal in [*range(0, 64), *range(64, 128, 2)]:
        bitmap.set(ordinal)
    bitmap.unset(10)
    bitmap.set(10)  # the hint at 11 in a full word... then released again:
    bitmap.unset(20)  # the hint at 20, the cursor at 0
    bitmap.set(20)
    assert bitmap.set_any(serial=True) == 65  # cursor 0 not past hint 21: first-fit's search
    bitmap.unset(30)  # the hint back at 30, the cursor at 66
    assert [bitmap.set_any(serial=True) for _ in range(31)] == list(range(67, 128, 2))
    assert bitmap._run_base >= 0 and not bitmap._serial_queue  # used up, not yet ended
    assert bitmap.set_any() == 30  # first-fit from the hint the serial run kept
    bitmap._check()
