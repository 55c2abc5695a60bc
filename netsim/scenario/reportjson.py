"""What one result row says, for the table and for ``--json`` alike.

Probes and state assertions are reported in one list per scenario, in phase
order (a phase's probes, then its state assertions), numbered from 1: the
``#N`` of the text table is the ``index`` of the JSON. The JSON carries
everything the table shows and more (the resolved address and its family,
the step, each check's time); :data:`REPORT_SCHEMA` is its JSON Schema,
documented in docs/scenario-report.md.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from netsim.scenario.outcomes import observed_json, observed_outcome
from netsim.scenario.results import ExpectationResult, ScenarioResult
from netsim.scenario.state import StateResult

Row = ExpectationResult | StateResult
REPORT_VERSION = 2
_STEP_RE = re.compile(r"^step (\d+):")


def step_number(phase: str) -> int | None:
    """``"step 3: stop web"`` → 3; ``"initial"`` → None.

    >>> step_number("step 12: remove network back"), step_number("initial")
    (12, None)
    """
    match = _STEP_RE.match(phase)
    return int(match.group(1)) if match else None


def ordered(scenario: ScenarioResult) -> list[Row]:
    """Every row of one scenario in phase order (stable: the file's order within a phase)."""
    rows: list[Row] = [*scenario.results, *scenario.state_results]
    return sorted(rows, key=lambda row: (step_number(row.phase) or 0, isinstance(row, StateResult)))


def row_id(scenario: ScenarioResult, index: int, phase: str) -> str:
    return f"{scenario.name}#{index}" + ("" if phase == "initial" else f" [{phase.split(':')[0]}]")


def family_of(address: str) -> int | None:
    try:
        return ipaddress.ip_address(address).version
    except ValueError:
        return None


def state_cells(res: StateResult) -> tuple[str, str, str, str, str, str]:
    """(from, to, proto/port, expected, got, outcome) cells of a state row."""
    check = res.check
    subject = f"{check.name} {check.interface}" if check.interface else check.name
    expected = ", ".join(f"{key} {value}" for key, value in check.facts())
    # the table says what differs; --json always carries every value read
    got = "as expected" if res.passed else ", ".join(f"{key} {value}" for key, value in res.got) or "-"
    outcome = res.outcome if not res.problems else f"{res.outcome}: {'; '.join(res.problems)}"
    return subject, f"({check.subject} state)", "-", expected, got, outcome


def probe_json(scenario: ScenarioResult, index: int, r: ExpectationResult) -> dict[str, Any]:
    exp = r.expectation
    return {
        "index": index,
        "id": row_id(scenario, index, r.phase),
        "kind": "probe",
        "phase": r.phase,
        "step": step_number(r.phase),
        "from": exp.source,
        "to": exp.target,
        "proto": exp.proto,
        "port": exp.port,
        "expect": exp.reachable,
        "reachable": r.reachable,
        "address": r.dst or None,
        "family": family_of(r.dst),
        "outcome": observed_outcome(r.outcome),
        "probe_outcome": r.outcome,
        **observed_json(r),
        "passed": r.passed,
        "seconds": round(getattr(r, "seconds", 0.0), 6),
    }


def state_json(scenario: ScenarioResult, index: int, r: StateResult) -> dict[str, Any]:
    check = r.check
    return {
        "index": index,
        "id": row_id(scenario, index, r.phase),
        "kind": "state",
        "phase": r.phase,
        "step": step_number(r.phase),
        "subject": check.subject,
        "name": check.name,
        "interface": check.interface,
        "expected": [{"key": key, "value": value} for key, value in check.facts()],
        "got": [{"key": key, "value": value} for key, value in r.got],
        "problems": list(r.problems),
        "outcome": r.outcome,
        "passed": r.passed,
        "seconds": round(r.seconds, 6),
    }


def scenario_json(s: ScenarioResult) -> dict[str, Any]:
    rows = [
        state_json(s, i, row) if isinstance(row, StateResult) else probe_json(s, i, row)
        for i, row in enumerate(ordered(s), 1)
    ]
    return {
        "name": s.name,
        "kernel": s.kernel,
        "file": s.file,
        "passed": s.passed,
        "seconds": round(s.seconds, 6),
        "error": s.error,
        "leaks": list(s.leaks),
        "expectations": rows,
    }


_PAIR = {
    "type": "object",
    "properties": {"key": {"type": "string"}, "value": {"type": "string"}},
    "required": ["key", "value"],
    "additionalProperties": False,
}
_COMMON = {
    "index": {"type": "integer", "minimum": 1, "description": "the N of the table's scenario#N"},
    "id": {"type": "string", "description": "the table's expectation cell, e.g. web#3 [step 2]"},
    "phase": {"type": "string", "description": "initial, or 'step N: what it did'"},
    "step": {"type": ["integer", "null"], "description": "N of the phase's step; null: initial"},
    "passed": {"type": "boolean"},
    "seconds": {"type": "number", "minimum": 0, "description": "time spent on this check (probe or kernel read)"},
}
_PROBE = {
    "type": "object",
    "properties": {
        **_COMMON,
        "kind": {"const": "probe"},
        "from": {"type": "string"},
        "to": {"type": "string", "description": "the target as written"},
        "proto": {"enum": ["icmp", "tcp", "udp"]},
        "port": {"type": ["integer", "null"]},
        "expect": {"type": "boolean", "description": "reachable: as the file says"},
        "reachable": {"type": ["boolean", "null"], "description": "null: never probed (build or step failed)"},
        "address": {"type": ["string", "null"], "description": "the address actually probed"},
        "family": {"enum": [4, 6, None], "description": "of that address (or as family: asked)"},
        "outcome": {"type": "string", "description": "how the probe ended: ok, rst, timeout, ...-unreachable, ..."},
        "probe_outcome": {"type": "string", "description": "the probe's own word (syn-ack, echo-reply, ...)"},
        "expect_outcome": {"type": "string"},
        "seen_from": {"type": "string"},
        "seen": {"type": ["string", "null"]},
    },
    "required": [
        *_COMMON,
        *("kind", "from", "to", "proto", "port", "expect", "reachable", "address", "family", "outcome"),
        "probe_outcome",
    ],
    # open: expectation keys other features add (dns: ...) bring their own result keys
}
_STATE = {
    "type": "object",
    "properties": {
        **_COMMON,
        "kind": {"const": "state"},
        "subject": {"enum": ["container", "network"]},
        "name": {"type": "string"},
        "interface": {"type": ["string", "null"]},
        "expected": {"type": "array", "items": _PAIR, "description": "the asserted facts, in table order"},
        "got": {"type": "array", "items": _PAIR, "description": "what the kernel showed for them"},
        "problems": {"type": "array", "items": {"type": "string"}},
        "outcome": {"type": "string", "description": "holds, differs, not-run, or error: ..."},
    },
    "required": [*_COMMON, "kind", "subject", "name", "interface", "expected", "got", "problems", "outcome"],
    "additionalProperties": False,
}
#: the JSON Schema of ``netsim run --json`` (docs/scenario-report.md)
REPORT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "netsim run --json report",
    "type": "object",
    "properties": {
        "version": {"const": REPORT_VERSION},
        "scenarios": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "kernel": {"type": "string"},
                    "file": {"type": "string"},
                    "passed": {"type": "boolean"},
                    "seconds": {"type": "number", "minimum": 0},
                    "error": {"type": ["string", "null"], "description": "why the build, a step or teardown failed"},
                    "leaks": {"type": "array", "items": {"type": "string"}},
                    "expectations": {"type": "array", "items": {"oneOf": [_PROBE, _STATE]}},
                },
                "required": ["name", "kernel", "file", "passed", "seconds", "error", "leaks", "expectations"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["version", "scenarios"],
    "additionalProperties": False,
}
