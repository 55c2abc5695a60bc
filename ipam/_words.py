"""Storage of one bitmap level: 64-bit words in a list or an array, or a dict of the non-zero ones.

Shared by ``ipam.bitmap``; imports nothing of netsim.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from itertools import chain
from operator import getitem
from typing import TypeAlias

SHIFT = 6
LOW_BITS = 63
FULL = (1 << 64) - 1
# A level with at most this many words is a list from the start: a list index is
# the cheapest word read and write CPython has (specialized bytecodes; an array
# converts every word to and from a new int), at up to ~48 bytes a word (48 KiB).
ALWAYS_DENSE_WORDS = 1024
# A level larger than this (32 MiB as an array) stays a dict forever.
MAX_DENSE_WORDS = 1 << 22
# A dict word costs ~100 bytes against 8 in an array: convert past 1/12 full.
DICT_TO_ARRAY_RATIO = 12


class SparseWords(dict[int, int]):
    """Non-zero words of a large level; a missing word reads as 0.
    ``promote_at``: past this many words the level should become an array.

    >>> level = SparseWords(promote_at=10); level[3] = 5; level[3], level[4]
    (5, 0)
    """

    __slots__ = ("promote_at",)

    def __init__(self, promote_at: int) -> None:
        super().__init__()
        self.promote_at = promote_at

    def __missing__(self, key: int) -> int:
        return 0


Level: TypeAlias = "list[int] | array[int] | SparseWords"

#: ``BIT[i] == 1 << i``: a tuple index hands out an existing int where a shift makes one.
BIT = tuple(1 << position for position in range(64))
#: ``BELOW[i]``: the bits below bit ``i`` set (``BIT[i] - 1``).
BELOW = tuple(bit - 1 for bit in BIT)

#: ``BYTE_POSITIONS[j][b]``: the positions, highest first, of the set bits of
#: byte value ``b`` as byte ``j`` of a word in big-endian order (~160 KiB).
BYTE_POSITIONS = tuple(
    tuple(tuple(8 * (7 - j) + i for i in range(7, -1, -1) if value >> i & 1) for value in range(256)) for j in range(8)
)


def free_positions(word: int) -> Iterator[int]:
    """Positions of the set bits of a 64-bit ``word``, highest first, in one pass
    of C loops (a table look-up per byte): ~1 µs for any number of bits, where a
    bit-by-bit loop takes ~0.15 µs a bit.

    >>> list(free_positions((1 << 63) | 0b1010))
    [63, 3, 1]
    """
    return chain.from_iterable(map(getitem, BYTE_POSITIONS, word.to_bytes(8, "big")))


def new_level(words: int) -> Level:
    """An empty level of ``words`` words: a list if small, else a dict. O(words) / O(1)."""
    if words <= ALWAYS_DENSE_WORDS:
        return [0] * words
    promote_at = words // DICT_TO_ARRAY_RATIO if words <= MAX_DENSE_WORDS else words + 1
    return SparseWords(promote_at)


def dense_copy(level: Level, words: int) -> array[int]:
    """The level as an array of ``words`` words (8 bytes each: promoted levels are
    large). O(words)."""
    dense = array("Q", bytes(8 * words))
    for index, word in nonzero_items(level):
        dense[index] = word
    return dense


def level_sizes(bits: int) -> list[int]:
    """Words per level, leaf first, up to a one-word top. O(log64 bits).

    >>> level_sizes(2**24)
    [262144, 4096, 64, 1]
    """
    sizes = [(bits + LOW_BITS) >> SHIFT]
    while sizes[-1] > 1:
        sizes.append((sizes[-1] + LOW_BITS) >> SHIFT)
    return sizes


def padding_masks(bits: int, sizes: list[int]) -> list[dict[int, int]]:
    """Per level, the always-set bits past the end: {word index: mask}.

    >>> [{i: hex(m) for i, m in p.items()} for p in padding_masks(65, level_sizes(65))]
    [{1: '0xfffffffffffffffe'}, {0: '0xfffffffffffffffc'}]
    """
    result = []
    below = bits
    for words in sizes:
        used = below & LOW_BITS
        result.append({words - 1: FULL & ~((1 << used) - 1)} if used else {})
        below = words
    return result


def nonzero_items(level: Level) -> Iterator[tuple[int, int]]:
    """(index, word) of the non-zero words in index order. O(words) for an
    array, O(w log w) for a dict of ``w`` words."""
    if isinstance(level, SparseWords):
        for index in sorted(level):
            yield index, level[index]
    else:
        for index, word in enumerate(level):
            if word:
                yield index, word


def check_levels(levels: list[Level], sizes: list[int], bits: int) -> int:
    """Verify storage, padding and summaries of every level; return the number
    of set ordinals. AssertionError names the first broken invariant.
    O(words) with arrays, O(w log w) with dicts of ``w`` words."""

    def fail(message: str) -> None:
        raise AssertionError(f"Bitmap invariant: {message}")

    paddings = padding_masks(bits, sizes)
    child_full: dict[int, int] = {}
    popcount = 0
    for k, (level, words) in enumerate(zip(levels, sizes, strict=True)):
        if isinstance(level, array):
            if level.typecode != "Q" or len(level) != words:
                fail(f"level {k} array shape")
        elif isinstance(level, list):
            if len(level) != words or words > ALWAYS_DENSE_WORDS or any(not 0 <= word <= FULL for word in level):
                fail(f"level {k} list shape or a word out of range")
        elif any(not word for word in level.values()) or any(not 0 <= i < words for i in level):
            fail(f"level {k} dict holds a zero word or an index out of range")
        padding = paddings[k]
        actual = dict(nonzero_items(level))
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
            if word == FULL:
                child_full[index >> SHIFT] = child_full.get(index >> SHIFT, 0) | (1 << (index & LOW_BITS))
    return popcount
