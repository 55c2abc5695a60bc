"""Python's cyclic garbage collector paused around bulk work.

Opening a persistent store and recovering make a few objects per record and
free few: with 10,000 containers the collector's passes (each O(every object
alive)) cost a third of the time and find nothing to free. Reference
counting still frees the temporaries meanwhile; the collector runs again
once the block ends, if it was on before.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic collector off for the block, as it was after.

    >>> with collector_paused():
    ...     gc.isenabled()
    False
    >>> gc.isenabled()
    True
    """
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()
