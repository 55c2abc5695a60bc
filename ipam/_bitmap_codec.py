"""Byte encoding of a bitmap: compact, canonical, validated on the way in.

Layout: format version byte; varints ``bits``, ``cursor``, ``low``; a varint
run count; per run a varint first word index, a varint word count and the
words as little-endian 64-bit integers. Runs are of non-zero leaf words,
increasing and never adjacent (adjacent runs are merged), so equal bitmaps
encode to equal bytes. Imports nothing of netsim but its errors.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterable
from dataclasses import dataclass

from netsim.errors import InvalidParameterError

FORMAT_VERSION = 1


@dataclass(frozen=True)
class Decoded:
    bits: int
    cursor: int
    low: int
    runs: list[tuple[int, array[int]]]


def encode(bits: int, cursor: int, low: int, nonzero_words: Iterable[tuple[int, int]]) -> bytes:
    """O(words). ``nonzero_words``: (index, word) in increasing index order.

    >>> decode(encode(100, 3, 2, [(0, 7), (1, 1)])).runs[0][1].tolist()
    [7, 1]
    """
    out = bytearray([FORMAT_VERSION])
    for value in (bits, cursor, low):
        _put_varint(out, value)
    runs: list[tuple[int, list[int]]] = []
    for index, word in nonzero_words:
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


def decode(data: bytes) -> Decoded:
    """Parse and check the layout (not the bitmap's own invariants). O(len(data))."""
    reader = _Reader(bytes(data))
    if reader.byte() != FORMAT_VERSION:
        raise InvalidParameterError("bitmap encoding: unknown format version")
    bits, cursor, low = reader.varint(), reader.varint(), reader.varint()
    runs = []
    previous_end = -1
    for _ in range(reader.varint()):
        first, count = reader.varint(), reader.varint()
        if first <= previous_end or count == 0:
            raise InvalidParameterError("bitmap encoding: malformed word run")
        previous_end = first + count
        words = array("Q")
        words.frombytes(reader.take(8 * count))
        if sys.byteorder == "big":
            words.byteswap()
        runs.append((first, words))
    reader.finish()
    return Decoded(bits, cursor, low, runs)


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
