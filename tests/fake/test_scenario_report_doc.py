"""docs/scenario-report.md shows the report's JSON Schema: it must be the one
``netsim schema --report`` prints, and a real run's report must match it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema

from netsim.scenario.report import to_json
from netsim.scenario.reportjson import REPORT_SCHEMA
from netsim.scenario.runner import run_scenario
from netsim.scenario.schema import load_scenario

ROOT = Path(__file__).resolve().parents[2]


def test_the_documented_schema_is_the_real_one() -> None:
    text = (ROOT / "docs" / "scenario-report.md").read_text(encoding="utf-8")
    section = text.split("### The JSON Schema of the report", 1)[1]
    block = re.search(r"```json\n(.*?)\n```", section, re.S)
    assert block is not None
    assert json.loads(block.group(1)) == REPORT_SCHEMA


def test_a_real_report_matches_the_schema() -> None:
    results = [run_scenario(load_scenario(ROOT / "scenarios" / name)) for name in ("stop-start-restart.yaml",)]
    data = to_json(results)
    jsonschema.validate(data, REPORT_SCHEMA)
    kinds = {row["kind"] for row in data["scenarios"][0]["expectations"]}
    assert kinds == {"probe", "state"} and data["scenarios"][0]["passed"]
