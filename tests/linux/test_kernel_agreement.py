"""Agreement: the same random operations, valid and invalid, on a FakeKernel and
a LinuxKernel; after every step both must have raised the same error kind
(errno included) or both succeeded, and their normalized snapshots must be
equal. A refused call must leave its kernel's snapshot as it was.

Operations draw names, addresses and rules from small pools so that
sequences collide (duplicates, missing objects, wrong kinds) as often as
they succeed. Accepted divergences: :mod:`netsim.kernel.divergences`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule

from netsim.errors import NetsimError, error_kind
from netsim.kernel import divergences
from netsim.kernel.base import Dnat, DnatExempt, Filter, Isolated, Kernel, Masquerade
from netsim.kernel.dns import DnsAnswer
from netsim.kernel.fake import FakeKernel
from netsim.kernel.linux import LinuxKernel
from netsim.naming import new_run_id

pytestmark = pytest.mark.linux

ROLES = ("h1", "h2", "c1")
LINKS = ("eth0", "eth1", "veth0", "br0", "mv0", "vx0", "lo")
BAD_LINKS = ("x" * 16, "a/b")
ADDRESSES = (
    "10.0.0.1/24",
    "10.0.0.2/24",
    "10.0.1.1/24",
    "fd00::1/64",
    "fd00::2/64",
    "fd05::5/128",
    "10.0.0.1",
    "300.0.0.1/24",
)
ROUTE_DSTS = ("default", "10.9.0.0/24", "10.0.1.0/24") * 3 + ("default6", "fd09::/64", "10.0.0.1/24")
#: gateways Linux's local table decides: a subnet broadcast and a prefix on lo (10.0.0.1 and fd00::1 are own too)
LOCAL_TABLE_GATEWAYS = ("10.0.0.255", "127.0.0.5")
GATEWAYS = (None, "10.0.0.1", "10.0.0.254", "10.0.0.254", "10.0.1.254", "10.8.0.1", "fd00::1", *LOCAL_TABLE_GATEWAYS)
MACS = ("02:00:00:00:00:01", "02:00:00:00:00:02", "01:00:5e:00:00:01", "zz")
FDB_MACS = ("02:00:00:00:00:0a", "00:00:00:00:00:00")
VTEPS = (None, "198.18.0.5", "198.18.0.6")
#: a resolver's address: on lo, on a veth (when connect put it there), nowhere
DNS_SERVERS = ("127.0.0.11", "127.0.0.11", "10.0.0.1", "10.9.9.9")
SYSCTLS = ("net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding")
RULES = (
    Masquerade("10.0.0.0/24", not_out_iface="br0"),
    Masquerade("10.0.0.0/24", out_iface="eth0"),
    Dnat("tcp", 8080, "10.0.0.2", 80),
    Dnat("udp", 5353, "10.0.0.2", 53, dst="198.18.0.2"),
    Filter("drop", in_iface="br0", out_iface="br0", layer="bridge"),
    Filter("drop", src="10.0.0.0/24", dst="10.0.1.0/24"),
    Filter("accept", in_iface="eth0"),
    Masquerade("10.0.0.1/24"),  # invalid: host bits set
    Isolated("br0"),
    Isolated("eth0"),
    Isolated("br0", group="other"),
    Isolated("br0", group="no group"),  # invalid group name
    Isolated("bridge-name-too-long"),  # invalid: over 15 bytes
    Isolated("br*"),  # invalid: nftables would read a wildcard
    DnatExempt("br0"),
    DnatExempt("eth0"),
    DnatExempt("@br0"),  # invalid: nftables would read a set reference
)

# weighted: mostly namespaces and names that exist, so that sequences build up state
roles = st.sampled_from(("h1", "c1") * 3 + ROLES)
link_names = st.sampled_from(LINKS * 4 + BAD_LINKS)


def normalized(kernel: Kernel) -> dict[str, Any]:
    """The snapshot with this kernel's run prefix replaced (so two runs compare),
    then the listed divergences' normalizers applied."""
    text = json.dumps(kernel.snapshot(), sort_keys=True)
    return divergences.normalize(json.loads(text.replace(kernel.prefix, "<run>-")))


class KernelAgreement(RuleBasedStateMachine):
    """Applies each operation to both kernels and compares the outcome."""

    def __init__(self) -> None:
        super().__init__()
        self.fake = FakeKernel(new_run_id())
        self.linux = LinuxKernel(new_run_id())
        self.before = {"fake": normalized(self.fake), "linux": normalized(self.linux)}

    def teardown(self) -> None:
        try:
            self.linux.close()
        finally:
            self.fake.close()

    def apply(self, op: str, call: Callable[[Kernel], object]) -> None:
        """Run ``call`` on both kernels; outcomes and snapshots must agree."""
        if op in divergences.skipped_ops():
            return
        outcomes: dict[str, str] = {}
        for kernel in (self.fake, self.linux):
            try:
                call(kernel)
            except NetsimError as exc:
                outcomes[kernel.kind] = error_kind(exc)
            else:
                outcomes[kernel.kind] = "ok"
        after = {"fake": normalized(self.fake), "linux": normalized(self.linux)}
        for kind, outcome in outcomes.items():
            if outcome != "ok":
                assert after[kind] == self.before[kind], f"{op} failed on {kind} ({outcome}) but changed its state"
        fake_kind, linux_kind = outcomes["fake"], outcomes["linux"]
        if not divergences.tolerated(op, fake_kind, linux_kind):
            assert fake_kind == linux_kind, f"{op}: fake {fake_kind} but linux {linux_kind}"
        assert after["fake"] == after["linux"], f"{op}: snapshots differ"
        self.before = after

    # --- namespaces -------------------------------------------------------------------
    @initialize()
    def two_namespaces(self) -> None:
        for role in ("h1", "c1"):
            self.add_namespace(role)

    @rule(role=roles)
    def add_namespace(self, role: str) -> None:
        self.apply("add_namespace", lambda k: k.add_namespace(k.ns(role)))

    @rule(name=st.sampled_from(("netsim-elsewhere-h1", "h1", "")))
    def add_foreign_namespace(self, name: str) -> None:
        self.apply("add_namespace", lambda k: k.add_namespace(name))

    @rule(role=roles)
    def delete_namespace(self, role: str) -> None:
        self.apply("delete_namespace", lambda k: k.delete_namespace(k.ns(role)))

    # --- compound steps: build state that later random steps can hit ---------------------
    @rule(role=roles, peer_role=roles, up=st.booleans())
    def connect(self, role: str, peer_role: str, up: bool) -> None:
        """veth0 (10.0.0.1, fd00::1) in ``role`` to eth0 (10.0.0.2, fd00::2) in ``peer_role``,
        default routes through 10.0.0.1; each step compared on its own."""
        self.apply("add_veth", lambda k: k.add_veth(k.ns(role), "veth0", "eth0", k.ns(peer_role)))
        for side, dev, v4, v6 in (
            (role, "veth0", "10.0.0.1/24", "fd00::1/64"),
            (peer_role, "eth0", "10.0.0.2/24", "fd00::2/64"),
        ):
            self.address_step(side, dev, v4)
            self.address_step(side, dev, v6)
            if up:
                self.set_link_up(side, dev, True)
        self.apply("add_route", lambda k: k.add_route(k.ns(peer_role), "default", via="10.0.0.1"))
        self.apply("add_route", lambda k: k.add_route(k.ns(peer_role), "default6", via="fd00::1"))

    def address_step(self, role: str, dev: str, cidr: str) -> None:
        self.apply("add_address", lambda k: k.add_address(k.ns(role), dev, cidr))

    @rule(role=roles, port=st.sampled_from(("veth0", "eth0", "eth1")))
    def bridge_with_port(self, role: str, port: str) -> None:
        self.apply("add_bridge", lambda k: k.add_bridge(k.ns(role), "br0"))
        self.apply("set_master", lambda k: k.set_master(k.ns(role), port, "br0"))
        self.apply("set_link_up", lambda k: k.set_link_up(k.ns(role), "br0"))
        self.apply("add_fdb", lambda k: k.add_fdb(k.ns(role), port, "02:00:00:00:00:0a"))

    # --- links ------------------------------------------------------------------------
    @rule(role=roles, name=link_names, peer=link_names, peer_role=st.none() | roles)
    def add_veth(self, role: str, name: str, peer: str, peer_role: str | None) -> None:
        self.apply("add_veth", lambda k: k.add_veth(k.ns(role), name, peer, k.ns(peer_role) if peer_role else None))

    @rule(role=roles, name=link_names)
    def add_bridge(self, role: str, name: str) -> None:
        self.apply("add_bridge", lambda k: k.add_bridge(k.ns(role), name))

    @rule(
        role=roles, name=link_names, parent=link_names, mode=st.sampled_from(("bridge", "private", "vepa", "passthru"))
    )
    def add_macvlan(self, role: str, name: str, parent: str, mode: Any) -> None:
        self.apply("add_macvlan", lambda k: k.add_macvlan(k.ns(role), name, parent, mode))

    @rule(role=roles, name=link_names, parent=link_names, vlan_id=st.sampled_from((10, 20, 4095)))
    def add_vlan(self, role: str, name: str, parent: str, vlan_id: int) -> None:
        self.apply("add_vlan", lambda k: k.add_vlan(k.ns(role), name, parent, vlan_id))

    @rule(
        role=roles,
        name=link_names,
        vni=st.sampled_from((42, 43, 1 << 24)),
        local=st.sampled_from((None, "198.18.0.2")),
        remote=st.sampled_from(VTEPS),
        dev=st.none() | link_names,
        learning=st.booleans(),
    )
    def add_vxlan(
        self, role: str, name: str, vni: int, local: str | None, remote: str | None, dev: str | None, learning: bool
    ) -> None:
        self.apply(
            "add_vxlan",
            lambda k: k.add_vxlan(k.ns(role), name, vni, local=local, remote=remote, dev=dev, learning=learning),
        )

    @rule(role=roles, name=link_names)
    def delete_link(self, role: str, name: str) -> None:
        self.apply("delete_link", lambda k: k.delete_link(k.ns(role), name))

    @rule(role=roles, name=link_names, up=st.booleans())
    def set_link_up(self, role: str, name: str, up: bool) -> None:
        self.apply("set_link_up", lambda k: k.set_link_up(k.ns(role), name, up))

    @rule(role=roles, name=link_names, mtu=st.sampled_from((68, 1400, 1500, 9000, 67, 70000)))
    def set_mtu(self, role: str, name: str, mtu: int) -> None:
        self.apply("set_mtu", lambda k: k.set_mtu(k.ns(role), name, mtu))

    @rule(role=roles, name=link_names, mac=st.sampled_from(MACS))
    def set_mac(self, role: str, name: str, mac: str) -> None:
        self.apply("set_mac", lambda k: k.set_mac(k.ns(role), name, mac))

    @rule(role=roles, name=link_names, master=st.none() | link_names)
    def set_master(self, role: str, name: str, master: str | None) -> None:
        self.apply("set_master", lambda k: k.set_master(k.ns(role), name, master))

    @rule(role=roles, name=link_names, new_role=roles, new_name=st.none() | link_names)
    def move_link(self, role: str, name: str, new_role: str, new_name: str | None) -> None:
        self.apply("move_link", lambda k: k.move_link(k.ns(role), name, k.ns(new_role), new_name))

    @rule(role=roles, name=link_names, new_name=link_names)
    def rename_link(self, role: str, name: str, new_name: str) -> None:
        self.apply("rename_link", lambda k: k.rename_link(k.ns(role), name, new_name))

    # --- layer 3 ------------------------------------------------------------------------
    @rule(role=roles, dev=link_names, cidr=st.sampled_from(ADDRESSES), add=st.booleans())
    def change_address(self, role: str, dev: str, cidr: str, add: bool) -> None:
        if add:
            self.apply("add_address", lambda k: k.add_address(k.ns(role), dev, cidr))
        else:
            self.apply("delete_address", lambda k: k.delete_address(k.ns(role), dev, cidr))

    @rule(
        role=roles,
        dst=st.sampled_from(ROUTE_DSTS),
        via=st.sampled_from(GATEWAYS),
        dev=st.none() | link_names,
        metric=st.sampled_from((0, 10)),
    )
    def add_route(self, role: str, dst: str, via: str | None, dev: str | None, metric: int) -> None:
        self.apply("add_route", lambda k: k.add_route(k.ns(role), dst, via=via, dev=dev, metric=metric))

    @rule(role=roles, dst=st.sampled_from(ROUTE_DSTS), via=st.sampled_from(GATEWAYS), dev=st.none() | link_names)
    def delete_route(self, role: str, dst: str, via: str | None, dev: str | None) -> None:
        self.apply("delete_route", lambda k: k.delete_route(k.ns(role), dst, via=via, dev=dev))

    @rule(role=roles, dev=link_names, ip=st.sampled_from(("10.0.0.9", "fd00::9")), add=st.booleans())
    def change_neighbour(self, role: str, dev: str, ip: str, add: bool) -> None:
        if add:
            self.apply("add_neighbour", lambda k: k.add_neighbour(k.ns(role), dev, ip, "02:00:00:00:00:09"))
        else:
            self.apply("delete_neighbour", lambda k: k.delete_neighbour(k.ns(role), dev, ip))

    @rule(role=roles, dev=link_names, mac=st.sampled_from(FDB_MACS), dst=st.sampled_from(VTEPS), add=st.booleans())
    def change_fdb(self, role: str, dev: str, mac: str, dst: str | None, add: bool) -> None:
        if add:
            self.apply("add_fdb", lambda k: k.add_fdb(k.ns(role), dev, mac, dst))
        else:
            self.apply("delete_fdb", lambda k: k.delete_fdb(k.ns(role), dev, mac, dst))

    @rule(role=roles, key=st.sampled_from(SYSCTLS), value=st.sampled_from(("0", "1")))
    def set_sysctl(self, role: str, key: str, value: str) -> None:
        self.apply("set_sysctl", lambda k: k.set_sysctl(k.ns(role), key, value))

    @rule(role=roles, index=st.integers(0, len(RULES) - 1), add=st.booleans())
    def change_rule(self, role: str, index: int, add: bool) -> None:
        nat_rule = RULES[index]
        if add:
            self.apply("add_rule", lambda k: k.add_rule(k.ns(role), nat_rule))
        else:
            self.apply("delete_rule", lambda k: k.delete_rule(k.ns(role), nat_rule))

    # --- DNS servers (the embedded resolver) ----------------------------------------------
    @rule(role=roles, addr=st.sampled_from(DNS_SERVERS), add=st.booleans())
    def change_dns_server(self, role: str, addr: str, add: bool) -> None:
        if add:
            self.apply("add_dns_server", lambda k: k.add_dns_server(k.ns(role), addr, _dns_lookup))
        else:
            self.apply("delete_dns_server", lambda k: k.delete_dns_server(k.ns(role), addr))

    @rule(role=roles, name=st.sampled_from(("db", "DB.", "nosuch")), qtype=st.sampled_from(("A", "AAAA", "TXT")))
    def resolve(self, role: str, name: str, qtype: str) -> None:
        """A query to 127.0.0.11 from ``role``: the same answer (or failure) on both."""
        answers: dict[str, object] = {}
        for kernel in (self.fake, self.linux):
            try:
                found = kernel.resolve(kernel.ns(role), name, qtype, timeout=0.5)
            except NetsimError as exc:
                answers[kernel.kind] = error_kind(exc)
            else:
                answers[kernel.kind] = (found.rcode, found.records)
        assert answers["fake"] == answers["linux"], f"resolve {name} {qtype} from {role}: {answers}"


def _dns_lookup(name: str, qtype: str) -> DnsAnswer | None:
    if name != "db":
        return None
    return DnsAnswer(("10.0.0.3",) if qtype == "A" else ())


KernelAgreement.TestCase.settings = settings(
    max_examples=25,
    stateful_step_count=20,
    deadline=None,
    # no shrinking: on the real kernel it can run for many minutes; a 20-step example reads well enough
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


TestKernelAgreement = KernelAgreement.TestCase
