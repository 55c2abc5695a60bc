"""The allocator's hints and its run, on top of the summary tree.

``RunTree`` keeps the two hints of ``ipam.bitmap.Bitmap`` and the *run*
(``Bitmap``'s docstring says what it serves): the clear ordinals of one leaf
word, above a take from both hints, that the next takes hand out without
writing, and the upkeep around them (pending takes, writing them, ending the
run, starting one). ``Bitmap`` builds the public operations on it.
"""

from __future__ import annotations

from ipam._tree import SummaryTree
from ipam._words import BELOW, BIT, FULL, free_positions

# A run starts when a take leaves at least this many clear ordinals in its word:
# extracting them costs about as much as two takes from the hint's word.
RUN_MIN_FREE = 3


class RunTree(SummaryTree):
    """The summary tree, the serial cursor, the first-fit hint and the run."""

    __slots__ = (
        "_cursor",
        "_low",
        "_queue",
        "_run_base",
        "_run_free",
        "_run_low",
        "_run_next",
        "_run_stop",
        "_serial_queue",
    )

    def __init__(self, bits: int) -> None:
        super().__init__(bits)
        #: one past the last ordinal handed out by a search (serial resumes there)
        self._cursor = 0
        #: no free ordinal lies below it (first-fit starts there)
        self._low = 0
        # The run (``ipam.bitmap``'s docstring), armed while ``_run_base >= 0``: the first
        # ordinal of its leaf word. ``_run_free``: the word's clear bits the run
        # owns (pending takes, then the ones to hand out), as of the last flush.
        # The ones to hand out are either one stretch, ``[_run_next, _run_stop)``
        # (a counter: the cheapest take; empty, ``_run_next >= _run_stop``, when
        # unused, and maybe left over from an earlier run), or
        # ``_queue``: their positions in the word, highest first, so that
        # ``pop()`` gives the next. While armed, ``_cursor`` is both hints' value
        # as of the last flush and ``_low`` is the end of the run's word: the
        # comparison ``set`` and ``unset`` make with the hint anyway then catches
        # every write that could touch the run (everything below its word is set).
        # A *serial* run (``_run_low >= 0``) serves serial takes only, from a
        # cursor past the first-fit hint: that hint is kept in ``_run_low``, and
        # ordinals below the run's word may be free (writes there keep the run).
        # Its positions are in ``_serial_queue``, which first-fit takes never pop.
        self._queue: list[int] = []
        self._serial_queue: list[int] = []
        self._run_low = -1
        self._run_base = -1
        self._run_free = 0
        self._run_next = 0
        self._run_stop = 0

    def _hints(self) -> tuple[int, int]:
        """``(cursor, low)`` as if every pending take were written. O(1)."""
        if self._run_base < 0:
            return self._cursor, self._low
        pending = self._pending()
        cursor = self._run_base + pending.bit_length() if pending else self._cursor
        return cursor, cursor if self._run_low < 0 else self._run_low

    def _pending(self) -> int:
        """The run's takes not yet written, as bits of its word (the run is armed). O(1)."""
        if self._run_next < self._run_stop:
            return self._run_free & ((1 << (self._run_next - self._run_base)) - 1)
        queue = self._queue or self._serial_queue
        return self._run_free & BELOW[queue[-1]] if queue else self._run_free

    def _flush(self) -> None:
        """Write the run's pending takes into their leaf word, the count and the
        cursor. The run stays armed. O(1), O(levels) when the word fills."""
        pending = self._pending()
        if pending:
            self._run_free ^= pending
            base = self._run_base
            index = base >> 6
            leaf = self._leaf
            word = leaf[index] | pending
            leaf[index] = word
            if word == FULL:
                self._mark_full(index)
            self._count += pending.bit_count()
            self._cursor = base + pending.bit_length()

    def _settle(self) -> None:
        """Flush, then disarm the run: the hints are their own values again. O(1)
        (O(levels) when the run's word fills)."""
        self._flush()
        self._low = self._cursor if self._run_low < 0 else self._run_low
        self._run_low = -1
        self._run_base = -1
        self._run_free = self._run_next = self._run_stop = 0
        self._queue.clear()
        self._serial_queue.clear()

    def _arm_or_move(self, index: int, found: int, free: int) -> None:
        """After a take of ``found`` from both hints (they agreed) that left clear
        bits ``free`` (not 0, all above it) in leaf word ``index``: start a run
        on them if it pays, else move the first-fit hint past ``found``."""
        low_bit = free & -free
        contiguous = not (free + low_bit) & free
        if not contiguous and free.bit_count() < RUN_MIN_FREE:
            self._low = found + 1
            return
        base = index << 6
        self._run_base = base
        self._run_free = free
        self._low = base + 64
        if contiguous:
            self._run_next = base + low_bit.bit_length() - 1
            self._run_stop = base + free.bit_length()
        else:
            self._queue.extend(free_positions(free))

    def _arm_serial(self, index: int, found: int, word: int) -> None:
        """After a serial take of ``found`` at the cursor, past the first-fit hint,
        right after the previous take (still set), that left leaf word ``index``
        as ``word``: start a serial run on the clear bits above ``found`` if it pays."""
        free = (word ^ FULL) & ~((BIT[found & 63] << 1) - 1)
        if free.bit_count() >= RUN_MIN_FREE:
            base = index << 6
            self._run_base = base
            self._run_free = free
            self._run_low = self._low
            self._low = base + 64
            self._serial_queue.extend(free_positions(free))

    def _check(self) -> None:
        """Verify every internal invariant (levels, hints, run); AssertionError
        names the first broken one. O(bits/64) with array levels, O(allocated
        words log) with dict levels."""

        def fail(message: str) -> None:
            raise AssertionError(f"Bitmap invariant: {message}")

        self._check_levels()
        cursor, low = self._hints()
        if not 0 <= cursor <= self._bits or not 0 <= low <= self._bits:
            fail("cursor or first-fit hint out of range")
        if self._find_free_from_zero_or_end() < self._low and self._run_base < 0:
            fail("a free ordinal lies below the first-fit hint")

        base, free = self._run_base, self._run_free
        if self._queue and self._serial_queue:
            fail("the run keeps both a first-fit queue and a serial one")
        queue = self._queue or self._serial_queue
        following, stop = self._run_next, self._run_stop
        if following > stop:
            fail("the run's stretch ends before its next take")
        serial_low = self._run_low
        if base < 0:
            if base != -1 or free or queue or following < stop or serial_low != -1:
                fail("a disarmed run holds clear bits, a stretch, queued positions or a hint")
            return
        if serial_low >= 0 and (following < stop or self._queue or serial_low >= self._cursor):
            fail("a serial run has a stretch or a first-fit queue, or its hint is not below its cursor")
        if serial_low < 0 and self._serial_queue:
            fail("a run of both kinds keeps a serial queue")
        if following < stop and (queue or not base <= following < stop <= base + 64):
            fail("the run's stretch lies outside its word, or a queue is kept beside it")
        if following < stop and free >> (following - base) != (1 << (stop - following)) - 1:
            fail("the run's stretch is not exactly the clear bits it owns from its next take")
        # Armed: the hint is the end of the run's word, the cursor one past a take in it.
        if base & 63 or base >= self._bits or self._low != base + 64 or not base < self._cursor <= base + 64:
            fail("the run's word, the hint at its end or the cursor in it are out of place")
        if self._find_free_from_zero_or_end() < (self._cursor if serial_low < 0 else serial_low):
            fail("a free ordinal lies below the run's cursor (the first-fit hint, for a serial run)")
        above_cursor = FULL ^ ((1 << (self._cursor - base)) - 1)
        if (self._leaf[base >> 6] ^ FULL) & above_cursor != free:
            fail("the run does not own exactly the clear bits above the cursor in its word")
        if queue != sorted(queue, reverse=True) or len(set(queue)) != len(queue):
            fail("the run's queue is not strictly decreasing")
        queued = sum(BIT[position] for position in queue)
        if queue and queued != free & ~BELOW[queue[-1]]:
            fail("the run's queue is not the top clear bits it owns")
