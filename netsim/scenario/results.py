"""What running a scenario produced: one result per expectation, per scenario."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from netsim.scenario.model import Expectation
from netsim.scenario.outcomes import observed_outcome
from netsim.scenario.state import StateResult

NOT_RUN = "not-run"


@dataclass
class ExpectationResult:
    """One probe's verdict. ``reachable`` is None when it never ran (the
    build or an earlier step failed), which counts as a failure."""

    expectation: Expectation
    #: "initial" or "step 2: disconnect web from front"
    phase: str
    #: the address actually probed ("" when it could not be resolved)
    dst: str = ""
    reachable: bool | None = None
    outcome: str = NOT_RUN
    #: fake kernel: the hop-by-hop path (netsim.kernel.base.TraceHop list)
    trace: list[Any] = field(default_factory=list)
    #: how long the probe took, retries included (0.0: never probed)
    seconds: float = 0.0
    #: the source address the probe was sent from (None: the kernel chose)
    sent_from: str | None = None
    #: ``seen_from`` (or ``netsim trace``): the namespace watched as the far end (None: not watched)
    far_end: str | None = None
    #: ... and the source address it saw (None: nothing arrived)
    seen: str | None = None
    #: ``seen_from``: the addresses it names on the built scenario
    seen_expected: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        exp = self.expectation
        if self.reachable is None or self.reachable != exp.reachable:
            return False
        if exp.outcome is not None and observed_outcome(self.outcome) != exp.outcome:
            return False
        return exp.seen_from is None or (self.seen is not None and self.seen in self.seen_expected)


@dataclass
class ScenarioResult:
    name: str
    kernel: str
    file: str = ""
    results: list[ExpectationResult] = field(default_factory=list)
    #: why the build, a step or the teardown failed (None if nothing did)
    error: str | None = None
    #: differences between the kernel's snapshot after teardown and its baseline
    leaks: list[str] = field(default_factory=list)
    seconds: float = 0.0
    #: state assertions' verdicts (``{container|network: ..., has: ...}``), in phase order
    state_results: list[StateResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        checks = all(r.passed for r in self.results) and all(r.passed for r in self.state_results)
        return self.error is None and not self.leaks and checks

    @property
    def failures(self) -> int:
        return sum(not r.passed for r in self.results) + sum(not r.passed for r in self.state_results)


#: what a phase reports to the progress printer: its probes, then its state assertions
PhaseResult = ExpectationResult | StateResult


def snapshot_diff(baseline: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Human-readable differences between two kernel snapshots (leak check).

    >>> snapshot_diff({"a": {"links": []}}, {"a": {"links": [1]}, "b": {}})
    ['namespace b is left behind', 'namespace a: links differ']
    """
    problems = [f"namespace {ns} is left behind" for ns in sorted(set(after) - set(baseline))]
    problems += [f"namespace {ns} disappeared" for ns in sorted(set(baseline) - set(after))]
    for ns in sorted(set(baseline) & set(after)):
        for key in sorted(set(baseline[ns]) | set(after[ns])):
            if baseline[ns].get(key) != after[ns].get(key):
                problems.append(f"namespace {ns}: {key} differ")
    return problems
