"""A bitmap allocator whose cost does not depend on fragmentation.

libnetwork keeps allocations as a run-length list, so every operation walks
the runs: cheap on a fresh pool, milliseconds on a fragmented /8. Here the
ordinals live in 64-bit *leaf words* and a stack of *summary levels* sits on
top: bit ``j`` of word ``i`` at level ``k`` is set iff word ``64*i + j`` of
level ``k - 1`` is completely set. Finding a free ordinal climbs from a start
position until a summary word shows a clear bit, then descends taking the
lowest clear bit at each level: at most ``2 * levels`` word reads, where
``levels = ceil(log64(bits))`` (4 for 2^24, 11 for 2^64, 22 for 2^128).

Storage per level is chosen by density. Small levels are an ``array('Q')``
(8 bytes per 64 ordinals, about one bit per ordinal). Large levels start as a
dict holding only non-zero words, so a fresh IPv6 /64 costs a few hundred
bytes and memory grows with what is allocated; a dict level is converted to
an array once it holds enough words that the array would be smaller.

Padding: ordinals past ``bits`` in the last leaf word, and summary bits for
words past the end of the level below, are kept *set*, so every search sees
them as taken and needs no bounds arithmetic.

Two hints keep the common cases O(1): ``_low`` (no free ordinal lies below it,
so first-fit starts there) and ``_cursor`` (one past the last ordinal handed
out by ``set_any``, where serial allocation resumes, as libnetwork's ``curr``).

The structure is not thread-safe; callers (the IPAM driver) hold a lock.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterator
from typing import TypeAlias

from netsim.errors import ConflictError, InvalidParameterError, NoSpaceError

_SHIFT = 6
_LOW_BITS = 63
_FULL = (1 << 64) - 1
MAX_BITS = 1 << 128
# A level with at most this many words is an array from the start (8 KiB).
_ALWAYS_DENSE_WORDS = 1024
# A level larger than this (32 MiB as an array) stays a dict forever.
_MAX_DENSE_WORDS = 1 << 22
# A dict word costs ~100 bytes against 8 in an array: convert past 1/12 full.
_DICT_TO_ARRAY_RATIO = 12
_FORMAT_VERSION = 1


class _SparseWords(dict[int, int]):
    """Non-zero words of a large level; a missing word reads as 0."""

    __slots__ = ("promote_at",)

    def __init__(self, promote_at: int) -> None:
        super().__init__()
        self.promote_at = promote_at

    def __missing__(self, key: int) -> int:
        return 0


_Level: TypeAlias = "array[int] | _SparseWords"


def _new_level(words: int) -> _Level:
    if words <= _ALWAYS_DENSE_WORDS:
        return array("Q", bytes(8 * words))
    promote_at = words // _DICT_TO_ARRAY_RATIO if words <= _MAX_DENSE_WORDS else words + 1
    return _SparseWords(promote_at)


def _level_sizes(bits: int) -> list[int]:
    sizes = [(bits + _LOW_BITS) >> _SHIFT]
    while sizes[-1] > 1:
        sizes.append((sizes[-1] + _LOW_BITS) >> _SHIFT)
    return sizes


def _padding(bits: int, sizes: list[int]) -> list[dict[int, int]]:
    """Per level, the always-set bits past the end: {word index: mask}."""
    result = []
    below = bits
    for words in sizes:
        used = below & _LOW_BITS
        result.append({words - 1: _FULL & ~((1 << used) - 1)} if used else {})
        below = words
    return result


def _nonzero_items(level: _Level) -> Iterator[tuple[int, int]]:
    if isinstance(level, _SparseWords):
        for index in sorted(level):
            yield index, level[index]
    else:
        for index, word in enumerate(level):
            if word:
                yield index, word


class Bitmap:
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

    __slots__ = ("_bits", "_count", "_cursor", "_levels", "_low", "_sizes")

    def __init__(self, bits: int) -> None:
        """O(levels) time and memory (dict levels start empty).

        >>> Bitmap(2**128).count_unset() == 2**128
        True
        """
        if type(bits) is not int or not 1 <= bits <= MAX_BITS:
            raise InvalidParameterError(f"bitmap size must be an integer in [1, 2**128], got {bits!r}")
        self._bits = bits
        self._sizes = _level_sizes(bits)
        self._levels: list[_Level] = [_new_level(words) for words in self._sizes]
        self._count = 0
        self._cursor = 0
        self._low = 0
        self._set_padding()

    def _set_padding(self) -> None:
        for level, padding in zip(self._levels, _padding(self._bits, self._sizes), strict=True):
            for index, mask in padding.items():
                level[index] = mask

    # -- queries ---------------------------------------------------------

    @property
    def bits(self) -> int:
        """Number of ordinals. O(1)."""
        return self._bits

    def count_set(self) -> int:
        """How many ordinals are set. O(1).

        >>> Bitmap(8).count_set()
        0
        """
        return self._count

    def count_unset(self) -> int:
        """How many ordinals are free. O(1).

        >>> Bitmap(8).count_unset()
        8
        """
        return self._bits - self._count

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
        return bool(self._levels[0][ordinal >> _SHIFT] >> (ordinal & _LOW_BITS) & 1)

    __contains__ = is_set

    def __iter__(self) -> Iterator[int]:
        """Set ordinals in increasing order. O(bits/64) for an array leaf level,
        O(w log w) for a dict one holding ``w`` words, plus O(1) per ordinal.

        >>> b = Bitmap(200); b.set(199); b.set(3); list(b)
        [3, 199]
        """
        bits = self._bits
        for index, word in _nonzero_items(self._levels[0]):
            base = index << _SHIFT
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
        return f"Bitmap(bits={self._bits}, set={self._count}, cursor={self._cursor})"

    # -- updates ---------------------------------------------------------

    def set(self, ordinal: int) -> None:
        """Set ``ordinal``; ConflictError if it is set already. O(1), O(levels) when a word fills.

        >>> b = Bitmap(4); b.set(1); b.is_set(1)
        True
        """
        if type(ordinal) is not int or not 0 <= ordinal < self._bits:
            self._check_ordinal(ordinal)
        leaf = self._levels[0]
        index = ordinal >> _SHIFT
        word = leaf[index]
        bit = 1 << (ordinal & _LOW_BITS)
        if word & bit:
            raise ConflictError(f"ordinal {ordinal} is already set")
        old = word
        word |= bit
        leaf[index] = word
        if word == _FULL or (not old and type(leaf) is _SparseWords):
            self._grew(index, word)
        self._count += 1
        if ordinal == self._low:
            self._low = ordinal + 1

    def _store_set(self, index: int, word: int, old: int) -> None:
        """Write a leaf word that gained bits (``old`` is what it held). The caller keeps the count."""
        leaf = self._levels[0]
        leaf[index] = word
        if word == _FULL or (not old and type(leaf) is _SparseWords):
            self._grew(index, word)

    def _grew(self, index: int, word: int) -> None:
        """After leaf word ``index`` became ``word``: convert a dict level that got
        dense enough, and mark the word full in the summaries if it filled."""
        levels = self._levels
        leaf = levels[0]
        if type(leaf) is _SparseWords and len(leaf) > leaf.promote_at:
            self._promote(0)
        if word != _FULL:
            return
        for k in range(1, len(levels)):
            level = levels[k]
            parent = index >> _SHIFT
            old = level[parent]
            word = old | (1 << (index & _LOW_BITS))
            level[parent] = word
            if not old and type(level) is _SparseWords and len(level) > level.promote_at:
                self._promote(k)
            if word != _FULL:
                break
            index = parent

    def _promote(self, k: int) -> None:
        """Turn dict level ``k`` into an array once the array is the smaller."""
        dense = array("Q", bytes(8 * self._sizes[k]))
        for index, word in _nonzero_items(self._levels[k]):
            dense[index] = word
        self._levels[k] = dense

    def unset(self, ordinal: int) -> None:
        """Clear ``ordinal``; clearing a clear ordinal is a no-op. O(1), O(levels) when a full word opens.

        >>> b = Bitmap(4); b.set(1); b.unset(1); b.unset(1); b.is_set(1)
        False
        """
        if type(ordinal) is not int or not 0 <= ordinal < self._bits:
            self._check_ordinal(ordinal)
        levels = self._levels
        leaf = levels[0]
        index = ordinal >> _SHIFT
        word = leaf[index]
        bit = 1 << (ordinal & _LOW_BITS)
        if not word & bit:
            return
        if word == _FULL:
            child = index
            for k in range(1, len(levels)):
                level = levels[k]
                parent = child >> _SHIFT
                old = level[parent]
                new = old & ~(1 << (child & _LOW_BITS))
                if new or type(level) is not _SparseWords:
                    level[parent] = new
                else:
                    del level[parent]
                if old != _FULL:
                    break
                child = parent
        word ^= bit
        if word or type(leaf) is not _SparseWords:
            leaf[index] = word
        else:
            del leaf[index]
        self._count -= 1
        if ordinal < self._low:
            self._low = ordinal

    def _find_free(self, start: int) -> int:
        """Lowest clear ordinal >= ``start`` (< bits), or -1. O(levels)."""
        levels = self._levels
        index = start >> _SHIFT
        word = levels[0][index] | ((1 << (start & _LOW_BITS)) - 1)
        if word != _FULL:
            return (index << _SHIFT) | ((word ^ (word + 1)).bit_length() - 1)
        sizes = self._sizes
        top = len(levels)
        k = 1
        while True:
            if k == top:
                return -1
            position = index + 1
            index = position >> _SHIFT
            if index >= sizes[k]:
                return -1
            word = levels[k][index] | ((1 << (position & _LOW_BITS)) - 1)
            if word != _FULL:
                break
            k += 1
        index = (index << _SHIFT) | ((word ^ (word + 1)).bit_length() - 1)
        while k:
            k -= 1
            word = levels[k][index]
            index = (index << _SHIFT) | ((word ^ (word + 1)).bit_length() - 1)
        return index

    def set_any(self, serial: bool = False) -> int:
        """Set and return a free ordinal: the lowest, or with ``serial`` the first
        after the last one handed out, wrapping. NoSpaceError when full.
        O(1) amortized in sequential use, O(levels) worst case.

        >>> b = Bitmap(3); [b.set_any() for _ in range(3)]
        [0, 1, 2]
        """
        # Fast path: the free ordinal is in the leaf word where the search
        # starts (the usual case: hints point at the next free ordinal).
        low = self._low
        origin = max(self._cursor, low) if serial else low
        if origin < self._bits:
            leaf = self._levels[0]
            index = origin >> _SHIFT
            old = leaf[index]
            word = old | ((1 << (origin & _LOW_BITS)) - 1)
            if word != _FULL:
                bit = (word + 1) & ~word
                found = (index << _SHIFT) | (bit.bit_length() - 1)
                word = old | bit
                leaf[index] = word
                if word == _FULL or (not old and type(leaf) is _SparseWords):
                    self._grew(index, word)
                self._count += 1
                self._cursor = found + 1
                if origin == low:
                    self._low = found + 1
                return found
        return self.set_any_in_range(0, self._bits - 1, serial)

    def set_any_in_range(self, start: int, end: int, serial: bool = False) -> int:
        """As ``set_any`` within ``[start, end]`` (end inclusive, as libnetwork). O(levels).

        >>> b = Bitmap(100); b.set_any_in_range(10, 20), b.set_any_in_range(10, 20, serial=True)
        (10, 11)
        """
        bits = self._bits
        if type(start) is not int or type(end) is not int or not 0 <= start <= end < bits:
            raise InvalidParameterError(f"range [{start!r}, {end!r}] is not within [0, {bits})")
        low = self._low
        resume = serial and self._cursor > start
        origin = max(self._cursor if resume else start, low)
        found = -1
        if origin <= end:
            # Inline first step of _find_free: usually the answer is in this word.
            index = origin >> _SHIFT
            word = self._levels[0][index] | ((1 << (origin & _LOW_BITS)) - 1)
            found = index << _SHIFT | (word ^ word + 1).bit_length() - 1 if word != _FULL else self._find_free(origin)
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
        if origin == low:
            # The search began at the lowest possible free ordinal, so nothing
            # below ``found`` is free any more.
            self._low = found + 1
        leaf = self._levels[0]
        index = found >> _SHIFT
        old = leaf[index]
        word = old | (1 << (found & _LOW_BITS))
        leaf[index] = word
        if word == _FULL or (not old and type(leaf) is _SparseWords):
            self._grew(index, word)
        self._count += 1
        self._cursor = found + 1
        return found

    # -- serialization ---------------------------------------------------

    def to_bytes(self) -> bytes:
        """Compact canonical encoding: sizes, hints, then runs of non-zero leaf
        words. O(allocated words) for a dict leaf level, O(bits/64) for an array.

        >>> b = Bitmap(2**64); b.set(2**64 - 1); len(b.to_bytes()) < 64
        True
        """
        out = bytearray([_FORMAT_VERSION])
        for value in (self._bits, self._cursor, self._low):
            _put_varint(out, value)
        runs: list[tuple[int, list[int]]] = []
        for index, word in _nonzero_items(self._levels[0]):
            if runs and runs[-1][0] + len(runs[-1][1]) == index:
                runs[-1][1].append(word)
            else:
                runs.append((index, [word]))
        _put_varint(out, len(runs))
        for first, words in runs:
            _put_varint(out, first)
            _put_varint(out, len(words))
            packed = array("Q", words)
            if sys.byteorder == "big":
                packed.byteswap()
            out += packed.tobytes()
        return bytes(out)

    @classmethod
    def from_bytes(cls, data: bytes) -> Bitmap:
        """Rebuild exactly what ``to_bytes`` wrote; InvalidParameterError on
        malformed input. O(allocated words * levels).

        >>> b = Bitmap(300); b.set(7); Bitmap.from_bytes(b.to_bytes()).is_set(7)
        True
        """
        reader = _Reader(bytes(data))
        if reader.byte() != _FORMAT_VERSION:
            raise InvalidParameterError("bitmap encoding: unknown format version")
        bits, cursor, low = reader.varint(), reader.varint(), reader.varint()
        bitmap = cls(bits)
        if cursor > bits or low > bits:
            raise InvalidParameterError("bitmap encoding: cursor out of range")
        leaf_words = bitmap._sizes[0]
        previous_end = -1
        for _ in range(reader.varint()):
            first, count = reader.varint(), reader.varint()
            if first <= previous_end or count == 0 or first + count > leaf_words:
                raise InvalidParameterError("bitmap encoding: malformed word run")
            previous_end = first + count
            words = array("Q")
            words.frombytes(reader.take(8 * count))
            if sys.byteorder == "big":
                words.byteswap()
            for offset, word in enumerate(words):
                bitmap._load_word(first + offset, word)
        reader.finish()
        bitmap._cursor = cursor
        if bitmap._find_free_from_zero_or_end() < low:
            raise InvalidParameterError("bitmap encoding: first-fit hint skips a free ordinal")
        bitmap._low = low
        return bitmap

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

    # -- invariants ------------------------------------------------------

    def _check(self) -> None:
        """Verify every internal invariant; AssertionError names the first broken one.
        O(bits/64) with array levels, O(allocated words log) with dict levels."""

        def fail(message: str) -> None:
            raise AssertionError(f"Bitmap invariant: {message}")

        if self._sizes != _level_sizes(self._bits) or len(self._levels) != len(self._sizes):
            fail("level sizes")
        paddings = _padding(self._bits, self._sizes)
        child_full: dict[int, int] = {}
        popcount = 0
        for k, (level, words) in enumerate(zip(self._levels, self._sizes, strict=True)):
            if isinstance(level, array):
                if level.typecode != "Q" or len(level) != words:
                    fail(f"level {k} array shape")
            elif any(not word for word in level.values()) or any(not 0 <= i < words for i in level):
                fail(f"level {k} dict holds a zero word or an index out of range")
            padding = paddings[k]
            actual = dict(_nonzero_items(level))
            for index, pad in padding.items():
                if actual.get(index, 0) & pad != pad:
                    fail(f"level {k} word {index} padding bits clear")
            if k == 0:
                popcount = sum(word.bit_count() for word in actual.values())
                popcount -= sum(pad.bit_count() for pad in padding.values())
            else:
                expected = dict(child_full)
                for index, pad in padding.items():
                    expected[index] = expected.get(index, 0) | pad
                if actual != expected:
                    fail(f"level {k} summary disagrees with level {k - 1}")
            child_full = {}
            for index, word in actual.items():
                if word == _FULL:
                    child_full[index >> _SHIFT] = child_full.get(index >> _SHIFT, 0) | (1 << (index & _LOW_BITS))
        if popcount != self._count:
            fail(f"count {self._count} but {popcount} bits set")
        if not 0 <= self._cursor <= self._bits or not 0 <= self._low <= self._bits:
            fail("cursor or first-fit hint out of range")
        if self._find_free_from_zero_or_end() < self._low:
            fail("a free ordinal lies below the first-fit hint")


def _put_varint(out: bytearray, value: int) -> None:
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return


class _Reader:
    """Cursor over an encoded bitmap; every short read is InvalidParameterError."""

    __slots__ = ("_data", "_offset")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._offset = 0

    def take(self, size: int) -> bytes:
        end = self._offset + size
        if end > len(self._data):
            raise InvalidParameterError("bitmap encoding: truncated")
        chunk = self._data[self._offset : end]
        self._offset = end
        return chunk

    def byte(self) -> int:
        return self.take(1)[0]

    def varint(self) -> int:
        value = shift = 0
        while True:
            byte = self.byte()
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value
            if shift > 140:
                raise InvalidParameterError("bitmap encoding: integer too long")

    def finish(self) -> None:
        if self._offset != len(self._data):
            raise InvalidParameterError("bitmap encoding: trailing bytes")
