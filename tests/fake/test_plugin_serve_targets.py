"""``netsim plugin serve`` serves any driver: an init function or a class that
needs a kernel and a host gets a simulated host (as ``--builtin`` does), and
``--builtin`` also takes an installed entry-point driver by name."""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from driver_projects import install_for_subprocess

from drivers.bridge.driver import BridgeDriver
from netsim.cli.new_driver import render
from netsim.plugin.cli import _start
from netsim.registry import kernel_and_host


class BridgeFromConfig(BridgeDriver):
    """A driver class built from the driver config, as the conformance suite builds one."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(*kernel_and_host(config, "bridge"))


def _args(target: str, socket: Path) -> argparse.Namespace:
    return argparse.Namespace(
        target=target,
        builtin=None,
        kernel="fake",
        socket=str(socket),
        tcp=None,
        name="",
        config="{}",
        scope=None,
        connectivity_scope=None,
    )


def test_init_and_class_targets_get_a_host(tmp_path: Path) -> None:
    for target in ("drivers.bridge:init", f"{__name__}:BridgeFromConfig"):
        with contextlib.ExitStack() as stack:
            server = _start(_args(target, tmp_path / "p.sock"), stack)
            assert server is not None, target
            assert "NetworkDriver" in server.handlers.implements()


def test_builtin_takes_an_installed_driver(tmp_path: Path) -> None:
    project = tmp_path / "routed-net"
    render("routed-net", project)
    install_for_subprocess(project, tmp_path / "site")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(project), str(tmp_path / "site")]))
    socket = tmp_path / "r.sock"
    serving = subprocess.Popen(
        [sys.executable, "-m", "netsim.plugin", "serve", "--builtin", "routed-net", "--socket", str(socket)],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not socket.exists() and serving.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert socket.exists(), serving.stderr.read() if serving.poll() is not None and serving.stderr else "timeout"
    finally:
        serving.terminate()
        serving.wait(timeout=10)
