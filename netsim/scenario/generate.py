"""Generated scenarios for big topologies (``netsim generate``).

:func:`big_topology` writes the scenario of ``containers`` containers spread
round-robin over ``networks`` bridge networks on one host: container ``i``
joins network ``i % networks``. Each network gets its own subnet from
``10.0.0.0/8`` (a /24, or larger when more containers share it), so nothing
depends on the default pools. Its expectations are few and cheap, since a
topology of 10,000 containers is about building and tearing down at scale:

* the first and the last container of network 0 reach each other;
* the first container of network 0 does not reach the first of network 1
  (separate bridges are isolated);
* the first container reaches the outside world (masquerade).

>>> data = big_topology(containers=6, networks=2)
>>> [(n["name"], n["ipam"]["subnet"]) for n in data["networks"]]
[('n000', '10.0.0.0/24'), ('n001', '10.0.1.0/24')]
>>> [(c["name"], c["networks"]) for c in data["containers"][:3]]
[('c00000', ['n000']), ('c00001', ['n001']), ('c00002', ['n000'])]
>>> data["expect"][0]
{'from': 'c00000', 'to': 'c00004', 'reachable': True}
>>> from netsim.scenario.schema import parse_scenario
>>> len(parse_scenario(data).containers)
6
"""

from __future__ import annotations

import argparse
import ipaddress
import math
import sys
from typing import Any

import yaml

from netsim.errors import InvalidParameterError

#: where the generated networks' subnets come from
SUBNET_SPACE = ipaddress.ip_network("10.0.0.0/8")
#: a container name: c + five digits, as wide as the largest run this supports
MAX_CONTAINERS = 99_999


def subnet_prefix(per_network: int) -> int:
    """The longest prefix (at most /24) holding ``per_network`` containers,
    the gateway, and the network and broadcast addresses.

    >>> subnet_prefix(200), subnet_prefix(253), subnet_prefix(254), subnet_prefix(10_000)
    (24, 24, 23, 18)
    """
    return min(24, 32 - math.ceil(math.log2(per_network + 3)))


def big_topology(containers: int, networks: int, *, name: str | None = None) -> dict[str, Any]:
    """The scenario (as the mapping a scenario file holds) described in the module docstring."""
    if networks < 1 or containers < 1:
        raise InvalidParameterError(f"need at least 1 network and 1 container, not {networks} and {containers}")
    if containers > MAX_CONTAINERS:
        raise InvalidParameterError(f"at most {MAX_CONTAINERS:,} containers, not {containers:,}")
    per_network = math.ceil(containers / networks)
    prefix = subnet_prefix(per_network)
    subnets = SUBNET_SPACE.subnets(new_prefix=prefix)
    if networks > 2 ** (prefix - SUBNET_SPACE.prefixlen):
        raise InvalidParameterError(f"{networks:,} networks of /{prefix} do not fit in {SUBNET_SPACE}")
    net_names = [f"n{j:03d}" for j in range(networks)]
    data: dict[str, Any] = {
        "name": name or f"scale-{containers}c-{networks}n",
        "description": f"{containers:,} containers round-robin over {networks} bridge networks (netsim generate).",
        "networks": [{"name": net, "ipam": {"subnet": str(next(subnets))}} for net in net_names],
        "containers": [{"name": f"c{i:05d}", "networks": [net_names[i % networks]]} for i in range(containers)],
    }
    expect = []
    on_first = range(0, containers, networks)
    if len(on_first) > 1:
        expect.append({"from": f"c{on_first[0]:05d}", "to": f"c{on_first[-1]:05d}", "reachable": True})
    if networks > 1 and containers > 1:
        expect.append({"from": "c00000", "to": "c00001", "reachable": False})
    expect.append({"from": "c00000", "to": "outside", "reachable": True})
    data["expect"] = expect
    return data


def to_yaml(data: dict[str, Any]) -> str:
    """Block style for the top level, one flow-style line per network and container."""
    lines = [f"name: {data['name']}", f"description: {data['description']}", "networks:"]
    lines += [f"  - {_flow(net)}" for net in data["networks"]]
    lines.append("containers:")
    lines += [f"  - {_flow(ctr)}" for ctr in data["containers"]]
    lines.append("expect:")
    lines += [f"  - {_flow(exp)}" for exp in data["expect"]]
    return "\n".join(lines) + "\n"


def _flow(item: dict[str, Any]) -> str:
    return str(yaml.safe_dump(item, default_flow_style=True, width=1 << 16, sort_keys=False)).strip()


def add_parser(sub: Any) -> None:
    gen = sub.add_parser(
        "generate",
        help="write a big scenario: N containers round-robin over M bridge networks",
        description="Write a scenario file of --containers containers spread round-robin over --networks bridge "
        "networks on one host (subnets from 10.0.0.0/8), with a few reachability expectations.",
    )
    gen.add_argument("--containers", type=int, required=True, metavar="N")
    gen.add_argument("--networks", type=int, default=1, metavar="M", help="bridge networks (default 1)")
    gen.add_argument("--name", help="the scenario's name (default scale-<N>c-<M>n)")
    gen.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")


def cmd_generate(args: argparse.Namespace) -> int:
    text = to_yaml(big_topology(args.containers, args.networks, name=args.name))
    if args.output:
        with open(args.output, "w", encoding="utf-8") as out:
            out.write(text)
    else:
        sys.stdout.write(text)
    return 0
