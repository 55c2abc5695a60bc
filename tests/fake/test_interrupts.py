"""An interrupt always stops a run and cleans up, and a cleanup error never
hides it (issue 16: an EBUSY from closing the kernel replaced the
KeyboardInterrupt and the run went on with the next scenario)."""

from __future__ import annotations

import errno
import os
import signal
import sys
import weakref
from typing import Any

import pytest

from netsim import interrupts
from netsim.errors import kernel_error
from netsim.interrupts import (
    Cleanup,
    Interrupted,
    deferred_interrupts,
    exit_status,
    raise_if_interrupted,
    signals_interrupt,
)
from netsim.kernel import make_kernel
from netsim.scenario.runner import Backend, run_scenario
from netsim.scenario.schema import parse_scenario

SCENARIO = {
    "networks": [{"name": "n", "ipam": {"subnet": "10.60.0.0/24"}}],
    "containers": [{"name": "a", "networks": ["n"]}, {"name": "b", "networks": ["n"]}],
    "expect": [{"from": "a", "to": "b"}],
}


def _backend(closed: list[Any], *, close_fails: bool) -> Backend:
    def make(kind: str) -> Any:
        kernel = make_kernel("fake")
        real_close = kernel.close

        def close() -> None:
            real_close()
            closed.append(kernel)
            if close_fails:
                raise kernel_error(errno.EBUSY, "close of fake kernel: namespaces busy")

        kernel.close = close  # type: ignore[method-assign]
        return kernel

    def probe(*args: Any) -> Any:
        raise Interrupted(signal.SIGTERM)  # the signal lands while the scenario is probed

    return Backend(make_kernel=make, probe=probe)


@pytest.mark.parametrize("close_fails", [False, True])
def test_an_interrupt_mid_run_propagates_after_teardown(close_fails: bool) -> None:
    closed: list[Any] = []
    with pytest.raises(Interrupted) as info:
        run_scenario(parse_scenario(SCENARIO), backend=_backend(closed, close_fails=close_fails))
    assert len(closed) == 1 and closed[0].namespaces() == []  # torn down and closed all the same
    notes = getattr(info.value, "__notes__", [])
    assert (
        any("namespaces busy" in note for note in notes) == close_fails
    )  # the cleanup error rides along, never instead


def test_cleanup_errors_raise_when_nothing_is_interrupted() -> None:
    cleanup = Cleanup()
    with pytest.raises(OSError):
        cleanup.run("step", lambda: (_ for _ in ()).throw(OSError("busy")))
    cleanup.interrupted(ValueError("an ordinary error is not an interrupt"))
    assert cleanup.interrupt is None


def test_signals_arriving_during_a_deferred_block_are_delivered_after_it() -> None:
    done = []
    with signals_interrupt(), pytest.raises(Interrupted) as info, deferred_interrupts():
        os.kill(os.getpid(), signal.SIGTERM)
        done.append("the block finished first")
    assert done and info.value.signum == signal.SIGTERM and exit_status(info.value) == 143


def test_sigterm_raises_inside_and_the_old_handler_comes_back() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Interrupted), signals_interrupt():
        os.kill(os.getpid(), signal.SIGTERM)
        signal.pause()  # never reached for long: the handler raises
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_forked_child_exits_instead_of_unwinding_the_parents_stack() -> None:
    ready_r, ready_w = os.pipe()
    with signals_interrupt():
        pid = os.fork()
        if pid == 0:  # the child: wait for the signal; raising here would run the parent's finally blocks
            try:
                os.write(ready_w, b"!")  # past fork's reset of pending signals: a signal now is handled
                signal.pause()
            finally:
                os._exit(99)  # only reached if the handler raised: the failure this test looks for
        assert os.read(ready_r, 1) == b"!"
        os.close(ready_r)
        os.close(ready_w)
        os.kill(pid, signal.SIGTERM)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 128 + signal.SIGTERM


def test_a_signal_python_swallows_in_a_weakref_callback_still_stops_the_run(capsys: pytest.CaptureFixture[str]) -> None:
    class Owner:
        pass

    owner = Owner()

    raised_in_callback: list[type[BaseException]] = []

    def on_collect(_: object) -> None:
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(1000):  # the handler runs between these bytecodes: inside the callback
                pass
        except BaseException as exc:
            raised_in_callback.append(type(exc))
            raise

    watcher = weakref.ref(owner, on_collect)
    hook = sys.unraisablehook
    try:
        with signals_interrupt():
            del owner  # Python ignores what the callback raises: without the record the run went on
            assert watcher() is None and raised_in_callback == [Interrupted]
            with pytest.raises(Interrupted) as info:
                raise_if_interrupted()
        assert info.value.signum == signal.SIGTERM
        assert "Exception ignored" not in capsys.readouterr().err  # the signal's own fallout stays quiet
        raise_if_interrupted()  # once the block is left the record is gone: later work goes on
    finally:
        sys.unraisablehook = hook


def test_unraisable_errors_an_interrupt_did_not_cause_are_still_reported() -> None:
    seen: list[BaseException | None] = []
    hook = sys.unraisablehook
    sys.unraisablehook = lambda unraisable: seen.append(unraisable.exc_value)
    try:
        with signals_interrupt():

            class Broken:
                def __del__(self) -> None:
                    raise ValueError("a real bug in a finalizer")

            Broken()
        assert [type(e) for e in seen] == [ValueError]
    finally:
        sys.unraisablehook = hook


def test_a_closed_event_loop_is_fallout_only_after_a_signal() -> None:
    """An interrupt's teardown closes pyroute2's event loop under coroutines still
    in flight; what they raise when collected at exit is the signal's fallout. The
    same error with no signal handled is reported."""
    seen: list[BaseException | None] = []
    hook = sys.unraisablehook

    class ClosedLoop:
        def __del__(self) -> None:
            raise RuntimeError("Event loop is closed")

    sys.unraisablehook = lambda unraisable: seen.append(unraisable.exc_value)
    saved = list(interrupts._interrupted_before)
    try:
        interrupts._interrupted_before.clear()
        with signals_interrupt():
            ClosedLoop()
        assert [type(e) for e in seen] == [RuntimeError]
        with pytest.raises(Interrupted), signals_interrupt():
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(1000):  # the handler runs between these bytecodes
                pass
        seen.clear()
        ClosedLoop()  # collected after the block, as at interpreter exit
        assert seen == []
    finally:
        interrupts._interrupted_before[:] = saved
        sys.unraisablehook = hook
