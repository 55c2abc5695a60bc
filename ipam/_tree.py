"""The bitmap's storage: leaf words of ordinals and the summary levels above them.

The ordinals live in 64-bit *leaf words* and a stack of *summary levels* sits
on top: bit ``j`` of word ``i`` at level ``k`` is set iff word ``64*i + j`` of
level ``k - 1`` is completely set. Finding a free ordinal climbs from a start
position until a summary word shows a clear bit, then descends taking the
lowest clear bit at each level: at most ``2 * levels`` word reads, where
``levels = ceil(log64(bits))`` (4 for 2^24, 11 for 2^64, 22 for 2^128).

Storage per level is chosen by density (``ipam._words``). Small levels (up to
1024 words, a /16) are a list of ints: the fastest word access, at most ~48
KiB. Large levels start as a dict holding only non-zero words, so a fresh IPv6
/64 costs a few hundred bytes and memory grows with what is allocated; a dict
level is converted to an ``array('Q')`` (8 bytes per 64 ordinals, about one
bit per ordinal) once it holds enough words that the array would be smaller.

Padding: ordinals past ``bits`` in the last leaf word, and summary bits for
words past the end of the level below, are kept *set*, so every search sees
them as taken and needs no bounds arithmetic.

``SummaryTree`` keeps the levels in step; ``ipam._run.RunTree`` adds the
allocator's hints and its run, and ``ipam.bitmap.Bitmap`` the public operations.
"""

from __future__ import annotations

from ipam._words import (
    BELOW,
    BIT,
    FULL,
    LOW_BITS,
    SHIFT,
    Level,
    SparseWords,
    check_levels,
    dense_copy,
    level_sizes,
    new_level,
    padding_masks,
)
from netsim.errors import InvalidParameterError


class SummaryTree:
    """Leaf words for ``bits`` ordinals (all clear but the padding) and their summaries.

    >>> tree = SummaryTree(130); tree._store_set(0, (1 << 64) - 1, 0); tree._levels[1][0] & 1
    1
    >>> tree._find_free(0), tree._find_free(129), tree._find_free_from_zero_or_end()
    (64, 129, 64)
    """

    __slots__ = ("_bits", "_count", "_downward", "_leaf", "_levels", "_sizes", "_summaries", "_top")

    def __init__(self, bits: int) -> None:
        """O(levels) time and memory (dict levels start empty)."""
        self._bits = bits
        self._sizes = level_sizes(bits)
        self._levels: list[Level] = [new_level(words) for words in self._sizes]
        self._leaf: Level
        self._summaries: tuple[Level, ...]
        self._downward: tuple[Level, ...]
        self._top: Level
        self._views()
        #: set ordinals written to the leaf words (the allocator may hold more pending)
        self._count = 0
        self._set_padding()

    def _views(self) -> None:
        """The levels as the hot paths walk them, so that they index no list of
        levels and count no level numbers (rebuilt when a level is replaced):
        the leaf; the summaries bottom-up; all but the top, top-down; the top."""
        levels = self._levels
        self._leaf = levels[0]
        self._top = levels[-1]
        self._summaries = tuple(levels[1:])
        self._downward = tuple(reversed(levels[:-1]))

    def _set_padding(self) -> None:
        for level, masks in zip(self._levels, padding_masks(self._bits, self._sizes), strict=True):
            for index, mask in masks.items():
                level[index] = mask

    def _store_set(self, index: int, word: int, old: int) -> None:
        """Write a leaf word that gained bits (``old`` is what it held). The caller keeps the count."""
        leaf = self._leaf
        leaf[index] = word
        if word == FULL or (not old and type(leaf) is SparseWords and len(leaf) > leaf.promote_at):
            self._grew(index, word)

    def _grew(self, index: int, word: int) -> None:
        """After leaf word ``index`` became ``word``: convert a dict level that got
        dense enough, and mark the word full in the summaries if it filled."""
        leaf = self._leaf
        if type(leaf) is SparseWords and len(leaf) > leaf.promote_at:
            self._promote(leaf)
        if word == FULL:
            self._mark_full(index)

    def _mark_full(self, index: int) -> None:
        """Leaf word ``index`` filled: set its summary bit, and upwards while words fill.
        Full words become the one shared ``FULL`` int: list levels hold a pointer
        per word, and a full /16 then costs 8 KiB, not 8 KiB plus an int per word."""
        self._leaf[index] = FULL
        for level in self._summaries:
            parent = index >> SHIFT
            old = level[parent]
            word = old | BIT[index & LOW_BITS]
            level[parent] = word if word != FULL else FULL
            if not old and type(level) is SparseWords and len(level) > level.promote_at:
                self._promote(level)
            if word != FULL:
                return
            index = parent

    def _promote(self, level: Level) -> None:
        """Turn dict level ``level`` into an array once the array is the smaller.
        Callers walking a view go on with the old one: levels above are unchanged."""
        k = next(k for k, candidate in enumerate(self._levels) if candidate is level)
        self._levels[k] = dense_copy(level, self._sizes[k])
        self._views()

    def _opened(self, index: int) -> None:
        """Full leaf word ``index`` is about to lose a bit: clear its summary bits upwards."""
        for level in self._summaries:
            parent = index >> SHIFT
            old = level[parent]
            new = old ^ BIT[index & LOW_BITS]
            if new or type(level) is not SparseWords:
                level[parent] = new
            else:
                del level[parent]
            if old != FULL:
                break
            index = parent

    def _find_free(self, start: int) -> int:
        """Lowest clear ordinal >= ``start`` (< bits), or -1. O(levels)."""
        levels = self._levels
        index = start >> SHIFT
        word = levels[0][index] | BELOW[start & LOW_BITS]
        if word != FULL:
            return (index << SHIFT) | ((word ^ (word + 1)).bit_length() - 1)
        sizes = self._sizes
        top = len(levels)
        k = 1
        while True:
            if k == top:
                return -1
            position = index + 1
            index = position >> SHIFT
            if index >= sizes[k]:
                return -1
            word = levels[k][index] | BELOW[position & LOW_BITS]
            if word != FULL:
                break
            k += 1
        index = (index << SHIFT) | ((word ^ (word + 1)).bit_length() - 1)
        while k:
            k -= 1
            word = levels[k][index]
            index = (index << SHIFT) | ((word ^ (word + 1)).bit_length() - 1)
        return index

    def _load_word(self, index: int, word: int) -> None:
        leaf = self._levels[0]
        padding = leaf[index]
        if not word or word & padding != padding:
            raise InvalidParameterError("bitmap encoding: zero word or padding bits clear")
        self._count += (word & ~padding).bit_count()
        self._store_set(index, word, 0)

    def _find_free_from_zero_or_end(self) -> int:
        found = self._find_free(0)
        return self._bits if found < 0 else found

    def _check_levels(self) -> None:
        """Storage, padding, summaries and the count agree; AssertionError names
        the first broken invariant. O(bits/64) with arrays, O(w log w) with dicts."""
        if self._sizes != level_sizes(self._bits) or len(self._levels) != len(self._sizes):
            raise AssertionError("Bitmap invariant: level sizes")
        popcount = check_levels(self._levels, self._sizes, self._bits)
        if popcount != self._count:
            raise AssertionError(f"Bitmap invariant: count {self._count} but {popcount} bits set")
        levels = self._levels
        expected = (levels[0], *levels[1:], *reversed(levels[:-1]), levels[-1])
        actual = (self._leaf, *self._summaries, *self._downward, self._top)
        if len(actual) != len(expected) or any(view is not level for view, level in zip(actual, expected, strict=True)):
            raise AssertionError("Bitmap invariant: the level views are out of date")
