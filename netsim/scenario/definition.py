"""Every key of a scenario file, declared once (see :mod:`netsim.scenario.shape`).

The loader (:mod:`netsim.scenario.schema`) reads each mapping through these
nodes, and ``netsim schema`` prints them as a JSON Schema. To add a key: add
it here (with a description: editors show it), then read it in the builder
function of :mod:`netsim.scenario.schema` that handles its mapping.
"""

from __future__ import annotations

from netsim.scenario.outcomes import OUTCOMES
from netsim.scenario.shape import Either, Leaf, Obj, Seq, Strings

PROBE_PROTOS = ("icmp", "tcp", "udp")
PORT_PROTOS = ("tcp", "udp")

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
        "labels": Strings(),
    },
    required=("name",),
    title="network",
)

#: where one container joins one network, with optional static addresses
ATTACH_KEYS = {
    "network": Leaf("name"),
    "ip": Leaf("ip4", "static IPv4 address (--ip)", nullable=True),
    "ipv6": Leaf("ip6", "static IPv6 address (--ip6)", nullable=True),
    "mac": Leaf("mac", "static MAC address (--mac-address)", nullable=True),
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
    },
    required=("from", "to"),
    title="probe",
    description="a probe from one end to the other",
)
EXPECTATION = PROBE
EXPECTATIONS = Seq(EXPECTATION, "expectations, probed in order")

CONNECT = Obj({"container": Leaf("name"), **ATTACH_KEYS}, required=("container", "network"), title="connect")
DISCONNECT = Obj({"container": Leaf("name"), "network": Leaf("name")}, required=("container", "network"))
STEP_ACTIONS: dict[str, Leaf | Obj] = {
    "connect": CONNECT,
    "disconnect": DISCONNECT,
    "remove_container": Leaf("name", "a container to remove"),
    "remove_network": Leaf("name", "a network to remove (it must be empty)"),
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
