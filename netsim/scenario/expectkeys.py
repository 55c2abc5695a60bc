"""An expectation's keys about the traffic itself: ``outcome``, ``seen_from``,
``family``, and the targets ``host``/``host@H`` and TCP/UDP to ``outside``.

```yaml
expect:
  - {from: web, to: db, proto: tcp, port: 5432, family: 6}            # db's IPv6 address
  - {from: web, to: outside, proto: tcp, port: 80, seen_from: host}   # masqueraded
  - {from: outside, to: "published:8080", proto: tcp, seen_from: outside}  # DNAT keeps the client
  - {from: web, to: host, proto: tcp, port: 22, outcome: rst}          # the host resets
```

:func:`parse_probe_keys` checks their shape (with the schema's reader),
:func:`check_probe_keys` their meaning at that point of the scenario; both
fail through the reader's ``fail(key_path, message)``, before anything is built.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from netsim.scenario.model import (
    HOST,
    HOST_AT,
    OUTSIDE,
    OUTSIDE_AT,
    Expectation,
    NetworkSpec,
    Scenario,
    host_target,
    outside_host,
)
from netsim.scenario.outcomes import OUTCOMES, outcome_problem, protocol_problem
from netsim.scenario.outside import outside_listens
from netsim.scenario.plugins import ShapeReader
from netsim.scenario.subnets import Fail

#: the keys this module reads from an expectation mapping
PROBE_KEYS = ("outcome", "seen_from", "family")


@dataclass(frozen=True)
class ProbeKeys:
    outcome: str | None
    seen_from: str | None
    family: int | None
    #: ``reachable`` when the file leaves it out: what ``outcome`` implies, else True
    reachable_default: bool


def _literal_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def parse_probe_keys(rd: ShapeReader, raw: Mapping[str, Any], path: str, proto: str, target: str) -> ProbeKeys:
    """Shape of ``outcome``/``seen_from``/``family`` in one expectation at ``path``."""
    outcome = None
    if raw.get("outcome") is not None:
        outcome = rd.text(raw["outcome"], f"{path}.outcome").lower()
        if outcome not in OUTCOMES:
            rd.fail(f"{path}.outcome", f"unknown outcome {outcome!r}; expected one of: {', '.join(OUTCOMES)}")
        problem = protocol_problem(outcome, proto)
        if problem is None and "reachable" in raw and isinstance(raw["reachable"], bool):
            problem = outcome_problem(outcome, raw["reachable"])
        if problem is not None:
            rd.fail(f"{path}.outcome", problem)
    seen_from = None
    if raw.get("seen_from") is not None:
        seen_from = _seen_from(rd, raw["seen_from"], f"{path}.seen_from")
    family = None
    if raw.get("family") is not None:
        value = raw["family"]
        if isinstance(value, bool) or value not in (4, 6, "4", "6", "ipv4", "ipv6"):
            rd.fail(f"{path}.family", f"expected 4 or 6, got {value!r}")
        family = 6 if str(value).endswith("6") else 4
        literal = _literal_ip(target)
        if literal is not None and literal.version != family:
            rd.fail(f"{path}.family", f"family {family} contradicts the IPv{literal.version} address in 'to'")
    return ProbeKeys(outcome, seen_from, family, outcome in (None, "ok"))


def _seen_from(rd: ShapeReader, value: object, path: str) -> str:
    text = rd.text(value, path)
    literal = _literal_ip(text)
    if literal is not None:
        return str(literal)
    for word, at in ((HOST, HOST_AT), (OUTSIDE, OUTSIDE_AT)):
        if text == word:
            return text
        if text.startswith(at):
            return at + rd.name(text[len(at) :], path)
    return rd.name(text, path)


def check_probe_keys(
    scenario: Scenario,
    exp: Expectation,
    where: str,
    fail: Fail,
    *,
    specs: Collection[str],
    live: Collection[str],
    attached: Mapping[str, list[str]],
    networks: Mapping[str, NetworkSpec],
    host_problem: Callable[[str, str], str | None] | None = None,
) -> None:
    """Meaning of the traffic keys of ``exp`` with ``live`` containers attached
    to ``attached`` networks at this point of the scenario; ``host_problem(host,
    text)`` says why a host named in ``text`` is not in the cluster then
    (default: it is not one of the file's ``hosts:``)."""
    if host_problem is None:
        host_problem = _file_hosts(scenario)
    names = {c.name: c for c in scenario.containers}
    source = names.get(exp.source)
    source_host = source.host if source is not None else (outside_host(exp.source) or scenario.hosts[0])
    pinned = host_target(exp.target)
    if pinned is not None:
        host = pinned or source_host
        if host_problem(host, exp.target):
            fail(f"{where}.to", str(host_problem(host, exp.target)))
        if exp.reachable and exp.port is not None and not _host_serves(scenario, host, exp.proto, exp.port):
            fail(
                f"{where}.port",
                f"impossible: nothing on host {host!r} publishes or listens on {exp.proto}/{exp.port}",
            )
    outside = outside_host(exp.target)
    if outside is not None and exp.reachable and exp.port is not None:
        host = outside or source_host
        if not outside_listens(scenario, host, exp.proto, exp.port):
            fail(
                f"{where}.port",
                f"impossible: the outside of {host!r} does not listen on {exp.proto}/{exp.port} "
                "(add it to 'outside: {listen: [...]}')",
            )
    if exp.family is not None:
        _check_family(exp, where, fail, names, attached, networks)
    if exp.seen_from is not None:
        _check_seen_from(exp, where, fail, specs, live, host_problem)


def _file_hosts(scenario: Scenario) -> Callable[[str, str], str | None]:
    def problem(host: str, text: str) -> str | None:
        return None if host in scenario.hosts else f"unknown host {host!r} in {text!r}"

    return problem


def _host_serves(scenario: Scenario, host: str, proto: str, port: int) -> bool:
    """A fixed published port, or a host-network container's listener, on ``host``."""
    host_nets = {n.name for n in scenario.networks if n.driver == "host" and n.host == host}
    for ctr in scenario.containers:
        if ctr.host != host:
            continue
        if any(p.fixed and (p.proto, p.host_port) == (proto, port) for p in ctr.publish):
            return True
        if any(a.network in host_nets for a in ctr.networks) and any(
            (lst.proto, lst.port) == (proto, port) for lst in ctr.listen
        ):
            return True
    return False


def _check_family(
    exp: Expectation,
    where: str,
    fail: Fail,
    names: Mapping[str, Any],
    attached: Mapping[str, list[str]],
    networks: Mapping[str, NetworkSpec],
) -> None:
    """A container target needs an address of the family; IPv6 to a host, its
    outside or a published port needs a source with IPv6 (a container on an
    IPv6 network, or an outside) and, for a published port, a publisher with
    an IPv6 address (Docker publishes on [::] only to a container's IPv6 address)."""

    def has(container: str) -> bool:
        return any(_has_family(networks[n], exp.family) for n in attached.get(container, []) if n in networks)

    if exp.target in names:
        if not has(exp.target):
            fail(f"{where}.family", f"container {exp.target!r} has no IPv{exp.family} address here")
        return
    if exp.family != 6 or not exp.reachable:
        return
    if exp.source in names and not has(exp.source):
        fail(f"{where}.family", f"container {exp.source!r} has no IPv6 address to send from")
    if exp.published_port is not None or (host_target(exp.target) is not None and exp.port is not None):
        port = exp.published_port or exp.port
        publishers = [
            c.name
            for c in names.values()
            if any(p.fixed and (p.host_port, p.proto) == (port, exp.proto) for p in c.publish)
        ]
        if publishers and not any(has(name) for name in publishers):
            fail(f"{where}.family", f"{publishers[0]!r} publishes {exp.proto}/{port} but has no IPv6 address")


def _has_family(net: NetworkSpec, family: int | None) -> bool:
    if net.driver in ("null", "host"):
        return False
    if family == 6:
        return net.ipv6
    return net.ipv4


def _check_seen_from(
    exp: Expectation,
    where: str,
    fail: Fail,
    specs: Collection[str],
    live: Collection[str],
    host_problem: Callable[[str, str], str | None],
) -> None:
    seen = exp.seen_from or ""
    if _literal_ip(exp.target) is not None:
        fail(f"{where}.seen_from", "seen_from needs a named target (a container, host, outside or published:PORT)")
    pinned = host_target(seen)
    if pinned:
        if host_problem(pinned, seen):
            fail(f"{where}.seen_from", str(host_problem(pinned, seen)))
    elif outside_host(seen):
        if host_problem(outside_host(seen) or "", seen):
            fail(f"{where}.seen_from", str(host_problem(outside_host(seen) or "", seen)))
    elif pinned is None and outside_host(seen) is None and _literal_ip(seen) is None:
        if seen not in specs:
            fail(f"{where}.seen_from", f"unknown container {seen!r}")
        if seen not in live:
            fail(f"{where}.seen_from", f"container {seen!r} was removed in an earlier step")


def check_ipv6_only(net: NetworkSpec, path: str, fail: Fail) -> None:
    """``ipv4: false`` (Docker's ``--ipv4=false``): IPv6 must be on, and nothing
    of IPv4 may be configured (Docker refuses IPv4 IPAM config then too)."""
    if net.ipv4:
        return
    if not net.ipv6:
        fail(f"{path}.ipv4", "an IPv6-only network needs 'ipv6: true' (a network needs IPv4 or IPv6)")
    if net.driver != "bridge":
        fail(f"{path}.ipv4", f"ipv4: false is modelled for the bridge driver only, not {net.driver!r}")
    for key in ("subnet", "ip_range", "gateway"):
        if getattr(net.ipam, key):
            fail(f"{path}.ipam.{key}", f"network {net.name!r} has no IPv4 (ipv4: false): no IPv4 {key}")
    if net.ipam.aux_addresses and any(":" not in a for a in net.ipam.aux_addresses.values()):
        fail(f"{path}.ipam.aux_addresses", f"network {net.name!r} has no IPv4 (ipv4: false)")
