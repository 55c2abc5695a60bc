"""Wait for sockets to become readable without ``select()``.

``select.select`` refuses any descriptor numbered 1024 or more (FD_SETSIZE):
a real-kernel topology of a thousand containers holds a netlink socket per
namespace, so its probes, listeners and netlink waits would fail with
"filedescriptor out of range in select()" (or, where that ValueError is read
as "closed", silently stop). :func:`readable` is ``select.select(objs, [], [],
timeout)[0]`` on ``poll()``, which has no such limit.

>>> import socket
>>> a, b = socket.socketpair()
>>> readable([a, b], 0)
[]
>>> _ = b.send(b"x")
>>> readable([a, b], 1.0) == [a]
True
>>> a.close(); b.close()
"""

from __future__ import annotations

import errno
import math
import select
import socket
from collections.abc import Sequence
from typing import TypeVar

_Waitable = TypeVar("_Waitable", socket.socket, int, socket.socket | int)

#: what select() reports as readable: data, the peer's hangup, an error to read
_READABLE = select.POLLIN | select.POLLPRI | select.POLLHUP | select.POLLERR


def readable(objs: Sequence[_Waitable], timeout: float | None = None) -> list[_Waitable]:
    """The objects (sockets or descriptors) of ``objs`` that are readable,
    waiting at most ``timeout`` seconds (None: until one is). A closed socket
    raises ValueError, a closed descriptor OSError (EBADF), as select() does."""
    poller = select.poll()
    by_fd: dict[int, _Waitable] = {}
    for obj in objs:
        fd = obj if isinstance(obj, int) else obj.fileno()
        if fd < 0:
            raise ValueError("file descriptor cannot be a negative integer")
        poller.register(fd, select.POLLIN | select.POLLPRI)
        by_fd[fd] = obj
    millis = None if timeout is None else max(0, math.ceil(timeout * 1000))
    ready = []
    for fd, events in poller.poll(millis):
        if events & select.POLLNVAL:
            raise OSError(errno.EBADF, f"descriptor {fd} is not open")
        if events & _READABLE:
            ready.append(by_fd[fd])
    return ready
