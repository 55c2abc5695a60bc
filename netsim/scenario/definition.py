"""Every key of a scenario file, declared once (see :mod:`netsim.scenario.shape`).

The loader (:mod:`netsim.scenario.schema`) reads each mapping through these
nodes, and ``netsim schema`` prints them as a JSON Schema. To add a key: add
it here (with a description: editors show it), then read it in the builder
function of :mod:`netsim.scenario.schema` that handles its mapping.
"""

from __future__ import annotations

from netsim.scenario.outcomes import OUTCOMES
from netsim.scenario.shape import Either, Leaf, Node, Obj, Seq, Strings

PROBE_PROTOS = ("icmp", "tcp", "udp")
PORT_PROTOS = ("tcp", "udp")
#: a container's state when the scenario creates it
STATES = ("running", "created")

#: the world beyond a host as a server (netsim.scenario.outside)
OUTSIDE = Obj(
    {"listen": Seq(Leaf("text", "PROTO/PORT, e.g. tcp/80", pattern=r"^ *[A-Za-z]+/ *[0-9]+ *$"))},
    title="outside",
    description="what the world beyond the host listens on (TCP accepts, UDP echoes)",
)
HOST_ENTRY = Obj(
    {"name": Leaf("name"), "outside": OUTSIDE},
    required=("name",),
    title="host",
)
HOST = Either(
    (Leaf("name"), HOST_ENTRY),
    description="a simulated host (one controller, one network namespace)",
)

IPAM = Obj(
    {
        "driver": Leaf("name", "IPAM driver: default, null, or a plugin listed under plugins:"),
        "subnet": Leaf("cidr4", "IPv4 subnet (docker network create --subnet)", nullable=True),
        "ip_range": Leaf("cidr4", "dynamic addresses come from this range (--ip-range)", nullable=True),
        "gateway": Leaf("ip4", "the IPv4 gateway (--gateway)", nullable=True),
        "aux_addresses": Strings("name: address reserved in the subnet (--aux-address)"),
        "subnet_v6": Leaf("cidr6", "IPv6 subnet (needs ipv6: true)", nullable=True),
        "gateway_v6": Leaf("ip6", "the IPv6 gateway", nullable=True),
    },
    title="IPAM",
    nullable=True,
)

NETWORK = Obj(
    {
        "name": Leaf("name"),
        "driver": Leaf("name", 'bridge (default), host, "null", macvlan, overlay, an installed driver or a plugin'),
        "host": Leaf("name", "the host it lives on (default: the first); ignored for overlay"),
        "options": Strings("driver options, e.g. com.docker.network.bridge.enable_icc"),
        "ipam": IPAM,
        "internal": Leaf("flag", "--internal: no route out"),
        "ipv6": Leaf("flag", "--ipv6 (needed for ipam.subnet_v6)"),
        "ipv4": Leaf("flag", "--ipv4=false: an IPv6-only bridge network, no IPv4 pool (default true)"),
        "labels": Strings(),
    },
    required=("name",),
    title="network",
)

#: where one container joins one network, with optional static addresses
ATTACH_KEYS: dict[str, Node] = {
    "network": Leaf("name"),
    "ip": Leaf("ip4", "static IPv4 address (--ip)", nullable=True),
    "ipv6": Leaf("ip6", "static IPv6 address (--ip6)", nullable=True),
    "mac": Leaf("mac", "static MAC address (--mac-address)", nullable=True),
    "aliases": Seq(Leaf("text", "a DNS name"), "--network-alias: names the embedded DNS answers on this network"),
}
ATTACH_ENTRY = Obj(ATTACH_KEYS, required=("network",), title="attachment")
ATTACHMENT = Either(
    (Leaf("name", "a network name"), ATTACH_ENTRY),
    description="a network, by name or with static addresses",
)

LISTEN = Leaf("text", "PROTO/PORT, e.g. tcp/80", pattern=r"^ *[A-Za-z]+/ *[0-9]+ *$")
PUBLISH = Leaf(
    "text",
    "docker run -p: [HOST_IP:][HOST_PORT[-END]:]CONTAINER_PORT[-END][/PROTO]",
    pattern=r"^(?:(?:(?:[0-9.]+|\[[0-9A-Fa-f:.]+\]):)?[^:/]+:)?[^:/]+(?:/[a-z]+)?$",
)

CONTAINER = Obj(
    {
        "name": Leaf("name"),
        "host": Leaf("name", "the host it runs on (default: the first)"),
        "networks": Seq(ATTACHMENT, "networks in join order"),
        "listen": Seq(LISTEN, "listeners started in the container"),
        "publish": Seq(PUBLISH, "published ports, programmed on the first non-internal network"),
        "state": Leaf("choice", "running (default) or created (docker create: started by a start step)", enum=STATES),
    },
    required=("name",),
    title="container",
)

PROBE = Obj(
    {
        "from": Leaf("text", "a container, outside or outside@HOST"),
        "to": Leaf("text", "a container, an IP address, outside, outside@HOST, host, host@HOST or published:PORT"),
        "proto": Leaf("proto", "icmp (default), tcp or udp", enum=PROBE_PROTOS),
        "port": Leaf("port", "needed for tcp and udp", nullable=True),
        "reachable": Leaf("flag", "what Docker would do (default true, or what outcome implies)"),
        "outcome": Leaf("text", "how the probe must end", enum=OUTCOMES),
        "seen_from": Leaf("text", "the source the far end must see: host, host@HOST, outside, a container or an IP"),
        "family": Leaf("text", "4 or 6: probe the target's address of that family"),
        "via_dns": Leaf("flag", "find 'to' through the source container's resolver (127.0.0.11), as a program would"),
    },
    required=("from", "to"),
    title="probe",
    description="a probe from one end to the other",
)
#: what a container's namespace must hold, read from the kernel (netsim.scenario.state)
ROUTE = Obj(
    {
        "to": Leaf("text", "default, or a CIDR (IPv4 or IPv6)"),
        "via": Leaf("ip", "the gateway (absent: any, or on-link)", nullable=True),
        "dev": Leaf("name", "the output interface"),
    },
    required=("to",),
    title="route",
)
_ADDRESS = Leaf("text", "ADDRESS or ADDRESS/PREFIX, IPv4 or IPv6", pattern=r"^ *[0-9A-Fa-f:.]+(/[0-9]+)? *$")
_GATEWAY = Leaf("text", "an address, or none: no default route", pattern=r"^ *([0-9A-Fa-f:.]+|none) *$", nullable=True)
CONTAINER_FACTS = Obj(
    {
        "interface": Leaf("name", "the interface address, mtu, mac and up are about (default: any for address)"),
        "interfaces": Seq(Leaf("name"), "exactly these interfaces, lo included"),
        "address": Either((_ADDRESS, Seq(_ADDRESS)), "addresses the interface (or the container) has", nullable=True),
        "no_address": Either((_ADDRESS, Seq(_ADDRESS)), "addresses it must not have", nullable=True),
        "mtu": Leaf("mtu", "the interface's MTU"),
        "mac": Leaf("mac", "the interface's MAC address"),
        "up": Leaf("flag", "the interface is up"),
        "default_via": _GATEWAY,
        "default_via_v6": _GATEWAY,
        "routes": Seq(ROUTE, "routes the main table holds (others may exist)"),
    },
    title="container facts",
)
CONTAINER_STATE = Obj(
    {"container": Leaf("name"), "has": CONTAINER_FACTS},
    required=("container", "has"),
    title="container state",
    description="what the container's network namespace holds, read from the kernel",
)
NETWORK_FACTS = Obj(
    {
        "gateway": Leaf("ip4", "the address on the network's bridge"),
        "subnet": Leaf("cidr4", "the subnet of that address"),
        "gateway_v6": Leaf("ip6", "the IPv6 address on the bridge"),
        "subnet_v6": Leaf("cidr6", "its subnet"),
        "bridge": Leaf("name", "the bridge's name (br-<id> unless com.docker.network.bridge.name)"),
        "mtu": Leaf("mtu", "the bridge's MTU"),
    },
    title="network facts",
)
NETWORK_STATE = Obj(
    {"network": Leaf("name"), "has": NETWORK_FACTS},
    required=("network", "has"),
    title="network state",
    description="what the network's bridge in the host's namespace holds, read from the kernel",
)
#: a container asks its resolver (netsim.scenario.dnscheck)
DNS_EXPECTATION = Obj(
    {
        "from": Leaf("text", "the container that asks (its resolver at 127.0.0.11)"),
        "resolve": Leaf("text", "a name, name.network, or an address (then a PTR query)"),
        "type": Leaf("text", "A (default), AAAA or PTR (the default for an address)", enum=("A", "AAAA", "PTR")),
        "expect": Either(
            (
                Seq(Leaf("text"), "exactly these addresses (names for PTR); [] for none"),
                Leaf("text", "this response code and no records", enum=("servfail", "nxdomain", "refused")),
            ),
            "the answer",
        ),
    },
    required=("from", "resolve", "expect"),
    title="dns",
    description="a DNS query from a container to its embedded resolver",
)
EXPECTATION = Either(
    (PROBE, CONTAINER_STATE, NETWORK_STATE, DNS_EXPECTATION),
    "a probe, a container's or network's state, or a DNS query",
)
EXPECTATIONS = Seq(EXPECTATION, "expectations, checked in order")

CONNECT = Obj({"container": Leaf("name"), **ATTACH_KEYS}, required=("container", "network"), title="connect")
DISCONNECT = Obj({"container": Leaf("name"), "network": Leaf("name")}, required=("container", "network"))
STEP_ACTIONS: dict[str, Leaf | Obj] = {
    "connect": CONNECT,
    "disconnect": DISCONNECT,
    "remove_container": Leaf("name", "a container to remove"),
    "remove_network": Leaf("name", "a network to remove (it must be empty)"),
    "create_container": CONTAINER,
    "start": Leaf("name", "docker start: join its networks again (static addresses kept)"),
    "stop": Leaf("name", "docker stop: leave every network, release the sandbox"),
    "restart": Leaf("name", "docker restart: stop, then start"),
    "create_network": NETWORK,
    "add_host": Leaf("name", "a new host joins the cluster (docker swarm join): later steps may put containers on it"),
    "remove_host": Leaf(
        "name", "a host leaves the cluster: its containers go, other hosts withdraw their peers (not the first host)"
    ),
}
STEP = Obj(
    {**STEP_ACTIONS, "expect": EXPECTATIONS},
    one_of=((tuple(STEP_ACTIONS), f"a step needs exactly one action of: {', '.join(STEP_ACTIONS)}"),),
    title="step",
    description="one change, then the expectations that hold after it",
)

_COMMAND_OR_SOCKET = "give exactly one of 'command' (a program netsim starts) and 'socket' (a running plugin)"
PLUGIN = Obj(
    {
        "name": Leaf("name"),
        "command": Either((Leaf("text"), Seq(Leaf("text"))), "a program netsim starts inside each host"),
        "socket": Leaf("text", "unix:// or tcp:// address of a plugin already running"),
        "hosts": Seq(Leaf("name"), "the hosts it serves (default: all)"),
    },
    required=("name",),
    one_of=((("command", "socket"), _COMMAND_OR_SOCKET),),
    title="plugin",
)

STORE = Obj(
    {
        "local": Leaf("text", "local store URL; {host} becomes each host's name", nullable=True),
        "global": Leaf("text", "global store URL (etcd://, zk://, sqlite:///)", nullable=True),
    },
    title="store",
)

SCENARIO = Obj(
    {
        "name": Leaf("name", "default: the file name"),
        "description": Leaf("text", nullable=True),
        "hosts": Seq(HOST, "default: one host, h1"),
        "outside": OUTSIDE,
        "plugins": Seq(PLUGIN),
        "store": STORE,
        "networks": Seq(NETWORK),
        "containers": Seq(CONTAINER),
        "expect": EXPECTATIONS,
        "steps": Seq(STEP, "in order, each with its own expectations"),
    },
    title="netsim scenario",
    description="Hosts, networks, containers and what Docker lets through (netsim run FILE)",
)
