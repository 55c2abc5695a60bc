"""Undo logs and rollback_on_error: order, failures kept going past, lazy descriptions."""

from __future__ import annotations

import doctest
import logging

import pytest

import netsim.undo
from netsim.undo import Undo, rollback_on_error


def test_doctests() -> None:
    failures, tried = doctest.testmod(netsim.undo)
    assert tried > 0 and failures == 0


def test_a_failed_step_is_noted_with_its_description_and_the_rest_still_run(caplog: pytest.LogCaptureFixture) -> None:
    done: list[str] = []
    described: list[str] = []

    def describe() -> str:
        described.append("asked")
        return "release 10.0.0.2/24"

    def stuck() -> None:
        raise OSError("device busy")

    with (
        pytest.raises(ValueError) as info,
        caplog.at_level(logging.WARNING, logger="netsim.undo"),
        rollback_on_error() as undo,
    ):
        undo.push("first", lambda: done.append("first"))
        undo.push(describe, stuck)
        undo.push("third", lambda: done.append("third"))
        raise ValueError("a later step failed")
    assert done == ["third", "first"]
    assert info.value.__notes__ == ["rollback incomplete: release 10.0.0.2/24: OSError('device busy')"]
    assert described == ["asked"] and "release 10.0.0.2/24" in caplog.text


def test_success_discards_the_steps_and_never_formats_a_description() -> None:
    def describe() -> str:
        raise AssertionError("a description is formatted only for a failed step")

    with rollback_on_error() as undo:
        undo.push(describe, lambda: None)
        assert len(undo) == 1
    assert len(undo) == 0 and isinstance(undo, Undo)
    assert undo.run() == []


def test_extend_moves_steps_into_a_longer_lived_log() -> None:
    done: list[int] = []
    teardown = Undo()
    with rollback_on_error() as undo:
        undo.push("one", lambda: done.append(1))
        undo.push("two", lambda: done.append(2))
        teardown.extend(undo)
    assert teardown.run() == [] and done == [2, 1]
