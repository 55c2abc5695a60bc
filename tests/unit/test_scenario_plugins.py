"""The scenario ``plugins:`` section: shape errors name file and key, a
network may use a plugin only where it runs, command plugins are refused on
the fake kernel for network drivers, and a running plugin (``socket:``)
serves IPAM to a scenario on the fake kernel."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_plugin_helpers import MemoryIpam, short_dir

from netsim.errors import ScenarioError
from netsim.plugin import PluginServer
from netsim.scenario.plugins import refuse_unreachable
from netsim.scenario.runner import run_scenario
from netsim.scenario.schema import load_scenario, parse_scenario

SHIPPED = Path(__file__).resolve().parents[2] / "scenarios" / "plugins" / "stdlib-bridge.yaml"


def _scenario(plugins: Any, networks: Any = None, hosts: Any = None) -> dict[str, Any]:
    data: dict[str, Any] = {"name": "p", "plugins": plugins, "networks": networks or []}
    if hosts is not None:
        data["hosts"] = hosts
    return data


@pytest.mark.parametrize(
    ("plugins", "networks", "hosts", "path", "words"),
    [
        ([{"name": "x", "command": "a", "sockit": "b"}], None, None, "plugins[0].sockit", "unknown key"),
        ([{"name": "x"}], None, None, "plugins[0]", "exactly one of 'command'"),
        ([{"name": "x", "command": "a", "socket": "/b.sock"}], None, None, "plugins[0]", "exactly one of"),
        ([{"name": "bridge", "command": "a"}], None, None, "plugins[0].name", "built-in driver's name"),
        ([{"name": "x", "command": "a"}, {"name": "x", "command": "b"}], None, None, "plugins[1].name", "twice"),
        ([{"name": "x", "command": []}], None, None, "plugins[0].command", "empty command"),
        ([{"name": "x", "command": "a 'b"}], None, None, "plugins[0].command", "cannot split"),
        ([{"name": "x", "socket": "ftp://h:1"}], None, None, "plugins[0].socket", "unsupported plugin address"),
        ([{"name": "x", "command": "a", "hosts": ["h9"]}], None, ["h1", "h2"], "plugins[0].hosts[0]", "unknown host"),
        (
            [{"name": "x", "command": "a", "hosts": ["h1"]}],
            [{"name": "n", "driver": "x", "host": "h2"}],
            ["h1", "h2"],
            "networks[0].driver",
            "does not run on host 'h2'",
        ),
        (
            [{"name": "x", "command": "a", "hosts": ["h2"]}],
            [{"name": "n", "ipam": {"driver": "x"}}],
            ["h1", "h2"],
            "networks[0].ipam.driver",
            "does not run on host 'h1'",
        ),
    ],
)
def test_shape_errors_name_file_and_key(plugins: Any, networks: Any, hosts: Any, path: str, words: str) -> None:
    with pytest.raises(ScenarioError) as failed:
        parse_scenario(_scenario(plugins, networks, hosts), file="s.yaml")
    assert f"s.yaml:{path}:" in str(failed.value)
    assert words in str(failed.value)


def test_a_command_string_is_split_and_hosts_default_to_all() -> None:
    scenario = parse_scenario(_scenario([{"name": "x", "command": "python3 'my plugin.py' -v"}], hosts=["a", "b"]))
    assert scenario.plugins[0].command == ("python3", "my plugin.py", "-v")
    assert scenario.plugins[0].hosts == ("a", "b")
    socket = parse_scenario(_scenario([{"name": "y", "socket": "/run/x/y.sock"}])).plugins[0]
    assert socket.socket == "unix:///run/x/y.sock" and socket.command == ()


def test_the_shipped_plugin_scenario_is_refused_on_the_fake_kernel_only() -> None:
    scenario = load_scenario(SHIPPED)
    refuse_unreachable(scenario, "linux")
    with pytest.raises(ScenarioError) as failed:
        refuse_unreachable(scenario, "fake")
    assert "plugins[0].command" in str(failed.value) and "--kernel linux" in str(failed.value)


@pytest.fixture
def ipam_plugin() -> Iterator[str]:
    with short_dir() as path, PluginServer(ipam=MemoryIpam(), socket_path=path / "memipam.sock") as server:
        yield server.address


def test_a_running_ipam_plugin_serves_a_scenario_on_the_fake_kernel(ipam_plugin: str) -> None:
    scenario = parse_scenario(
        {
            "name": "ipam-plugin",
            "plugins": [{"name": "memipam", "socket": ipam_plugin}],
            "networks": [{"name": "n", "ipam": {"driver": "memipam", "subnet": "10.44.0.0/24"}}],
            "containers": [{"name": "a", "networks": ["n"]}, {"name": "b", "networks": ["n"]}],
            "expect": [{"from": "a", "to": "b"}],
        }
    )
    result = run_scenario(scenario, "fake")
    assert result.error is None, result.error
    assert result.passed and result.leaks == []


def test_netsim_run_refuses_it_on_the_fake_kernel_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    from netsim.cli import main

    assert main(["run", str(SHIPPED)]) == 2
    err = capsys.readouterr().err
    assert "plugins[0].command" in err and "cannot reach the fake kernel" in err and "Traceback" not in err
