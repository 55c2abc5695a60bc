"""``netsim generate``: a big scenario file that loads, validates and runs
(here 300 containers on 10 networks; 10,000 on 50 is benchmarks/test_bench_scale.py)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from netsim.cli import main
from netsim.scenario.generate import big_topology, subnet_prefix
from netsim.scenario.schema import load_scenario


def test_generated_file_loads_and_runs(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    assert main(["generate", "--containers", "300", "--networks", "10", "-o", str(path)]) == 0
    scenario = load_scenario(path)
    assert scenario.name == "scale-300c-10n"
    assert len(scenario.containers) == 300 and len(scenario.networks) == 10
    per_network: dict[str, int] = {}
    for ctr in scenario.containers:
        (att,) = ctr.networks
        per_network[att.network] = per_network.get(att.network, 0) + 1
    assert sorted(per_network.values()) == [30] * 10
    capsys.readouterr()
    assert main(["run", "-q", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == "1/1 scenarios passed, 3/3 expectations hold"


def test_generate_prints_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", "--containers", "3", "--name", "tiny"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("name: tiny\n") and "  - {name: c00002, networks: [n000]}" in out


def test_subnets_are_disjoint_and_hold_every_container() -> None:
    data = big_topology(10_000, 7)
    subnets = [ipaddress.ip_network(n["ipam"]["subnet"]) for n in data["networks"]]
    assert all(a.network_address > b.broadcast_address for a, b in zip(subnets[1:], subnets, strict=False))
    assert all(s.num_addresses - 3 >= 1429 for s in subnets)  # ceil(10,000 / 7) containers, gateway, net, bcast
    assert subnet_prefix(1429) == 21


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--containers", "0"], "need at least 1 network and 1 container, not 1 and 0"),
        (["--containers", "5", "--networks", "0"], "need at least 1 network and 1 container, not 0 and 5"),
        (["--containers", "100000"], "at most 99,999 containers, not 100,000"),
        (["--containers", "10", "--networks", "70000"], "70,000 networks of /24 do not fit in 10.0.0.0/8"),
    ],
)
def test_impossible_sizes_are_refused(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    assert main(["generate", *argv]) == 2
    assert capsys.readouterr().err == f"netsim generate: error: {message}\n"
