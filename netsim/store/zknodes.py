"""How keys become znodes in netsim's ZooKeeper store (see :mod:`netsim.store.zookeeper`)."""

from __future__ import annotations

from urllib.parse import unquote

#: Data of a znode that holds a key starts with this byte; other data (empty)
#: marks a znode that only exists as the parent of deeper keys.
MARK = b"="


def encode_segment(segment: str) -> str:
    """A key segment as a znode name ZooKeeper accepts, decodable by :func:`decode_segment`.

    >>> [encode_segment(s) for s in ("net-1", "", ".", "a%b", "é")]
    ['net-1', '%', '%2E', 'a%25b', '%C3%A9']
    """
    if segment in ("", ".", ".."):
        return "%" if not segment else "%2E" * len(segment)
    out = []
    for char in segment:
        if " " <= char <= "~" and char != "%":
            out.append(char)
        else:
            out.extend(f"%{byte:02X}" for byte in char.encode())
    return "".join(out)


def decode_segment(name: str) -> str:
    return "" if name == "%" else unquote(name, errors="strict")
