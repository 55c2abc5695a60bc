"""Pure parts of the plugin launcher: command parsing, what a plugin's own
paths mean from netsim's side, and the host description plugins receive."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from netsim.errors import InvalidParameterError
from netsim.host import Host
from netsim.kernel.fake import FakeKernel
from netsim.plugin.client import PluginAddress
from netsim.plugin.hosted import HOST_ENV, host_environment, host_from_environment
from netsim.plugin.launcher import ENTER_SCRIPT, LaunchedPlugin, _outside_view, parse_command


def test_commands_are_split_like_a_shell_but_never_run_by_one() -> None:
    assert parse_command("python3 'my plugin.py' --x=1 ; rm -rf /") == [
        "python3", "my plugin.py", "--x=1", ";", "rm", "-rf", "/",
    ]  # fmt: skip
    assert parse_command(["a b", 3]) == ["a b", "3"]
    for empty in ("", "   ", []):
        with pytest.raises(InvalidParameterError):
            parse_command(empty)


def test_the_plugins_paths_map_to_the_per_run_directories(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    plugin = LaunchedPlugin("p", ["x"], proc, tmp_path, tmp_path / "p.log")
    inside = PluginAddress("unix", path="/run/docker/plugins/p/p.sock")
    assert _outside_view(inside, plugin).path == f"{tmp_path}/run/p/p.sock"
    assert (
        _outside_view(PluginAddress("unix", path="/etc/docker/plugins/p.sock"), plugin).path == f"{tmp_path}/etc/p.sock"
    )
    elsewhere = PluginAddress("unix", path="/var/run/other.sock")
    assert _outside_view(elsewhere, plugin) == elsewhere
    plugin.netns = "/run/netns/netsim-ab12-h1"
    tcp = _outside_view(PluginAddress("tcp", host="127.0.0.1", port=9), plugin)
    assert (tcp.host, tcp.port, tcp.netns) == ("127.0.0.1", 9, "/run/netns/netsim-ab12-h1")


def test_the_host_description_round_trips() -> None:
    kernel = FakeKernel("ab12")
    host = Host("h1", kernel, "netsim-ab12-h1", outside_namespace="netsim-ab12-h1-out")
    env = host_environment(host)
    assert host_from_environment(kernel, env) == host
    assert host_from_environment(kernel, {}) is None
    for bad in ("{", "[]", json.dumps({"name": "h1"})):
        with pytest.raises(InvalidParameterError, match=HOST_ENV):
            host_from_environment(kernel, {HOST_ENV: bad})


def test_the_enter_helper_imports_nothing_of_netsim() -> None:
    text = ENTER_SCRIPT.read_text()
    assert "import netsim" not in text and "from netsim" not in text
    done = subprocess.run([sys.executable, "-I", "-S", str(ENTER_SCRIPT), "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "--new-netns" in done.stdout
    refused = subprocess.run(
        [sys.executable, "-I", "-S", str(ENTER_SCRIPT), "--new-netns", "--shadow-dir", "/tmp/x"],
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 2 and "no plugin command" in refused.stderr
