"""The meaning checks of a scenario, run after its shape was checked.

Names must resolve, subnets must parse into a consistent plan (no overlaps,
ranges, gateways and static addresses inside their subnet, nothing assigned
twice), and every expectation and step must be possible in the state the
scenario is in at that point. Each failure calls ``fail(key_path, message)``,
which raises; nothing has been built yet.

Linear in the size of the file: every lookup goes through a dict built once
(a 5,000-network, 10,000-container file took 38 s when lookups were scans and
overlaps were checked pairwise; see benchmarks/test_bench_scenario_validation.py).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from netsim.scenario.dnscheck import check_dns_expectation, check_via_dns
from netsim.scenario.expectkeys import check_ipv6_only, check_probe_keys
from netsim.scenario.hostcheck import HostTimeline, check_host_names
from netsim.scenario.lifecycle import (
    LIFECYCLE_ACTIONS,
    absent_reason,
    check_lifecycle_step,
    check_new_names,
    check_state_assertions,
)
from netsim.scenario.model import (
    HOST,
    OUTSIDE,
    Attachment,
    ContainerSpec,
    Expectation,
    NetworkSpec,
    Scenario,
    host_target,
    outside_host,
)
from netsim.scenario.publishcheck import check_publish_route, port_answers, publishers_by_port
from netsim.scenario.subnets import (
    AddressRoom,
    Fail,
    IPNet,
    ParsedNets,
    check_overlaps,
    check_placement,
    room_problem,
)

__all__ = ["Fail", "IPNet", "check_semantics"]

#: drivers whose endpoints carry no address of their own
_NO_ADDRESS_DRIVERS = ("null",)
#: drivers whose containers may be on no other network (Docker refuses mixing)
_EXCLUSIVE_DRIVERS = ("host", "null")


@dataclass
class _State:
    """What exists at one point of the scenario: live containers, live
    networks, who is attached where, and which static addresses are taken."""

    networks: dict[str, NetworkSpec]
    #: every container of the file by name (removed ones too)
    specs: dict[str, ContainerSpec] = field(default_factory=dict)
    containers: set[str] = field(default_factory=set)
    attached: dict[str, list[str]] = field(default_factory=dict)
    taken: dict[tuple[str, str], str] = field(default_factory=dict)
    #: (container, network) → the static addresses it holds there, for O(1) detach
    held: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    #: network → how many live containers are on it
    users: dict[str, int] = field(default_factory=dict)
    #: network → its address budget (default IPAM, IPv4), when bounded
    rooms: dict[str, AddressRoom] = field(default_factory=dict)
    #: (container, network) → its static IPv4 address there (None: dynamic)
    static_v4: dict[tuple[str, str], str | None] = field(default_factory=dict)
    #: (network, MAC) → the container with that static MAC
    macs: dict[tuple[str, str], str] = field(default_factory=dict)
    mac_of: dict[tuple[str, str], str] = field(default_factory=dict)
    addressable: set[str] = field(default_factory=set)
    #: published host ports: (port, proto) pairs some container publishes
    published: set[tuple[int, str]] = field(default_factory=set)
    #: (port, proto) → every container of the file publishing that fixed port
    publishers: dict[tuple[int, str], list[str]] = field(default_factory=dict)
    nets: ParsedNets = field(default_factory=ParsedNets)
    #: containers that exist but do not run (``state: created``, ``stop``): no namespace
    stopped: set[str] = field(default_factory=set)
    #: the hosts in the cluster at this point (``add_host``/``remove_host`` steps move it)
    hosts: HostTimeline = field(default_factory=lambda: HostTimeline(["h1"]))


def check_semantics(scenario: Scenario, fail: Fail) -> None:
    """Raise through ``fail`` on the first meaning error (see module docstring)."""
    _unique(list(scenario.hosts), "hosts[{}]", "host", fail)
    _unique([n.name for n in scenario.networks], "networks[{}].name", "network", fail)
    _unique([c.name for c in scenario.containers], "containers[{}].name", "container", fail)
    check_new_names(scenario, fail)
    check_host_names(scenario, fail)
    state = _State(
        networks={n.name: n for n in scenario.networks},
        specs={c.name: c for c in scenario.all_containers()},
        hosts=HostTimeline.of(scenario),
    )
    for word, meaning in ((OUTSIDE, "the world beyond the host"), (HOST, "the host itself")):
        if word in state.specs:
            fail("containers", f"{word!r} is reserved for {meaning}")
    first_exclusive: dict[tuple[str, str], str] = {}
    for net in scenario.networks:
        if net.driver in _EXCLUSIVE_DRIVERS:
            first_exclusive.setdefault((net.driver, net.host), net.name)
    for i, net in enumerate(scenario.networks):
        _check_network(scenario, state, net, f"networks[{i}]", first_exclusive, fail)
    check_overlaps(scenario, state.nets, fail)
    state.published = {(p.host_port, p.proto) for c in scenario.containers for p in c.publish if p.fixed}
    state.publishers = publishers_by_port(state.specs.values())
    for i, ctr in enumerate(scenario.containers):
        path = f"containers[{i}]"
        if state.hosts.problem(ctr.host):
            fail(f"{path}.host", str(state.hosts.problem(ctr.host)))
        state.containers.add(ctr.name)
        state.attached[ctr.name] = []
        for j, att in enumerate(ctr.networks):
            _attach(state, ctr.name, ctr.host, att, f"{path}.networks[{j}]", fail)
        if ctr.state == "created":
            state.stopped.add(ctr.name)
        if len(ctr.listen) > 1:
            _unique([str(x) for x in ctr.listen], path + ".listen[{}]", "listener", fail)
    _check_ports(scenario, state, fail)
    _check_expectations(scenario, state, scenario.expect, "expect", fail)
    check_state_assertions(state, scenario.state, fail)
    for i, step in enumerate(scenario.steps):
        path = f"steps[{i}]"
        if step.action in LIFECYCLE_ACTIONS:
            check_lifecycle_step(scenario, state, step, path, fail)
            _check_expectations(scenario, state, step.expect, f"{path}.expect", fail)
            check_state_assertions(state, step.state, fail)
            continue
        if step.container and step.container not in state.containers:
            what = "removed" if step.container in state.attached else "unknown"
            fail(f"{path}.{step.action}", f"{what} container {step.container!r}")
        if step.network and step.network not in state.networks:
            fail(f"{path}.{step.action}", f"unknown or removed network {step.network!r}")
        if step.action == "connect" and step.attachment is not None:
            host = state.specs[step.container].host
            _attach(state, step.container, host, step.attachment, f"{path}.connect", fail)
        elif step.action == "disconnect":
            if step.network not in state.attached[step.container]:
                fail(f"{path}.disconnect", f"container {step.container!r} is not on network {step.network!r}")
            _detach(state, step.container, step.network)
        elif step.action == "remove_container":
            for name in list(state.attached[step.container]):
                _detach(state, step.container, name)
            state.containers.discard(step.container)
            state.stopped.discard(step.container)
        elif step.action == "remove_network":
            if state.users.get(step.network):
                users = sorted(c for c in state.containers if step.network in state.attached[c])
                fail(
                    f"{path}.remove_network",
                    f"network {step.network!r} still has containers {users}; disconnect them first",
                )
            del state.networks[step.network]
        _check_expectations(scenario, state, step.expect, f"{path}.expect", fail)
        check_state_assertions(state, step.state, fail)


def _unique(names: list[str], path: str, what: str, fail: Fail) -> None:
    """The first repeated name fails at ``path.format(index)``; O(n)."""
    if len(set(names)) == len(names):
        return
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            fail(path.format(i), f"duplicate {what} {name!r}")
        seen.add(name)


def _subnet(state: _State, text: str | None) -> IPNet | None:
    return state.nets[text] if text else None


def _check_network(
    scenario: Scenario,
    state: _State,
    net: NetworkSpec,
    path: str,
    first_exclusive: dict[tuple[str, str], str],
    fail: Fail,
) -> None:
    if state.hosts.problem(net.host):
        fail(f"{path}.host", str(state.hosts.problem(net.host)))
    if net.is_global and net.ipv6:
        fail(f"{path}.ipv6", f"IPv6 on a global-scope ({net.driver}) network is not supported by the cluster yet")
    ipam = net.ipam
    subnet, subnet_v6 = _subnet(state, ipam.subnet), _subnet(state, ipam.subnet_v6)
    if net.driver in _EXCLUSIVE_DRIVERS:
        first = first_exclusive[(net.driver, net.host)]
        if first != net.name:
            fail(f"{path}.driver", f"only one {net.driver} network per host is allowed ({first!r} exists)")
        if subnet or subnet_v6:
            fail(f"{path}.ipam", f"the {net.driver} driver takes no IPAM configuration")
    if ipam.ip_range and subnet is None:
        fail(f"{path}.ipam.ip_range", "an ip_range needs a subnet")
    if ipam.gateway and subnet is None:
        fail(f"{path}.ipam.gateway", "a gateway needs a subnet")
    if ipam.gateway_v6 and subnet_v6 is None:
        fail(f"{path}.ipam.gateway_v6", "a gateway_v6 needs a subnet_v6")
    if subnet_v6 is not None and not net.ipv6:
        fail(f"{path}.ipam.subnet_v6", "an IPv6 subnet needs 'ipv6: true' on the network")
    check_ipv6_only(net, path, fail)
    if subnet is not None:
        if ipam.ip_range and not state.nets[ipam.ip_range].subnet_of(subnet):  # type: ignore[arg-type]
            fail(f"{path}.ipam.ip_range", f"ip_range {ipam.ip_range} is not inside subnet {subnet}")
        if ipam.gateway:
            _check_in(subnet, ipam.gateway, f"{path}.ipam.gateway", "gateway", fail)
        for key, addr in ipam.aux_addresses.items():
            _check_in(subnet, addr, f"{path}.ipam.aux_addresses.{key}", "aux address", fail)
    if subnet_v6 is not None and ipam.gateway_v6:
        _check_in(subnet_v6, ipam.gateway_v6, f"{path}.ipam.gateway_v6", "gateway", fail)
    check_placement(net, path, state.nets, fail)
    if net.driver in _EXCLUSIVE_DRIVERS + _NO_ADDRESS_DRIVERS:
        return
    room = AddressRoom.of(net, state.nets)
    problem = room_problem(net, room, state.nets)
    if problem is not None:
        key = "subnet" if subnet is not None and problem.startswith(f"subnet {subnet} ") else "subnet_v6"
        fail(f"{path}.ipam.{key}", problem)
    if room is not None:
        state.rooms[net.name] = room


def _check_in(subnet: IPNet, addr: str, path: str, what: str, fail: Fail) -> None:
    ip = ipaddress.ip_address(addr)
    if ip.version != subnet.version or ip not in subnet:
        fail(path, f"{what} {addr} is outside subnet {subnet}")
    if subnet.version == 4 and subnet.prefixlen < 31 and ip in (subnet.network_address, subnet.broadcast_address):
        fail(path, f"{what} {addr} is the network or broadcast address of {subnet}")


def _attach(state: _State, container: str, host: str, att: Attachment, path: str, fail: Fail) -> None:
    net = state.networks.get(att.network)
    if net is None:
        fail(path, f"unknown network {att.network!r}")
    if not net.on_host(host):
        fail(path, f"network {net.name!r} is on host {net.host!r}, container {container!r} on {host!r}")
    current = state.attached[container]
    if att.network in current:
        fail(path, f"container {container!r} is already on network {att.network!r}")
    exclusive = [n for n in [*current, att.network] if state.networks[n].driver in _EXCLUSIVE_DRIVERS]
    if exclusive and len(current) > 0:
        fail(path, f"a container on the {state.networks[exclusive[0]].driver} network cannot be on other networks")
    if net.driver in _EXCLUSIVE_DRIVERS and (att.ip or att.ipv6 or att.mac):
        fail(path, f"the {net.driver} driver takes no static address or MAC")
    held = state.held.setdefault((container, net.name), [])
    for addr, text, what in ((att.ip, net.ipam.subnet, "ip"), (att.ipv6, net.ipam.subnet_v6, "ipv6")):
        if addr is None:
            continue
        if what == "ipv6" and not net.ipv6:
            fail(f"{path}.{what}", f"network {net.name!r} has no IPv6")
        if what == "ip" and not net.ipv4:
            fail(f"{path}.{what}", f"network {net.name!r} is IPv6-only (ipv4: false)")
        subnet = _subnet(state, text)
        if subnet is None:
            fail(f"{path}.{what}", f"a static address needs a network with a configured subnet ({net.name!r} has none)")
        _check_in(subnet, addr, f"{path}.{what}", "address", fail)
        if addr in (net.ipam.gateway, net.ipam.gateway_v6):
            fail(f"{path}.{what}", f"address {addr} is the gateway of network {net.name!r}")
        for key, value in net.ipam.aux_addresses.items():
            if value == addr:
                fail(f"{path}.{what}", f"address {addr} is aux address {key!r} of network {net.name!r}")
        owner = state.taken.get((net.name, addr))
        if owner is not None:
            fail(f"{path}.{what}", f"address {addr} on network {net.name!r} is already given to {owner!r}")
        state.taken[(net.name, addr)] = container
        held.append(addr)
    if att.mac is not None:
        # one L2 segment per network: two interfaces with one MAC there confuse every switch and ARP cache
        owner = state.macs.get((net.name, att.mac))
        if owner is not None:
            fail(f"{path}.mac", f"MAC address {att.mac} on network {net.name!r} is already given to {owner!r}")
        state.macs[(net.name, att.mac)] = container
        state.mac_of[(container, net.name)] = att.mac
    room = state.rooms.get(net.name)
    if room is not None:
        problem = room.attach(att.ip)
        if problem is not None:
            fail(path, f"network {net.name!r} {problem}: no address left for {container!r}")
    state.static_v4[(container, net.name)] = att.ip
    state.users[net.name] = state.users.get(net.name, 0) + 1
    current.append(att.network)
    if net.driver not in _NO_ADDRESS_DRIVERS:
        state.addressable.add(container)


def _detach(state: _State, container: str, network: str) -> None:
    state.attached[container].remove(network)
    for addr in state.held.pop((container, network), []):
        del state.taken[(network, addr)]
    mac = state.mac_of.pop((container, network), None)
    if mac is not None:
        del state.macs[(network, mac)]
    room = state.rooms.get(network)
    if room is not None:
        room.detach(state.static_v4.get((container, network)))
    state.static_v4.pop((container, network), None)
    state.users[network] -= 1


def _check_ports(scenario: Scenario, state: _State, fail: Fail) -> None:
    bound: dict[tuple[str, str, int], list[tuple[str, str]]] = {}
    host_listeners: dict[tuple[str, str, int], str] = {}
    host_networks = {n.name for n in scenario.networks if n.driver == "host"}
    for i, ctr in enumerate(scenario.containers):
        if ctr.publish:
            check_publish_route(ctr, state.networks, f"containers[{i}].publish", fail)
        for j, pub in enumerate(ctr.publish):
            if not pub.fixed:
                continue  # the driver picks a free port of the range at run time
            users = bound.setdefault((ctr.host, pub.proto, pub.host_port), [])
            for other, other_ip in users:
                if "" in (other_ip, pub.host_ip) or other_ip == pub.host_ip:
                    fail(
                        f"containers[{i}].publish[{j}]",
                        f"host port {pub.host_port}/{pub.proto} is already published by {other!r}",
                    )
            users.append((ctr.name, pub.host_ip))
        on_host = any(a.network in host_networks for a in ctr.networks)
        for j, lst in enumerate(ctr.listen if on_host else ()):
            other = host_listeners.setdefault((ctr.host, lst.proto, lst.port), ctr.name)
            if other != ctr.name:
                fail(f"containers[{i}].listen[{j}]", f"{lst} is already taken on the host network by {other!r}")


def _check_expectations(
    scenario: Scenario, state: _State, expectations: tuple[Expectation, ...], path: str, fail: Fail
) -> None:
    names = state.specs
    for i, exp in enumerate(expectations):
        where = f"{path}[{i}]"
        if exp.dns is not None:
            problem = check_dns_expectation(names, lambda name: absent_reason(state, name), exp)
            if problem is not None:
                fail(f"{where}.from", problem)
            continue
        if exp.via_dns:  # 'to' is a name for the resolver (an alias too), not only a container
            bad = check_via_dns(exp, names)
            if bad is not None:
                fail(f"{where}.{bad[0]}", bad[1])
            reason = absent_reason(state, exp.source)
            if reason is not None:
                fail(f"{where}.from", f"container {exp.source!r} {reason}")
            continue
        for key, end in (("from", exp.source), ("to", exp.target)):
            pinned = outside_host(end)
            if pinned and state.hosts.problem_in(pinned, end):
                fail(f"{where}.{key}", str(state.hosts.problem_in(pinned, end)))
        if outside_host(exp.source) is None:
            if exp.source not in names:
                fail(f"{where}.from", f"unknown container {exp.source!r}")
            reason = absent_reason(state, exp.source)
            if reason is not None:
                fail(f"{where}.from", f"container {exp.source!r} {reason}")
        if outside_host(exp.source) is not None and outside_host(exp.target) is not None:
            fail(f"{where}.to", "from outside to outside is not a container network question")
        published = exp.published_port
        if published is not None:
            if exp.reachable and (published, exp.proto) not in state.published:
                fail(f"{where}.to", f"impossible: no container publishes {published}/{exp.proto}")
            if exp.reachable and not port_answers(state, published, exp.proto):
                fail(
                    f"{where}.to",
                    f"impossible: no running container publishing {published}/{exp.proto} is on a network "
                    "with a way out at this point (internal networks publish no ports)",
                )
        elif (
            outside_host(exp.target) is None
            and host_target(exp.target) is None
            and ":" not in exp.target
            and not exp.target.replace(".", "").isdigit()
        ):
            if exp.target not in names:
                fail(f"{where}.to", f"unknown container {exp.target!r}")
            if exp.target not in state.attached:
                fail(f"{where}.to", f"container {exp.target!r} does not exist yet at this point")
            if exp.reachable and exp.target in state.stopped:
                fail(f"{where}.to", f"impossible: container {exp.target!r} is not running at this point")
            if exp.target not in state.addressable:
                fail(f"{where}.to", f"container {exp.target!r} has no address (it is on no addressed network)")
            target = names[exp.target]
            if (
                exp.reachable
                and exp.port is not None
                and not any((lst.proto, lst.port) == (exp.proto, exp.port) for lst in target.listen)
            ):
                fail(f"{where}.port", f"impossible: {exp.target!r} does not listen on {exp.proto}/{exp.port}")
        check_probe_keys(
            scenario,
            exp,
            where,
            fail,
            specs=names,
            live=state.containers,
            attached=state.attached,
            networks=state.networks,
            host_problem=state.hosts.problem_in,
        )
