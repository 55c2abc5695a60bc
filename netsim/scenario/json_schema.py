"""The JSON Schema of scenario files (``netsim schema``), for editors; and
of ``netsim run --json`` reports (``netsim schema --report``).

Generated from :data:`netsim.scenario.definition.SCENARIO`, the declaration
the loader reads every mapping through: a key the loader accepts is a key the
schema offers, with the same description. The schema checks shape (keys,
types, ports, address syntax, one action per step); the loader checks
meaning on top (names resolve, subnets do not overlap, a static address fits
its subnet), which no JSON Schema can state.

>>> schema = scenario_json_schema()
>>> schema["$schema"], sorted(schema["properties"])[:3]
('https://json-schema.org/draft/2020-12/schema', ['containers', 'description', 'expect'])
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from netsim.scenario.definition import SCENARIO
from netsim.scenario.shape import to_json_schema

DRAFT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_ID = "https://netsim.invalid/schemas/scenario.json"


def scenario_json_schema() -> dict[str, Any]:
    """The whole schema as a dict (draft 2020-12)."""
    return {"$schema": DRAFT, "$id": SCHEMA_ID, **to_json_schema(SCENARIO)}


def schema_text() -> str:
    return json.dumps(scenario_json_schema(), indent=2) + "\n"


def add_parser(sub: Any) -> None:
    """The ``netsim schema`` subcommand."""
    parser = sub.add_parser(
        "schema",
        help="print the JSON Schema of scenario files (for editors: yaml.schemas)",
        description="Print the JSON Schema (draft 2020-12) of scenario files; see scenarios/README.md for VS Code.",
    )
    parser.add_argument("-o", "--output", metavar="FILE", help="write it to FILE instead of standard output")
    parser.add_argument(
        "--report",
        action="store_true",
        help="the schema of netsim run --json reports instead (docs/scenario-report.md)",
    )


def cmd_schema(args: argparse.Namespace) -> int:
    if args.report:
        from netsim.scenario.reportjson import REPORT_SCHEMA

        text = json.dumps(REPORT_SCHEMA, indent=2) + "\n"
    else:
        text = schema_text()
    if args.output:
        with open(args.output, "w", encoding="utf-8") as out:
            out.write(text)
    else:
        print(text, end="")
    return 0
