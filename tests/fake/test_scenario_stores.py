"""Scenarios say where state lives (``store:``, ``--local-store``,
``--global-store``); the same expectations hold on every store."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from netsim.cli import main
from netsim.errors import ScenarioError
from netsim.scenario.model import StoreChoice
from netsim.scenario.runner import Backend, run_scenario
from netsim.scenario.schema import load_scenario, parse_scenario
from netsim.store import open_store

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


@pytest.mark.parametrize(
    ("store", "message"),
    [
        ({"local": "consul://127.0.0.1:8500"}, "no Consul server"),
        ({"local": "sqlite://"}, "store.local"),
        ({"global": "etcd://"}, "store.global"),
        ({"local": "sqlite:///tmp/shared.db"}, "put {host} in the URL"),
        ({"locale": "memory://"}, "unknown key"),
        ("sqlite:///x.db", "expected a mapping"),
    ],
)
def test_bad_store_sections_name_the_key(store: object, message: str) -> None:
    with pytest.raises(ScenarioError, match="store") as failure:
        parse_scenario({"hosts": ["h1", "h2"], "store": store}, file="s.yaml")
    assert message in str(failure.value)
    assert "s.yaml" in str(failure.value)


def test_single_host_scenario_on_sqlite(tmp_path: Path) -> None:
    scenario = load_scenario(SCENARIOS / "quickstart.yaml")
    stores = StoreChoice(local=f"sqlite:///{tmp_path}/{{host}}.db")
    result = run_scenario(scenario, "fake", backend=Backend(stores=stores))
    assert result.passed, result
    # Everything was removed at teardown: the file holds no record.
    store = open_store(f"sqlite:///{tmp_path}/h1.db")
    try:
        assert [p.key for p in store.list("")] == []
    finally:
        store.close()


def test_multi_host_scenario_on_etcd(server_store_url: Callable[[str], str], tmp_path: Path) -> None:
    scenario = load_scenario(SCENARIOS / "overlay-two-hosts.yaml")
    stores = StoreChoice(local=f"sqlite:///{tmp_path}/{{host}}.db", global_=server_store_url("etcd"))
    result = run_scenario(scenario, "fake", backend=Backend(stores=stores))
    assert result.passed, result


def test_cli_store_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    quickstart = str(SCENARIOS / "quickstart.yaml")
    assert main(["run", quickstart, "-q", "--local-store", f"sqlite:///{tmp_path}/{{host}}.db"]) == 0
    assert (tmp_path / "h1.db").exists()
    assert main(["run", quickstart, "-q", "--global-store", "consul://x"]) == 2
    assert "--global-store" in capsys.readouterr().err
