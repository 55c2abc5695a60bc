"""State assertions and lifecycle steps at load time, and how they are
reported: every impossible use is refused before anything is built, naming
the file and the key path; results show in the table, JSON and JUnit."""

from __future__ import annotations

import copy
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from netsim.errors import ScenarioError
from netsim.scenario.model import Expectation
from netsim.scenario.report import format_table, to_json, write_junit
from netsim.scenario.reportjson import REPORT_SCHEMA
from netsim.scenario.results import ExpectationResult, ScenarioResult
from netsim.scenario.schema import parse_scenario
from netsim.scenario.state import StateResult
from netsim.scenario.statecheck import RouteFact, StateCheck

BASE: dict[str, Any] = {
    "networks": [
        {"name": "front", "ipam": {"subnet": "10.1.0.0/24"}},
        {"name": "lan", "driver": "macvlan", "ipam": {"subnet": "198.18.0.0/24"}},
    ],
    "containers": [
        {"name": "web", "networks": ["front"], "listen": ["tcp/80"]},
        {"name": "db", "networks": ["front"], "state": "created"},
    ],
}


def scenario(**extra: Any) -> Any:
    data = copy.deepcopy(BASE)
    data.update(extra)
    return parse_scenario(data, file="s.yaml")


def test_state_assertions_are_read_with_their_facts() -> None:
    loaded = scenario(
        expect=[
            {
                "container": "web",
                "has": {
                    "interface": "eth0",
                    "address": ["10.1.0.2/24", "fd00::2"],
                    "mtu": 1500,
                    "mac": "02-42-0A-01-00-02",
                    "default_via": "None",
                    "routes": [{"to": "10.9.0.0/16", "via": "10.1.0.254"}, {"to": "default", "via": "fd00::1"}],
                },
            },
            {"network": "front", "has": {"gateway": "10.1.0.1", "subnet": "10.1.0.0/24"}},
            {"from": "web", "to": "outside"},
        ]
    )
    web, front = loaded.state
    assert web == StateCheck(
        "container",
        "web",
        "expect[0]",
        interface="eth0",
        addresses=("10.1.0.2/24", "fd00::2"),
        mtu=1500,
        mac="02:42:0a:01:00:02",
        default_via="none",
        routes=(RouteFact("10.9.0.0/16", "10.1.0.254"), RouteFact("default", "fd00::1")),
    )
    assert (front.subject, front.gateway, front.subnet, front.path) == (
        "network",
        "10.1.0.1",
        "10.1.0.0/24",
        "expect[1]",
    )
    assert [e.target for e in loaded.expect] == ["outside"]  # probes stay probes
    assert loaded.expectation_count() == 3


def test_lifecycle_steps_are_read() -> None:
    loaded = scenario(
        steps=[
            {"start": "db"},
            {"stop": "web"},
            {"restart": "db"},
            {"create_network": {"name": "back", "ipam": {"subnet": "10.2.0.0/24"}}},
            {"create_container": {"name": "late", "networks": ["back"], "state": "created"}},
            {"start": "late", "expect": [{"container": "late", "has": {"interfaces": ["lo", "eth0"]}}]},
        ]
    )
    actions = [(s.action, s.container, s.network) for s in loaded.steps]
    assert actions == [
        ("start", "db", ""),
        ("stop", "web", ""),
        ("restart", "db", ""),
        ("create_network", "", "back"),
        ("create_container", "late", ""),
        ("start", "late", ""),
    ]
    assert loaded.container("late").state == "created" and loaded.network("back").ipam.subnet == "10.2.0.0/24"
    assert loaded.steps[-1].state[0].interfaces == ("eth0", "lo")
    assert [s.describe() for s in loaded.steps[2:5]] == ["restart db", "create network back", "create container late"]


@pytest.mark.parametrize(
    ("extra", "path", "message"),
    [
        # which container exists, and runs, at that point
        ({"steps": [{"start": "web"}]}, "steps[0].start", "'web' is already running"),
        ({"steps": [{"stop": "db"}]}, "steps[0].stop", "'db' is not running"),
        ({"steps": [{"restart": "db"}]}, "steps[0].restart", "use start"),
        ({"steps": [{"stop": "ghost"}]}, "steps[0].stop", "'ghost' does not exist yet"),
        (
            {"steps": [{"stop": "late"}, {"create_container": {"name": "late"}}]},
            "steps[0].stop",
            "'late' does not exist yet at this point",
        ),
        (
            {"steps": [{"remove_container": "web"}, {"start": "web"}]},
            "steps[1].start",
            "'web' was removed in an earlier step",
        ),
        ({"expect": [{"from": "db", "to": "web"}]}, "expect[0].from", "'db' is not running at this point"),
        ({"expect": [{"from": "web", "to": "db"}]}, "expect[0].to", "impossible: container 'db' is not running"),
        (
            {"expect": [{"from": "web", "to": "late"}], "steps": [{"create_container": {"name": "late"}}]},
            "expect[0].to",
            "'late' does not exist yet",
        ),
        ({"expect": [{"container": "db", "has": {"interfaces": []}}]}, "expect[0].container", "is not running"),
        ({"expect": [{"container": "nope", "has": {"interfaces": []}}]}, "expect[0].container", "is unknown"),
        # names created by steps
        (
            {"steps": [{"create_container": {"name": "web"}}]},
            "steps[0].create_container.name",
            "duplicate container 'web'",
        ),
        (
            {"steps": [{"create_network": {"name": "front"}}]},
            "steps[0].create_network.name",
            "duplicate network 'front'",
        ),
        (
            {"steps": [{"create_network": {"name": "b", "ipam": {"subnet": "10.1.0.128/25"}}}]},
            "steps[0].create_network.ipam.subnet",
            "overlaps 10.1.0.0/24 of network 'front'",
        ),
        (
            {"steps": [{"create_container": {"name": "x", "networks": ["nowhere"]}}]},
            "steps[0].create_container.networks[0]",
            "unknown network 'nowhere'",
        ),
        (
            {"steps": [{"create_container": {"name": "x", "host": "h7"}}]},
            "steps[0].create_container.host",
            "unknown host 'h7'",
        ),
        # state assertions' own shape and meaning
        ({"expect": [{"network": "lan", "has": {"subnet": "198.18.0.0/24"}}]}, "expect[0].network", "has none"),
        ({"expect": [{"network": "gone", "has": {"gateway": "10.1.0.1"}}]}, "expect[0].network", "unknown or removed"),
        ({"expect": [{"container": "web", "has": {"mtu": 1500}}]}, "expect[0].has.mtu", "name it with interface:"),
        ({"expect": [{"container": "web", "has": {}}]}, "expect[0].has", "nothing to check"),
        ({"expect": [{"container": "web", "has": {"interface": "eth0", "mtu": 9}}]}, "expect[0].has.mtu", "68-65535"),
        ({"expect": [{"container": "web", "has": {"colour": 1}}]}, "expect[0].has.colour", "unknown key 'colour'"),
        ({"expect": [{"container": "web"}]}, "expect[0].has", "required key is missing"),
        ({"expect": [{"has": {"up": True}}]}, "expect[0]", "names a container or a network"),
        (
            {"expect": [{"container": "web", "has": {"address": "10.1.0.300"}}]},
            "expect[0].has.address",
            "invalid address",
        ),
        (
            {"expect": [{"container": "web", "has": {"default_via": "fd00::1"}}]},
            "expect[0].has.default_via",
            "expected an IPv4 address",
        ),
        (
            {"expect": [{"container": "web", "has": {"routes": [{"to": "10.9.0.1/16"}]}}]},
            "expect[0].has.routes[0].to",
            "expected default or a CIDR",
        ),
        (
            {"expect": [{"container": "web", "has": {"routes": [{"to": "10.9.0.0/16", "via": "fd00::1"}]}}]},
            "expect[0].has.routes[0].via",
            "not of the family",
        ),
        ({"containers": [{"name": "x", "state": "paused"}]}, "containers[0].state", "unknown value 'paused'"),
        # host ports are allocated at start: one a running container holds is refused
        (
            {
                "containers": [
                    {"name": "web", "networks": ["front"], "publish": ["8080:80"]},
                    {"name": "db", "networks": ["front"], "state": "created"},
                ],
                "steps": [{"create_container": {"name": "twin", "networks": ["front"], "publish": ["8080:81"]}}],
            },
            "steps[0].create_container.publish",
            "8080/tcp is already published by running 'web'",
        ),
        (
            {
                "containers": [{"name": "web", "networks": ["front"], "publish": ["8080:80"]}],
                "steps": [
                    {
                        "create_container": {
                            "name": "twin",
                            "networks": ["front"],
                            "publish": ["8080:81"],
                            "state": "created",
                        }
                    },
                    {"start": "twin"},
                ],
            },
            "steps[1].start",
            "already published by running 'web'",
        ),
    ],
)
def test_impossible_or_malformed_uses_are_refused_with_file_and_key(
    extra: dict[str, Any], path: str, message: str
) -> None:
    with pytest.raises(ScenarioError) as caught:
        scenario(**extra)
    assert caught.value.path == path, str(caught.value)
    assert message in str(caught.value)
    assert str(caught.value).startswith(f"s.yaml:{path}: ")


def test_a_port_freed_by_stop_can_be_taken() -> None:
    loaded = scenario(
        containers=[{"name": "web", "networks": ["front"], "publish": ["8080:80"]}],
        steps=[{"stop": "web"}, {"create_container": {"name": "twin", "networks": ["front"], "publish": ["8080:81"]}}],
    )
    assert loaded.steps[1].new_container is not None


def test_connect_and_disconnect_on_a_stopped_container_are_allowed() -> None:
    # docker network connect/disconnect work on a stopped container: they change its configuration
    loaded = scenario(
        networks=[*BASE["networks"], {"name": "back", "ipam": {"subnet": "10.2.0.0/24"}}],
        steps=[{"connect": {"container": "db", "network": "back", "ip": "10.2.0.9"}}, {"start": "db"}],
    )
    assert loaded.steps[0].attachment is not None and loaded.steps[0].attachment.ip == "10.2.0.9"


def results() -> list[ScenarioResult]:
    one = ScenarioResult("one", "fake", "one.yaml", seconds=0.25)
    one.results = [
        ExpectationResult(Expectation("web", "db", "tcp", 80), "step 1: start db", "fd00::3", True, "syn-ack")
    ]
    one.results[0].seconds = 0.0125
    held = StateResult(StateCheck("network", "front", "expect[0]", gateway="10.1.0.1"), "initial", "holds")
    held.got = [("gateway", "10.1.0.1")]
    differs = StateResult(
        StateCheck("container", "db", "steps[0].expect[1]", interface="eth0", mtu=1500), "step 1: start db"
    )
    differs.outcome, differs.got, differs.problems = "differs", [("mtu", "1450")], ["mtu of eth0 is 1450, not 1500"]
    one.state_results = [held, differs]
    return [one]


def test_state_rows_in_the_table_in_phase_order() -> None:
    lines = format_table(results()).splitlines()
    assert "one#1" in lines[2] and "(network state)" in lines[2] and "as expected" in lines[2]
    assert "one#2 [step 1]" in lines[3] and "db" in lines[3] and lines[3].endswith("PASS")  # the probe
    assert "one#3 [step 1]" in lines[4] and "db eth0" in lines[4] and "mtu 1450" in lines[4]
    assert "differs: mtu of eth0 is 1450, not 1500" in lines[4] and lines[4].endswith("FAIL")
    assert lines[-1] == "0/1 scenarios passed, 2/3 expectations hold"
    assert results()[0].failures == 1


def test_json_report_carries_every_cell_and_matches_its_schema(tmp_path: Path) -> None:
    data = to_json(results())
    jsonschema.Draft202012Validator.check_schema(REPORT_SCHEMA)
    jsonschema.validate(data, REPORT_SCHEMA)
    rows = data["scenarios"][0]["expectations"]
    assert [(r["index"], r["kind"], r["step"]) for r in rows] == [(1, "state", None), (2, "probe", 1), (3, "state", 1)]
    probe = rows[1]
    assert (probe["address"], probe["family"], probe["outcome"], probe["seconds"]) == ("fd00::3", 6, "ok", 0.0125)
    assert rows[2]["expected"] == [{"key": "mtu", "value": "1500"}]
    assert rows[2]["got"] == [{"key": "mtu", "value": "1450"}] and rows[2]["passed"] is False
    # the schema is strict where it speaks: a state row with an unknown key is refused
    broken = json.loads(json.dumps(data))
    broken["scenarios"][0]["expectations"][0]["colour"] = "red"
    assert not jsonschema.Draft202012Validator(REPORT_SCHEMA).is_valid(broken)


def test_junit_has_a_case_per_state_assertion(tmp_path: Path) -> None:
    path = tmp_path / "j.xml"
    write_junit(results(), str(path))
    suite = ET.parse(path).getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == "4" and suite.get("failures") == "1"
    failure = suite.find("testcase/failure")
    assert failure is not None and "mtu of eth0 is 1450" in (failure.text or "")
