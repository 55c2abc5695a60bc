"""Random operation sequences on the fake kernel (hypothesis): every call
either succeeds or raises a categorized NetsimError that changed nothing;
joined endpoints always have their interface in their sandbox; closing the
controller leaves no namespace, record or IPAM holding behind."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from netsim import netlabel
from netsim.controller import Controller, ControllerConfig, IpamConfig, PoolConfig, PortBinding
from netsim.controller.testing import FaultInjector, FaultyIpam, ensure_default_ipam, install_faults, store_dump
from netsim.errors import NetsimError
from netsim.kernel import make_kernel

SUBNETS = ["10.1.0.0/24", "10.2.0.0/24", "10.1.0.0/16", "10.3.0.0/30"]
NETWORKS = ["n0", "n1", "n2"]
CONTAINERS = ["c0", "c1", "c2"]

operation = st.one_of(
    st.tuples(
        st.just("create_network"),
        st.sampled_from(NETWORKS),
        st.sampled_from(SUBNETS),
        st.sampled_from(["bridge", "macvlan", "null", "host", "nosuch"]),
        st.sampled_from([{}, {netlabel.BRIDGE_ENABLE_ICC: "false"}, {netlabel.DRIVER_MTU: "-1"}]),
    ),
    st.tuples(st.just("delete_network"), st.sampled_from(NETWORKS)),
    st.tuples(
        st.just("connect"),
        st.sampled_from(CONTAINERS),
        st.sampled_from(NETWORKS),
        st.sampled_from([None, 8080, 8081]),
    ),
    st.tuples(st.just("disconnect"), st.sampled_from(CONTAINERS), st.sampled_from(NETWORKS)),
    st.tuples(st.just("delete_sandbox"), st.sampled_from(CONTAINERS)),
)


def apply(ctrl: Controller, op: tuple[Any, ...]) -> None:
    kind = op[0]
    if kind == "create_network":
        _, name, subnet, driver, options = op
        ipam = IpamConfig() if driver in ("null", "host") else IpamConfig(pools=[PoolConfig(subnet=subnet)])
        ctrl.create_network(name, driver, options=options, ipam=ipam)
    elif kind == "delete_network":
        ctrl.delete_network(op[1])
    elif kind == "connect":
        _, container, network, port = op
        ports = [PortBinding("tcp", 80, port)] if port else None
        ctrl.connect(container, network, ports=ports)
    elif kind == "disconnect":
        ctrl.disconnect(op[1], op[2])
    else:
        ctrl.delete_sandbox(op[1])


def check_consistent(ctrl: Controller) -> None:
    for sandbox in ctrl.sandboxes():
        names = {link.name for link in ctrl.kernel.links(sandbox.namespace)}
        for ep in sandbox.endpoints():
            assert ep.sandbox == sandbox
            if ep.iface is not None:
                assert ep.iface in names


@settings(max_examples=40, deadline=None)
@given(st.lists(operation, max_size=25))
def test_random_operations_fake(ops: list[tuple[Any, ...]]) -> None:
    kernel = make_kernel("fake")
    injector = FaultInjector()  # never armed: only used to track IPAM holdings
    ctrl = Controller(kernel, ControllerConfig(host="h1", entry_points=False))
    try:
        ensure_default_ipam(ctrl)
        ipams: dict[str, FaultyIpam] = install_faults(ctrl, injector)
        for op in ops:
            before = (kernel.snapshot(), store_dump(ctrl), {n: i.holding() for n, i in ipams.items()})
            try:
                apply(ctrl, op)
            except NetsimError as exc:
                after = (kernel.snapshot(), store_dump(ctrl), {n: i.holding() for n, i in ipams.items()})
                assert after == before, f"{op} failed with {exc!r} and changed state"
            check_consistent(ctrl)
        ctrl.close()
        assert kernel.namespaces() == []
        assert store_dump(ctrl) == {}
        assert all(i.holding() == {} for i in ipams.values())
    finally:
        ctrl.close()
        kernel.close()
