"""Results as a text table, as JSON (the issue's exact shape) and as JUnit XML."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

from netsim.scenario.outcomes import observed_text
from netsim.scenario.reportjson import REPORT_VERSION, ordered, row_id, scenario_json, state_cells
from netsim.scenario.results import ScenarioResult
from netsim.scenario.state import StateResult

TABLE_HEADER = ("expectation", "from", "to", "proto/port", "expected", "got", "outcome", "result")


def _yes_no(value: bool | None) -> str:
    if value is None:
        return "-"
    return "reachable" if value else "unreachable"


def table_rows(results: list[ScenarioResult]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for scenario in results:
        for i, res in enumerate(ordered(scenario), 1):
            if isinstance(res, StateResult):
                cells = state_cells(res)
                rows.append((row_id(scenario, i, res.phase), *cells, "PASS" if res.passed else "FAIL"))
                continue
            exp = res.expectation
            target = exp.target if not res.dst or res.dst == exp.target else f"{exp.target} ({res.dst})"
            rows.append(
                (
                    f"{scenario.name}#{i}" + ("" if res.phase == "initial" else f" [{res.phase.split(':')[0]}]"),
                    exp.source,
                    target,
                    exp.proto_port,
                    _yes_no(exp.reachable),
                    _yes_no(res.reachable),
                    observed_text(res),
                    "PASS" if res.passed else "FAIL",
                )
            )
    return rows


#: a cell wider than this (a state assertion lists every attribute) wraps onto
#: continuation lines instead of widening its column for every row
CELL_WIDTH = 48


def _wrapped(cell: str) -> list[str]:
    """``cell`` in lines of at most :data:`CELL_WIDTH`, broken between its
    comma-separated items (an attribute and its value stay on one line).

    >>> _wrapped("mtu 1450, mac 02:42:0a:3d:00:0a, up true, default_via 10.61.0.1, route 10.61.0.0/24 dev eth0")
    ['mtu 1450, mac 02:42:0a:3d:00:0a, up true,', 'default_via 10.61.0.1,', 'route 10.61.0.0/24 dev eth0']
    """
    if len(cell) <= CELL_WIDTH:
        return [cell]
    lines: list[str] = []
    for item in cell.split(", "):
        if lines and len(lines[-1]) + len(item) + 3 <= CELL_WIDTH:  # room for its comma
            lines[-1] += ", " + item
        else:
            if lines:
                lines[-1] += ","
            lines.append(item)
    return lines


def _row_lines(row: list[list[str]], widths: list[int]) -> list[str]:
    """One table row as lines: continuation lines carry only the wrapped cells."""
    height = max(len(pieces) for pieces in row)
    return [
        "  ".join(
            (pieces[i] if i < len(pieces) else "").ljust(width) for pieces, width in zip(row, widths, strict=True)
        ).rstrip()
        for i in range(height)
    ]


def format_table(results: list[ScenarioResult]) -> str:
    """An aligned plain-text table, then one summary line per failed scenario."""
    rows = [[_wrapped(cell) for cell in row] for row in [TABLE_HEADER, *table_rows(results)]]
    widths = [max(len(piece) for row in rows for piece in row[col]) for col in range(len(TABLE_HEADER))]
    lines = [line for row in rows for line in _row_lines(row, widths)]
    lines.insert(1, "  ".join("-" * width for width in widths))
    for scenario in results:
        if scenario.error:
            lines.append(f"{scenario.name}: FAIL: {scenario.error}")
        for leak in scenario.leaks:
            lines.append(f"{scenario.name}: FAIL: leak: {leak}")
    passed = sum(s.passed for s in results)
    checks = sum(len(s.results) + len(s.state_results) for s in results)
    held = sum(r.passed for s in results for r in s.results)
    held += sum(r.passed for s in results for r in s.state_results)
    lines.append(f"{passed}/{len(results)} scenarios passed, {held}/{checks} expectations hold")
    return "\n".join(lines)


def to_json(results: list[ScenarioResult]) -> dict[str, Any]:
    """``{"version": 2, "scenarios": [{"name", "kernel", "passed", "expectations": [...]}]}``:
    every row of the table and more; the shape is :data:`reportjson.REPORT_SCHEMA`
    (docs/scenario-report.md)."""
    return {"version": REPORT_VERSION, "scenarios": [scenario_json(s) for s in results]}


def write_json(results: list[ScenarioResult], path: str) -> None:
    with open(path, "w", encoding="utf-8") as out:
        json.dump(to_json(results), out, indent=2)
        out.write("\n")


def to_junit(results: list[ScenarioResult]) -> ET.Element:
    """One testsuite per scenario, one testcase per expectation, plus a
    ``teardown and leak check`` case that fails on build errors and leaks."""
    root = ET.Element("testsuites", name="netsim")
    for s in results:
        cases = len(s.results) + len(s.state_results) + 1
        failures = s.failures + (0 if s.error is None and not s.leaks else 1)
        suite = ET.SubElement(
            root,
            "testsuite",
            name=f"{s.name}[{s.kernel}]",
            tests=str(cases),
            failures=str(failures),
            time=f"{s.seconds:.3f}",
        )
        if s.file:
            suite.set("file", s.file)
        for i, res in enumerate(ordered(s), 1):
            if isinstance(res, StateResult):
                case = ET.SubElement(
                    suite, "testcase", classname=f"netsim.{s.name}", name=f"{i}: {res.check.describe()}"
                )
                if not res.passed:
                    failure = ET.SubElement(case, "failure", message=res.outcome)
                    failure.text = f"{res.phase}: " + "; ".join(res.problems or [res.outcome])
                continue
            case = ET.SubElement(
                suite, "testcase", classname=f"netsim.{s.name}", name=f"{i}: {res.expectation.describe()}"
            )
            if not res.passed:
                failure = ET.SubElement(case, "failure", message=f"got {_yes_no(res.reachable)} ({res.outcome})")
                failure.text = f"{res.phase}: probed {res.dst or '(no address)'}: {res.outcome}"
        case = ET.SubElement(suite, "testcase", classname=f"netsim.{s.name}", name="build, teardown and leak check")
        if s.error or s.leaks:
            failure = ET.SubElement(case, "failure", message=s.error or "leaked kernel state")
            failure.text = "\n".join(([s.error] if s.error else []) + [f"leak: {leak}" for leak in s.leaks])
    return root


def write_junit(results: list[ScenarioResult], path: str) -> None:
    tree = ET.ElementTree(to_junit(results))
    ET.indent(tree)
    tree.write(path, encoding="utf-8", xml_declaration=True)
