"""``netsim plugin serve MODULE:ATTR --socket PATH``: serve a driver as a
Docker plugin until SIGINT/SIGTERM, then remove the socket.

``netsim plugin serve --builtin bridge --kernel fake --socket PATH`` serves a
built-in driver, on a host a controller builds on that kernel (for
``linux``: namespaces with this run's prefix, removed on exit).

``ATTR`` may be a Driver or Ipam class (built with no arguments), an instance
of one, or an init function ``init(registry, config)`` (called with
``--config`` JSON, default ``{}``), in which case everything it registers is
served (``--name`` picks one driver when it registers several).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import signal
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from netsim.driverapi import Capability, Driver
from netsim.errors import InvalidParameterError, NetsimError, NotFoundError
from netsim.ipamapi import Ipam, IpamCapability
from netsim.plugin.server import PluginServer


@dataclass
class CollectingRegistry:
    """A registry that only records what an init function registers."""

    drivers: dict[str, tuple[Driver, Capability]] = field(default_factory=dict)
    ipams: dict[str, Ipam] = field(default_factory=dict)

    def register_driver(self, name: str, driver: Driver, capability: Capability) -> None:
        self.drivers[name] = (driver, capability)

    def register_ipam_driver(self, name: str, driver: Ipam, capability: IpamCapability | None = None) -> None:
        self.ipams[name] = driver


def load_target(target: str) -> object:
    """Import ``MODULE:ATTR`` (ATTR may be dotted)."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise InvalidParameterError(f"invalid target {target!r}: expected MODULE:CLASS")
    try:
        obj: object = importlib.import_module(module_name)
    except ImportError as exc:
        raise InvalidParameterError(f"cannot import {module_name!r}: {exc}") from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            raise InvalidParameterError(f"{module_name!r} has no attribute {attr!r}") from exc
    return obj


def build_served(
    target: object, *, name: str = "", config: Mapping[str, Any] | None = None
) -> tuple[Driver | None, Capability | None, Ipam | None]:
    """What to serve for a loaded target: (driver, its capability, ipam)."""
    if isinstance(target, type):
        if not issubclass(target, Driver | Ipam):
            raise InvalidParameterError(f"{target.__name__} is neither a netsim Driver nor an Ipam")
        cls = target
        # As the conformance suite does: the driver config first (kernel, host,
        # options), then no arguments.
        try:
            target = cls(dict(config or {}))  # type: ignore[call-arg]
        except TypeError:
            try:
                target = cls()
            except TypeError as exc:
                raise InvalidParameterError(
                    f"cannot construct {cls.__name__} from the driver config or without arguments: {exc}"
                ) from exc
    if isinstance(target, Driver):
        return target, None, None
    if isinstance(target, Ipam):
        return None, None, target
    if not callable(target):
        raise InvalidParameterError(f"{target!r} is not a Driver, an Ipam or an init function")
    registry = CollectingRegistry()
    target(registry, dict(config or {}))
    driver = capability = None
    if registry.drivers:
        if name:
            if name not in registry.drivers:
                raise InvalidParameterError(f"init registered no driver {name!r}: {sorted(registry.drivers)}")
            driver, capability = registry.drivers[name]
        elif len(registry.drivers) == 1:
            driver, capability = next(iter(registry.drivers.values()))
        else:
            raise InvalidParameterError(f"init registered several drivers {sorted(registry.drivers)}: pick with --name")
    ipam = registry.ipams.get(name) if name in registry.ipams else next(iter(registry.ipams.values()), None)
    if driver is None and ipam is None:
        raise InvalidParameterError("init registered neither a driver nor an IPAM driver")
    return driver, capability, ipam


DESCRIPTION = "Serve a netsim driver (or a built-in one) as a Docker plugin until SIGINT/SIGTERM."


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``serve``: one definition for ``netsim plugin serve``
    and ``python -m netsim.plugin serve``."""
    parser.add_argument(
        "target", nargs="?", metavar="MODULE:ATTR", help="a Driver or Ipam class, an instance, or MODULE:init"
    )
    parser.add_argument("--builtin", metavar="NAME", help="serve a built-in driver (or IPAM) instead of a target")
    parser.add_argument("--kernel", choices=("fake", "linux"), default="fake", help="kernel of --builtin's host")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--socket", metavar="PATH", help="unix socket path to listen on")
    where.add_argument("--tcp", metavar="HOST:PORT", help="TCP address to listen on (loopback only advised)")
    parser.add_argument("--name", default="", help="which registered driver to serve (init functions)")
    parser.add_argument("--config", default="{}", help="JSON config handed to an init function")
    parser.add_argument("--scope", choices=("local", "global"), help="GetCapabilities Scope (default local)")
    parser.add_argument("--connectivity-scope", choices=("local", "global"), help="default: same as --scope")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="netsim plugin serve", description=DESCRIPTION, epilog=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    add_serve_arguments(parser)
    return parser


def serve_main(argv: list[str]) -> int:
    """Parse ``argv`` (a leading ``serve`` is skipped) and serve; returns the exit status."""
    args_list = list(argv[1:] if argv[:1] == ["serve"] else argv)
    try:
        args = _parser().parse_args(args_list)
    except SystemExit as exc:  # argparse exits on --help and on usage errors
        return int(exc.code or 0)
    return serve(args)


def serve(args: argparse.Namespace) -> int:
    """Serve what parsed ``args`` (see :func:`add_serve_arguments`) name until SIGINT/SIGTERM."""
    with contextlib.ExitStack() as stack:
        server = _start(args, stack)
        if server is None:
            return 1
        done = threading.Event()
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, lambda *_: done.set())
        print(f"serving {', '.join(server.handlers.implements())} on {server.address}", file=sys.stderr, flush=True)
        while not done.wait(0.5):
            pass
    return 0


def _start(args: argparse.Namespace, stack: contextlib.ExitStack) -> PluginServer | None:
    """Build what to serve and start serving it; None (after printing why) on failure."""
    try:
        if (args.target is None) == (args.builtin is None):
            raise InvalidParameterError("give either MODULE:CLASS or --builtin NAME")
        if args.builtin:
            driver, capability, ipam = serve_builtin(stack, args.builtin, args.kernel)
        else:
            config = json.loads(args.config)
            if not isinstance(config, dict):
                raise InvalidParameterError("--config must be a JSON object")
            # A driver that works on a kernel gets a simulated host, as --builtin does.
            config = {**host_config(stack, args.kernel), **config}
            driver, capability, ipam = build_served(load_target(args.target), name=args.name, config=config)
        if args.scope:
            capability = Capability(args.scope, args.connectivity_scope or args.scope)
        tcp = None
        if args.tcp:
            host, _, port = args.tcp.rpartition(":")
            tcp = (host or "127.0.0.1", int(port))
        server = PluginServer(driver, ipam, socket_path=args.socket, tcp=tcp, capability=capability, name=args.name)
        server.start()
    except (NetsimError, ValueError) as exc:
        print(f"netsim plugin serve: {exc}", file=sys.stderr)
        stack.close()
        return None
    stack.callback(server.stop)
    return server


def host_config(stack: contextlib.ExitStack, kernel_kind: str) -> dict[str, Any]:
    """The driver config a served target's init function or class receives:
    the kernel and host it acts on, as a controller would give them. Launched
    by netsim inside a simulated host (``NETSIM_PLUGIN_HOST``, linux kernel):
    that host; otherwise a fresh one on a ``kernel_kind`` kernel, removed when
    ``stack`` closes."""
    from netsim.driverapi import CONFIG_HOST, CONFIG_KERNEL, CONFIG_OPTIONS
    from netsim.kernel import make_kernel
    from netsim.plugin.hosted import HOST_ENV, host_from_environment

    if kernel_kind == "linux" and os.environ.get(HOST_ENV):
        kernel = make_kernel("linux")
        stack.callback(kernel.close)
        host = host_from_environment(kernel)
        assert host is not None
        kernel.borrow_namespace(host.namespace)  # type: ignore[attr-defined]
        return {CONFIG_KERNEL: kernel, CONFIG_HOST: host, CONFIG_OPTIONS: {}}
    from netsim.controller import Controller, ControllerConfig

    kernel = make_kernel(kernel_kind)
    stack.callback(kernel.close)
    controller = Controller(kernel, ControllerConfig(host="plugin", entry_points=False))
    stack.callback(controller.close)
    return {CONFIG_KERNEL: kernel, CONFIG_HOST: controller.host, CONFIG_OPTIONS: {}}


def serve_builtin(
    stack: contextlib.ExitStack, name: str, kernel_kind: str
) -> tuple[Driver | None, Capability | None, Ipam | None]:
    """The built-in network or IPAM driver ``name`` of a controller on a
    fresh ``kernel_kind`` kernel (its host namespaces are made now and
    removed when ``stack`` closes).

    On the linux kernel, launched by netsim inside a simulated host
    (``NETSIM_PLUGIN_HOST`` set): the network driver acts on that host
    instead (:mod:`netsim.plugin.hosted`)."""
    if kernel_kind == "linux":
        from netsim.plugin.hosted import serve_builtin_in_host

        hosted = serve_builtin_in_host(stack, name)
        if hosted is not None:
            return hosted[0], hosted[1], None
    from netsim.controller import Controller, ControllerConfig
    from netsim.kernel import make_kernel

    kernel = make_kernel(kernel_kind)
    stack.callback(kernel.close)
    # Entry points too: --builtin serves any installed driver by name.
    controller = Controller(kernel, ControllerConfig(host="plugin"))
    stack.callback(controller.close)
    try:
        entry = controller.registry.driver(name)
        return entry.driver, entry.capability, None
    except NotFoundError:
        pass
    try:
        return None, None, controller.registry.ipam(name).driver
    except NotFoundError:
        raise NotFoundError(f"no built-in or installed network or IPAM driver named {name!r}") from None


def main() -> int:
    return serve_main(sys.argv[1:])
