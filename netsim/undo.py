"""Undo logs: every controller operation, driver setup and cluster step
records how to take back each step it made, and runs them in reverse when a
later step fails, so a failed call leaves nothing half-made. A neutral module:
the controller, the drivers, IPAM and the cluster all import it, and none of
them has to import another to get it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import TracebackType

log = logging.getLogger(__name__)


class Undo:
    """A stack of compensating actions.

    Complexity: O(1) per :meth:`push`, O(n) for :meth:`run`.

    >>> done = []
    >>> undo = Undo()
    >>> undo.push("first", lambda: done.append(1))
    >>> undo.push("second", lambda: done.append(2))
    >>> undo.run()
    []
    >>> done
    [2, 1]
    """

    def __init__(self) -> None:
        self._steps: list[tuple[str | Callable[[], str], Callable[[], object]]] = []

    def push(self, what: str | Callable[[], str], action: Callable[[], object]) -> None:
        """``what`` describes the step in warnings; a callable is called only if the step fails."""
        self._steps.append((what, action))

    def extend(self, other: Undo) -> None:
        """Adopt ``other``'s steps (they run after, i.e. before in reverse, this log's)."""
        self._steps.extend(other._steps)
        other._steps = []

    def __len__(self) -> int:
        return len(self._steps)

    def run(self) -> list[str]:
        """Run every step newest first; a failing step does not stop the others.

        Returns the descriptions of the steps that failed (also logged).
        """
        failed = []
        while self._steps:
            what, action = self._steps.pop()
            try:
                action()
            except Exception as exc:  # keep undoing: one stuck step must not leak the rest
                label = what if isinstance(what, str) else what()
                log.warning("rollback step %r failed: %r", label, exc)
                failed.append(f"{label}: {exc!r}")
        return failed

    def discard(self) -> None:
        self._steps.clear()


class rollback_on_error(Undo):
    """``with rollback_on_error() as undo:``: on an exception run ``undo`` and re-raise.

    Failed undo steps are attached to the exception as notes. A plain class
    rather than ``@contextmanager``: it runs several times per controller call,
    and the generator machinery cost more than the undo log itself. It is its
    own undo log (one object per use, not two).

    >>> done = []
    >>> try:
    ...     with rollback_on_error() as undo:
    ...         undo.push("step", lambda: done.append("undone"))
    ...         raise ValueError("later step failed")
    ... except ValueError:
    ...     pass
    >>> done
    ['undone']
    """

    def __enter__(self) -> Undo:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if exc is None:
            self._steps.clear()
            return
        for problem in self.run():
            exc.add_note(f"rollback incomplete: {problem}")
