"""``netsim schema``: the JSON Schema generated from the loader's own
declaration agrees with the loader: every scenario the loader accepts
validates, and a document the loader refuses for its *shape* (unknown or
missing keys, wrong types, bad enums, two actions in a step) is refused by
the schema too. Meaning (names resolve, subnets do not overlap) is the
loader's alone: a JSON Schema cannot state it."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netsim.cli import main
from netsim.errors import ScenarioError
from netsim.scenario.json_schema import DRAFT, scenario_json_schema
from netsim.scenario.schema import load_scenario, parse_scenario

SCENARIO_DIR = Path(__file__).resolve().parents[2] / "scenarios"
SHIPPED = sorted(SCENARIO_DIR.glob("**/*.yaml"))

#: a document touching most keys (valid: the first test says so)
BASE: dict[str, Any] = {
    "name": "base",
    "description": "all keys",
    "hosts": ["h1"],
    "store": {"local": "memory://"},
    "networks": [
        {
            "name": "front",
            "driver": "bridge",
            "options": {"com.docker.network.bridge.enable_icc": True},
            "ipam": {"subnet": "10.1.0.0/24", "ip_range": "10.1.0.128/25", "gateway": "10.1.0.1"},
            "labels": {"team": "web"},
        },
        {
            "name": "back",
            "ipv6": True,
            "internal": False,
            "ipam": {"subnet": "10.2.0.0/24", "subnet_v6": "fd00:2::/64", "aux_addresses": {"printer": "10.2.0.5"}},
        },
    ],
    "containers": [
        {
            "name": "web",
            "networks": [{"network": "front", "ip": "10.1.0.10", "mac": "02:42:0a:01:00:0a"}],
            "listen": ["tcp/80"],
            "publish": ["8080:80/tcp"],
        },
        {"name": "db", "networks": ["back"], "listen": ["tcp/5432", "udp/53"]},
        {"name": "later", "networks": ["back"], "state": "created"},
    ],
    "expect": [
        {"from": "web", "to": "db", "proto": "tcp", "port": 5432, "reachable": False},
        {"from": "outside", "to": "published:8080", "proto": "tcp"},
        {
            "container": "web",
            "has": {
                "interface": "eth0",
                "address": ["10.1.0.10/24", "fd00:2::5"],
                "mtu": 1500,
                "mac": "02:42:0a:01:00:0a",
                "up": True,
                "default_via": "10.1.0.1",
                "routes": [{"to": "10.2.0.0/24", "via": "10.1.0.1", "dev": "eth0"}],
            },
        },
        {"network": "front", "has": {"gateway": "10.1.0.1", "subnet": "10.1.0.0/24", "mtu": 1500}},
    ],
    "steps": [
        {"connect": {"container": "web", "network": "back"}, "expect": [{"from": "web", "to": "db"}]},
        {"disconnect": {"container": "web", "network": "back"}},
        {"remove_container": "db"},
        {"start": "later", "expect": [{"container": "later", "has": {"interfaces": ["lo", "eth0"]}}]},
        {"restart": "later"},
        {"stop": "web"},
        {"create_network": {"name": "extra", "ipam": {"subnet": "10.3.0.0/24"}}},
        {"create_container": {"name": "new", "networks": ["extra"], "listen": ["tcp/1"]}},
    ],
}

#: the loader's messages for what a JSON Schema can express
SHAPE_MESSAGES = (
    "unknown key",
    "required key is missing",
    "expected a mapping",
    "expected a list",
    "expected a string",
    "expected true or false, got",
    "expected a port number",
    "unknown protocol",
    "exactly one",
    "invalid subnet",
    "invalid MAC",
    "unknown value",
    "expected an MTU",
)


def _validator() -> Any:
    schema = scenario_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


VALIDATOR = _validator()


@pytest.fixture()
def validator() -> Any:
    return VALIDATOR


def test_the_schema_is_draft_2020_12_and_printed_by_the_cli(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == scenario_json_schema()
    assert printed["$schema"] == DRAFT
    assert printed["additionalProperties"] is False


def test_the_report_schema_is_printed_too(capsys: pytest.CaptureFixture[str]) -> None:
    from netsim.scenario.reportjson import REPORT_SCHEMA

    assert main(["schema", "--report"]) == 0
    assert json.loads(capsys.readouterr().out) == REPORT_SCHEMA


def test_the_schema_is_written_to_a_file(tmp_path: Path) -> None:
    out = tmp_path / "scenario.schema.json"
    assert main(["schema", "-o", str(out)]) == 0
    assert json.loads(out.read_text()) == scenario_json_schema()


def test_base_document_is_valid_for_both(validator: Any) -> None:
    parse_scenario(copy.deepcopy(BASE))
    assert list(validator.iter_errors(BASE)) == []


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(SCENARIO_DIR)))
def test_every_shipped_scenario_validates_against_the_schema(validator: Any, path: Path) -> None:
    load_scenario(path)  # the loader accepts it ...
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(data)]
    assert errors == []  # ... and so does an editor


@pytest.mark.parametrize("path", SHIPPED[:6], ids=lambda p: p.stem)
def test_draft_7_editors_read_it_the_same(path: Path) -> None:
    """Only keywords draft-07 also has: editors whose YAML server predates
    2020-12 (older VS Code YAML extensions) validate the same way."""
    schema = scenario_json_schema()
    draft7 = jsonschema.Draft7Validator({k: v for k, v in schema.items() if k != "$schema"})
    jsonschema.Draft7Validator.check_schema(draft7.schema)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert draft7.is_valid(data)
    assert not draft7.is_valid({**data, "colour": "red"})


def _places(node: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path inside ``node`` (mapping keys and list indexes)."""
    out = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        out.append((*at, key))
        out += _places(value, (*at, key))
    return out


def _mappings(node: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [at] if isinstance(node, dict) else []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        out += _mappings(value, (*at, key))
    return out


PLACES = _places(BASE)
MAPPINGS = _mappings(BASE)
ODD_VALUES = st.sampled_from([None, True, False, 7, 2.5, "zz", "TCP", [], {}, {"bogus": 1}, ["x"], -1, 70000])


def _at(data: Any, place: tuple[Any, ...]) -> Any:
    for key in place:
        data = data[key]
    return data


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    """BASE with one to three of: a value replaced, a key deleted, a key added."""
    data = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["replace", "delete", "add"]))
        if kind == "add":
            key = draw(st.sampled_from(["bogus", "connect", "remove_network", "ip", "name"]))
            value = draw(ODD_VALUES)
            try:
                target = _at(data, draw(st.sampled_from(MAPPINGS)))
            except (KeyError, IndexError, TypeError):
                continue  # an earlier mutation removed it
            if isinstance(target, dict):
                target[key] = value
            continue
        place = draw(st.sampled_from(PLACES))
        try:
            parent = _at(data, place[:-1])
            parent[place[-1]]
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed it
        if not isinstance(parent, dict | list):
            continue  # an earlier mutation made it a scalar
        if kind == "delete" and isinstance(parent, dict):
            del parent[place[-1]]
        else:
            parent[place[-1]] = draw(ODD_VALUES)
    return data


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_loader_and_schema_agree_on_shape(data: dict[str, Any]) -> None:
    validator = VALIDATOR
    try:
        parse_scenario(copy.deepcopy(data), file="m.yaml")
    except ScenarioError as exc:
        if any(message in str(exc) for message in SHAPE_MESSAGES):
            assert not validator.is_valid(data), f"the loader refuses ({exc}) but the schema accepts"
        return
    errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(data)]
    assert errors == [], "the loader accepts a document the schema refuses"
