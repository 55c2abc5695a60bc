"""Issue 16's adversarial corpus through all four commands, in-process: each
hostile input is one line on stderr naming the file and the key (or the line,
or why the file cannot be read), exit status 2, no traceback, nothing built,
and never a hang (a 2 s alarm per command)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest

from netsim.cli import commands, main
from netsim.scenario import parallel
from tests.fake.hostile_scenarios import Case, corpus, write_corpus

COMMANDS = {
    "run": ["run", "{file}", "-q"],
    "show": ["show", "{file}"],
    "trace": ["trace", "{file}", "--from", "web", "--to", "db"],
    "inspect": ["inspect", "{file}"],
}
#: a deadline against hangs (a FIFO, /dev/zero), not a speed measurement
DEADLINE_S = 2.0


class _Hang(Exception):
    pass


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Case, Path]]:
    return {case.name: (case, path) for case, path in write_corpus(tmp_path_factory.mktemp("hostile"))}


@pytest.fixture(autouse=True)
def nothing_built(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Anything that would build a scenario fails the test."""
    calls: list[str] = []

    def refuse(name: str):  # type: ignore[no-untyped-def]
        def build(*args: object, **kwargs: object) -> None:
            calls.append(name)
            raise AssertionError(f"{name} was called: something was built")

        return build

    monkeypatch.setattr(parallel, "run_scenario", refuse("run_scenario"))  # netsim run goes through parallel.py
    monkeypatch.setattr(commands, "built", refuse("built"))
    yield calls
    assert calls == []


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise _Hang


def test_the_corpus_is_large_enough() -> None:
    assert len(corpus()) >= 150


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_hostile_input_is_one_line_exit_2(
    command: str, written: dict[str, tuple[Case, Path]], capsys: pytest.CaptureFixture[str]
) -> None:
    problems = []
    previous = signal.signal(signal.SIGALRM, _alarm)
    try:
        for name, (case, path) in written.items():
            argv = [part.replace("{file}", str(path)) for part in COMMANDS[command]]
            signal.setitimer(signal.ITIMER_REAL, DEADLINE_S)
            try:
                status = main(argv)
            except _Hang:
                problems.append(f"{name}: still running after {DEADLINE_S} s")
                continue
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            out, err = capsys.readouterr()
            lines = err.splitlines()
            if status != 2 or len(lines) != 1 or "Traceback" in out + err:
                problems.append(f"{name}: status {status}, stderr {err[:300]!r}")
            elif not lines[0].startswith(f"netsim {command}: error: {path}"):
                problems.append(f"{name}: the error does not start with the file: {lines[0][:300]!r}")
            elif case.expect not in lines[0]:
                problems.append(f"{name}: {case.expect!r} not in {lines[0][:300]!r}")
    finally:
        signal.signal(signal.SIGALRM, previous)
    assert not problems, "\n".join(problems)


def test_a_fifo_inside_a_scenario_directory_is_refused_not_waited_for(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a.yaml").write_text("name: a\n")
    fifo = tmp_path / "b.yaml"
    os.mkfifo(fifo)
    assert main(["run", str(tmp_path), "-q"]) == 2
    assert (
        capsys.readouterr().err.strip() == f"netsim run: error: {fifo}: cannot read file: not a regular file (a FIFO)"
    )
