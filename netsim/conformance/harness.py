"""Build a kernel, a controller and the driver under test for one check."""

from __future__ import annotations

import ipaddress
import itertools
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from netsim import netlabel
from netsim.conformance.target import DriverTarget, load_python_target
from netsim.controller import Controller, ControllerConfig, IpamConfig, PoolConfig
from netsim.controller.views import Network
from netsim.driverapi import Capability, Driver, IPAMData, NetworkInfo
from netsim.host import Host
from netsim.kernel.base import Kernel
from netsim.store import KVStore


def new_id() -> str:
    """A 64-hex id like Docker's network and endpoint IDs."""
    return uuid.uuid4().hex + uuid.uuid4().hex


@dataclass
class DriverUnderTest:
    """What every check receives (the ``dut`` fixture): the driver as registered in a controller.

    ``dut.driver`` is the driver object itself (call its methods directly, as
    libnetwork would), ``dut.ctrl`` a :class:`netsim.controller.Controller`
    on ``dut.kernel`` with the driver registered under ``dut.name`` (go
    through it for whole lifecycles: IPAM, join, the sandbox's routes), and
    ``dut.options`` the ``--netsim-option`` pairs given to every network.
    The kernel must be back to its state before the check once
    :meth:`close` has run.

    A check's own test can build one with :func:`build`::

        with make_kernel("fake") as kernel:
            dut = build(DriverTarget("mydriver"), kernel)
            try:
                net = dut.create_network("n1")            # 10.77.0.0/24
                ep = dut.ctrl.connect("c1", net.name)     # a container on it
            finally:
                dut.close()
    """

    target: DriverTarget
    kernel: Kernel
    ctrl: Controller
    name: str
    driver: Driver
    capability: Capability
    options: dict[str, str] = field(default_factory=dict)
    cleanups: list[Callable[[], None]] = field(default_factory=list)
    _subnets: Iterator[int] = field(default_factory=lambda: itertools.count(0))

    @property
    def is_global(self) -> bool:
        """True for a global- or swarm-scope driver (allocate/free and table events apply)."""
        return self.capability.data_scope in ("global", "swarm")

    def next_subnet(self) -> str:
        """A fresh /24 from 10.77.0.0/16 for each network a check creates."""
        return f"10.77.{next(self._subnets)}.0/24"

    def ipam_data(self, subnet: str | None = None) -> list[IPAMData]:
        """``[IPAMData("LocalDefault", subnet, gateway=<first host>/<prefix>)]`` for
        ``subnet`` (default: :meth:`next_subnet`), as IPAM would hand it to create_network."""
        net = ipaddress.ip_network(subnet or self.next_subnet())
        gateway = ipaddress.ip_interface(f"{next(net.hosts())}/{net.prefixlen}")
        return [IPAMData(address_space="LocalDefault", pool=net, gateway=gateway)]

    def network_options(self) -> dict[str, Any]:
        """Options shaped as the controller passes them to create_network."""
        return {netlabel.GENERIC_DATA: dict(self.options), netlabel.ENABLE_IPV6: False, netlabel.INTERNAL: False}

    def create_network_direct(self, nid: str | None = None, subnet: str | None = None) -> tuple[str, list[IPAMData]]:
        """Call the driver's create_network directly, without the controller."""
        nid = nid or new_id()
        data = self.ipam_data(subnet)
        self.driver.create_network(nid, self.network_options(), NetworkInfo(), data, [])
        return nid, data

    def create_network(self, name: str, subnet: str | None = None, **kwargs: Any) -> Network:
        """Create a network through the controller (IPAM, allocate, create)."""
        return self.ctrl.create_network(
            name,
            driver=self.name,
            options=dict(self.options),
            ipam=IpamConfig(driver="default", pools=[PoolConfig(subnet=subnet or self.next_subnet())]),
            **kwargs,
        )

    def close(self) -> None:
        """Close the controller (it deletes what is left) and run the cleanups."""
        try:
            self.ctrl.close()
        finally:
            for cleanup in reversed(self.cleanups):
                cleanup()


def launch_for_check(
    target: DriverTarget, kernel: Kernel, host: Host
) -> tuple[Callable[..., None], Callable[[], None]]:
    """Start the plugin program for one check: inside ``host``'s namespace on the
    real kernel, in a private namespace of its own on the fake one (it cannot
    reach the in-memory kernel; the checks that need it to are skipped)."""
    from drivers.remote import RemoteDriver
    from netsim.plugin.launcher import launch_plugin

    netns = None
    if kernel.kind == "linux":
        from netsim.safety import NETNS_DIR

        netns = str(NETNS_DIR / host.namespace)
    plugin = launch_plugin(target.plugin_cmd, target.spec, netns=netns, host=host if netns else None)

    def stop() -> None:
        plugin.stop()

    return RemoteDriver.init_for(plugin.address, name=target.spec), stop


def build(target: DriverTarget, kernel: Kernel, host: str = "h1", store: KVStore | None = None) -> DriverUnderTest:
    """A controller on ``kernel`` with the target driver registered. With a
    ``store`` holding an earlier controller's records, the controller recovers
    them once the target is registered (``dut.ctrl.recovery`` says how it went)."""
    # A module:Class target is tested as given, even when an installed entry point
    # registers a driver under the same name: those are not loaded then.
    config = ControllerConfig(host=host, store=store, recover_on_open=False, entry_points=target.kind != "python")
    ctrl = Controller(kernel, config)
    cleanups: list[Callable[[], None]] = []
    try:
        name = target.spec
        if target.kind != "name":
            before = set(ctrl.registry.drivers())
            if target.kind == "python":
                init = load_python_target(target.spec)
            elif target.kind == "process":
                init, stop = launch_for_check(target, kernel, ctrl.host)
                cleanups.append(stop)
            elif target.kind == "remote":
                from drivers.remote import RemoteDriver

                init = RemoteDriver.init_for(target.spec, name="remote-under-test")
            else:
                from netsim.conformance.plugin_roundtrip import serve_builtin

                builtin = target.spec.split(":", 1)[1]
                init, stop = serve_builtin(builtin, ctrl.driver_config(builtin), f"plugin-{builtin}")
                cleanups.append(stop)
            ctrl.registry.add_driver(init, ctrl.driver_config(target.spec))
            added = sorted(set(ctrl.registry.drivers()) - before)
            name = added[0] if added else target.spec
        entry = ctrl.registry.driver(name)
        if ctrl.stores.persistent and ctrl.records.has_state():
            ctrl.recover()
    except BaseException:
        ctrl.close()
        for cleanup in cleanups:
            cleanup()
        raise
    return DriverUnderTest(target, kernel, ctrl, name, entry.driver, entry.capability, dict(target.options), cleanups)


def kernel_changes(before: dict[str, Any], after: dict[str, Any]) -> str:
    """What changed between two kernel snapshots, one item per line
    ("left behind in NS: rule ...", "gone from NS: link ...")."""
    lines = []
    for ns in sorted(set(before) | set(after)):
        if ns not in before:
            lines.append(f"namespace {ns} left behind")
            continue
        if ns not in after:
            lines.append(f"namespace {ns} deleted")
            continue
        old, new = before[ns], after[ns]
        for kind in sorted(set(old) | set(new)):
            was, now = old.get(kind), new.get(kind)
            if was == now:
                continue
            if isinstance(was, dict) and isinstance(now, dict):
                for key in sorted(set(was) | set(now)):
                    if was.get(key) != now.get(key):
                        lines.append(f"{kind} {key} in {ns}: {was.get(key)!r} -> {now.get(key)!r}")
                continue
            was_items, now_items = list(was or []), list(now or [])
            for item in now_items:
                if item not in was_items:
                    lines.append(f"left behind in {ns}: {kind[:-1] if kind.endswith('s') else kind} {_short(item)}")
            for item in was_items:
                if item not in now_items:
                    lines.append(f"gone from {ns}: {kind[:-1] if kind.endswith('s') else kind} {_short(item)}")
    return "\n  " + "\n  ".join(lines[:40]) + (f"\n  ... and {len(lines) - 40} more" if len(lines) > 40 else "")


def _short(item: Any) -> str:
    """A snapshot entry without its empty fields."""
    if isinstance(item, dict):
        return ", ".join(f"{k}={v}" for k, v in item.items() if v not in (None, {}, [], ""))
    return str(item)


def assert_unchanged(kernel: Kernel, before: dict[str, Any], what: str) -> None:
    """Fail with ``what`` and the exact items that differ from ``before``."""
    __tracebackhide__ = True
    after = kernel.snapshot()
    if after != before:
        raise AssertionError(f"{what}:{kernel_changes(before, after)}")


class expect_error:
    """``with expect_error(NotFoundError, "for an unknown network"):``: the block
    must raise one of ``kinds``; another exception or none fails the check
    with what was expected and what came ("expected NotFoundError for an
    unknown network, got KeyError: '15c2...'")."""

    def __init__(self, kinds: type[BaseException] | tuple[type[BaseException], ...], what: str) -> None:
        self.kinds = kinds if isinstance(kinds, tuple) else (kinds,)
        self.what = what

    def __enter__(self) -> expect_error:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> bool:
        __tracebackhide__ = True
        expected = " or ".join(k.__name__ for k in self.kinds)
        if exc is None:
            raise AssertionError(f"expected {expected} {self.what}, but the call succeeded")
        if isinstance(exc, self.kinds):
            return True
        if not isinstance(exc, Exception):
            return False  # KeyboardInterrupt and the like pass through
        raise AssertionError(f"expected {expected} {self.what}, got {type(exc).__name__}: {exc}") from exc
