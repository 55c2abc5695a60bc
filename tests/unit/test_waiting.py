"""netsim.waiting.readable: select()'s answers without its
descriptor limit (a topology of a thousand real containers passes 1023)."""

from __future__ import annotations

import os
import resource
import select
import socket
from collections.abc import Iterator

import pytest

from netsim.waiting import readable

HIGH_FD = 1500


@pytest.fixture
def high_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A connected socket pair whose first end is descriptor 1500."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft <= HIGH_FD:
        if hard != resource.RLIM_INFINITY and hard <= HIGH_FD:
            pytest.skip(f"cannot open descriptor {HIGH_FD}: RLIMIT_NOFILE hard limit {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (HIGH_FD + 1, hard))
    a, b = socket.socketpair()
    os.dup2(a.fileno(), HIGH_FD)
    a.close()
    high = socket.socket(fileno=HIGH_FD)
    try:
        yield high, b
    finally:
        high.close()
        b.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_descriptor_past_1023_is_waited_on(high_pair: tuple[socket.socket, socket.socket]) -> None:
    high, other = high_pair
    with pytest.raises(ValueError, match="filedescriptor out of range"):
        select.select([high], [], [], 0)  # what the real kernel's waits used to do
    assert readable([high], 0) == []
    other.send(b"x")
    assert readable([high, other], 1.0) == [high]


def test_hangup_counts_as_readable_as_in_select() -> None:
    a, b = socket.socketpair()
    try:
        b.close()
        assert readable([a], 1.0) == [a]
    finally:
        a.close()


def test_closed_socket_and_descriptor_raise_as_select_does() -> None:
    closed = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    closed.close()
    with pytest.raises(ValueError):
        readable([closed], 0)
    unused = 1999  # far above what this process opens (a just-closed number could be reused at once)
    with pytest.raises(OSError):
        os.fstat(unused)
    with pytest.raises(OSError, match="descriptor 1999 is not open"):
        readable([unused], 0)
