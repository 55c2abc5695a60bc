"""Store watches: what a watcher receives and the thread that delivers it.

Every backend turns its own change feed (MemoryStore's writes, sqlite's change
log, etcd's watch stream, ZooKeeper's tree watches) into :class:`WatchEvent`
values and hands them to a :class:`Watch`, which calls the user's callback on
its own daemon thread, in the order the events were handed over. A callback
never runs on the thread that wrote to the store (so a callback may itself
write to the store without deadlocking), and an exception in a callback is
logged and does not end the watch.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

log = logging.getLogger("netsim.store")

_STOP = object()


@dataclass(frozen=True)
class WatchEvent:
    """One change under a watched prefix.

    ``kind`` is ``"put"`` (``value`` is the new text, ``version`` the new
    version) or ``"delete"`` (``value`` is None, ``version`` the version the
    key had when it was deleted).
    """

    kind: Literal["put", "delete"]
    key: str
    value: str | None
    version: int


class Watch:
    """A running watch: events handed to :meth:`deliver` reach ``callback`` in order.

    ``on_cancel`` (set by the backend) stops the backend's feed; :meth:`cancel`
    is idempotent and returns once no callback runs any more (unless called
    from the callback itself).

    >>> import threading
    >>> seen, done = [], threading.Event()
    >>> w = Watch("memory://", "network/", lambda e: (seen.append(e.key), done.set()))
    >>> w.deliver(WatchEvent("put", "network/a", "{}", 1))
    >>> done.wait(5)
    True
    >>> w.cancel(); seen
    ['network/a']
    """

    def __init__(self, url: str, prefix: str, callback: Callable[[WatchEvent], None]) -> None:
        self.url = url
        self.prefix = prefix
        self._callback = callback
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._cancelled = threading.Event()
        self.on_cancel: Callable[[], None] | None = None
        self._thread = threading.Thread(target=self._run, name=f"netsim-watch {url} {prefix!r}", daemon=True)
        self._thread.start()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def deliver(self, event: WatchEvent) -> None:
        """Queue ``event`` for the callback (cheap; callable from any thread)."""
        if not self._cancelled.is_set():
            self._queue.put(event)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP or self._cancelled.is_set():
                return
            assert isinstance(item, WatchEvent)
            try:
                self._callback(item)
            except Exception:
                log.exception("watch %r on %s: callback failed on %s; the watch goes on", self.prefix, self.url, item)

    def cancel(self) -> None:
        if self._cancelled.is_set():
            return
        self._cancelled.set()
        if self.on_cancel is not None:
            self.on_cancel()
        self._queue.put(_STOP)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cancel()
