"""One line per scenario and per phase, written as the runner goes (stderr)."""

from __future__ import annotations

from typing import TextIO

from netsim.scenario.model import Scenario
from netsim.scenario.results import PhaseResult, ScenarioResult


class ProgressPrinter:
    """The runner's :class:`netsim.scenario.runner.Progress`, printing to ``stream``.

    ``total`` numbers the scenarios (``[2/12]``); ``quiet`` prints nothing.
    """

    def __init__(self, stream: TextIO, *, total: int = 0, quiet: bool = False) -> None:
        self.stream = stream
        self.total = total
        self.quiet = quiet
        self.count = 0

    def _say(self, line: str) -> None:
        if not self.quiet:
            print(line, file=self.stream, flush=True)

    def scenario_started(self, scenario: Scenario, kernel: str) -> None:
        self.count += 1
        of = f"/{self.total}" if self.total else ""
        self._say(f"[{self.count}{of}] {scenario.name} on the {kernel} kernel: building")

    def phase_done(self, scenario: Scenario, phase: str, results: list[PhaseResult]) -> None:
        passed = sum(r.passed for r in results)
        mark = "ok" if passed == len(results) else "FAIL"
        self._say(f"    {phase}: {passed}/{len(results)} expectations hold {mark}")

    def scenario_done(self, result: ScenarioResult) -> None:
        verdict = "PASS" if result.passed else "FAIL"
        self._say(f"    {verdict} {result.name} ({result.seconds:.2f}s)")
        if result.error:
            self._say(f"    error: {result.error}")
        for leak in result.leaks:
            self._say(f"    leak: {leak}")
