"""Scenario loading and validation: every shipped file loads; every kind of
bad input is a ScenarioError naming the file and key path, never a traceback."""

from __future__ import annotations

import copy
import ipaddress
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netsim.errors import ScenarioError
from netsim.scenario.model import Attachment, ListenSpec, PublishSpec
from netsim.scenario.schema import load_scenario, parse_scenario, scenario_files

SCENARIO_DIR = Path(__file__).resolve().parents[2] / "scenarios"
SHIPPED = sorted(SCENARIO_DIR.glob("*.yaml"))

BASE: dict[str, Any] = {
    "name": "base",
    "networks": [
        {"name": "front", "ipam": {"subnet": "10.1.0.0/24", "ip_range": "10.1.0.128/25", "gateway": "10.1.0.1"}},
        {"name": "back", "ipam": {"subnet": "10.2.0.0/24"}},
    ],
    "containers": [
        {
            "name": "web",
            "networks": [{"network": "front", "ip": "10.1.0.10"}],
            "listen": ["tcp/80"],
            "publish": ["8080:80/tcp"],
        },
        {"name": "db", "networks": ["back"], "listen": ["tcp/5432", "udp/53"]},
    ],
    "expect": [
        {"from": "web", "to": "db", "proto": "tcp", "port": 5432, "reachable": False},
        {"from": "outside", "to": "published:8080", "proto": "tcp", "reachable": True},
    ],
    "steps": [
        {
            "connect": {"container": "web", "network": "back"},
            "expect": [{"from": "web", "to": "db", "proto": "tcp", "port": 5432}],
        },
    ],
}


def mutated(path: list[Any], value: Any) -> dict[str, Any]:
    """BASE with the item at ``path`` replaced (``value=KeyError`` deletes it)."""
    data = copy.deepcopy(BASE)
    node: Any = data
    for key in path[:-1]:
        node = node[key]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return data


def test_base_is_valid() -> None:
    scenario = parse_scenario(BASE, file="base.yaml")
    assert [n.name for n in scenario.networks] == ["front", "back"]
    assert scenario.container("web").networks == (Attachment("front", ip="10.1.0.10"),)
    assert scenario.container("web").publish == (PublishSpec(8080, 80, "tcp"),)
    assert scenario.container("db").listen == (ListenSpec("tcp", 5432), ListenSpec("udp", 53))
    assert scenario.expect[1].published_port == 8080 and scenario.expect[1].port == 8080
    assert scenario.expectation_count() == 3
    assert scenario.hosts == ("h1",)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_scenarios_load(path: Path) -> None:
    scenario = load_scenario(path)
    assert scenario.name == path.stem
    assert scenario.description
    negatives = [e for e in scenario.expect if not e.reachable] + [
        e for step in scenario.steps for e in step.expect if not e.reachable
    ]
    assert negatives, "every shipped scenario holds negative expectations"


def test_at_least_twelve_scenarios_ship() -> None:
    assert len(SHIPPED) >= 12
    assert scenario_files([str(SCENARIO_DIR)]) == SHIPPED


BAD_CASES = [
    # (where to change, new value, expected key path, words in the message)
    (["networks", 1, "ipam", "subnet"], "10.1.0.0/33", "networks[1].ipam.subnet", "invalid subnet"),
    (["networks", 1, "ipam", "subnet"], "10.1.0.1/24", "networks[1].ipam.subnet", "host bits"),
    (["networks", 1, "ipam", "subnet"], "10.1.0.0/16", "networks[1].ipam.subnet", "overlaps"),
    (["networks", 1, "name"], "front", "networks[1].name", "duplicate network"),
    (["containers", 1, "name"], "web", "containers[1].name", "duplicate container"),
    (["containers", 1, "networks", 0], "nowhere", "containers[1].networks[0]", "unknown network"),
    (["containers", 0, "networks", 0, "ip"], "10.9.0.10", "containers[0].networks[0].ip", "outside subnet"),
    (["containers", 0, "networks", 0, "ip"], "10.1.0.1", "containers[0].networks[0].ip", "gateway"),
    (["containers", 0, "networks", 0, "ip"], "10.1.0.255", "containers[0].networks[0].ip", "broadcast"),
    (["containers", 0, "networks", 0, "ip"], "fd00::1", "containers[0].networks[0].ip", "IPv4"),
    (["containers", 0, "networks", 0, "mac"], "01:00:00:00:00:01", "containers[0].networks[0].mac", "multicast"),
    (["containers", 0, "listen", 0], "tcp/0", "containers[0].listen[0]", "1-65535"),
    (["containers", 0, "listen", 0], "sctp/80", "containers[0].listen[0]", "unknown protocol"),
    (["containers", 0, "listen", 0], "80", "containers[0].listen[0]", "PROTO/PORT"),
    (["containers", 0, "publish", 0], "8080:70000", "containers[0].publish[0]", "1-65535"),
    (["containers", 0, "publish", 0], "nonsense", "containers[0].publish[0]", "HOST_PORT"),
    (["expect", 0, "from"], "ghost", "expect[0].from", "unknown container"),
    (["expect", 0, "to"], "ghost", "expect[0].to", "unknown container"),
    (["expect", 0, "port"], 65536, "expect[0].port", "1-65535"),
    (["expect", 0, "port"], KeyError, "expect[0].port", "tcp needs a port"),
    (["expect", 0, "proto"], "icmp", "expect[0].port", "icmp has no port"),
    (["expect", 0, "reachable"], "yes", "expect[0].reachable", "true or false"),
    (["expect", 0, "port"], 81, "expect[0].port", None),  # reachable false to a closed port is fine
    (["expect", 1, "to"], "published:9999", "expect[1].to", "no container publishes"),
    (["expect", 1, "to"], "10.1.0.300", "expect[1].to", "invalid address"),
    (
        ["expect", 0],
        {"from": "web", "to": "db", "proto": "tcp", "port": 81, "reachable": True},
        "expect[0].port",
        "does not listen",
    ),
    (["expect", 0, "speed"], 1, "expect[0].speed", "unknown key"),
    (["networks", 0, "ipam", "ip_range"], "10.3.0.0/25", "networks[0].ipam.ip_range", "not inside subnet"),
    (["networks", 0, "ipam", "gateway"], "10.7.0.1", "networks[0].ipam.gateway", "outside subnet"),
    (["networks", 0, "ipam", "subnet_v6"], "fd00::/64", "networks[0].ipam.subnet_v6", "ipv6: true"),
    (["networks", 0, "driver"], None, "networks[0].driver", "quotes"),
    (["networks", 0, "internal"], "no", "networks[0].internal", "true or false"),
    (["networks", 0, "host"], "h9", "networks[0].host", "unknown host"),
    (["networks", 0, "colour"], "red", "networks[0].colour", "unknown key"),
    (["steps", 0, "connect", "network"], "front", "steps[0].connect", "already on network"),
    (["steps", 0, "connect", "container"], "ghost", "steps[0].connect", "unknown container"),
    (["steps", 0], {"remove_network": "back"}, "steps[0].remove_network", "still has containers"),
    (
        ["steps", 0],
        {"remove_container": "db", "disconnect": {"container": "web", "network": "front"}},
        "steps[0]",
        "exactly one action",
    ),
    (["steps", 0], {"disconnect": {"container": "db", "network": "front"}}, "steps[0].disconnect", "not on network"),
    (["hosts"], ["h1", "h1"], "hosts[1]", "duplicate host"),
    (["containers"], "web", "containers", "expected a list"),
    (["bogus"], 1, "bogus", "unknown key"),
]


@pytest.mark.parametrize(
    ("where", "value", "path", "words"), BAD_CASES, ids=[c[2] + ":" + str(c[3]) for c in BAD_CASES]
)
def test_bad_input_names_file_path_and_problem(where: list[Any], value: Any, path: str, words: str | None) -> None:
    data = mutated(where, value)
    if words is None:
        assert parse_scenario(data, file="bad.yaml").expect[0].port == 81
        return
    with pytest.raises(ScenarioError) as info:
        parse_scenario(data, file="bad.yaml")
    assert info.value.file == "bad.yaml"
    assert info.value.path == path
    assert words.lower() in str(info.value).lower()
    assert str(info.value).startswith(f"bad.yaml:{path}: ")


def test_step_expectations_follow_the_state() -> None:
    data = mutated(["steps"], [{"remove_container": "db"}, {"remove_container": "db"}])
    with pytest.raises(ScenarioError, match="removed container 'db'") as info:
        parse_scenario(data)
    assert info.value.path == "steps[1].remove_container"
    data = mutated(["steps"], [{"remove_container": "db", "expect": [{"from": "db", "to": "web"}]}])
    with pytest.raises(ScenarioError, match="removed in an earlier step"):
        parse_scenario(data)
    # a removed container may still be a target: the probe goes where it was
    data = mutated(["steps"], [{"remove_container": "db", "expect": [{"from": "web", "to": "db", "reachable": False}]}])
    assert parse_scenario(data).steps[0].expect[0].target == "db"


def test_load_errors_name_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("networks: [\n")
    with pytest.raises(ScenarioError, match="invalid YAML") as info:
        load_scenario(broken)
    assert info.value.file == str(broken)
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path / "missing.yaml")
    with pytest.raises(ScenarioError, match=r"no \*\.yaml"):
        scenario_files([str(_empty_dir(tmp_path))])
    top = tmp_path / "list.yaml"
    top.write_text("- a\n- b\n")
    with pytest.raises(ScenarioError, match="expected a mapping"):
        load_scenario(top)


def _empty_dir(tmp_path: Path) -> Path:
    empty = tmp_path / "empty"
    empty.mkdir()
    return empty


def test_host_and_null_drivers_are_exclusive() -> None:
    data = copy.deepcopy(BASE)
    data["networks"].append({"name": "host", "driver": "host"})
    data["containers"][1]["networks"] = ["back", "host"]
    with pytest.raises(ScenarioError, match="host network cannot be on other networks"):
        parse_scenario(data)
    data["containers"][1]["networks"] = ["host"]
    data["networks"].append({"name": "host2", "driver": "host"})
    with pytest.raises(ScenarioError, match="only one host network"):
        parse_scenario(data)


def test_published_port_conflicts() -> None:
    data = copy.deepcopy(BASE)
    data["containers"][1]["publish"] = ["8080:5432/tcp"]
    with pytest.raises(ScenarioError, match="already published by 'web'") as info:
        parse_scenario(data)
    assert info.value.path == "containers[1].publish[0]"
    data["containers"][1]["publish"] = ["8080:53/udp"]  # another protocol is another port
    assert parse_scenario(data).container("db").publish[0].proto == "udp"


@settings(max_examples=60, deadline=None)
@given(prefix=st.integers(min_value=-1, max_value=40), third=st.integers(min_value=0, max_value=300))
def test_subnets_are_checked_like_ipaddress(prefix: int, third: int) -> None:
    text = f"10.9.{third}.0/{prefix}"
    try:
        expected_ok = ipaddress.ip_network(text).version == 4
    except ValueError:
        expected_ok = False
    data = mutated(["networks", 1, "ipam", "subnet"], text)
    data["containers"][1]["networks"] = ["front"]
    data["steps"] = []
    try:
        parse_scenario(data)
    except ScenarioError as exc:
        # valid CIDRs are refused only for an overlap or for leaving no room (/32, or /31 with two containers)
        assert not expected_ok or any(words in str(exc) for words in ("overlaps", "no address"))
        assert exc.path.startswith(("networks[1].ipam.subnet", "containers["))
    else:
        assert expected_ok


YAML_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 70000)
    | st.text(max_size=12)
    | st.sampled_from(["front", "web", "tcp/80", "10.1.0.0/24", "outside", "published:8080", "bridge"]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "name",
                    "networks",
                    "containers",
                    "expect",
                    "steps",
                    "ipam",
                    "subnet",
                    "to",
                    "from",
                    "listen",
                    "publish",
                    "proto",
                    "port",
                    "network",
                    "ip",
                    "driver",
                    "connect",
                    "x",
                ]
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=YAML_VALUES)
def test_arbitrary_input_never_escapes_as_a_traceback(data: Any) -> None:
    try:
        scenario = parse_scenario(data, file="fuzz.yaml")
    except ScenarioError as exc:
        assert exc.file == "fuzz.yaml"
        assert str(exc)
    else:
        assert scenario.hosts


@settings(max_examples=60, deadline=None)
@given(where=st.sampled_from([c for c in BAD_CASES if c[3] is not None and c[1] is not KeyError]))
def test_errors_survive_a_yaml_round_trip(tmp_path_factory: pytest.TempPathFactory, where: Any) -> None:
    path_in_data, value, key_path, _ = where
    file = tmp_path_factory.mktemp("rt") / "s.yaml"
    file.write_text(yaml.safe_dump(mutated(path_in_data, value)))
    with pytest.raises(ScenarioError) as info:
        load_scenario(file)
    assert info.value.path == key_path
