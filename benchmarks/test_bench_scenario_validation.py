"""Validating big scenarios (issue 16): shape and meaning checks of files with
N networks and 2N containers, N = 500, 1,000, 2,000 and 5,000.

Validation must grow linearly: before, 500 / 1,000 / 2,000 / 5,000 networks
took 0.8 / 2.6 / 10.2 / 38 s (pairwise overlap checks, scans per lookup).
Target: 5,000 networks and 10,000 containers validate in under a second.
``extra_info["us_per_network"]`` is the growth figure: flat when linear.

The reference measured in the same run is walking the same data once
(``json.dumps``), the least any validation must do; a second one is parsing
the YAML text of the largest file (what ``load_scenario`` pays before
validation starts).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from netsim.scenario.reading import parse_yaml
from netsim.scenario.schema import parse_scenario

SIZES = (500, 1000, 2000, 5000)


def big_scenario(networks: int) -> dict[str, Any]:
    """``networks`` bridge networks with their own /24, two containers on each
    (one with a static address and MAC), a listener each, one expectation per
    hundred containers, and a few steps that disconnect and reconnect."""
    nets = [
        {"name": f"n{i}", "ipam": {"subnet": f"10.{i // 256}.{i % 256}.0/24", "gateway": f"10.{i // 256}.{i % 256}.1"}}
        for i in range(networks)
    ]
    containers: list[dict[str, Any]] = []
    for i in range(networks):
        prefix = f"10.{i // 256}.{i % 256}"
        containers.append(
            {
                "name": f"a{i}",
                "networks": [
                    {"network": f"n{i}", "ip": f"{prefix}.10", "mac": f"02:00:00:00:{i // 256:02x}:{i % 256:02x}"}
                ],
                "listen": ["tcp/80"],
            }
        )
        containers.append({"name": f"b{i}", "networks": [f"n{i}"], "listen": ["tcp/80"]})
    expect = [{"from": f"a{i}", "to": f"b{i}", "proto": "tcp", "port": 80} for i in range(0, networks, 50)]
    steps = [{"disconnect": {"container": f"b{i}", "network": f"n{i}"}} for i in range(0, networks, 100)]
    steps += [{"connect": {"container": f"b{i}", "network": f"n{i}"}} for i in range(0, networks, 100)]
    return {"name": "big", "networks": nets, "containers": containers, "expect": expect, "steps": steps}


@pytest.mark.parametrize("networks", SIZES)
def test_validate(benchmark: Any, networks: int) -> None:
    data = big_scenario(networks)
    scenario = benchmark.pedantic(parse_scenario, args=(data,), kwargs={"file": "big.yaml"}, rounds=3, iterations=1)
    assert len(scenario.networks) == networks and len(scenario.containers) == 2 * networks
    benchmark.extra_info["networks"] = networks
    benchmark.extra_info["containers"] = 2 * networks
    benchmark.extra_info["us_per_network"] = round(benchmark.stats.stats.min / networks * 1e6, 1)


@pytest.mark.reference
@pytest.mark.parametrize("networks", SIZES)
def test_reference_walk_the_data(benchmark: Any, networks: int) -> None:
    data = big_scenario(networks)
    text = benchmark(json.dumps, data)
    assert text.startswith("{")
    benchmark.extra_info["us_per_network"] = round(benchmark.stats.stats.min / networks * 1e6, 1)


@pytest.mark.reference
def test_reference_parse_yaml_of_the_largest(benchmark: Any) -> None:
    text = yaml.safe_dump(big_scenario(SIZES[-1]), sort_keys=False)
    data = benchmark.pedantic(parse_yaml, args=(text, "big.yaml"), rounds=3, iterations=1)
    assert isinstance(data, dict) and len(data["networks"]) == SIZES[-1]
    benchmark.extra_info["bytes"] = len(text)
