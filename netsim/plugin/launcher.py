"""Start a Docker plugin program inside a simulated host, and stop it.

>>> # with launch_plugin(["python3", "myplugin.py"], "mynet", netns="/run/netns/netsim-ab12-h1") as plugin:
>>> #     RemoteDriver.connect(plugin.address, name=plugin.name)

What the plugin sees is what it would see beside Docker: it runs in the
simulated host's network namespace (so the links and rules it makes are the
ones netsim checks) and in a private mount namespace where
``/run/docker/plugins`` and ``/etc/docker/plugins`` are per-run directories
(see :mod:`netsim.plugin.enter`). It writes its socket or spec file there as
usual, and netsim finds it with Docker's discovery rules. Without a host
namespace (``netns=None``, e.g. on the fake kernel) it gets a private,
throwaway network namespace instead, so a plugin's kernel work never lands
in the root namespace.

The plugin is its own process group (session). ``stop()`` sends SIGTERM to
that group, waits ``grace`` seconds, then SIGKILLs what is left of it; the
group leader is not reaped before the SIGKILL, so its id cannot have been
reused by then. Its stdout and stderr go to a log file; errors quote the
log's tail. The per-run directories are removed at stop.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from netsim.errors import InvalidParameterError, NotFoundError, PluginUnavailableError
from netsim.plugin.client import PluginAddress
from netsim.plugin.discovery import find_plugin
from netsim.plugin.hosted import host_environment

if TYPE_CHECKING:
    from netsim.host import Host

ENTER_SCRIPT = Path(__file__).with_name("enter.py")
#: Where plugins look for / write their sockets and spec files, as with Docker.
PLUGIN_DIRS = ("/run/docker/plugins", "/etc/docker/plugins")
DEFAULT_START_TIMEOUT = 10.0
DEFAULT_GRACE = 2.0
LOG_TAIL = 2000
_POLL = 0.005


def parse_command(command: str | Sequence[str]) -> list[str]:
    """``"python3 plugin.py --x"`` (split like a shell would, never run by one) or a list."""
    argv = shlex.split(command) if isinstance(command, str) else [str(arg) for arg in command]
    if not argv or not argv[0]:
        raise InvalidParameterError(f"empty plugin command {command!r}")
    return argv


@dataclass(eq=False)
class LaunchedPlugin:
    """A running plugin process: where it listens, its log, how to stop it."""

    name: str
    argv: list[str]
    process: subprocess.Popen[bytes]
    workdir: Path
    log_path: Path
    address: PluginAddress = field(default_factory=lambda: PluginAddress("unix", path="/nonexistent"))
    #: seconds from process start to the plugin answering on its socket
    startup_seconds: float = 0.0
    grace: float = DEFAULT_GRACE
    #: the network namespace file it runs in (None: a private one)
    netns: str | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def run_dir(self) -> Path:
        """What the plugin sees as ``/run/docker/plugins``."""
        return self.workdir / "run"

    @property
    def etc_dir(self) -> Path:
        """What the plugin sees as ``/etc/docker/plugins``."""
        return self.workdir / "etc"

    def log_tail(self, limit: int = LOG_TAIL) -> str:
        try:
            data = self.log_path.read_bytes()
        except OSError:
            return ""
        return data[-limit:].decode(errors="replace").strip()

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> int | None:
        """SIGTERM the plugin's process group, SIGKILL it after ``grace``;
        remove the per-run directories. Returns the exit status. Idempotent."""
        status = None
        if self.process.returncode is None:
            self._signal_group(signal.SIGTERM)
            if not _wait_unreaped(self.pid, self.grace):
                self._signal_group(signal.SIGKILL)
                _wait_unreaped(self.pid, None)
            # the leader is a zombie now (not yet reaped), so the group id is
            # still ours: anything it left in its group goes too
            self._signal_group(signal.SIGKILL)
            status = self.process.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)
        return status if status is not None else self.process.returncode

    def _signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signum)

    def __enter__(self) -> LaunchedPlugin:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _wait_unreaped(pid: int, timeout: float | None) -> bool:
    """Wait until ``pid`` has exited without reaping it; False on timeout."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        try:
            info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT | os.WNOHANG)
        except ChildProcessError:
            return True
        if info is not None:
            return True
        if deadline is not None and time.monotonic() >= deadline:
            return False
        time.sleep(_POLL)


def launch_plugin(
    command: str | Sequence[str],
    name: str,
    *,
    netns: str | None = None,
    timeout: float = DEFAULT_START_TIMEOUT,
    grace: float = DEFAULT_GRACE,
    cwd: str | os.PathLike[str] | None = None,
    env: dict[str, str] | None = None,
    host: Host | None = None,
) -> LaunchedPlugin:
    """Start ``command`` as plugin ``name`` and wait until it answers.

    ``netns`` is the simulated host's namespace file (``/run/netns/...``);
    None gives the plugin a private one. Waits at most ``timeout`` seconds
    for ``<name>.sock`` / ``<name>.spec`` / ``<name>.json`` to appear in the
    per-run plugin directories and for the socket to accept a connection.
    Raises PluginUnavailableError (with the log's tail) if the plugin exits
    or is not ready in time; the process is stopped then. ``host`` (the
    simulated host of ``netns``) is described to the plugin in
    ``NETSIM_PLUGIN_HOST`` (:mod:`netsim.plugin.hosted`); ``env`` defaults to
    this process's environment.
    """
    argv = parse_command(command)
    environment = dict(os.environ if env is None else env)
    if host is not None:
        environment.update(host_environment(host))
    if not name or "/" in name or name in (".", ".."):
        raise InvalidParameterError(f"invalid plugin name {name!r}")
    workdir = Path(tempfile.mkdtemp(prefix=f"netsim-plugin-{name}-"))
    plugin: LaunchedPlugin | None = None
    try:
        for sub in ("run", "etc"):
            (workdir / sub).mkdir(mode=0o755)
            (workdir / sub).chmod(0o755)
        log_path = workdir / f"{name}.log"
        where = ["--netns", netns] if netns is not None else ["--new-netns"]
        binds = [f"--bind={PLUGIN_DIRS[0]}={workdir / 'run'}", f"--bind={PLUGIN_DIRS[1]}={workdir / 'etc'}"]
        enter = [sys.executable, "-I", "-S", str(ENTER_SCRIPT), *where, *binds]
        enter += ["--shadow-dir", str(workdir / "shadow"), "--", *argv]
        started = time.monotonic()
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                enter,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() signals only it
                cwd=cwd,
                env=environment,
            )
        plugin = LaunchedPlugin(name, argv, process, workdir, log_path, grace=grace, netns=netns)
        plugin.address = _wait_ready(plugin, started + timeout)
        plugin.startup_seconds = time.monotonic() - started
        return plugin
    except BaseException:
        if plugin is not None:
            plugin.stop()
        else:
            shutil.rmtree(workdir, ignore_errors=True)
        raise


def _wait_ready(plugin: LaunchedPlugin, deadline: float) -> PluginAddress:
    dirs = [plugin.run_dir, plugin.etc_dir]
    while True:
        if not plugin.running():
            raise PluginUnavailableError(
                f"plugin command {shlex.join(plugin.argv)!r} exited with status {plugin.process.returncode} "
                f"before serving; its log ({plugin.log_path}) ends with:\n{plugin.log_tail()}",
                plugin=plugin.name,
            )
        with contextlib.suppress(NotFoundError, InvalidParameterError):
            spec = find_plugin(plugin.name, dirs)
            address = _outside_view(spec.address, plugin)
            if address.scheme != "unix" or _accepts(address.path):
                return address
        if time.monotonic() >= deadline:
            raise PluginUnavailableError(
                f"plugin command {shlex.join(plugin.argv)!r} did not serve {plugin.name}.sock/.spec/.json in "
                f"{PLUGIN_DIRS} within the deadline; its log ({plugin.log_path}) ends with:\n{plugin.log_tail()}",
                plugin=plugin.name,
            )
        time.sleep(_POLL)


def _outside_view(address: PluginAddress, plugin: LaunchedPlugin) -> PluginAddress:
    """A unix path the plugin wrote as ``/run/docker/plugins/...`` is, from
    netsim's side, in the per-run directory mounted there."""
    if address.scheme != "unix":
        # the plugin's loopback is the host namespace's, not ours
        netns = plugin.netns or f"/proc/{plugin.pid}/ns/net"
        return PluginAddress(address.scheme, host=address.host, port=address.port, netns=netns)
    for inside, outside in zip(PLUGIN_DIRS, (plugin.run_dir, plugin.etc_dir), strict=True):
        if address.path == inside or address.path.startswith(inside + "/"):
            return PluginAddress("unix", path=str(outside) + address.path[len(inside) :])
    return address


def _accepts(path: str) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(0.5)
        probe.connect(path)
        return True
    except OSError:
        return False
    finally:
        probe.close()
