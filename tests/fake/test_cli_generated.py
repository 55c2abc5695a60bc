"""Generated scenarios through the whole stack on the fake kernel, checked
against a one-line model of Docker's bridge isolation: two containers reach
each other exactly when they share a network. Every run must build, tear
down without leaks, and agree with the model, including after a step that
connects or disconnects a container."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netsim.cli import main


@st.composite
def topologies(draw: st.DrawFn) -> dict[str, Any]:
    n_nets = draw(st.integers(1, 3))
    nets = [f"n{i}" for i in range(n_nets)]
    n_ctrs = draw(st.integers(2, 4))
    members = [draw(st.lists(st.sampled_from(nets), min_size=1, max_size=n_nets, unique=True)) for _ in range(n_ctrs)]
    return {"nets": nets, "members": members, "step": draw(st.integers(0, n_ctrs * n_nets - 1))}


def expectations(members: list[list[str]]) -> list[dict[str, Any]]:
    """Every ordered pair: reachable exactly when they share a network."""
    return [
        {"from": f"c{a}", "to": f"c{b}", "reachable": bool(set(members[a]) & set(members[b]))}
        for a in range(len(members))
        for b in range(len(members))
        if a != b
    ]


def build_yaml(topo: dict[str, Any]) -> tuple[dict[str, Any], int]:
    nets, members = topo["nets"], [list(m) for m in topo["members"]]
    data: dict[str, Any] = {
        "name": "generated",
        "networks": [{"name": n, "ipam": {"subnet": f"10.{200 + i}.0.0/24"}} for i, n in enumerate(nets)],
        "containers": [{"name": f"c{i}", "networks": list(m)} for i, m in enumerate(members)],
        "expect": expectations(members),
    }
    # one step: connect or disconnect container ctr from network net (never its last network)
    ctr, net = divmod(topo["step"], len(nets))
    ctr %= len(members)
    target = nets[net]
    if target not in members[ctr]:
        members[ctr].append(target)
        data["steps"] = [{"connect": {"container": f"c{ctr}", "network": target}, "expect": expectations(members)}]
    elif len(members[ctr]) > 1:
        members[ctr].remove(target)
        data["steps"] = [{"disconnect": {"container": f"c{ctr}", "network": target}, "expect": expectations(members)}]
    count = len(data["expect"]) + sum(len(step["expect"]) for step in data.get("steps", []))
    return data, count


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(topo=topologies())
def test_generated_scenarios_agree_with_the_isolation_model(topo: dict[str, Any], tmp_path_factory: Any) -> None:
    data, count = build_yaml(topo)
    work: Path = tmp_path_factory.mktemp("gen")
    (work / "generated.yaml").write_text(yaml.safe_dump(data))
    status = main(["run", "-q", str(work / "generated.yaml"), "--json", str(work / "out.json")])
    result = json.loads((work / "out.json").read_text())["scenarios"][0]
    wrong = [e for e in result["expectations"] if not e["passed"]]
    assert wrong == [], f"{data}\n{wrong}"
    assert len(result["expectations"]) == count
    assert status == 0 and result["passed"]
