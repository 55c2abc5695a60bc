"""Signals that stop a run without leaking it.

* SIGTERM (what CI runners and ``timeout`` send) kills a Python process
  without running a single ``finally``: every namespace of a real-kernel run
  stays behind. :func:`signals_interrupt` turns it (and SIGINT) into
  :class:`Interrupted`, a KeyboardInterrupt, so it unwinds like Ctrl-C.
* A forked child (pyroute2 forks to create namespaces) inherits the handler
  and a copy of the parent's stack: there a signal exits the child at once,
  it never unwinds the parent's ``finally`` blocks (which would close the
  parent's kernel from the child: the EBUSY of issue 16).
* An interrupt must never be hidden by the cleanup it triggers: a cleanup
  error raised in a ``finally`` would replace the KeyboardInterrupt in flight,
  and a caller catching errors would carry on with the next scenario.
  :class:`Cleanup` runs cleanup steps so that, while an interrupt is in
  flight, their errors are recorded (as problems and as notes on the
  interrupt) and the interrupt keeps going.
* :func:`deferred_interrupts` holds SIGINT/SIGTERM back while a short,
  bounded cleanup step runs (closing a kernel), then delivers them: a second
  Ctrl-C cannot cut the removal of namespaces in half.
* Python swallows an exception raised in a ``__del__`` method or a weakref
  callback ("Exception ignored in ..."): a signal landing there would be
  lost and the run would carry on to its end. The handler therefore also
  records each signal; :func:`raise_if_interrupted`, called where the next
  piece of work begins, delivers a swallowed one, and the CLI checks
  :func:`interrupt_pending` when a command returns. The same record quiets
  the fallout of an interrupt (a generator pyroute2 leaves half-run in its
  event loop fails again when it is collected, at exit): those unraisable
  errors are consequences of the signal already reported, not news.

Handlers can only be installed from the main thread; elsewhere these helpers
change nothing (a signal is only ever handled in the main thread anyway).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

_SIGNALS = (signal.SIGINT, signal.SIGTERM)

#: signals the interrupting handler received in this process (see the module docstring)
_received: list[int] = []
#: True once any signal was handled here; never reset (its fallout comes at exit)
_interrupted_before: list[bool] = []
#: what an event loop closed by an interrupt's teardown raises in the coroutines
#: still in flight on it (pyroute2's), when they are resumed or collected
_CLOSED_LOOP = "Event loop is closed"


class Interrupted(KeyboardInterrupt):
    """A signal that stops the run; ``signum`` says which (exit status 128 + signum)."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum


def exit_status(exc: KeyboardInterrupt) -> int:
    """128 + the signal number, as a shell reports a process a signal stopped.

    >>> exit_status(Interrupted(signal.SIGTERM)), exit_status(KeyboardInterrupt())
    (143, 130)
    """
    return 128 + (exc.signum if isinstance(exc, Interrupted) else signal.SIGINT)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _exit_if_forked(owner: int, signum: int) -> None:
    """In a forked child (pyroute2 forks to create namespaces and sockets, and
    stops a child with SIGTERM; Ctrl-C reaches the whole process group), raising
    would unwind the *parent's* stack copied into the child and run its
    ``finally`` blocks there: closing the parent's kernel from the child. Exit
    at once instead, without running anything of the parent's."""
    if os.getpid() != owner:
        os._exit(128 + signum)


def interrupting_handler() -> Callable[[int, FrameType | None], None]:
    """A handler raising :class:`Interrupted` in this process, exiting in a fork."""
    owner = os.getpid()

    def handle(signum: int, frame: FrameType | None) -> None:
        _exit_if_forked(owner, signum)
        _received.append(signum)
        _interrupted_before[:] = [True]
        raise Interrupted(signum)

    return handle


def interrupt_pending() -> Interrupted | None:
    """The interrupt a signal received inside :func:`signals_interrupt` stands for, if any."""
    return Interrupted(_received[0]) if _received else None


def raise_if_interrupted() -> None:
    """Deliver a signal whose :class:`Interrupted` Python swallowed (raised in a
    ``__del__`` or weakref callback). Call it only where new work begins, never
    in cleanup: an interrupt already unwinding the stack never reaches here."""
    pending = interrupt_pending()
    if pending is not None:
        raise pending


def _caused_by_interrupt(exc: BaseException | None) -> bool:
    """An :class:`Interrupted` in ``exc``'s chain, or, once a signal was handled
    here, the closed event loop its teardown left under pyroute2's coroutines."""
    after_signal = bool(_interrupted_before)
    seen = 0
    while exc is not None and seen < 32:  # a bounded walk: chains can be cyclic
        if isinstance(exc, Interrupted):
            return True
        if after_signal and isinstance(exc, RuntimeError) and str(exc) == _CLOSED_LOOP:
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


class _QuietInterruptFallout(logging.Filter):
    """asyncio logs errors of callbacks and async generators it closes: drop
    those an interrupt caused."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and _caused_by_interrupt(record.exc_info[1]))


_QUIET_ASYNCIO = _QuietInterruptFallout()


def _quiet_unraisable(previous: Callable[[Any], object]) -> Callable[[Any], object]:
    def hook(unraisable: Any) -> None:
        if _caused_by_interrupt(unraisable.exc_value):
            return  # a swallowed signal (delivered by raise_if_interrupted) or its fallout
        previous(unraisable)

    return hook


@contextlib.contextmanager
def signals_interrupt() -> Iterator[None]:
    """SIGINT and SIGTERM raise :class:`Interrupted` inside the block (SIGTERM's
    default would kill the process without any ``finally``); the previous
    handlers come back afterwards."""
    if not _in_main_thread():
        yield
        return
    handler = interrupting_handler()
    _received.clear()
    previous_hook = sys.unraisablehook
    sys.unraisablehook = _quiet_unraisable(previous_hook)
    logging.getLogger("asyncio").addFilter(_QUIET_ASYNCIO)
    previous = {sig: signal.signal(sig, handler) for sig in _SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        if _received:
            # the hooks stay: the half-run generators an interrupt left are collected at
            # interpreter exit, after this block; the record goes, so that later work in
            # this process (a test suite) is not stopped by a signal already dealt with
            _received.clear()
        else:
            sys.unraisablehook = previous_hook
            logging.getLogger("asyncio").removeFilter(_QUIET_ASYNCIO)


@contextlib.contextmanager
def signals_held(arrived: list[int]) -> Iterator[None]:
    """SIGINT and SIGTERM arriving inside the block are only appended to
    ``arrived`` (what to do with them is the caller's); in a forked child they
    exit it at once. The previous handlers come back afterwards."""
    if not _in_main_thread():
        yield
        return
    owner = os.getpid()

    def hold(signum: int, frame: FrameType | None) -> None:
        _exit_if_forked(owner, signum)
        arrived.append(signum)

    previous = {sig: signal.signal(sig, hold) for sig in _SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[None]:
    """SIGINT and SIGTERM arriving inside the block are delivered when it ends,
    as :class:`Interrupted` (an error leaving the block is chained to it)."""
    arrived: list[int] = []
    try:
        with signals_held(arrived):
            yield
    finally:
        if arrived:
            # raised even over an error leaving the block (which becomes its __context__):
            # dropping the signal would let the run carry on
            raise Interrupted(arrived[0])


class Cleanup:
    """Cleanup steps that never hide an interrupt.

    Call :meth:`interrupted` from an ``except BaseException`` to say what is in
    flight; :meth:`run` then records a failing step in ``problems`` (and as a
    note on the interrupt) instead of raising. Without an interrupt in flight a
    failing step raises as before.

    >>> problems: list[str] = []
    >>> cleanup = Cleanup(problems)
    >>> cleanup.interrupted(KeyboardInterrupt())
    >>> def broken() -> None:
    ...     raise OSError(16, "busy")
    >>> cleanup.run("closing the kernel", broken)
    >>> problems
    ['closing the kernel: [Errno 16] busy']
    """

    def __init__(self, problems: list[str] | None = None) -> None:
        self.problems = problems if problems is not None else []
        self.interrupt: BaseException | None = None

    def interrupted(self, exc: BaseException) -> None:
        """Remember ``exc`` if it is an interrupt (KeyboardInterrupt, SystemExit)."""
        if self.interrupt is None and not isinstance(exc, Exception):
            self.interrupt = exc

    def run(self, what: str, step: Callable[[], Any]) -> None:
        """Run ``step``; a list it returns is added to the problems."""
        try:
            found = step()
        except Exception as exc:
            if self.interrupt is None:
                raise
            self.problems.append(f"{what}: {exc}")
            self.interrupt.add_note(f"while stopping, {what} failed: {exc!r}")
            return
        except BaseException as exc:  # a second interrupt during cleanup: remember it, keep its priority
            self.interrupted(exc)
            raise
        if isinstance(found, list):
            self.problems.extend(str(p) for p in found)
