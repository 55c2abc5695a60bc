"""A scenario as validated data: what :mod:`netsim.scenario.schema` returns.

Everything here is frozen and already checked (names resolve, subnets parse,
ports are in range), so the runner and the renderers never re-validate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from netsim.scenario.dnscheck import DnsQuery
from netsim.scenario.statecheck import StateCheck

Proto = Literal["icmp", "tcp", "udp"]
ListenProto = Literal["tcp", "udp"]

#: ``from:``/``to:`` may name the world beyond the host with this word
OUTSIDE = "outside"
#: ``to: "published:8080"`` probes the host's address on that host port
PUBLISHED_PREFIX = "published:"
#: ``outside@h2``: the world beyond host h2 (plain ``outside`` is host-relative)
OUTSIDE_AT = OUTSIDE + "@"
#: ``to: host`` / ``to: host@h2``: the host's own outside-facing address
HOST = "host"
HOST_AT = HOST + "@"
#: drivers whose networks have global scope: created once, through the cluster, on every host
GLOBAL_SCOPE_DRIVERS = ("overlay",)


def outside_host(name: str) -> str | None:
    """``None`` if ``name`` is not the outside world; else the host it is
    pinned to ("" when plain ``outside``: the host the other end is on).

    >>> outside_host("outside"), outside_host("outside@h2"), outside_host("web")
    ('', 'h2', None)
    """
    if name == OUTSIDE:
        return ""
    if name.startswith(OUTSIDE_AT):
        return name[len(OUTSIDE_AT) :]
    return None


def host_target(name: str) -> str | None:
    """``None`` if ``name`` is not a host by name; else the host it names
    ("" when plain ``host``: the host the probe's source is on, or the first).

    >>> host_target("host"), host_target("host@h2"), host_target("web")
    ('', 'h2', None)
    """
    if name == HOST:
        return ""
    if name.startswith(HOST_AT):
        return name[len(HOST_AT) :]
    return None


@dataclass(frozen=True)
class IpamSpec:
    """A network's IPAM request: Docker's ``--subnet/--ip-range/--gateway/--aux-address``."""

    driver: str = "default"
    subnet: str | None = None
    ip_range: str | None = None
    gateway: str | None = None
    aux_addresses: dict[str, str] = field(default_factory=dict)
    subnet_v6: str | None = None
    gateway_v6: str | None = None


@dataclass(frozen=True)
class NetworkSpec:
    name: str
    driver: str = "bridge"
    host: str = "h1"
    #: driver options, always strings (Docker passes them as strings)
    options: dict[str, str] = field(default_factory=dict)
    ipam: IpamSpec = field(default_factory=IpamSpec)
    internal: bool = False
    ipv6: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    #: False: IPv6-only (Docker's ``--ipv4=false``; no IPv4 pool is requested)
    ipv4: bool = True

    @property
    def is_global(self) -> bool:
        """Global scope: the network exists on every host (``host`` does not apply)."""
        return self.driver in GLOBAL_SCOPE_DRIVERS

    def on_host(self, host: str) -> bool:
        return self.is_global or self.host == host


@dataclass(frozen=True)
class Attachment:
    """One container on one network, with optional static addresses."""

    network: str
    ip: str | None = None
    ipv6: str | None = None
    mac: str | None = None
    #: --network-alias: names the embedded DNS answers with this endpoint's addresses
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class ListenSpec:
    proto: ListenProto
    port: int

    def __str__(self) -> str:
        return f"{self.proto}/{self.port}"


@dataclass(frozen=True)
class PublishSpec:
    """``[host_ip:]host_port:container_port[/proto]`` as in ``docker run -p``;
    ``host_port`` 0 leaves the port to the driver (Docker's ephemeral range),
    ``host_port_end`` makes a range of which the first free port is taken.

    >>> str(PublishSpec(5353, 53, "udp", "127.0.0.1")), str(PublishSpec(9000, 80, host_port_end=9005))
    ('127.0.0.1:5353:53/udp', '9000-9005:80/tcp')
    """

    host_port: int
    container_port: int
    proto: ListenProto = "tcp"
    host_ip: str = ""
    host_port_end: int = 0

    @property
    def fixed(self) -> bool:
        """One known host port: expectations can name it (``published:PORT``)."""
        return self.host_port != 0 and self.host_port_end == 0

    def __str__(self) -> str:
        ip = f"{self.host_ip}:" if self.host_ip else ""
        host = f"{self.host_port}-{self.host_port_end}" if self.host_port_end else str(self.host_port)
        return f"{ip}{host}:{self.container_port}/{self.proto}"


@dataclass(frozen=True)
class ContainerSpec:
    name: str
    host: str = "h1"
    networks: tuple[Attachment, ...] = ()
    listen: tuple[ListenSpec, ...] = ()
    publish: tuple[PublishSpec, ...] = ()
    #: "running" (started when created) or "created" (``docker create``: a start step starts it)
    state: str = "running"


@dataclass(frozen=True)
class Expectation:
    """``from`` is a container or ``outside``; ``to`` a container, an IP,
    ``outside`` or ``published:PORT`` (then ``port`` is that host port).

    >>> exp = Expectation("outside", "published:8080", "tcp", 8080, reachable=False)
    >>> exp.published_port, exp.describe()
    (8080, 'outside -> published:8080 tcp/8080 unreachable')
    """

    source: str
    target: str
    proto: Proto = "icmp"
    port: int | None = None
    reachable: bool = True
    #: the way the probe must end (netsim.scenario.outcomes.OUTCOMES), None: any of ``reachable``'s kind
    outcome: str | None = None
    #: who the target must see as the source: ``host``/``host@H``, a container, or an IP
    seen_from: str | None = None
    #: 4 or 6: probe the target's address of that family (None: its first address)
    family: int | None = None
    #: a DNS expectation (``resolve:``): ``target`` is the name asked (netsim.scenario.dnscheck)
    dns: DnsQuery | None = None
    #: ``to`` is looked up through the source container's resolver, then probed
    via_dns: bool = False

    @property
    def published_port(self) -> int | None:
        if self.target.startswith(PUBLISHED_PREFIX):
            return int(self.target[len(PUBLISHED_PREFIX) :])
        return None

    def describe(self) -> str:
        """``web -> db tcp/5432 reachable`` (one line, for tables and JUnit)."""
        if self.dns is not None:
            return self.dns.describe(self.source, self.target)
        what = "reachable" if self.reachable else "unreachable"
        if self.outcome is not None and self.outcome != "ok":
            what += f" ({self.outcome})"
        family = f" IPv{self.family}" if self.family else ""
        seen = f" seen from {self.seen_from}" if self.seen_from else ""
        by_name = " (via DNS)" if self.via_dns else ""
        return f"{self.source} -> {self.target}{by_name}{family} {self.proto_port} {what}{seen}"

    @property
    def proto_port(self) -> str:
        if self.dns is not None:
            return f"dns/{self.dns.qtype}"
        return self.proto if self.port is None else f"{self.proto}/{self.port}"


StepAction = Literal[
    "connect",
    "disconnect",
    "remove_container",
    "remove_network",
    "create_container",
    "start",
    "stop",
    "restart",
    "create_network",
    "add_host",
    "remove_host",
]


@dataclass(frozen=True)
class Step:
    """One ordered change to the built topology, then expectations about it.

    ``container``/``network`` name the objects the action touches
    (``remove_container`` leaves ``network`` empty, ``remove_network`` leaves
    ``container`` empty); ``attachment`` carries a ``connect``'s addresses;
    ``add_host``/``remove_host`` name only ``host``.
    """

    action: StepAction
    container: str = ""
    network: str = ""
    attachment: Attachment | None = None
    expect: tuple[Expectation, ...] = ()
    #: ``create_container`` / ``create_network``: what it creates
    new_container: ContainerSpec | None = None
    new_network: NetworkSpec | None = None
    #: state assertions that hold after the step (``{container|network: ..., has: ...}``)
    state: tuple[StateCheck, ...] = ()
    #: ``add_host`` / ``remove_host``: the host joining or leaving the cluster
    host: str = ""

    def describe(self) -> str:
        if self.action in ("add_host", "remove_host"):
            return f"{self.action.split('_')[0]} host {self.host}"
        if self.action in ("start", "stop", "restart"):
            return f"{self.action} {self.container}"
        if self.action == "create_container":
            return f"create container {self.container}"
        if self.action == "create_network":
            return f"create network {self.network}"
        if self.action == "connect":
            return f"connect {self.container} to {self.network}"
        if self.action == "disconnect":
            return f"disconnect {self.container} from {self.network}"
        if self.action == "remove_container":
            return f"remove container {self.container}"
        return f"remove network {self.network}"


@dataclass(frozen=True)
class PluginSpec:
    """A Docker plugin the scenario uses by ``name`` as a network's ``driver:``
    or ``ipam: {driver:}``: a ``command`` netsim starts inside each of
    ``hosts`` (argument list, run from the scenario file's directory), or
    the ``socket`` of a plugin already running (``unix://``/``tcp://`` URL)."""

    name: str
    command: tuple[str, ...] = ()
    socket: str = ""
    #: the hosts it serves (every host of the scenario unless listed)
    hosts: tuple[str, ...] = ()


@dataclass(frozen=True)
class StoreChoice:
    """Where a scenario's controllers keep their state (``store:`` in the file,
    ``--local-store`` / ``--global-store`` on the command line). ``local`` may
    hold ``{host}``, replaced by each host's name: hosts never share a local store.

    >>> StoreChoice(local="sqlite:///tmp/{host}.db").local_for("h2")
    'sqlite:///tmp/h2.db'
    """

    local: str | None = None
    global_: str | None = None

    def local_for(self, host: str) -> str | None:
        return self.local.replace("{host}", host) if self.local is not None else None


@dataclass(frozen=True)
class Scenario:
    """A whole validated file. Lookups by name are O(n) scans: scenarios hold
    a handful of networks and containers, and the tuples keep file order.

    >>> s = Scenario("demo", containers=(ContainerSpec("web", networks=(Attachment("front"),)),))
    >>> s.container("web").networks[0].network, s.expectation_count()
    ('front', 0)
    """

    name: str
    file: str = ""
    description: str = ""
    hosts: tuple[str, ...] = ("h1",)
    networks: tuple[NetworkSpec, ...] = ()
    containers: tuple[ContainerSpec, ...] = ()
    expect: tuple[Expectation, ...] = ()
    steps: tuple[Step, ...] = ()
    plugins: tuple[PluginSpec, ...] = ()
    store: StoreChoice | None = None
    #: host → what the world beyond it listens on (``outside: {listen}`` and ``hosts[i].outside``)
    outside_listen: dict[str, tuple[ListenSpec, ...]] = field(default_factory=dict)
    #: state assertions of the initial phase (each step carries its own)
    state: tuple[StateCheck, ...] = ()

    def plugin(self, name: str) -> PluginSpec | None:
        """The plugin called ``name``, or None (a built-in or installed driver)."""
        return next((p for p in self.plugins if p.name == name), None)

    def network(self, name: str) -> NetworkSpec:
        """The network called ``name`` (steps' ``create_network`` too); KeyError if none."""
        for net in self.all_networks():
            if net.name == name:
                return net
        raise KeyError(name)

    def container(self, name: str) -> ContainerSpec:
        for ctr in self.all_containers():
            if ctr.name == name:
                return ctr
        raise KeyError(name)

    def all_networks(self) -> tuple[NetworkSpec, ...]:
        """``networks:`` then the networks steps create (names are unique over the file)."""
        return self.networks + tuple(s.new_network for s in self.steps if s.new_network is not None)

    def all_containers(self) -> tuple[ContainerSpec, ...]:
        """``containers:`` then the containers steps create (names are unique over the file)."""
        return self.containers + tuple(s.new_container for s in self.steps if s.new_container is not None)

    def all_hosts(self) -> tuple[str, ...]:
        """``hosts:`` then the hosts steps add (names are unique over the file).

        >>> Scenario("s", steps=(Step("add_host", host="h2"), Step("remove_host", host="h2"))).all_hosts()
        ('h1', 'h2')
        """
        return self.hosts + tuple(s.host for s in self.steps if s.action == "add_host")

    @property
    def multi_host(self) -> bool:
        """Several hosts (also hosts joining in steps) or a global-scope network:
        built on a :class:`netsim.cluster.Cluster`, the only thing a host can join."""
        return len(self.all_hosts()) > 1 or any(net.is_global for net in self.all_networks())

    def expectation_count(self) -> int:
        probes = len(self.expect) + sum(len(step.expect) for step in self.steps)
        return probes + len(self.state) + sum(len(step.state) for step in self.steps)
