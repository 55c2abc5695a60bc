"""A bitmap allocator whose cost does not depend on fragmentation.

libnetwork keeps allocations as a run-length list, so every operation walks
the runs: cheap on a fresh pool, milliseconds on a fragmented /8. Here the
ordinals live in 64-bit leaf words under summary levels (``ipam._tree``):
finding a free ordinal reads at most ``2 * ceil(log64(bits))`` words (4
levels for 2^24, 11 for 2^64, 22 for 2^128), whatever the fragmentation.

Two hints keep the common cases O(1): ``_low`` (no free ordinal lies below it,
so first-fit starts there) and ``_cursor`` (one past the last ordinal handed
out by ``set_any``, where serial allocation resumes, as libnetwork's ``curr``).

Sequential allocation (a fill, or containers started one after another) is
served from a *run*: once two takes follow each other, the clear ordinals
after them in the same leaf word are handed out by bumping one attribute,
and written into the word, the count and the hints in one go when anything
else looks (``_flush``). Serial and first-fit agree on a run (both hints point
at it), so the allocation order is exactly libnetwork's.

The structure is not thread-safe; callers (the IPAM driver) hold a lock.
"""

from __future__ import annotations

from collections.abc import Iterator

from ipam._bitmap_codec import decode, encode
from ipam._tree import SummaryTree
from ipam._words import BELOW, BIT, FULL, LOW_BITS, SHIFT, SparseWords, nonzero_items
from netsim.errors import ConflictError, InvalidParameterError, NoSpaceError

MAX_BITS = 1 << 128


class Bitmap(SummaryTree):
    """Ordinals ``[0, bits)``, each set (allocated) or clear, ``1 <= bits <= 2**128``.

    Every operation is O(log64 bits) worst case, whatever the fragmentation.

    >>> b = Bitmap(10)
    >>> b.set(0); b.set_any(), b.set_any(serial=True)
    (1, 2)
    >>> b.unset(1); b.set_any(), b.set_any(serial=True), sorted(b)
    (1, 3, [0, 1, 2, 3])
    >>> b.count_set(), b.count_unset(), Bitmap.from_bytes(b.to_bytes()) == b
    (4, 6, True)
    """

    __slots__ = ("_cursor", "_low", "_run_next", "_run_start", "_run_stop")

    def __init__(self, bits: int) -> None:
        """O(levels) time and memory (dict levels start empty).

        >>> Bitmap(2**128).count_unset() == 2**128
        True
        """
        if type(bits) is not int or not 1 <= bits <= MAX_BITS:
            raise InvalidParameterError(f"bitmap size must be an integer in [1, 2**128], got {bits!r}")
        super().__init__(bits)
        self._cursor = 0
        self._low = 0
        # The run, for sequential allocation: ``[_run_start, _run_stop)`` are clear
        # ordinals of one leaf word, everything below them is set, and both hints
        # point at ``_run_start``, so both kinds of ``set_any`` hand them out in
        # order. ``[_run_start, _run_next)`` are taken already but *pending*: not
        # yet in the leaf word, the count or the hints, so each take is one
        # attribute update. ``_flush`` writes them; every other operation reads
        # state only after a flush (or checks the pending range itself).
        # ``_run_stop = 0`` disarms the run (only with nothing pending).
        self._run_start = 0
        self._run_next = 0
        self._run_stop = 0

    # -- queries ---------------------------------------------------------

    @property
    def bits(self) -> int:
        """Number of ordinals. O(1).

        >>> Bitmap(2**64).bits == 2**64
        True
        """
        return self._bits

    def count_set(self) -> int:
        """How many ordinals are set. O(1).

        >>> Bitmap(8).count_set()
        0
        """
        return self._count + self._run_next - self._run_start

    def count_unset(self) -> int:
        """How many ordinals are free. O(1).

        >>> Bitmap(8).count_unset()
        8
        """
        return self._bits - self.count_set()

    def _check_ordinal(self, ordinal: int) -> None:
        if type(ordinal) is not int or not 0 <= ordinal < self._bits:
            raise InvalidParameterError(f"ordinal {ordinal!r} out of range [0, {self._bits})")

    def is_set(self, ordinal: int) -> bool:
        """Whether ``ordinal`` is set. O(1).

        >>> b = Bitmap(4); b.set(2); b.is_set(2), b.is_set(3)
        (True, False)
        """
        if type(ordinal) is not int or not 0 <= ordinal < self._bits:
            self._check_ordinal(ordinal)
        if self._run_start != self._run_next:
            self._flush()
        return bool(self._leaf[ordinal >> SHIFT] >> (ordinal & LOW_BITS) & 1)

    __contains__ = is_set

    def __iter__(self) -> Iterator[int]:
        """Set ordinals in increasing order. O(bits/64) for an array leaf level,
        O(w log w) for a dict one holding ``w`` words, plus O(1) per ordinal.

        >>> b = Bitmap(200); b.set(199); b.set(3); list(b)
        [3, 199]
        """
        if self._run_start != self._run_next:
            self._flush()
        bits = self._bits
        for index, word in nonzero_items(self._levels[0]):
            base = index << SHIFT
            while word:
                low = word & -word
                ordinal = base + low.bit_length() - 1
                if ordinal >= bits:
                    return
                yield ordinal
                word ^= low

    def __eq__(self, other: object) -> bool:
        """Same size, same set ordinals, same serial cursor. O(allocated words)."""
        if not isinstance(other, Bitmap):
            return NotImplemented
        return self.to_bytes() == other.to_bytes()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        if self._run_start != self._run_next:
            self._flush()
        return f"Bitmap(bits={self._bits}, set={self._count}, cursor={self._cursor})"

    # -- updates ---------------------------------------------------------

    def set(self, ordinal: int) -> None:
        """Set ``ordinal``; ConflictError if it is set already. O(1), O(levels) when a word fills.

        >>> b = Bitmap(4); b.set(1); b.is_set(1)
        True
        """
        if type(ordinal) is not int or not 0 <= ordinal < self._bits:
            self._check_ordinal(ordinal)
        leaf = self._leaf
        index = ordinal >> SHIFT
        old = leaf[index]
        word = old | BIT[ordinal & LOW_BITS]
        if word == old:
            raise ConflictError(f"ordinal {ordinal} is already set")
        if self._run_start <= ordinal < self._run_stop:
            # Inside the run (taken but pending, or next to be taken): write what
            # is pending, disarm, and set as usual.
            self._flush()
            self._run_stop = 0
            self.set(ordinal)
            return
        leaf[index] = word
        if word == FULL or (not old and type(leaf) is SparseWords and len(leaf) > leaf.promote_at):
            self._grew(index, word)
        self._count += 1
        if ordinal == self._low:
            self._low = ordinal + 1

    def unset(self, ordinal: int) -> None:
        """Clear ``ordinal``; clearing a clear ordinal is a no-op. O(1), O(levels) when a full word opens.

        >>> b = Bitmap(4); b.set(1); b.unset(1); b.unset(1); b.is_set(1)
        False
        """
        if type(ordinal) is not int or not 0 <= ordinal < self._bits:
            self._check_ordinal(ordinal)
        leaf = self._leaf
        index = ordinal >> SHIFT
        old = leaf[index]
        word = old ^ BIT[ordinal & LOW_BITS]
        if word > old:  # the bit was clear: nothing to do, unless the run took it
            if self._run_start <= ordinal < self._run_next:
                # A pending take of the run: write it, then clear it.
                self._flush()
                self.unset(ordinal)
            return
        if old == FULL:
            self._opened(index)
        if word or type(leaf) is not SparseWords:
            leaf[index] = word
        else:
            del leaf[index]
        self._count -= 1
        if ordinal < self._low:
            # First-fit now starts below the run: disarm it (pending takes written first).
            if self._run_start != self._run_next:
                self._flush()
            self._low = ordinal
            self._run_stop = 0

    def _flush(self) -> None:
        """Write the run's pending takes into their leaf word, the count and the
        hints. The run stays armed. O(1), O(levels) when the word fills."""
        start = self._run_start
        taken = self._run_next - start
        leaf = self._leaf
        index = start >> SHIFT
        word = leaf[index] | (((1 << taken) - 1) << (start & LOW_BITS))
        leaf[index] = word
        if word == FULL:
            self._grew(index, word)
        self._count += taken
        self._run_start = self._low = self._cursor = self._run_next

    def set_any(self, serial: bool = False) -> int:
        """Set and return a free ordinal: the lowest, or with ``serial`` the first
        after the last one handed out, wrapping. NoSpaceError when full.
        O(1) amortized in sequential use, O(levels) worst case.

        >>> b = Bitmap(3); [b.set_any() for _ in range(3)]
        [0, 1, 2]
        """
        found = self._run_next
        if found < self._run_stop:
            # The run (see __init__): both kinds take ``found``; written by _flush.
            self._run_next = found + 1
            return found
        if found != self._run_start:
            self._flush()
        # Next fastest: the free ordinal is in the leaf word where the search
        # starts (the usual case: hints point at the next free ordinal).
        low = self._low
        cursor = self._cursor
        origin = cursor if serial and cursor > low else low
        if origin < self._bits:
            leaf = self._leaf
            index = origin >> SHIFT
            old = leaf[index]
            word = old | BELOW[origin & LOW_BITS]
            if word != FULL:
                bit = (word + 1) & ~word
                position = bit.bit_length() - 1
                found = (index << SHIFT) | position
                word = old | bit
                leaf[index] = word
                if word == FULL or (not old and type(leaf) is SparseWords and len(leaf) > leaf.promote_at):
                    self._grew(index, word)
                self._count += 1
                self._cursor = found + 1
                if origin == low:
                    self._low = found + 1
                    if found == cursor:
                        # Right after the previous take: sequential use. Arm the run
                        # over the clear ordinals that follow in this word (maybe none).
                        above = word >> (position + 1)
                        self._run_stop = found + (above & -above).bit_length() if above else (index + 1) << SHIFT
                        self._run_start = self._run_next = found + 1
                return found
            if origin == low:
                found = self._descend_and_take()
                if found >= 0:
                    return found
            else:
                found = self._find_free(origin)
                if found >= 0:
                    return self._take(found, False)
        if origin != low and low < self._bits:
            # Serial search found nothing after the cursor: wrap around.
            found = self._find_free(low)
            if found >= 0:
                return self._take(found, True)
        raise NoSpaceError(f"no free ordinal in [0, {self._bits})")

    def _descend_and_take(self) -> int:
        """First-fit ``set_any``'s slow path (the hint's word is full): nothing
        below the hint is free, so the lowest free ordinal of the whole map is
        the answer, found by descending from the top along lowest clear
        summary bits (no climb), then taken. -1 (nothing changed) when the map
        is full. O(levels), one call where a search, a take and a summary
        update were three."""
        word = self._levels[-1][0]
        if word == FULL:
            return -1
        index = 0
        for level in self._downward:
            index = (index << SHIFT) | ((word ^ (word + 1)).bit_length() - 1)
            word = level[index]
        leaf = self._leaf
        bit = (word + 1) & ~word
        found = (index << SHIFT) | (bit.bit_length() - 1)
        old = word
        word |= bit
        self._count += 1
        self._cursor = self._low = found + 1
        if word != FULL:
            leaf[index] = word
        else:
            # _mark_full inlined (this path fills a word more often than not).
            leaf[index] = FULL
            child = index
            for level in self._summaries:
                parent = child >> SHIFT
                above = level[parent]
                word = above | BIT[child & LOW_BITS]
                level[parent] = word if word != FULL else FULL
                if not above and type(level) is SparseWords and len(level) > level.promote_at:
                    self._promote(level)
                if word != FULL:
                    break
                child = parent
        if not old and type(leaf) is SparseWords and len(leaf) > leaf.promote_at:
            self._promote(leaf)
        return found

    def _take(self, found: int, lowest: bool) -> int:
        """Set free ordinal ``found`` as handed out by a search; ``lowest``: the
        search began at the first-fit hint, so nothing below ``found`` is free."""
        if lowest:
            self._low = found + 1
        leaf = self._leaf
        index = found >> SHIFT
        old = leaf[index]
        word = old | (1 << (found & LOW_BITS))
        leaf[index] = word
        if word == FULL or (not old and type(leaf) is SparseWords and len(leaf) > leaf.promote_at):
            self._grew(index, word)
        self._count += 1
        self._cursor = found + 1
        return found

    def set_any_in_range(self, start: int, end: int, serial: bool = False) -> int:
        """As ``set_any`` within ``[start, end]`` (end inclusive, as libnetwork). O(levels).

        >>> b = Bitmap(100); b.set_any_in_range(10, 20), b.set_any_in_range(10, 20, serial=True)
        (10, 11)
        """
        if self._run_start != self._run_next:
            self._flush()
        bits = self._bits
        if type(start) is not int or type(end) is not int or not 0 <= start <= end < bits:
            raise InvalidParameterError(f"range [{start!r}, {end!r}] is not within [0, {bits})")
        # The take below moves the hints: disarm the run (set_any's own searches
        # run with none armed).
        self._run_stop = 0
        low = self._low
        cursor = self._cursor
        resume = serial and cursor > start
        origin = cursor if resume else start
        if origin < low:
            origin = low
        found = -1
        if origin <= end:
            # Inline first step of _find_free: usually the answer is in this word.
            index = origin >> SHIFT
            word = self._leaf[index] | BELOW[origin & LOW_BITS]
            found = (
                self._find_free(origin) if word == FULL else (index << SHIFT) | ((word ^ (word + 1)).bit_length() - 1)
            )
            if found > end:
                found = -1
        if found < 0 and resume:
            # Serial search found nothing up to ``end``: wrap around to ``start``.
            origin = max(start, low)
            if origin <= end:
                found = self._find_free(origin)
                if found > end:
                    found = -1
        if found < 0:
            raise NoSpaceError(f"no free ordinal in [{start}, {end}]")
        return self._take(found, origin == low)

    # -- serialization ---------------------------------------------------

    def to_bytes(self) -> bytes:
        """Compact canonical encoding: sizes, hints, then runs of non-zero leaf
        words. O(allocated words) for a dict leaf level, O(bits/64) for an array.

        >>> b = Bitmap(2**64); b.set(2**64 - 1); len(b.to_bytes()) < 64
        True
        """
        if self._run_start != self._run_next:
            self._flush()
        return encode(self._bits, self._cursor, self._low, nonzero_items(self._levels[0]))

    @classmethod
    def from_bytes(cls, data: bytes) -> Bitmap:
        """Rebuild exactly what ``to_bytes`` wrote; InvalidParameterError on
        malformed input. O(allocated words * levels).

        >>> b = Bitmap(300); b.set(7); Bitmap.from_bytes(b.to_bytes()).is_set(7)
        True
        """
        decoded = decode(data)
        bitmap = cls(decoded.bits)
        if decoded.cursor > decoded.bits or decoded.low > decoded.bits:
            raise InvalidParameterError("bitmap encoding: cursor out of range")
        leaf_words = bitmap._sizes[0]
        for first, words in decoded.runs:
            if first + len(words) > leaf_words:
                raise InvalidParameterError("bitmap encoding: word run past the end")
            for offset, word in enumerate(words):
                bitmap._load_word(first + offset, word)
        bitmap._cursor = decoded.cursor
        if bitmap._find_free_from_zero_or_end() < decoded.low:
            raise InvalidParameterError("bitmap encoding: first-fit hint skips a free ordinal")
        bitmap._low = decoded.low
        return bitmap

    # -- invariants ------------------------------------------------------

    def _check(self) -> None:
        """Verify every internal invariant; AssertionError names the first broken one.
        O(bits/64) with array levels, O(allocated words log) with dict levels."""

        def fail(message: str) -> None:
            raise AssertionError(f"Bitmap invariant: {message}")

        self._check_levels()
        if not 0 <= self._cursor <= self._bits or not 0 <= self._low <= self._bits:
            fail("cursor or first-fit hint out of range")
        if self._find_free_from_zero_or_end() < self._low:
            fail("a free ordinal lies below the first-fit hint")
        start, taken, stop = self._run_start, self._run_next, self._run_stop
        if not start <= taken:
            fail("the run's pending takes end before they start")
        if start < stop:
            if not self._low == self._cursor == start or taken > stop or (stop - 1) >> SHIFT != start >> SHIFT:
                fail("the run does not start at both hints or crosses a leaf word")
            if self._leaf[start >> SHIFT] & (((1 << (stop - start)) - 1) << (start & LOW_BITS)):
                fail("the run holds an ordinal set in its leaf word")
        elif start != taken:
            fail("takes pending while the run is disarmed")
