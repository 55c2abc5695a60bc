"""Crash points for restart tests: a controller that "dies" at its N-th step.

:class:`CrashInjector` counts every kernel, driver, IPAM and store call made
through its proxies; at the armed one it raises :class:`Crashed` and stays
dead, so every later call (undo steps included) raises too and nothing more
changes: what the kernel and the store hold is exactly what a process killed
at that moment (``kill -9``) leaves behind. A new :class:`Controller` on the
same kernel and store must then converge (:func:`check_converged`).

:func:`random_lifecycle` drives a seeded sequence of Docker-like operations.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Callable
from typing import Any

from netsim.controller import Controller, ControllerConfig, IpamConfig, PoolConfig
from netsim.controller.records import endpoint_key, network_key, sandbox_key
from netsim.controller.testing import FaultInjector, FaultyKernel, install_faults
from netsim.errors import NetsimError
from netsim.kernel.base import Kernel
from netsim.netlabel import PortBinding
from netsim.store import KVPair, KVStore, Watch, WatchEvent


class Crashed(BaseException):
    """The simulated process died (not an Exception: nothing may catch it on the way out)."""


class CrashInjector(FaultInjector):
    """Counts calls; from the armed one on, every call raises :class:`Crashed`."""

    def __init__(self) -> None:
        super().__init__()
        self.dead = False

    def tick(self, what: str, make_error: Callable[[str], Exception]) -> None:
        if self.dead:
            raise Crashed(f"dead since {self.fired}")
        self.calls += 1
        self.log.append(what)
        if self.fail_at is not None and self.calls == self.fail_at:
            self.dead, self.fired = True, what
            raise Crashed(what)


class CrashStore:
    """A :class:`KVStore` proxy whose every call is a crash point."""

    def __init__(self, inner: KVStore, injector: CrashInjector) -> None:
        self.inner = inner
        self.injector = injector
        self.url = inner.url

    def watch(self, prefix: str, callback: Callable[[WatchEvent], None]) -> Watch:
        return self.inner.watch(prefix, callback)

    def close(self) -> None:
        """The inner store outlives the crash: the restarted controller opens it again."""

    def _tick(self, what: str) -> None:
        self.injector.tick(f"store.{what}", NetsimError)

    def get(self, key: str) -> KVPair:
        self._tick("get")
        return self.inner.get(key)

    def put(self, key: str, value: str, previous_version: int | None = None) -> int:
        self._tick(f"put {key}")
        return self.inner.put(key, value, previous_version)

    def delete(self, key: str, previous_version: int | None = None) -> None:
        self._tick(f"delete {key}")
        self.inner.delete(key, previous_version)

    def list(self, prefix: str) -> list[KVPair]:
        self._tick("list")
        return self.inner.list(prefix)

    def exists(self, key: str) -> bool:
        self._tick("exists")
        return self.inner.exists(key)


def crashing_controller(
    kernel: Kernel, store: KVStore, injector: CrashInjector, host: str = "h1", index: int = 0
) -> Controller:
    """A controller whose kernel, store, drivers and IPAM all tick ``injector``."""
    config = ControllerConfig(host=host, host_index=index, store=CrashStore(store, injector), entry_points=False)
    ctrl = Controller(FaultyKernel(kernel, injector), config)  # type: ignore[arg-type]
    install_faults(ctrl, injector)
    return ctrl


def random_lifecycle(ctrl: Controller, seed: int, steps: int = 8) -> None:
    """Seeded Docker-like operations: networks (bridge, some with ICC off, internal,
    dual stack, an ip range), containers connected with published ports,
    disconnects, container and network removal. Refused operations are part of it."""
    rng = random.Random(seed)
    networks: list[str] = []
    containers: list[str] = []
    for step in range(steps):
        choice = rng.random()
        try:
            if not networks or choice < 0.2:
                name = f"n{step}"
                options = {}
                if rng.random() < 0.3:
                    options["com.docker.network.bridge.enable_icc"] = "false"
                ipv6 = rng.random() < 0.3
                subnet = f"10.{seed % 200}.{step}.0/24"
                ip_range = f"10.{seed % 200}.{step}.128/25" if rng.random() < 0.3 else ""
                ipam = IpamConfig(
                    pools=[PoolConfig(subnet=subnet, ip_range=ip_range)],
                    pools_v6=[PoolConfig(subnet=f"fd00:{seed % 9999:x}:{step}::/64")] if ipv6 else [],
                )
                ctrl.create_network(name, "bridge", options, ipam, ipv6=ipv6, internal=rng.random() < 0.2)
                networks.append(name)
            elif choice < 0.6:
                container = f"c{step}"
                ports = [PortBinding("tcp", 80, 8000 + step)] if rng.random() < 0.4 else None
                ctrl.connect(container, rng.choice(networks), ports=ports)
                containers.append(container)
            elif choice < 0.7 and containers:
                other = rng.choice(networks)
                ctrl.connect(rng.choice(containers), other, name=f"x{step}")
            elif choice < 0.8 and containers:
                container = rng.choice(containers)
                for network in list(networks):
                    try:
                        ctrl.disconnect(container, network)
                        break
                    except NetsimError:
                        continue
            elif choice < 0.9 and containers:
                container = containers.pop(rng.randrange(len(containers)))
                ctrl.delete_sandbox(container)
            else:
                name = rng.choice(networks)
                ctrl.delete_network(name)
                networks.remove(name)
        except NetsimError:
            continue  # refused (a network in use, a duplicate port...): nothing changed


def check_converged(ctrl: Controller) -> list[str]:
    """What is inconsistent between the records, IPAM and the kernel (empty: converged)."""
    problems: list[str] = []
    store, kernel = ctrl.store, ctrl.kernel
    namespaces = set(kernel.namespaces())
    for pair in store.list("name/"):
        parts = pair.key.split("/")
        target = {
            "network": network_key(pair.value),
            "sandbox": sandbox_key(pair.value),
        }.get(parts[1]) or endpoint_key(parts[2], pair.value)
        if not store.exists(target):
            problems.append(f"name {pair.key} points at missing {target}")
    owned: dict[str, set[Any]] = {}
    for network in ctrl.records.networks():
        for entry in network["ipv4"] + network["ipv6_pools"]:
            mine = owned.setdefault(entry["data"]["Pool"], set())
            data = entry["data"]
            for text in [data.get("Gateway"), *(data.get("AuxAddresses") or {}).values()]:
                if text:
                    mine.add(ipaddress.ip_interface(text).ip)
        if ctrl.records.lookup_name("network", network["name"]) != network["id"]:
            problems.append(f"network {network['name']} has no name index")
    for sandbox in ctrl.records.sandboxes():
        if sandbox["own_namespace"] and sandbox["namespace"] not in namespaces:
            problems.append(f"sandbox {sandbox['container']} has no namespace")
        for nid, eid in sandbox["endpoints"]:
            if not store.exists(endpoint_key(nid, eid)):
                problems.append(f"sandbox {sandbox['container']} lists missing endpoint {eid[:12]}")
    for pair in store.list("endpoint/"):
        _, nid, eid = pair.key.split("/")
        endpoint = ctrl.records.endpoint(nid, eid)
        if not store.exists(network_key(nid)):
            problems.append(f"endpoint {endpoint['name']} has no network")
            continue
        network = ctrl.records.network(nid)
        for address in (endpoint["address"], endpoint["address_ipv6"]):
            if address:
                subnet = str(ipaddress.ip_interface(address).network)
                for entry in network["ipv4"] + network["ipv6_pools"]:
                    if entry["data"]["Pool"] == subnet:
                        ip = ipaddress.ip_interface(address).ip
                        if ip in owned.setdefault(subnet, set()):
                            problems.append(f"address {ip} owned twice")
                        owned[subnet].add(ip)
        if endpoint["sandbox"]:
            sandbox = ctrl.records.sandbox(endpoint["sandbox"])
            if [nid, eid] not in sandbox["endpoints"]:
                problems.append(f"endpoint {endpoint['name']} joined to a sandbox that does not list it")
            elif endpoint["iface"] not in {link.name for link in kernel.links(sandbox["namespace"])}:
                problems.append(f"endpoint {endpoint['name']} has no interface in its sandbox")
    ipam: Any = ctrl.registry.ipam("default").driver
    ipam = getattr(ipam, "inner", ipam)
    if hasattr(ipam, "pool_ids"):
        pools = {pid.split("/")[1] + "/" + pid.split("/")[2]: pid for pid in ipam.pool_ids("LocalDefault")}
        if set(pools) != set(owned):
            problems.append(f"IPAM pools {sorted(pools)} but networks own {sorted(owned)}")
        for subnet, pool_id in pools.items():
            taken = ipam.allocated(pool_id)
            if taken != owned.get(subnet, set()):
                extra = sorted(map(str, taken - owned.get(subnet, set())))
                lost = sorted(map(str, owned.get(subnet, set()) - taken))
                problems.append(f"pool {subnet}: leaked {extra}, owned but free {lost}")
    return problems
