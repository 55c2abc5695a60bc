"""The embedded DNS on both kernels: DNS servers and Kernel.resolve (the
contract, parametrized over the fake and the real kernel), the controller's
resolver per container, and agreement of the two kernels' answers over random
joins, leaves and aliases."""

from __future__ import annotations

import errno
from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from netsim.controller import Controller, IpamConfig, PoolConfig
from netsim.errors import InvalidParameterError, KernelError
from netsim.kernel.base import Kernel, Listener
from netsim.kernel.dns import RESOLVER_ADDRESS, DnsAnswer, reverse_name
from netsim.kernel.fake import FakeKernel
from netsim.kernel.linux import LinuxKernel
from netsim.naming import new_run_id

RECORDS = {("db", "A"): ("10.0.0.3",), ("db", "AAAA"): (), ("10.0.0.3", "PTR"): ("db.back",)}


def _lookup(name: str, qtype: str) -> DnsAnswer | None:
    if qtype == "PTR":
        name = {reverse_name("10.0.0.3"): "10.0.0.3"}.get(name, name)
    found = RECORDS.get((name, qtype))
    if found is None and qtype == "MX" and name == "db":
        return DnsAnswer()
    return None if found is None else DnsAnswer(found)


@pytest.fixture
def container(kernel: Kernel) -> Iterator[str]:
    ns = kernel.ns("c1")
    kernel.add_namespace(ns)
    kernel.set_link_up(ns, "lo")
    yield ns


def _errno(call: Callable[[], object]) -> int:
    with pytest.raises(KernelError) as caught:
        call()
    return caught.value.errno


def test_resolver_answers(kernel: Kernel, container: str) -> None:
    kernel.add_dns_server(container, RESOLVER_ADDRESS, _lookup)
    assert kernel.dns_servers(container) == [RESOLVER_ADDRESS]
    answers = {
        (name, qtype): (r.rcode, r.records)
        for name, qtype in [("db", "A"), ("DB.", "A"), ("db", "AAAA"), ("db", "MX"), ("db", "TXT"), ("web", "A")]
        for r in [kernel.resolve(container, name, qtype)]
    }
    assert answers == {
        ("db", "A"): ("NOERROR", ("10.0.0.3",)),
        ("DB.", "A"): ("NOERROR", ("10.0.0.3",)),
        ("db", "AAAA"): ("NOERROR", ()),
        ("db", "MX"): ("NOERROR", ()),
        ("db", "TXT"): ("SERVFAIL", ()),
        ("web", "A"): ("SERVFAIL", ()),
    }
    ptr = kernel.resolve(container, reverse_name("10.0.0.3"), "PTR")
    assert (ptr.rcode, ptr.records) == ("NOERROR", ("db.back",))


def test_server_errors_alike(kernel: Kernel, container: str) -> None:
    kernel.add_dns_server(container, RESOLVER_ADDRESS, _lookup)
    assert _errno(lambda: kernel.add_dns_server(container, RESOLVER_ADDRESS, _lookup)) == errno.EADDRINUSE
    assert _errno(lambda: kernel.add_dns_server(container, "10.9.9.9", _lookup)) == errno.EADDRNOTAVAIL
    assert _errno(lambda: kernel.add_dns_server(kernel.ns("nope"), RESOLVER_ADDRESS, _lookup)) == errno.ENOENT
    kernel.delete_dns_server(container, RESOLVER_ADDRESS)
    assert kernel.dns_servers(container) == []
    assert _errno(lambda: kernel.delete_dns_server(container, RESOLVER_ADDRESS)) == errno.ENOENT
    assert kernel.resolve(container, "db").rcode == "port-unreachable"
    with pytest.raises(InvalidParameterError, match="query type"):
        kernel.resolve(container, "db", "HINFO")
    with pytest.raises(InvalidParameterError, match="DNS name"):
        kernel.resolve(container, "a..b")


def test_no_loopback_no_route(kernel: Kernel) -> None:
    ns = kernel.ns("c2")
    kernel.add_namespace(ns)  # lo down: 127.0.0.11 has no route
    assert kernel.resolve(ns, "db").rcode == "net-unreachable"


def test_resolver_beside_the_containers_own_port_53(kernel: Kernel, container: str) -> None:
    """A container's own DNS server on 0.0.0.0:53 and the resolver coexist (the
    more specific bind wins for 127.0.0.11); 127.0.0.11:53 itself is taken."""
    kernel.add_listener(container, Listener("udp", 53))
    kernel.add_dns_server(container, RESOLVER_ADDRESS, _lookup)
    assert kernel.resolve(container, "db").records == ("10.0.0.3",)
    assert kernel.probe(container, "127.0.0.1", "udp", 53).outcome == "udp-reply"
    taken = Listener("udp", 53, RESOLVER_ADDRESS)
    assert _errno(lambda: kernel.add_listener(container, taken)) == errno.EADDRINUSE
    kernel.delete_dns_server(container, RESOLVER_ADDRESS)
    kernel.delete_listener(container, Listener("udp", 53))
    kernel.add_listener(container, taken)
    assert _errno(lambda: kernel.add_dns_server(container, RESOLVER_ADDRESS, _lookup)) == errno.EADDRINUSE


def test_deleting_the_namespace_closes_the_resolver(kernel: Kernel, container: str) -> None:
    kernel.add_dns_server(container, RESOLVER_ADDRESS, _lookup)
    kernel.delete_namespace(container)
    assert container not in kernel.namespaces()
    traffic = getattr(kernel, "_traffic", None)
    if traffic is not None:  # the real kernel: no socket, no thread left
        assert traffic.open_namespaces() == []


# --- the controller: a resolver per container -------------------------------------------------
def _pools(subnet: str) -> IpamConfig:
    return IpamConfig(pools=[PoolConfig(subnet)])


def test_controller_resolver_lifecycle(kernel: Kernel) -> None:
    ctrl = Controller(kernel)
    try:
        ctrl.create_network("back", ipam=_pools("10.40.0.0/24"))
        ctrl.create_network("bridge", ipam=_pools("172.17.0.0/16"))
        ctrl.connect("db", "back", aliases=["pg"])
        ctrl.connect("web", "back")
        ctrl.connect("old", "bridge")
        web_ns = ctrl.sandbox("web").namespace
        assert kernel.dns_servers(web_ns) == [RESOLVER_ADDRESS]
        assert kernel.dns_servers(ctrl.sandbox("old").namespace) == []  # default bridge: none
        assert ctrl.resolve("web", "pg").records == ("10.40.0.2",)
        assert ctrl.resolve("web", "10.40.0.2", "PTR").records == ("db.back",)
        ctrl.disconnect("web", "back")
        assert kernel.dns_servers(web_ns) == [RESOLVER_ADDRESS]  # kept until the sandbox goes, as Docker's
        assert ctrl.resolve("web", "db").rcode == "SERVFAIL"
        ctrl.delete_sandbox("web")
        assert web_ns not in kernel.namespaces()
    finally:
        ctrl.close()
    traffic = getattr(kernel, "_traffic", None)
    if traffic is not None:
        assert traffic.open_namespaces() == []


# --- agreement: random joins and leaves, the same answers on both kernels ----------------------
CONTAINERS = ("a", "b", "c")
NETWORKS = ("back", "front", "bridge")
ALIASES = ((), ("db",), ("db", "cache"))
QUESTIONS = (("a", "A"), ("b", "A"), ("c", "AAAA"), ("db", "A"), ("cache", "A"), ("a.back", "A"), ("nosuch", "A"))


@pytest.mark.linux
class DnsAgreement(RuleBasedStateMachine):
    """The same connects and disconnects on a fake and a real controller; after
    each, every container asks every question of its resolver on both."""

    def __init__(self) -> None:
        super().__init__()
        run = new_run_id()
        self.kernels: list[Kernel] = [FakeKernel(run), LinuxKernel(run)]
        self.ctrls = [Controller(k) for k in self.kernels]
        for ctrl in self.ctrls:
            ctrl.create_network("back", ipam=_pools("10.50.0.0/24"))
            ctrl.create_network("front", ipam=_pools("10.51.0.0/24"), ipv6=False)
            ctrl.create_network("bridge", ipam=_pools("172.17.0.0/16"))
        self.joined: set[tuple[str, str]] = set()

    @rule(container=st.sampled_from(CONTAINERS), network=st.sampled_from(NETWORKS), aliases=st.sampled_from(ALIASES))
    def connect(self, container: str, network: str, aliases: tuple[str, ...]) -> None:
        if (container, network) in self.joined:
            return
        for ctrl in self.ctrls:
            ctrl.connect(container, network, aliases=list(aliases))
        self.joined.add((container, network))

    @rule(container=st.sampled_from(CONTAINERS), network=st.sampled_from(NETWORKS))
    def disconnect(self, container: str, network: str) -> None:
        if (container, network) not in self.joined:
            return
        for ctrl in self.ctrls:
            ctrl.disconnect(container, network)
        self.joined.discard((container, network))

    @invariant()
    def same_answers(self) -> None:
        for container in sorted({c for c, _ in self.joined}):
            for name, qtype in QUESTIONS:
                fake, real = (ctrl.resolve(container, name, qtype) for ctrl in self.ctrls)
                assert (fake.rcode, fake.records) == (real.rcode, real.records), (container, name, qtype)

    def teardown(self) -> None:
        for ctrl, kernel in zip(self.ctrls, self.kernels, strict=True):
            ctrl.close()
            kernel.close()


DnsAgreement.TestCase.settings = settings(
    max_examples=8, stateful_step_count=8, deadline=None, suppress_health_check=list(HealthCheck)
)
TestDnsAgreement = pytest.mark.linux(DnsAgreement.TestCase)


# --- across hosts: service records travel as endpoint_table events ----------------------------
def test_overlay_names_across_hosts_and_a_late_host(kernel: Kernel) -> None:
    from netsim.cluster import Cluster

    with Cluster(kernel, ["h1", "h2"]) as cluster:
        cluster.create_network("backend", driver="overlay", ipam=_pools("10.74.0.0/24"))
        cluster.connect("h1", "db", "backend", aliases=["pg"])
        cluster.connect("h2", "web", "backend")
        assert cluster.controller("h2").resolve("web", "pg").records == ("10.74.0.2",)
        assert cluster.controller("h1").resolve("db", "web").records == ("10.74.0.3",)
        late = cluster.add_host("h3")  # networkdb's bulk sync hands it the records already there
        cluster.connect("h3", "api", "backend")
        assert late.resolve("api", "db").records == ("10.74.0.2",)
        assert late.resolve("api", "10.74.0.3", "PTR").records == ("web.backend",)
        assert cluster.controller("h1").resolve("db", "api").records == ("10.74.0.4",)
        cluster.disconnect("h1", "db", "backend")
        assert late.resolve("api", "pg").rcode == "SERVFAIL"
        assert [e for e in cluster.bus.entries() if e.table == "endpoint_table" and e.origin == "h1"] == []


def test_recovery_rebuilds_names_and_resolvers(kernel: Kernel) -> None:
    """A controller reopened on the store of one that died: the records come
    back from the store, and every resolver answers from the new records."""
    from netsim.controller import ControllerConfig
    from netsim.store.memory import MemoryStore

    store = MemoryStore()
    old = Controller(kernel, ControllerConfig(store=store, entry_points=False))
    old.create_network("back", ipam=_pools("10.75.0.0/24"))
    old.connect("db", "back", aliases=["pg"])
    old.connect("web", "back")
    del old  # dies without closing: namespaces, links and its resolvers stay
    new = Controller(kernel, ControllerConfig(store=store, entry_points=False))
    try:
        assert new.recovery is not None
        assert new.resolve("web", "pg").records == ("10.75.0.2",)
        new.connect("api", "back")
        assert new.resolve("web", "api").records == ("10.75.0.4",)
        assert new.resolve("api", "web").records == ("10.75.0.3",)
    finally:
        new.close()


@pytest.mark.linux
def test_names_across_host_processes(
    server_store_url: Callable[[str], str], netsim_kernel_factory: Callable[[str], Kernel]
) -> None:
    """Hosts as processes: each resolver (a thread of its host's process) answers
    the other host's names, learned through the global store's endpoint_table."""
    from netsim.cluster.process import ProcessCluster
    from netsim.kernel.linux.traffic_dns import resolve as resolve_in

    kernel = netsim_kernel_factory("linux")
    with ProcessCluster(["h1", "h2"], server_store_url("sqlite"), kernel=kernel) as cluster:
        cluster.create_network("ov", ipam=_pools("10.76.0.0/24"))
        a = cluster.connect("h1", "a", "ov")["address"].split("/")[0]
        b = cluster.connect("h2", "b", "ov")["address"].split("/")[0]
        a_ns, b_ns = cluster.call("h1", "namespace", container="a"), cluster.call("h2", "namespace", container="b")
        assert resolve_in(a_ns, "b", "A", RESOLVER_ADDRESS, 2.0).records == (b,)
        assert resolve_in(b_ns, "a", "A", RESOLVER_ADDRESS, 2.0).records == (a,)
        cluster.disconnect("h2", "b", "ov")
        assert resolve_in(a_ns, "b", "A", RESOLVER_ADDRESS, 2.0).rcode == "SERVFAIL"


def test_aliases_are_kept_on_the_endpoint(kernel: Kernel) -> None:
    ctrl = Controller(kernel)
    try:
        ctrl.create_network("back", ipam=_pools("10.41.0.0/24"))
        ep = ctrl.connect("db", "back", aliases=["PG", "pg", "primary.db"])
        assert ep.aliases == ["pg", "primary.db"]
        assert ctrl.connect("web", "back").aliases == []
        with pytest.raises(InvalidParameterError, match="invalid alias"):
            ctrl.connect("api", "back", aliases=["no spaces"])
        assert [s.container for s in ctrl.sandboxes()] == ["db", "web"]  # the refused connect left nothing
    finally:
        ctrl.close()


def test_two_wildcard_udp_listeners_on_one_port_still_conflict(kernel: Kernel, container: str) -> None:
    """SO_REUSEADDR on wildcard UDP listeners (for the resolver beside them) must
    not let a second listener on the same address and port in: EADDRINUSE on both."""
    kernel.add_listener(container, Listener("udp", 53))
    proxy = Listener("udp", 53, forward_to=("10.0.0.9", 53))
    assert _errno(lambda: kernel.add_listener(container, proxy)) == errno.EADDRINUSE
    assert _errno(lambda: kernel.add_listener(container, Listener("udp", 53, "127.0.0.1"))) == errno.EADDRINUSE
