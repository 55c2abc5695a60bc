"""Random operation sequences, valid and invalid, against the fake kernel.

After every step the world's invariants hold (FakeKernel._check); every
refusal is a categorized netsim error and leaves the whole world, ifindexes
and MACs included, exactly as it was. Agreement with Linux is the contract
tests' job; this explores far more sequences than examples can.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from netsim.errors import NetsimError, error_kind
from netsim.kernel.base import Dnat, DnatExempt, Filter, Isolated, Listener, Masquerade
from netsim.kernel.fake import FakeKernel
from netsim.kernel.fake.invariants import dump_world

# weighted towards what exists, so that most steps reach the kernel's own checks
ROLES = st.sampled_from(["a", "a", "a", "b", "b", "c", "missing"])
NAMES = st.sampled_from(["v0", "v0", "v1", "v1", "v2", "br0", "br0", "br1", "m0", "vx0", "eth0", "lo", "x" * 16, "a/b"])
CIDRS = st.sampled_from(
    ["10.0.0.1/24", "10.0.0.2/24", "10.0.0.1/16", "10.1.0.1/32", "fd00::1/64", "fd00::2/64", "10.0.0.1/24", "bad/24"]
)
GATEWAYS = st.sampled_from([None, "10.0.0.254", "10.0.0.254", "10.1.0.9", "fd00::fe", "fe80::1", "192.168.9.9"])
DESTINATIONS = st.sampled_from(["default", "default6", "10.9.0.0/16", "fd09::/64", "10.0.0.0/24", "10.9.0.1/16"])
MACS = st.sampled_from(
    ["02:00:00:00:00:01", "02:00:00:00:00:02", "02:00:00:00:00:03", "00:00:00:00:00:00", "01:00:5e:00:00:01", "zz"]
)
RULES = st.sampled_from(
    [
        Masquerade(src="10.0.0.0/24", not_out_iface="br0"),
        Dnat(proto="tcp", dport=80, to_addr="10.0.0.2", to_port=8080),
        Filter(action="drop", in_iface="br0", out_iface="br0", layer="bridge"),
        Masquerade(src="not-a-subnet"),
        Isolated("br0"),
        Isolated("v0"),
        Isolated("br0", group="other"),
        Isolated("br0", group=""),
        DnatExempt("br0"),
        DnatExempt("br*"),
    ]
)
LISTENERS = st.sampled_from(
    [Listener("tcp", 80), Listener("udp", 53, "10.0.0.1"), Listener("tcp", 80, "::"), Listener("tcp", 0)]
)
SYSCTLS = st.sampled_from(
    ["net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding", "net.ipv6.conf.v0.disable_ipv6", "net.ipv4.conf.all.x"]
)


class FakeKernelMachine(RuleBasedStateMachine):
    kernel: FakeKernel

    @initialize()
    def start(self) -> None:
        self.kernel = FakeKernel("fakestate")
        for role in ("a", "b", "c"):
            self.kernel.add_namespace(self.kernel.ns(role))
        self.kernel.add_veth(self.ns("a"), "v0", "v1", self.ns("b"))
        self.kernel.add_bridge(self.ns("a"), "br0")
        self.kernel.set_link_up(self.ns("a"), "v0")
        self.kernel.add_address(self.ns("a"), "v0", "10.0.0.1/24")
        self.kernel.add_address(self.ns("a"), "v0", "fd00::1/64")

    def teardown(self) -> None:
        self.kernel.close()
        assert self.kernel.namespaces() == []

    def attempt(self, call: Callable[[], Any]) -> None:
        before = dump_world(self.kernel.world)
        try:
            call()
        except NetsimError as exc:
            assert exc.kind != "error", f"uncategorized error {exc!r}"
            assert error_kind(exc)
            assert dump_world(self.kernel.world) == before, f"refused call changed state: {exc!r}"

    def ns(self, role: str) -> str:
        return self.kernel.ns(role)

    @invariant()
    def consistent(self) -> None:
        if hasattr(self, "kernel"):
            self.kernel._check()
            self.kernel.snapshot()

    # --- namespaces and links ------------------------------------------------------
    @rule(role=ROLES)
    def add_namespace(self, role: str) -> None:
        self.attempt(lambda: self.kernel.add_namespace(self.ns(role)))

    @rule(role=ROLES)
    def delete_namespace(self, role: str) -> None:
        self.attempt(lambda: self.kernel.delete_namespace(self.ns(role)))

    @rule(role=ROLES, name=NAMES, peer=NAMES, peer_role=st.none() | ROLES)
    def add_veth(self, role: str, name: str, peer: str, peer_role: str | None) -> None:
        peer_ns = None if peer_role is None else self.ns(peer_role)
        self.attempt(lambda: self.kernel.add_veth(self.ns(role), name, peer, peer_ns))

    @rule(role=ROLES, name=NAMES)
    def add_bridge(self, role: str, name: str) -> None:
        self.attempt(lambda: self.kernel.add_bridge(self.ns(role), name))

    @rule(role=ROLES, name=NAMES, parent=NAMES, mode=st.sampled_from(["bridge", "private", "passthru", "bogus"]))
    def add_macvlan(self, role: str, name: str, parent: str, mode: Any) -> None:
        self.attempt(lambda: self.kernel.add_macvlan(self.ns(role), name, parent, mode))

    @rule(
        role=ROLES,
        name=NAMES,
        parent=NAMES,
        mode=st.sampled_from(["l2", "l3", "l3s", "l4"]),
        flag=st.sampled_from(["bridge", "private", "vepa"]),
    )
    def add_ipvlan(self, role: str, name: str, parent: str, mode: Any, flag: Any) -> None:
        self.attempt(lambda: self.kernel.add_ipvlan(self.ns(role), name, parent, mode, flag))

    @rule(role=ROLES, name=NAMES, parent=NAMES, vlan_id=st.sampled_from([1, 10, 4095]))
    def add_vlan(self, role: str, name: str, parent: str, vlan_id: int) -> None:
        self.attempt(lambda: self.kernel.add_vlan(self.ns(role), name, parent, vlan_id))

    @rule(role=ROLES, name=NAMES, vni=st.sampled_from([1, 2, 1 << 24]), dev=st.none() | NAMES, group=st.booleans())
    def add_vxlan(self, role: str, name: str, vni: int, dev: str | None, group: bool) -> None:
        remote, multicast = (None, "239.1.1.1") if group else ("10.0.0.9", None)
        self.attempt(lambda: self.kernel.add_vxlan(self.ns(role), name, vni, dev=dev, remote=remote, group=multicast))

    @rule(role=ROLES, name=NAMES)
    def delete_link(self, role: str, name: str) -> None:
        self.attempt(lambda: self.kernel.delete_link(self.ns(role), name))

    @rule(role=ROLES, name=NAMES, up=st.booleans())
    def set_link_up(self, role: str, name: str, up: bool) -> None:
        self.attempt(lambda: self.kernel.set_link_up(self.ns(role), name, up))

    @rule(role=ROLES, name=NAMES, mtu=st.sampled_from([0, 67, 1200, 1400, 1500, 9000, 65536]))
    def set_mtu(self, role: str, name: str, mtu: int) -> None:
        self.attempt(lambda: self.kernel.set_mtu(self.ns(role), name, mtu))

    @rule(role=ROLES, name=NAMES, mac=MACS)
    def set_mac(self, role: str, name: str, mac: str) -> None:
        self.attempt(lambda: self.kernel.set_mac(self.ns(role), name, mac))

    @rule(role=ROLES, name=NAMES, master=st.none() | NAMES)
    def set_master(self, role: str, name: str, master: str | None) -> None:
        self.attempt(lambda: self.kernel.set_master(self.ns(role), name, master))

    @rule(role=ROLES, name=NAMES, new_role=ROLES, new_name=st.none() | NAMES)
    def move_link(self, role: str, name: str, new_role: str, new_name: str | None) -> None:
        self.attempt(lambda: self.kernel.move_link(self.ns(role), name, self.ns(new_role), new_name))

    @rule(role=ROLES, name=NAMES, new_name=NAMES)
    def rename_link(self, role: str, name: str, new_name: str) -> None:
        self.attempt(lambda: self.kernel.rename_link(self.ns(role), name, new_name))

    # --- layer 3 and tables ----------------------------------------------------------
    @rule(role=ROLES, dev=NAMES, cidr=CIDRS, add=st.booleans())
    def address(self, role: str, dev: str, cidr: str, add: bool) -> None:
        # looked up at call time: a subclass may swap self.kernel between calls
        self.attempt(lambda: (self.kernel.add_address if add else self.kernel.delete_address)(self.ns(role), dev, cidr))

    @rule(role=ROLES, dev=NAMES, cidr=CIDRS)
    def configure(self, role: str, dev: str, cidr: str) -> None:
        """Two steps that usually go together, so that routes find connected ones."""
        self.attempt(lambda: self.kernel.set_link_up(self.ns(role), dev))
        self.attempt(lambda: self.kernel.add_address(self.ns(role), dev, cidr))

    @rule(role=ROLES, dst=DESTINATIONS, via=GATEWAYS, dev=st.none() | NAMES, metric=st.sampled_from([0, 10]))
    def add_route(self, role: str, dst: str, via: str | None, dev: str | None, metric: int) -> None:
        self.attempt(lambda: self.kernel.add_route(self.ns(role), dst, via=via, dev=dev, metric=metric))

    @rule(role=ROLES, dst=DESTINATIONS, via=GATEWAYS, dev=st.none() | NAMES)
    def delete_route(self, role: str, dst: str, via: str | None, dev: str | None) -> None:
        self.attempt(lambda: self.kernel.delete_route(self.ns(role), dst, via=via, dev=dev))

    @rule(
        role=ROLES,
        dev=NAMES,
        ip=st.sampled_from(["10.0.0.5", "10.0.0.6", "fd00::5", "bad"]),
        mac=MACS,
        add=st.booleans(),
    )
    def neighbour(self, role: str, dev: str, ip: str, mac: str, add: bool) -> None:
        if add:
            self.attempt(lambda: self.kernel.add_neighbour(self.ns(role), dev, ip, mac))
        else:
            self.attempt(lambda: self.kernel.delete_neighbour(self.ns(role), dev, ip))

    @rule(role=ROLES, dev=NAMES, mac=MACS, dst=st.none() | st.just("10.0.0.7"), add=st.booleans())
    def fdb(self, role: str, dev: str, mac: str, dst: str | None, add: bool) -> None:
        # looked up at call time: a subclass may swap self.kernel between calls
        self.attempt(lambda: (self.kernel.add_fdb if add else self.kernel.delete_fdb)(self.ns(role), dev, mac, dst))

    @rule(role=ROLES, key=SYSCTLS, value=st.sampled_from(["0", "1", "x"]))
    def sysctl(self, role: str, key: str, value: str) -> None:
        self.attempt(lambda: self.kernel.set_sysctl(self.ns(role), key, value))

    @rule(role=ROLES, item=RULES, add=st.booleans())
    def nat_rule(self, role: str, item: Any, add: bool) -> None:
        # looked up at call time: a subclass may swap self.kernel between calls
        self.attempt(lambda: (self.kernel.add_rule if add else self.kernel.delete_rule)(self.ns(role), item))

    @rule(role=ROLES, item=LISTENERS, add=st.booleans())
    def listener(self, role: str, item: Listener, add: bool) -> None:
        # looked up at call time: a subclass may swap self.kernel between calls
        self.attempt(lambda: (self.kernel.add_listener if add else self.kernel.delete_listener)(self.ns(role), item))


FakeKernelMachine.TestCase.settings = settings(
    max_examples=60, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestFakeKernelMachine = FakeKernelMachine.TestCase
