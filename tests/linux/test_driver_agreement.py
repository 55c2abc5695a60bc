"""Agreement: the same controller operations on the fake and the real kernel
give equal snapshots (namespace prefixes aside) and equal reachability.
Object ids come from a deterministic factory so bridge and veth names match."""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netsim import netlabel
from netsim.controller import Controller, ControllerConfig, IpamConfig, PoolConfig, PortBinding
from netsim.controller.testing import ensure_default_ipam
from netsim.errors import InvalidParameterError, error_kind
from netsim.kernel.base import Kernel, Listener
from netsim.probe import reachability_matrix, reachable

pytestmark = pytest.mark.linux


def id_factory() -> Callable[[], str]:
    counter = itertools.count()
    return lambda: hashlib.sha256(f"object-{next(counter)}".encode()).hexdigest()


def build(kernel: Kernel) -> tuple[Controller, list[str]]:
    ctrl = Controller(kernel, ControllerConfig(host="h1", id_factory=id_factory()))
    ensure_default_ipam(ctrl)
    ctrl.create_network("front", "bridge", ipam=IpamConfig(pools=[PoolConfig(subnet="10.10.0.0/24")]))
    ctrl.create_network(
        "back",
        "bridge",
        options={netlabel.BRIDGE_ENABLE_ICC: "false", netlabel.DRIVER_MTU: "1400"},
        ipam=IpamConfig(pools=[PoolConfig(subnet="10.20.0.0/24")]),
    )
    ctrl.create_network("vault", "bridge", internal=True, ipam=IpamConfig(pools=[PoolConfig(subnet="10.30.0.0/24")]))
    pool = PoolConfig(subnet="198.18.0.0/24", ip_range="198.18.0.128/25", gateway="198.18.0.1")
    ctrl.create_network("lan", "macvlan", ipam=IpamConfig(pools=[pool]))
    ctrl.create_network("none", "null")
    web = ctrl.connect("web", "front", ports=[PortBinding("tcp", 80, 8080)])
    ctrl.connect("web", "vault")
    ctrl.connect("db", "back")
    ctrl.connect("db2", "back")
    ctrl.connect("app", "front")
    ctrl.connect("app", "back")
    ctrl.connect("edge", "lan")
    ctrl.connect("alone", "none")
    ctrl.kernel.add_listener(ctrl.sandbox("web").namespace, Listener("tcp", 80))
    targets = [str(ep.address.ip) for net in ctrl.networks() for ep in net.endpoints() if ep.address is not None]
    assert web.address is not None
    return ctrl, [*sorted(targets), ctrl.host.outside_address]


def normalized(kernel: Kernel, value: Any) -> Any:
    if isinstance(value, dict) and value and isinstance(next(iter(value)), tuple):
        value = sorted([*key, outcome] for key, outcome in value.items())
    return json.loads(json.dumps(value, sort_keys=True, default=str).replace(kernel.prefix, "<run>-"))


def test_same_operations_same_snapshot_and_reachability(netsim_kernel_factory: Callable[[str], Kernel]) -> None:
    results = []
    for kind in ("fake", "linux"):
        kernel = netsim_kernel_factory(kind)
        ctrl, targets = build(kernel)
        try:
            sources = [sb.namespace for sb in ctrl.sandboxes()] + [ctrl.host.outside_namespace]
            matrix = reachability_matrix(kernel, sources, targets, ("icmp",), timeout=0.3)
            published = reachability_matrix(
                kernel, [ctrl.host.outside_namespace], [ctrl.host.host_ip], ("tcp/8080",), timeout=1.0
            )
            results.append(
                (
                    normalized(kernel, kernel.snapshot()),
                    normalized(kernel, reachable(matrix)),
                    normalized(kernel, reachable(published)),
                )
            )
        finally:
            ctrl.close()
    (fake_snap, fake_reach, fake_pub), (linux_snap, linux_reach, linux_pub) = results
    assert fake_pub == linux_pub and [row[-1] for row in fake_pub] == [True]
    assert fake_reach == linux_reach
    for ns in sorted(set(fake_snap) | set(linux_snap)):
        assert fake_snap.get(ns) == linux_snap.get(ns), f"namespace {ns} differs between kernels"


def attempt(ctrl: Controller, driver: str, options: dict[str, str], subnet: str) -> str:
    try:
        ctrl.create_network("bad", driver, options=options, ipam=IpamConfig(pools=[PoolConfig(subnet=subnet)]))
    except Exception as exc:
        return error_kind(exc)
    return "no error"


def test_same_errors_on_both_kernels(netsim_kernel_factory: Callable[[str], Kernel]) -> None:
    kinds = []
    for kind in ("fake", "linux"):
        kernel = netsim_kernel_factory(kind)
        ctrl = Controller(kernel, ControllerConfig(host="h1", id_factory=id_factory()))
        try:
            ensure_default_ipam(ctrl)
            observed = [
                attempt(ctrl, "bridge", {netlabel.BRIDGE_NAME: "eth0"}, "10.1.0.0/24"),
                attempt(ctrl, "macvlan", {netlabel.MACVLAN_PARENT: "nope0"}, "10.2.0.0/24"),
                attempt(ctrl, "bridge", {netlabel.DRIVER_MTU: "-1"}, "10.3.0.0/24"),
            ]
            kinds.append(observed)
        finally:
            ctrl.close()
    assert kinds[0] == kinds[1] and len(kinds[0]) == 3
    assert kinds[0][2] == InvalidParameterError.kind


random_operation = st.one_of(
    st.tuples(
        st.just("network"),
        st.sampled_from(["n0", "n1"]),
        st.sampled_from(["10.1.0.0/24", "10.2.0.0/24", "10.1.0.0/16"]),
        st.sampled_from(["bridge", "macvlan", "null"]),
        st.sampled_from([{}, {netlabel.BRIDGE_ENABLE_ICC: "false"}, {netlabel.DRIVER_MTU: "1400"}]),
    ),
    st.tuples(st.just("delete_network"), st.sampled_from(["n0", "n1"])),
    st.tuples(
        st.just("connect"), st.sampled_from(["c0", "c1"]), st.sampled_from(["n0", "n1"]), st.sampled_from([None, 8080])
    ),
    st.tuples(st.just("disconnect"), st.sampled_from(["c0", "c1"]), st.sampled_from(["n0", "n1"])),
)


def run_random(ctrl: Controller, op: tuple[Any, ...]) -> str:
    try:
        if op[0] == "network":
            _, name, subnet, driver, options = op
            ctrl.create_network(name, driver, options=options, ipam=IpamConfig(pools=[PoolConfig(subnet=subnet)]))
        elif op[0] == "delete_network":
            ctrl.delete_network(op[1])
        elif op[0] == "connect":
            ctrl.connect(op[1], op[2], ports=[PortBinding("tcp", 80, op[3])] if op[3] else None)
        else:
            ctrl.disconnect(op[1], op[2])
    except Exception as exc:
        return error_kind(exc)
    return "ok"


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(random_operation, min_size=3, max_size=10))
def test_random_sequences_agree(netsim_kernel_factory: Callable[[str], Kernel], ops: list[tuple[Any, ...]]) -> None:
    outcomes = []
    for kind in ("fake", "linux"):
        kernel = netsim_kernel_factory(kind)
        ctrl = Controller(kernel, ControllerConfig(host="h1", id_factory=id_factory()))
        try:
            ensure_default_ipam(ctrl)
            kinds = [run_random(ctrl, op) for op in ops]
            outcomes.append((kinds, normalized(kernel, kernel.snapshot())))
        finally:
            ctrl.close()
            kernel.close()
    (fake_kinds, fake_snap), (linux_kinds, linux_snap) = outcomes
    assert fake_kinds == linux_kinds
    assert fake_snap == linux_snap
