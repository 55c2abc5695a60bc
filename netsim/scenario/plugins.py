"""A scenario's ``plugins:`` section: Docker plugins used by name as a
network's ``driver:`` or ``ipam: {driver:}``.

```yaml
plugins:
  - name: sbridge                       # a program netsim starts inside each host
    command: [python3, plugins/sbridge.py, --name, sbridge]
    hosts: [h1]                         # default: every host of the scenario
  - name: weave                         # a plugin already running
    socket: unix:///run/docker/plugins/weave.sock
```

A ``command`` runs from the scenario file's directory, inside the host's
network namespace with per-run ``/run/docker/plugins`` and
``/etc/docker/plugins`` (:mod:`netsim.plugin.launcher`), and must serve
``<name>.sock`` (or ``.spec``/``.json``) there. It is stopped after the
scenario's controllers are closed. On the fake kernel a command plugin used
as a network driver is refused: it runs in its own process and cannot reach
the in-memory kernel (one used only for IPAM runs, in a private namespace).
"""

from __future__ import annotations

import contextlib
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from netsim.errors import InvalidParameterError, NetsimError, ScenarioError
from netsim.plugin.client import PluginAddress
from netsim.plugin.launcher import LaunchedPlugin, launch_plugin
from netsim.registry import BUILTIN_DRIVERS, BUILTIN_IPAM_DRIVERS, load_target
from netsim.scenario.definition import PLUGIN
from netsim.scenario.model import PluginSpec, Scenario
from netsim.scenario.shape import ShapeReader as ShapeReader  # re-exported: other readers type against it

#: the registry's remote init functions (the road any installed driver takes)
REMOTE_INITS = ("ipam.remote:init", "drivers.remote:init")
RESERVED = frozenset({b.name for b in (*BUILTIN_DRIVERS, *BUILTIN_IPAM_DRIVERS)} | {"remote"})


def parse_plugins(rd: ShapeReader, value: object, hosts: tuple[str, ...]) -> tuple[PluginSpec, ...]:
    """The ``plugins:`` list, shape-checked; errors name ``plugins[i].key``."""
    plugins: list[PluginSpec] = []
    for index, item in enumerate(rd.seq(value, "plugins")):
        path = f"plugins[{index}]"
        entry = rd.obj(item, path, PLUGIN)
        raw = entry.raw
        name = entry["name"]
        if name in RESERVED:
            rd.fail(f"{path}.name", f"{name!r} is a built-in driver's name; call the plugin something else")
        if any(p.name == name for p in plugins):
            rd.fail(f"{path}.name", f"plugin {name!r} is listed twice")
        command: tuple[str, ...] = ()
        socket = ""
        if "command" in raw:
            command = _command(rd, raw["command"], f"{path}.command")
        else:
            socket = _socket(rd, raw["socket"], f"{path}.socket")
        served = tuple(
            rd.name(h, f"{path}.hosts[{i}]") for i, h in enumerate(rd.seq(raw.get("hosts"), f"{path}.hosts"))
        )
        for i, host in enumerate(served):
            if host not in hosts:
                rd.fail(f"{path}.hosts[{i}]", f"unknown host {host!r}; the scenario's hosts are {', '.join(hosts)}")
        plugins.append(PluginSpec(name, command, socket, served or hosts))
    return tuple(plugins)


def _command(rd: ShapeReader, value: object, path: str) -> tuple[str, ...]:
    if isinstance(value, str):
        try:
            argv = shlex.split(value)  # split like a shell would; never run by one
        except ValueError as exc:
            rd.fail(path, f"cannot split command {value!r}: {exc}")
    else:
        argv = [rd.text(arg, f"{path}[{i}]") for i, arg in enumerate(rd.seq(value, path))]
    if not argv:
        rd.fail(path, "empty command")
    return tuple(argv)


def _socket(rd: ShapeReader, value: object, path: str) -> str:
    text = rd.text(value, path)
    url = text if "://" in text else f"unix://{text}"
    try:
        return str(PluginAddress.parse(url))
    except InvalidParameterError as exc:
        rd.fail(path, str(exc))


def check_plugin_use(scenario: Scenario, fail: Callable[[str, str], NoReturn]) -> None:
    """A network may use a plugin only on a host the plugin serves."""
    for index, net in enumerate(scenario.networks):
        for key, name in (("driver", net.driver), ("ipam.driver", net.ipam.driver)):
            plugin = scenario.plugin(name)
            if plugin is not None and net.host not in plugin.hosts:
                fail(
                    f"networks[{index}].{key}",
                    f"plugin {name!r} does not run on host {net.host!r} (its hosts: {', '.join(plugin.hosts)})",
                )


def refuse_unreachable(scenario: Scenario, kernel_kind: str) -> None:
    """ScenarioError if a command plugin serves a network driver on the fake kernel."""
    if kernel_kind != "fake":
        return
    drivers = {net.driver for net in scenario.networks}
    for index, plugin in enumerate(scenario.plugins):
        if plugin.command and plugin.name in drivers:
            raise ScenarioError(
                f"plugin {plugin.name!r} is a network driver in its own process: it cannot reach the fake "
                "kernel's in-memory state; run this scenario with --kernel linux",
                file=scenario.file,
                path=f"plugins[{index}].command",
            )


class ScenarioPlugins:
    """The plugins of one built scenario: started per host, stopped at teardown."""

    def __init__(self, scenario: Scenario, kernel_kind: str) -> None:
        self.scenario = scenario
        self.kernel_kind = kernel_kind
        self.launched: list[LaunchedPlugin] = []

    def attach(self, host: str, controller: Any) -> None:
        """Start (or reach) every plugin serving ``host`` and register it in
        ``controller`` under its name, as a network and/or IPAM driver."""
        specs: list[dict[str, Any]] = []
        for plugin in self.scenario.plugins:
            if host not in plugin.hosts:
                continue
            address: PluginAddress | str = plugin.socket
            if plugin.command:
                address = self._launch(plugin, controller).address
            specs.append({"name": plugin.name, "address": address})
        if not specs:
            return
        config = {"plugins": specs}
        registry = controller.registry
        # one activation per plugin: the two init functions share the client
        registry.add_ipam_driver(load_target(REMOTE_INITS[0]), config)
        registry.add_driver(load_target(REMOTE_INITS[1]), config)

    def _launch(self, plugin: PluginSpec, controller: Any) -> LaunchedPlugin:
        netns = None
        if self.kernel_kind == "linux":
            from netsim.safety import NETNS_DIR

            netns = str(NETNS_DIR / controller.host.namespace)
        cwd = Path(self.scenario.file).resolve().parent if self.scenario.file else None
        host = controller.host if netns else None
        launched = launch_plugin(plugin.command, plugin.name, netns=netns, cwd=cwd, host=host)
        self.launched.append(launched)
        return launched

    def release(self, controllers: dict[str, Any]) -> list[str]:
        """Before the plugins stop: remove every container and every network
        that uses a plugin, through the controllers (the plugins are called
        for their part). They must be gone before a controller deletes its
        host namespace: a plugin still running in it keeps the namespace,
        and the links tied to it, alive."""
        if not self.launched:
            return []
        names = {plugin.name for plugin in self.scenario.plugins}
        problems = []
        for host, ctrl in controllers.items():
            for sandbox in ctrl.sandboxes():
                try:
                    ctrl.delete_sandbox(sandbox.container)
                except NetsimError as exc:
                    problems.append(f"removing container {sandbox.container} on {host}: {exc}")
            for network in ctrl.networks():
                spec = next((n for n in self.scenario.networks if n.name == network.name), None)
                if spec is None or not {spec.driver, spec.ipam.driver} & names:
                    continue
                try:
                    ctrl.delete_network(network.name)
                except NetsimError as exc:
                    problems.append(f"removing network {network.name} on {host}: {exc}")
        return problems

    def stop(self) -> list[str]:
        """Stop every started plugin; problems as text (teardown goes on)."""
        problems = []
        for launched in reversed(self.launched):
            with contextlib.suppress(NetsimError):
                status = launched.stop()
                if status not in (0, None, -15):
                    problems.append(f"plugin {launched.name} exited with status {status}: {launched.log_tail(300)}")
        self.launched.clear()
        return problems
