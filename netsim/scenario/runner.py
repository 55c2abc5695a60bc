"""Build a validated scenario on a kernel, probe it, change it, tear it down.

The lifecycle of one scenario (:func:`run_scenario`): a fresh kernel and its
baseline snapshot; a :class:`netsim.controller.Controller` per host; networks
(IPAM allocation, create), containers (sandbox, endpoint, join, external
connectivity for published ports) and their listeners; the expectations; each
step and its expectations; then, always in ``finally``, teardown
(``ctrl.close()``), the leak check (the snapshot must equal the baseline) and
``kernel.close()``. :func:`built` is the same lifecycle around a caller's code
(``netsim trace`` and ``netsim inspect`` use it).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from netsim.errors import NetsimError, error_kind
from netsim.interrupts import Cleanup, deferred_interrupts, raise_if_interrupted
from netsim.kernel.base import Kernel, Listener, ProbeResult
from netsim.scenario import steps as lifecycle
from netsim.scenario.convert import ipam_config as _ipam_config
from netsim.scenario.convert import port_bindings as _port_bindings
from netsim.scenario.dnscheck import probe_dns, resolve_by_name
from netsim.scenario.farend import container_address, expected_sources, far_end_namespace, target_host_name
from netsim.scenario.model import (
    Attachment,
    ContainerSpec,
    Expectation,
    NetworkSpec,
    Scenario,
    Step,
    StoreChoice,
    host_target,
    outside_host,
)
from netsim.scenario.observe import observed
from netsim.scenario.outcomes import RETRY_SUFFIX
from netsim.scenario.outside import OutsideListeners
from netsim.scenario.plugins import ScenarioPlugins, refuse_unreachable
from netsim.scenario.results import ExpectationResult, PhaseResult, ScenarioResult, snapshot_diff
from netsim.scenario.source import source_address
from netsim.scenario.state import StateResult, check_state


class Progress(Protocol):
    """Told what the runner is doing, as it does it (see progress.py)."""

    def scenario_started(self, scenario: Scenario, kernel: str) -> None: ...

    def phase_done(self, scenario: Scenario, phase: str, results: list[PhaseResult]) -> None: ...

    def scenario_done(self, result: ScenarioResult) -> None: ...


class _Silent:
    def scenario_started(self, scenario: Scenario, kernel: str) -> None:
        pass

    def phase_done(self, scenario: Scenario, phase: str, results: list[PhaseResult]) -> None:
        pass

    def scenario_done(self, result: ScenarioResult) -> None:
        pass


def _default_kernel(kind: str) -> Kernel:
    from netsim.kernel import make_kernel

    return make_kernel(kind)


def _default_controller(kernel: Kernel, host: str, index: int) -> Any:
    from netsim.controller import Controller, ControllerConfig

    # host_index n gives host n its own uplink LAN, so several hosts can share one kernel
    return Controller(kernel, ControllerConfig(host=host, host_index=index))


def _default_cluster(kernel: Kernel, hosts: list[str]) -> Any:
    from netsim.cluster import Cluster

    return Cluster(kernel, hosts)


def _stored_controller(kernel: Kernel, host: str, index: int, stores: StoreChoice) -> Any:
    from netsim.controller import Controller, ControllerConfig

    config = ControllerConfig(
        host=host, host_index=index, local_store=stores.local_for(host), global_store=stores.global_
    )
    return Controller(kernel, config)


def _stored_cluster(kernel: Kernel, hosts: list[str], stores: StoreChoice) -> Any:
    from netsim.cluster import Cluster

    return Cluster(kernel, hosts, global_store=stores.global_, local_store=stores.local)


def _default_probe(
    kernel: Kernel, ns: str, dst: str, proto: str, port: int | None, timeout: float, src: str | None
) -> ProbeResult:
    from netsim.probe import probe

    result: ProbeResult = probe(kernel, ns, dst, proto, port, timeout, src)
    return result


@dataclass(frozen=True)
class Backend:
    """Where kernels, controllers and probes come from; tests swap in doubles."""

    make_kernel: Callable[[str], Kernel] = _default_kernel
    make_controller: Callable[[Kernel, str, int], Any] = _default_controller
    probe: Callable[[Kernel, str, str, str, int | None, float, str | None], ProbeResult] = _default_probe
    #: several hosts or a global network: one Cluster (its controllers share a store and table events)
    make_cluster: Callable[[Kernel, list[str]], Any] = _default_cluster
    #: where state lives (``--local-store`` / ``--global-store``), over the file's ``store:``
    stores: StoreChoice | None = None


@dataclass
class _Attached:
    network: str
    endpoint: Any
    ipv4: str | None
    ipv6: str | None


@dataclass
class _Container:
    spec: ContainerSpec
    sandbox: Any = None
    namespace: str = ""
    on_host_network: bool = False
    attached: list[_Attached] = field(default_factory=list)
    #: addresses it had, kept after a disconnect/removal so "to: name" still resolves
    last_addresses: list[str] = field(default_factory=list)
    listeners: list[Listener] = field(default_factory=list)
    #: the networks it joins when started (``docker network connect`` on a stopped one adds here)
    config: list[Attachment] = field(default_factory=list)
    #: False after ``stop`` (or for ``state: created``): no sandbox, no endpoints
    running: bool = False


#: how long a positive probe that timed out keeps being tried again: Linux drops
#: the first packets on a link that just came up until its queue is activated,
#: which the kernel does from a work queue; on a loaded machine (CI: every core
#: busy) that has been seen to take longer than two 0.5 s tries
RETRY_WINDOW = 1.5


def retry_budget(timeout: float) -> int:
    """How many probes in all a positive expectation gets before a timeout counts:
    the first, then enough to cover :data:`RETRY_WINDOW` (at least one more).

    >>> retry_budget(0.5), retry_budget(1.0), retry_budget(2.0)
    (4, 3, 2)
    """
    return 1 + max(1, math.ceil(RETRY_WINDOW / timeout))


class BuiltScenario:
    """A scenario's topology on one kernel, live. Use through :func:`built`."""

    def __init__(self, scenario: Scenario, kernel: Kernel, backend: Backend, timeout: float, pcap_dir: str | None):
        self.scenario = scenario
        self.kernel = kernel
        self.backend = backend
        self.timeout = timeout
        self.pcap_dir = pcap_dir
        self.controllers: dict[str, Any] = {}
        #: the Cluster when the scenario is multi-host (see Scenario.multi_host), else None
        self.cluster: Any = None
        self.containers: dict[str, _Container] = {}
        #: removed containers' last addresses, so a later "to: name" probes where they were
        self.gone: dict[str, str] = {}
        self._probes = 0
        #: the scenario's plugins: started inside each host after its controller, stopped after them
        self.plugins = ScenarioPlugins(scenario, kernel.kind)
        #: listeners in the hosts' outside namespaces (``outside: {listen}``)
        self.outside = OutsideListeners(kernel)

    # --- build ----------------------------------------------------------------
    def build(self) -> None:
        refuse_unreachable(self.scenario, self.kernel.kind)
        stores = self.backend.stores or self.scenario.store
        if self.scenario.multi_host:  # hosts that steps add join this cluster (steps.add_host)
            lifecycle.refuse_shared_local_store(self.scenario, stores)
            if stores is None:
                self.cluster = self.backend.make_cluster(self.kernel, list(self.scenario.hosts))
            else:
                self.cluster = _stored_cluster(self.kernel, list(self.scenario.hosts), stores)
            self.controllers = dict(self.cluster.controllers)
        else:  # one host, no global network: a plain controller, as before clusters existed
            for index, host in enumerate(self.scenario.hosts):
                if stores is None:
                    self.controllers[host] = self.backend.make_controller(self.kernel, host, index)
                else:
                    self.controllers[host] = _stored_controller(self.kernel, host, index, stores)
        for host, ctrl in self.controllers.items():
            self.plugins.attach(host, ctrl)
        for net in self.scenario.networks:
            self._create_network(net)
        for spec in self.scenario.containers:
            self._create_container(spec)
        self.outside.start(self.scenario, {h: c.host.outside_namespace for h, c in self.controllers.items()})

    def _create_network(self, net: NetworkSpec) -> None:
        """``docker network create``: through the cluster for a global network."""
        if net.is_global:
            self.cluster.create_network(
                net.name,
                driver=net.driver,
                options=dict(net.options),
                ipam=_ipam_config(net),
                internal=net.internal,
                labels=dict(net.labels),
            )
            return
        self.controllers[net.host].create_network(
            net.name,
            driver=net.driver,
            options=dict(net.options),
            ipam=_ipam_config(net),
            ipv6=net.ipv6,
            internal=net.internal,
            labels=dict(net.labels),
            **({} if net.ipv4 else {"ipv4": False}),  # IPv6-only (--ipv4=false); controllers before it lack the key
        )

    def _create_container(self, spec: ContainerSpec) -> None:
        lifecycle.create_container(self, spec)  # and start it, unless state: created

    def _attach(self, ctr: _Container, att: Attachment) -> None:
        ctrl = self.controllers[ctr.spec.host]
        net = ctrl.network(att.network)
        is_host = self.scenario.network(att.network).driver == "host"

        def internal(name: str) -> bool:
            spec = self.scenario.network(name)
            return spec.internal or spec.options.get("com.docker.network.internal") in ("true", "1")

        # Docker programs published ports on the container's gateway endpoint: the
        # first network it joins that is not internal (libnetwork's sbJoin and
        # getGatewayEndpoint); an internal first network hands them to the next one.
        programmed = any(not internal(a.network) for a in ctr.attached)
        first_gateway = not programmed and not internal(att.network)
        ports = _port_bindings(ctr.spec) if first_gateway and not is_host else []
        named = {"aliases": att.aliases} if att.aliases else {}  # only when given: test doubles take none
        # sandbox: the driver may make the interface in the container's namespace (no move at join)
        endpoint = ctrl.create_endpoint(
            net, ctr.spec.name, ipv4=att.ip, ipv6=att.ipv6, mac=att.mac, ports=ports, sandbox=ctr.sandbox, **named
        )
        try:
            ctrl.join(endpoint, ctr.sandbox)
        except BaseException:
            ctrl.delete_endpoint(endpoint)
            raise
        ipv4 = str(endpoint.address.ip) if endpoint.address is not None else None
        ipv6 = str(endpoint.address_ipv6.ip) if getattr(endpoint, "address_ipv6", None) is not None else None
        if ctr.on_host_network:  # host-network containers answer on the host's own address
            ipv4 = ctrl.host.host_ip
        ctr.attached.append(_Attached(att.network, endpoint, ipv4, ipv6))
        ctr.last_addresses = [a for a in (ipv4, ipv6) if a] + ctr.last_addresses

    def _detach(self, ctr: _Container, network: str) -> None:
        ctrl = self.controllers[ctr.spec.host]
        att = next(a for a in ctr.attached if a.network == network)
        ctrl.leave(att.endpoint, ctr.sandbox)
        ctrl.delete_endpoint(att.endpoint)
        ctr.attached.remove(att)

    def _remove_listeners(self, ctr: _Container) -> None:
        while ctr.listeners:
            self.kernel.delete_listener(ctr.namespace, ctr.listeners[-1])
            ctr.listeners.pop()

    # --- steps ----------------------------------------------------------------
    def apply(self, step: Step) -> None:
        ctrl = self.controllers[self.scenario.container(step.container).host] if step.container else None
        if step.action in lifecycle.LIFECYCLE_STEPS:
            lifecycle.apply_lifecycle(self, step)
        elif step.action == "connect" and step.attachment is not None:
            lifecycle.connect(self, self.containers[step.container], step.attachment)
        elif step.action == "disconnect":
            lifecycle.disconnect(self, self.containers[step.container], step.network)
        elif step.action == "remove_container":
            ctr = self.containers[step.container]
            assert ctrl is not None
            if ctr.running:
                lifecycle.stop_container(self, ctr)
            self.forget(step.container)
            del self.containers[step.container]
        elif step.action == "remove_network":
            net = self.scenario.network(step.network)
            if net.is_global:
                self.cluster.delete_network(net.name)
                return
            owner = self.controllers[net.host]
            owner.delete_network(owner.network(step.network))

    # --- probes ---------------------------------------------------------------
    def resolve(self, exp: Expectation) -> tuple[str, str]:
        """``(source namespace, destination IP)``; dst is "" when the target has no address."""
        source = self.containers.get(exp.source)
        host = source.spec.host if source else outside_host(exp.source) or self._target_host(exp)
        src_ns = source.namespace if source else self.controllers[host].host.outside_namespace
        v6 = exp.family == 6
        target_outside = outside_host(exp.target)
        if target_outside is not None:
            world = self.controllers[target_outside or host].host
            return src_ns, world.outside_address_v6 if v6 else world.outside_address
        named_host = target_host_name(self, exp)
        if named_host is not None:
            return src_ns, self.controllers[named_host].host.host_ip_v6 if v6 else self.controllers[
                named_host
            ].host.host_ip
        if exp.published_port is not None:
            publisher = self.controllers[self._target_host(exp)].host
            return src_ns, publisher.host_ip_v6 if v6 else publisher.host_ip
        if exp.target not in {c.name for c in self.scenario.all_containers()}:
            return src_ns, exp.target
        target = self.containers.get(exp.target)
        if target is None:  # removed: probe where it used to be
            return src_ns, self.gone.get(exp.target, "")
        shared = {a.network for a in source.attached} if source else set()
        if exp.family is not None:
            return src_ns, container_address(self, exp, shared)
        for att in target.attached:
            if att.network in shared and (att.ipv4 or att.ipv6):
                return src_ns, att.ipv4 or att.ipv6 or ""
        for att in target.attached:
            if att.ipv4 or att.ipv6:
                return src_ns, att.ipv4 or att.ipv6 or ""
        return src_ns, target.last_addresses[0] if target.last_addresses else ""

    def _target_host(self, exp: Expectation) -> str:
        if host_target(exp.target):  # host@H: that host (plain "host" is the source's, or the first)
            return host_target(exp.target) or ""
        if exp.published_port is not None:
            for ctr in self.scenario.all_containers():
                if any(p.host_port == exp.published_port and p.proto == exp.proto for p in ctr.publish):
                    return ctr.host
        names = {c.name: c.host for c in self.scenario.all_containers()}
        return names.get(exp.target, self.scenario.hosts[0])

    def probe(self, exp: Expectation, phase: str, *, retry: bool = True, observe: bool = False) -> ExpectationResult:
        """Probe one expectation. With ``retry``, a positive expectation whose
        probe timed out gets one more try (see below); ``netsim trace`` wants
        the first packet's story and passes False. With ``observe`` (and for
        every ``seen_from``), the far end's view is recorded in ``result.seen``."""
        sender = self.containers.get(exp.source)
        if sender is not None and not sender.running:  # only ``netsim trace`` gets here: files are checked at load
            stopped = ExpectationResult(exp, phase, reachable=False)
            stopped.outcome = f"error: container {exp.source!r} is not running (no network namespace)"
            return stopped
        if exp.dns is not None:  # a DNS query from the container to its resolver
            return probe_dns(self.kernel, self.containers[exp.source].namespace, exp, phase, self.timeout)
        unresolved = ""
        if exp.via_dns:  # the address the source's own resolver gives for the name
            src_ns = self.containers[exp.source].namespace
            dst, unresolved = resolve_by_name(self.kernel, src_ns, exp, self.timeout)
        else:
            src_ns, dst = self.resolve(exp)
        result = ExpectationResult(exp, phase, dst=dst)
        if not dst:
            result.reachable, result.outcome = False, unresolved or "no-address"
            return result
        self._probes += 1
        far_end = far_end_namespace(self, exp) if exp.seen_from or observe else None
        try:
            src = source_address(self.kernel, src_ns, dst)
            with self._capture(src_ns, exp), observed(self.kernel, far_end, exp.proto) as seen:
                answer = self.backend.probe(self.kernel, src_ns, dst, exp.proto, exp.port, self.timeout, src)
                tries = 1
                while (
                    retry
                    and exp.reachable
                    and not answer.reachable
                    and answer.outcome == "timeout"
                    and tries < retry_budget(self.timeout)
                ):
                    answer = self.backend.probe(self.kernel, src_ns, dst, exp.proto, exp.port, self.timeout, src)
                    tries += 1
                retried = tries > 1
        except NetsimError as exc:
            result.reachable, result.outcome = False, f"error: {error_kind(exc)}: {exc}"
            return result
        result.reachable, result.trace = answer.reachable, list(answer.trace)
        result.sent_from, result.seen, result.far_end = src, seen.source, far_end
        if exp.seen_from:
            result.seen_expected = expected_sources(self, exp, src_ns)
        result.outcome = f"{answer.outcome}{RETRY_SUFFIX}" if retried else answer.outcome
        return result

    def _capture(self, ns: str, exp: Expectation) -> contextlib.AbstractContextManager[None]:
        if not self.pcap_dir:
            return contextlib.nullcontext()
        Path(self.pcap_dir).mkdir(parents=True, exist_ok=True)
        # a loopback-only namespace (null driver) still has traffic to show: on lo
        ifaces = [link.name for link in self.kernel.links(ns) if link.kind != "loopback"] or ["lo"]
        name = f"{self.scenario.name}-{self._probes:03d}-{exp.source}-{exp.target.replace(':', '_')}.pcap"
        return self.kernel.capture(ns, ifaces, str(Path(self.pcap_dir) / name))

    # --- teardown ---------------------------------------------------------------
    def teardown(self) -> list[str]:
        """Remove listeners, release what uses the plugins and stop them, close
        every controller; report what failed, keep going."""
        problems = self.outside.stop()
        for ctr in self.containers.values():
            try:
                self._remove_listeners(ctr)
            except NetsimError as exc:
                problems.append(f"listener of {ctr.spec.name}: {exc}")
        try:
            problems += self.plugins.release(self.controllers)
            problems += self.plugins.stop()
            problems += self._close_controllers()
        finally:
            problems += self.plugins.stop()  # idempotent: only if something above failed
        return problems

    def _close_controllers(self) -> list[str]:
        problems = []
        if self.cluster is not None:
            try:  # closes every host's controller, frees the VNIs, removes the underlay
                self.cluster.close()
            except NetsimError as exc:
                problems.append(f"closing the cluster: {error_kind(exc)}: {exc}")
            return problems
        for host, ctrl in reversed(list(self.controllers.items())):
            try:
                ctrl.close()
            except NetsimError as exc:
                problems.append(f"closing controller {host}: {error_kind(exc)}: {exc}")
        return problems

    def forget(self, name: str) -> None:
        """Remember a removed container's last address for later ``to: name``."""
        ctr = self.containers.get(name)
        if ctr is not None and ctr.last_addresses:
            self.gone[name] = ctr.last_addresses[0]


@contextlib.contextmanager
def built(
    scenario: Scenario,
    kernel_kind: str = "fake",
    *,
    backend: Backend | None = None,
    timeout: float = 1.0,
    pcap_dir: str | None = None,
    leaks: list[str] | None = None,
) -> Iterator[BuiltScenario]:
    """The scenario built on a fresh kernel; torn down and leak-checked after.

    Teardown problems and leaks are appended to ``leaks`` (when given); the
    kernel is closed in every case, with SIGINT/SIGTERM held back while it
    removes its namespaces. An interrupt (Ctrl-C, SIGTERM) always propagates:
    a cleanup error during it is recorded in ``leaks``, never raised instead.
    """
    backend = backend or Backend()
    kernel = backend.make_kernel(kernel_kind)
    cleanup = Cleanup(leaks)
    try:
        baseline = kernel.snapshot()
        world = BuiltScenario(scenario, kernel, backend, timeout, pcap_dir)
        try:
            world.build()
            yield world
        except BaseException as exc:
            cleanup.interrupted(exc)
            raise
        finally:
            cleanup.run("teardown", world.teardown)
            cleanup.run("leak check", lambda: snapshot_diff(baseline, kernel.snapshot()))
    except BaseException as exc:
        cleanup.interrupted(exc)
        raise
    finally:
        with deferred_interrupts():
            cleanup.run("closing the kernel", kernel.close)


def _timed(world: BuiltScenario, exp: Expectation, phase: str) -> ExpectationResult:
    """Probe one expectation and record how long it took (the JSON report's ``seconds``)."""
    started = time.perf_counter()
    result = world.probe(exp, phase)
    result.seconds = time.perf_counter() - started
    return result


def run_scenario(
    scenario: Scenario,
    kernel_kind: str = "fake",
    *,
    backend: Backend | None = None,
    progress: Progress | None = None,
    timeout: float = 1.0,
    pcap_dir: str | None = None,
) -> ScenarioResult:
    """Run one scenario end to end; errors become part of the result, never raised."""
    progress = progress or _Silent()
    progress.scenario_started(scenario, kernel_kind)
    started = time.perf_counter()
    result = ScenarioResult(scenario.name, kernel_kind, scenario.file)
    phases: list[tuple[str, Step | None, tuple[Expectation, ...]]] = [("initial", None, scenario.expect)]
    phases += [(f"step {i + 1}: {s.describe()}", s, s.expect) for i, s in enumerate(scenario.steps)]
    pending = [ExpectationResult(exp, label) for label, _, exps in phases for exp in exps]
    #: state assertions by phase label, checked after the phase's probes
    states = {"initial": scenario.state} | {label: s.state for label, s, _ in phases if s is not None}
    pending_state = [StateResult(c, label) for label, checks in states.items() for c in checks]
    try:
        with built(
            scenario, kernel_kind, backend=backend, timeout=timeout, pcap_dir=pcap_dir, leaks=result.leaks
        ) as world:
            for label, step, exps in phases:
                raise_if_interrupted()  # a signal swallowed in a weakref callback still stops the run
                if step is not None:
                    world.apply(step)
                done = [_timed(world, exp, label) for exp in exps]
                result.results.extend(done)
                del pending[: len(done)]
                checked = [check_state(world, check, label) for check in states[label]]
                result.state_results.extend(checked)
                del pending_state[: len(checked)]
                progress.phase_done(scenario, label, [*done, *checked])
    except NetsimError as exc:
        result.error = f"{error_kind(exc)}: {exc}"
    except Exception as exc:  # a bug in a driver or kernel must not hide the other scenarios
        result.error = f"internal error: {type(exc).__name__}: {exc}"
    result.results.extend(pending)
    result.state_results.extend(pending_state)
    result.seconds = time.perf_counter() - started
    progress.scenario_done(result)
    return result
