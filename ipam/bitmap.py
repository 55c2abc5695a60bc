"""A bitmap allocator whose cost does not depend on fragmentation.

libnetwork keeps allocations as a run-length list, so every operation walks
the runs: cheap on a fresh pool, milliseconds on a fragmented /8. Here the
ordinals live in 64-bit leaf words under summary levels (``ipam._tree``):
finding a free ordinal reads at most ``2 * ceil(log64(bits))`` words (4
levels for 2^24, 11 for 2^64, 22 for 2^128), whatever the fragmentation.

Two hints keep the common cases O(1): ``_low`` (no free ordinal lies below it,
so first-fit starts there) and ``_cursor`` (one past the last ordinal handed
out by ``set_any``, where serial allocation resumes, as libnetwork's ``curr``).

Allocation from the low end (a fill, containers started one after another, a
fragmented pool filled first-fit) is served from a *run*: when a take from the
hints, where both hints agreed, leaves several clear ordinals in its leaf word,
their positions are extracted in one go (``ipam._words.free_positions``) into
a queue, and the next takes pop it: one list pop each. Those takes stay
*pending* (not in the leaf word, the count or the hints) until ``_flush``
writes them all at once, when something else looks. The queue holds exactly
the clear ordinals of the word above the last take, in order, and nothing
below them is free, so serial and first-fit both hand them out in this order,
as libnetwork would. Any write at or below the run's word ends the run first.

The structure is not thread-safe; callers (the IPAM driver) hold a lock.
"""

from __future__ import annotations

from collections.abc import Iterator

from ipam._bitmap_codec import decode, encode
from ipam._run import RunTree
from ipam._words import BELOW, BIT, FULL, SparseWords, nonzero_items
from netsim.errors import ConflictError, InvalidParameterError, NoSpaceError

MAX_BITS = 1 << 128


class Bitmap(RunTree):
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

    __slots__ = ()

    def __init__(self, bits: int) -> None:
        """O(levels) time and memory (dict levels start empty).

        >>> Bitmap(2**128).count_unset() == 2**128
        True
        """
        if type(bits) is not int or not 1 <= bits <= MAX_BITS:
            raise InvalidParameterError(f"bitmap size must be an integer in [1, 2**128], got {bits!r}")
        super().__init__(bits)

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
        return self._count + self._pending().bit_count() if self._run_base >= 0 else self._count

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
        if self._run_base >= 0:
            self._flush()
        return bool(self._leaf[ordinal >> 6] >> (ordinal & 63) & 1)

    __contains__ = is_set

    def __iter__(self) -> Iterator[int]:
        """Set ordinals in increasing order. O(bits/64) for an array leaf level,
        O(w log w) for a dict one holding ``w`` words, plus O(1) per ordinal.

        >>> b = Bitmap(200); b.set(199); b.set(3); list(b)
        [3, 199]
        """
        if self._run_base >= 0:
            self._flush()
        bits = self._bits
        for index, word in nonzero_items(self._levels[0]):
            base = index << 6
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
        return f"Bitmap(bits={self._bits}, set={self.count_set()}, cursor={self._hints()[0]})"

    # -- updates ---------------------------------------------------------

    def set(self, ordinal: int) -> None:
        """Set ``ordinal``; ConflictError if it is set already. O(1), O(levels) when a word fills.

        >>> b = Bitmap(4); b.set(1); b.is_set(1)
        True
        """
        if type(ordinal) is not int or not 0 <= ordinal < self._bits:
            self._check_ordinal(ordinal)
        leaf = self._leaf
        index = ordinal >> 6
        old = leaf[index]
        word = old | BIT[ordinal & 63]
        if word == old:
            raise ConflictError(f"ordinal {ordinal} is already set")
        if ordinal <= self._low:
            # Without a run, ``ordinal == _low`` (all below is set): the hint moves
            # past it. With one, ``ordinal`` is in or right after the run's word:
            # end the run, then set as usual; or below a serial run's word (only
            # there can a clear ordinal lie below the run): move the hint it keeps.
            if self._run_base < 0:
                self._low = ordinal + 1
            elif ordinal < self._run_base:
                if ordinal == self._run_low:
                    self._run_low = ordinal + 1
            else:
                self._settle()
                self.set(ordinal)
                return
        leaf[index] = word
        if word == FULL or (not old and type(leaf) is SparseWords and len(leaf) > leaf.promote_at):
            self._grew(index, word)
        self._count += 1

    def unset(self, ordinal: int) -> None:
        """Clear ``ordinal``; clearing a clear ordinal is a no-op. O(1), O(levels) when a full word opens.

        >>> b = Bitmap(4); b.set(1); b.unset(1); b.unset(1); b.is_set(1)
        False
        """
        if type(ordinal) is not int or not 0 <= ordinal < self._bits:
            self._check_ordinal(ordinal)
        leaf = self._leaf
        index = ordinal >> 6
        old = leaf[index]
        word = old ^ BIT[ordinal & 63]
        if word > old:  # the bit was clear: nothing to do, unless the run took it
            if ordinal < self._low and self._run_base >= 0:
                self._settle()
                self.unset(ordinal)
            return
        if ordinal < self._low:
            if self._run_base < 0:
                self._low = ordinal
            elif ordinal < self._run_base and self._run_low >= 0:
                # Below a serial run's word: the run goes on, the hint it keeps may move.
                if ordinal < self._run_low:
                    self._run_low = ordinal
            else:
                # In or below the run's word: end the run (first-fit may move below it).
                self._settle()
                self.unset(ordinal)
                return
        if old == FULL:
            self._opened(index)
        if word:
            leaf[index] = word
        elif type(leaf) is SparseWords:
            del leaf[index]
        else:
            leaf[index] = 0
        self._count -= 1

    def set_any(self, serial: bool = False) -> int:
        """Set and return a free ordinal: the lowest, or with ``serial`` the first
        after the last one handed out, wrapping. NoSpaceError when full.
        O(1) amortized in sequential use, O(levels) worst case.

        >>> b = Bitmap(3); [b.set_any() for _ in range(3)]
        [0, 1, 2]
        """
        found = self._run_next
        if found < self._run_stop:
            self._run_next = found + 1
            return found
        base = self._run_base
        if base >= 0:
            queue = self._queue
            if queue:
                return base + queue.pop()
            queue = self._serial_queue
            if queue:
                if serial:
                    return base + queue.pop()
                # A first-fit take during a serial run: end it, then search.
                self._settle()
            else:
                # The run is used up: _settle inlined (every run of a fill ends here).
                pending = self._run_free
                if pending:
                    index = base >> 6
                    leaf = self._leaf
                    word = leaf[index] | pending
                    leaf[index] = word
                    if word == FULL:
                        self._mark_full(index)
                    self._count += pending.bit_count()
                    self._cursor = base + pending.bit_length()
                if self._run_low < 0:
                    self._low = self._cursor
                else:
                    self._low = self._run_low
                    self._run_low = -1
                self._run_base = -1
                self._run_free = 0
        # Next fastest: the free ordinal is in the leaf word where the search
        # starts (the usual case: hints point at the next free ordinal).
        low = self._low
        cursor = self._cursor
        origin = cursor if serial and cursor > low else low
        if origin < self._bits:
            leaf = self._leaf
            index = origin >> 6
            old = leaf[index]
            word = old | BELOW[origin & 63]
            if word != FULL:
                bit = (word + 1) & ~word
                found = (index << 6) | (bit.bit_length() - 1)
                word = old | bit
                leaf[index] = word
                if word == FULL or (not old and type(leaf) is SparseWords and len(leaf) > leaf.promote_at):
                    self._grew(index, word)
                self._count += 1
                self._cursor = found + 1
                if origin == low:
                    # Both hints move to found + 1. If they agreed before (no
                    # take from elsewhere, no release below, in between), the
                    # word's other clear bits are the next takes of both kinds.
                    if origin == cursor and word != FULL:
                        free = word ^ FULL
                        low_bit = free & -free
                        if not (free + low_bit) & free:
                            # One stretch (every word of a fill): a counter run, inline.
                            base = index << 6
                            self._run_base = base
                            self._run_free = free
                            self._low = base + 64
                            self._run_next = base + low_bit.bit_length() - 1
                            self._run_stop = base + free.bit_length()
                        else:
                            self._arm_or_move(index, found, free)
                    else:
                        self._low = found + 1
                elif word != FULL and origin & 63 and old >> ((origin - 1) & 63) & 1:
                    # Serial from the cursor, past the hint, right after the previous
                    # take (still set: not a take-release-take of one ordinal).
                    self._arm_serial(index, found, word)
                return found
            if origin == low:
                # The hint's word is full. Nothing below the hint is free, so the
                # lowest free ordinal of the whole map is the answer: descend from
                # the top along lowest clear summary bits (no climb), take it.
                word = self._top[0]
                if word != FULL:
                    index = 0
                    for level in self._downward:
                        index = (index << 6) | ((word ^ (word + 1)).bit_length() - 1)
                        word = level[index]
                    bit = (word + 1) & ~word
                    found = (index << 6) | (bit.bit_length() - 1)
                    old = word
                    word |= bit
                    self._count += 1
                    self._cursor = found + 1
                    if word != FULL:
                        leaf[index] = word
                        if origin == cursor:
                            self._arm_or_move(index, found, word ^ FULL)
                        else:
                            self._low = found + 1
                    else:
                        self._low = found + 1
                        # _mark_full inlined (this path fills a word more often than not).
                        leaf[index] = FULL
                        for level in self._summaries:
                            parent = index >> 6
                            above = level[parent]
                            word = above | BIT[index & 63]
                            level[parent] = word if word != FULL else FULL
                            if not above and type(level) is SparseWords and len(level) > level.promote_at:
                                self._promote(level)
                            if word != FULL:
                                break
                            index = parent
                    if not old and type(leaf) is SparseWords and len(leaf) > leaf.promote_at:
                        self._promote(leaf)
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

    def _take(self, found: int, lowest: bool) -> int:
        """Set free ordinal ``found`` as handed out by a search; ``lowest``: the
        search began at the first-fit hint, so nothing below ``found`` is free."""
        if lowest:
            self._low = found + 1
        leaf = self._leaf
        index = found >> 6
        old = leaf[index]
        word = old | BIT[found & 63]
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
        bits = self._bits
        if type(start) is not int or type(end) is not int or not 0 <= start <= end < bits:
            raise InvalidParameterError(f"range [{start!r}, {end!r}] is not within [0, {bits})")
        if self._run_base >= 0:
            # The take below moves the hints apart: end the run.
            self._settle()
        low = self._low
        cursor = self._cursor
        resume = serial and cursor > start
        origin = cursor if resume else start
        if origin < low:
            origin = low
        found = -1
        if origin <= end:
            # Inline first step of _find_free: usually the answer is in this word.
            index = origin >> 6
            word = self._leaf[index] | BELOW[origin & 63]
            found = self._find_free(origin) if word == FULL else (index << 6) | ((word ^ (word + 1)).bit_length() - 1)
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
        if self._run_base >= 0:
            self._flush()
        cursor, low = self._hints()
        return encode(self._bits, cursor, low, nonzero_items(self._levels[0]))

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
