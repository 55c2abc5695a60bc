"""The runner's lifecycle against test doubles (no kernel, no controller):
order of calls, teardown in every case, leak detection, error capture."""

from __future__ import annotations

import contextlib
import ipaddress
from dataclasses import dataclass, field
from typing import Any

import pytest

from netsim.errors import ConflictError
from netsim.kernel.base import Listener, ProbeResult, TraceHop
from netsim.scenario.runner import Backend, built, run_scenario
from netsim.scenario.schema import parse_scenario

SCENARIO = {
    "name": "doubles",
    "networks": [{"name": "front", "ipam": {"subnet": "10.1.0.0/24"}}, {"name": "back"}],
    "containers": [
        {
            "name": "web",
            "networks": [{"network": "front", "ip": "10.1.0.10"}],
            "listen": ["tcp/80"],
            "publish": ["8080:80/tcp"],
        },
        {"name": "db", "networks": ["back"], "listen": ["tcp/5432"]},
        {"name": "app", "networks": ["front", "back"]},
    ],
    "expect": [
        {"from": "app", "to": "web", "proto": "tcp", "port": 80},
        {"from": "app", "to": "db", "proto": "tcp", "port": 5432},
        {"from": "web", "to": "db", "reachable": False},
        {"from": "outside", "to": "published:8080", "proto": "tcp"},
        {"from": "web", "to": "outside"},
    ],
    "steps": [
        {"remove_container": "db", "expect": [{"from": "app", "to": "db", "reachable": False}]},
        {
            "disconnect": {"container": "app", "network": "front"},
            "expect": [{"from": "app", "to": "10.1.0.10", "reachable": False}],
        },
    ],
}


class DoubleKernel:
    kind = "double"
    prefix = "netsim-test-"

    def __init__(self) -> None:
        self.namespaces: set[str] = set()
        self.listeners: dict[str, list[Listener]] = {}
        self.closed = False

    def snapshot(self) -> dict[str, Any]:
        return {ns: {"listeners": list(self.listeners.get(ns, []))} for ns in sorted(self.namespaces)}

    def add_listener(self, ns: str, listener: Listener) -> None:
        assert ns in self.namespaces, f"listener in a namespace that does not exist: {ns}"
        self.listeners.setdefault(ns, []).append(listener)

    def delete_listener(self, ns: str, listener: Listener) -> None:
        self.listeners[ns].remove(listener)

    def links(self, ns: str) -> list[Any]:
        return []

    def addresses(self, ns: str) -> list[tuple[str, str]]:
        return []

    def routes(self, ns: str) -> list[Any]:
        return []

    def capture(self, ns: str, ifaces: list[str], path: str) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def close(self) -> None:
        self.closed = True


@dataclass
class Obj:
    name: str = ""
    namespace: str = ""
    address: Any = None
    address_ipv6: Any = None
    network: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


class DoubleController:
    def __init__(self, kernel: DoubleKernel, host: str, log: list[str], leak: bool = False) -> None:
        self.kernel, self.log, self.leak = kernel, log, leak
        self.host = Obj(namespace=kernel.prefix + host)
        self.host.outside_namespace = kernel.prefix + "out"  # type: ignore[attr-defined]
        self.host.outside_address = "198.18.0.1"  # type: ignore[attr-defined]
        self.host.host_ip = "198.18.0.2"  # type: ignore[attr-defined]
        kernel.namespaces |= {self.host.namespace, self.host.outside_namespace}  # type: ignore[attr-defined]
        self.nets: dict[str, Obj] = {}
        self.next_ip = 100

    def create_network(self, name: str, **kw: Any) -> Obj:
        if name == "explode":
            raise ConflictError("network explode: refused on purpose")
        self.log.append(f"create_network {name}")
        self.nets[name] = Obj(name)
        return self.nets[name]

    def network(self, name: str) -> Obj:
        return self.nets[name]

    def create_sandbox(self, name: str, host_namespace: bool = False) -> Obj:
        self.log.append(f"create_sandbox {name}")
        sb = Obj(name, namespace=self.kernel.prefix + name)
        self.kernel.namespaces.add(sb.namespace)
        return sb

    def create_endpoint(
        self,
        net: Obj,
        name: str,
        *,
        ipv4: str | None,
        ipv6: str | None,
        mac: str | None,
        ports: list[Any],
        sandbox: Obj | None = None,
    ) -> Obj:
        self.log.append(f"create_endpoint {net.name}/{name} ports={len(ports)}")
        self.next_ip += 1
        addr = ipaddress.ip_interface(f"{ipv4 or f'10.9.0.{self.next_ip}'}/24")
        return Obj(name, address=addr, network=net)

    def join(self, ep: Obj, sb: Obj) -> None:
        self.log.append(f"join {ep.network.name}/{ep.name}")

    def leave(self, ep: Obj, sb: Obj) -> None:
        self.log.append(f"leave {ep.network.name}/{ep.name}")

    def delete_endpoint(self, ep: Obj) -> None:
        self.log.append(f"delete_endpoint {ep.network.name}/{ep.name}")

    def delete_sandbox(self, sb: Obj) -> None:
        self.log.append(f"delete_sandbox {sb.name}")
        self.kernel.namespaces.discard(sb.namespace)

    def inspect_network(self, name: str) -> dict[str, Any]:
        return {"Name": name}

    def close(self) -> None:
        self.log.append("close")
        keep = {self.kernel.prefix + "app"} if self.leak else set()
        self.kernel.namespaces &= keep


def make_backend(
    open_dsts: set[tuple[str, str, int | None]], log: list[str], *, leak: bool = False, kernels: list[DoubleKernel]
) -> Backend:
    def make_kernel(kind: str) -> Any:
        kernels.append(DoubleKernel())
        return kernels[-1]

    def probe(
        kernel: Any, ns: str, dst: str, proto: str, port: int | None, timeout: float, src: str | None
    ) -> ProbeResult:
        log.append(f"probe {ns.removeprefix(kernel.prefix)} {dst} {proto}/{port}")
        ok = (dst, proto, port) in open_dsts
        hop = TraceHop(ns, "eth0", "deliver" if ok else "drop", "" if ok else "no route")
        return ProbeResult(ok, proto, ns, dst, port, outcome="syn-ack" if ok else "timeout", trace=[hop])  # type: ignore[arg-type]

    def make_controller(kernel: Any, host: str, index: int) -> DoubleController:
        return DoubleController(kernel, host, log, leak)

    return Backend(make_kernel=make_kernel, make_controller=make_controller, probe=probe)


OPEN = {
    ("10.1.0.10", "tcp", 80),
    ("10.9.0.102", "tcp", 5432),
    ("198.18.0.2", "tcp", 8080),
    ("198.18.0.1", "icmp", None),
}


@pytest.fixture
def stubbed_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """The runner turns IPAM specs and port lists into controller request
    types; replace those conversions so no controller module is needed."""
    monkeypatch.setattr("netsim.scenario.runner._ipam_config", lambda net: None)
    monkeypatch.setattr("netsim.scenario.runner._port_bindings", lambda ctr: list(ctr.publish))


@pytest.mark.usefixtures("stubbed_config")
def test_full_lifecycle_in_order() -> None:
    log: list[str] = []
    kernels: list[DoubleKernel] = []
    result = run_scenario(parse_scenario(SCENARIO), "double", backend=make_backend(OPEN, log, kernels=kernels))
    assert result.error is None and result.leaks == []
    assert [r.passed for r in result.results] == [True] * 7
    assert result.passed
    assert kernels[0].closed
    # networks before endpoints; published ports only on the first network; teardown last
    assert log.index("create_network back") < log.index("create_endpoint front/web ports=1")
    assert "create_endpoint back/app ports=0" in log
    assert log[-1] == "close"
    # db removed: probed where it used to be; app left front: the runner leaves then deletes
    assert "probe app 10.9.0.102 icmp/None" in log
    assert log.index("leave front/app") < log.index("delete_endpoint front/app")
    assert "probe out 198.18.0.2 tcp/8080" in log


@pytest.mark.usefixtures("stubbed_config")
def test_a_failed_expectation_fails_the_scenario() -> None:
    log: list[str] = []
    kernels: list[DoubleKernel] = []
    result = run_scenario(parse_scenario(SCENARIO), "double", backend=make_backend(set(), log, kernels=kernels))
    assert not result.passed
    assert [r.expectation.reachable for r in result.results if not r.passed] == [True] * 4
    assert result.results[0].trace[0].detail == "no route"
    # a positive probe that timed out is tried again (3 probes in all at the default 1 s
    # timeout: RETRY_WINDOW); a negative one is not
    assert result.results[0].outcome == "timeout (retried)"
    assert result.results[2].outcome == "timeout" and result.results[2].passed
    assert sum(line.startswith("probe app 10.1.0.10 tcp/80") for line in log) == 3


@pytest.mark.usefixtures("stubbed_config")
def test_leaks_are_reported_and_the_kernel_still_closed() -> None:
    log: list[str] = []
    kernels: list[DoubleKernel] = []
    result = run_scenario(
        parse_scenario(SCENARIO), "double", backend=make_backend(OPEN, log, leak=True, kernels=kernels)
    )
    assert result.leaks == ["namespace netsim-test-app is left behind"]
    assert not result.passed
    assert kernels[0].closed


@pytest.mark.usefixtures("stubbed_config")
def test_a_build_error_is_captured_and_teardown_runs() -> None:
    data = {**SCENARIO, "networks": [*SCENARIO["networks"], {"name": "explode"}]}
    log: list[str] = []
    kernels: list[DoubleKernel] = []
    result = run_scenario(parse_scenario(data), "double", backend=make_backend(OPEN, log, kernels=kernels))
    assert result.error is not None and "refused on purpose" in result.error and result.error.startswith("conflict")
    assert [r.outcome for r in result.results] == ["not-run"] * 7
    assert not any(r.passed for r in result.results)
    assert log[-1] == "close" and kernels[0].closed
    assert not [line for line in log if line.startswith("probe")]


@pytest.mark.usefixtures("stubbed_config")
def test_a_bug_in_a_probe_does_not_escape() -> None:
    log: list[str] = []
    kernels: list[DoubleKernel] = []
    backend = make_backend(OPEN, log, kernels=kernels)

    def broken(*args: Any) -> ProbeResult:
        raise RuntimeError("probe crashed")

    result = run_scenario(
        parse_scenario(SCENARIO), "double", backend=Backend(backend.make_kernel, backend.make_controller, broken)
    )
    assert result.error == "internal error: RuntimeError: probe crashed"
    assert kernels[0].closed and log[-1] == "close"


@pytest.mark.usefixtures("stubbed_config")
def test_built_yields_a_live_world_and_tears_it_down() -> None:
    log: list[str] = []
    kernels: list[DoubleKernel] = []
    leaks: list[str] = []
    scenario = parse_scenario(SCENARIO)
    with built(scenario, "double", backend=make_backend(OPEN, log, kernels=kernels), leaks=leaks) as world:
        assert world.resolve(scenario.expect[0]) == ("netsim-test-app", "10.1.0.10")
        assert world.resolve(scenario.expect[3]) == ("netsim-test-out", "198.18.0.2")
        assert world.controllers["h1"].inspect_network("front") == {"Name": "front"}
        assert [lst.addr for lst in kernels[0].listeners["netsim-test-web"]] == ["0.0.0.0", "::"]
    assert leaks == [] and kernels[0].closed and kernels[0].listeners["netsim-test-web"] == []
