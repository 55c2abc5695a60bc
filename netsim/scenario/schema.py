"""Load a scenario file: YAML → checked dataclasses, or a ScenarioError.

Two passes. This module checks *shape* (known keys, types, CIDR and port
syntax), reading every mapping through its declaration in
:mod:`netsim.scenario.definition` (the same declaration ``netsim schema``
prints as a JSON Schema), and names every error by file and key path
(``networks[1].ipam.subnet``); :mod:`netsim.scenario.checks` then checks
*meaning* (names resolve, subnets do not overlap, static IPs fit). Nothing is
built until both passed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import cast

from netsim.errors import InvalidParameterError, ScenarioError
from netsim.scenario import definition as D
from netsim.scenario.checks import check_semantics
from netsim.scenario.dnscheck import check_dns_name, is_dns_entry, parse_dns_expectation
from netsim.scenario.driverchecks import check_drivers
from netsim.scenario.expectkeys import parse_probe_keys
from netsim.scenario.model import (
    HOST_AT,
    OUTSIDE,
    OUTSIDE_AT,
    PUBLISHED_PREFIX,
    Attachment,
    ContainerSpec,
    Expectation,
    IpamSpec,
    ListenProto,
    ListenSpec,
    NetworkSpec,
    Proto,
    PublishSpec,
    Scenario,
    Step,
    StepAction,
    StoreChoice,
)
from netsim.scenario.outside import parse_outside
from netsim.scenario.plugins import check_plugin_use, parse_plugins
from netsim.scenario.reading import read_scenario_data
from netsim.scenario.shape import Fields, ShapeReader, join
from netsim.scenario.statecheck import is_state_entry, parse_state_checks
from netsim.store import parse_store_url

_PUBLISH_RE = re.compile(
    r"^(?:(?:(?P<ip>[0-9.]+|\[[0-9A-Fa-f:.]+\]):)?(?P<host>[^:/]+):)?(?P<ctr>[^:/]+)(?:/(?P<proto>[a-z]+))?$"
)
_PORTS_RE = re.compile(r"^[0-9]+(?:-[0-9]+)?$")
_STEP_ACTIONS: tuple[StepAction, ...] = cast(tuple[StepAction, ...], tuple(D.STEP_ACTIONS))

#: the reader under its old name (plugins and tests type against it)
_Reader = ShapeReader
_join = join


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate one YAML file; ScenarioError names file and key path
    (reading is bounded and strict: see :mod:`netsim.scenario.reading`)."""
    return parse_scenario(read_scenario_data(path), file=str(path), default_name=Path(path).stem)


def parse_scenario(data: object, *, file: str = "", default_name: str = "scenario") -> Scenario:
    """Validate already-parsed YAML data (shape, then meaning)."""
    rd = _Reader(file)
    top = rd.obj(data, "", D.SCENARIO)
    raw = top.raw
    hosts = tuple(_host(rd, h, f"hosts[{i}]") for i, h in enumerate(rd.seq(raw.get("hosts"), "hosts"))) or ("h1",)
    default_host = hosts[0]
    steps = tuple(_step(rd, s, f"steps[{i}]", default_host) for i, s in enumerate(rd.seq(raw.get("steps"), "steps")))
    #: with the hosts steps add: a store, ``outside:`` and plugins are checked for every host there will be
    every_host = hosts + tuple(s.host for s in steps if s.action == "add_host")
    scenario = Scenario(
        name=top.get("name", default_name),
        file=file,
        description=(top.get("description") or "").strip(),
        hosts=hosts,
        networks=tuple(
            _network(rd, n, f"networks[{i}]", default_host)
            for i, n in enumerate(rd.seq(raw.get("networks"), "networks"))
        ),
        containers=tuple(
            _container(rd, c, f"containers[{i}]", default_host)
            for i, c in enumerate(rd.seq(raw.get("containers"), "containers"))
        ),
        expect=_expectations(rd, raw.get("expect"), "expect"),
        state=parse_state_checks(rd, raw.get("expect"), "expect"),
        steps=steps,
        plugins=parse_plugins(rd, raw.get("plugins"), hosts),
        store=_store(rd, raw["store"], every_host) if "store" in raw else None,
        # the top-level outside: serves beyond every host, a joining one too
        outside_listen=parse_outside(
            rd, raw.get("outside"), rd.seq(raw.get("hosts"), "hosts"), every_host, lambda v, p: _listen(rd, v, p)
        ),
    )
    check_semantics(scenario, rd.fail)
    check_plugin_use(scenario, rd.fail)
    check_drivers(scenario, rd.fail)
    return scenario


def _store(rd: _Reader, value: object, hosts: tuple[str, ...]) -> StoreChoice:
    """``store: {local: URL, global: URL}``; each URL checked as netsim.store.open_store would."""
    entry = rd.obj(value, "store", D.STORE)
    urls: dict[str, str | None] = {}
    for key in ("local", "global"):
        text = entry.get(key)
        urls[key] = text
        if text is None:
            continue
        try:
            parse_store_url(text.replace("{host}", hosts[0]))
        except InvalidParameterError as exc:
            rd.fail(f"store.{key}", str(exc))
    local = urls["local"]
    if local is not None and len(hosts) > 1 and "{host}" not in local and not local.startswith("memory:"):
        # ``hosts`` counts the hosts steps add: a joining host would open the same file
        rd.fail("store.local", f"{len(hosts)} hosts would share one local store: put {{host}} in the URL")
    return StoreChoice(local=local, global_=urls["global"])


def _host(rd: _Reader, value: object, path: str) -> str:
    if isinstance(value, Mapping):
        return str(rd.obj(value, path, D.HOST_ENTRY)["name"])
    return rd.name(value, path)


def _network(rd: _Reader, value: object, path: str, default_host: str) -> NetworkSpec:
    net = rd.obj(value, path, D.NETWORK)
    return NetworkSpec(
        name=net["name"],
        driver=net.get("driver", "bridge"),
        host=net.get("host", default_host),
        options=net.get("options", {}),
        ipam=_ipam(rd, net.raw.get("ipam"), net.path("ipam")),
        internal=net.get("internal", False),
        ipv6=net.get("ipv6", False),
        ipv4=net.get("ipv4", True),
        labels=net.get("labels", {}),
    )


def _ipam(rd: _Reader, value: object, path: str) -> IpamSpec:
    if value is None:
        return IpamSpec()
    ipam = rd.obj(value, path, D.IPAM)
    aux = ipam.get("aux_addresses", {})
    return IpamSpec(
        driver=ipam.get("driver", "default"),
        subnet=ipam["subnet"],
        ip_range=ipam["ip_range"],
        gateway=ipam["gateway"],
        aux_addresses={k: rd.ip(v, join(ipam.path("aux_addresses"), k)) for k, v in aux.items()},
        subnet_v6=ipam["subnet_v6"],
        gateway_v6=ipam["gateway_v6"],
    )


def _attachment(rd: _Reader, value: object, path: str) -> Attachment:
    if not isinstance(value, Mapping):  # a plain name (YAML may read it as a number, as for any name)
        return Attachment(network=rd.name(value, path))
    return _attachment_of(rd.obj(value, path, D.ATTACH_ENTRY))


def _attachment_of(att: Fields) -> Attachment:
    """The attachment keys of a mapping (a container's network, a connect step)."""
    aliases = tuple(
        check_dns_name(att.reader, att.reader.text(a, f"{att.path('aliases')}[{i}]"), f"{att.path('aliases')}[{i}]")
        for i, a in enumerate(att.reader.seq(att.raw.get("aliases"), att.path("aliases")))
    )
    return Attachment(network=att["network"], ip=att["ip"], ipv6=att["ipv6"], mac=att["mac"], aliases=aliases)


def _listen(rd: _Reader, value: object, path: str) -> ListenSpec:
    text = rd.text(value, path)
    proto, sep, port = text.partition("/")
    if not sep:
        rd.fail(path, f"invalid listener {text!r}: expected PROTO/PORT such as tcp/80")
    return ListenSpec(proto=cast(ListenProto, rd.proto(proto, path, ("tcp", "udp"))), port=rd.port(port, path))


def _publish(rd: _Reader, value: object, path: str) -> list[PublishSpec]:
    """Docker's ``-p``: ``[IP:]HOST:CTR[/PROTO]``, ``CTR`` or ``0:CTR`` (a port the
    driver picks from the ephemeral range), ``HOST-END:CTR`` (the first free of
    a range), ``HOST-END:CTR-CTREND`` (one to one, equal lengths)."""
    text = rd.text(value, path)
    match = _PUBLISH_RE.match(text)
    expected = "[HOST_IP:][HOST_PORT[-END]:]CONTAINER_PORT[-END][/PROTO]"
    if match is None or not all(_PORTS_RE.match(part) for part in (match["host"] or "0", match["ctr"])):
        rd.fail(path, f"invalid published port {text!r}: expected {expected}")
    host_ip = ""
    if match["ip"]:
        host_ip = rd.ip(match["ip"].strip("[]"), path)
    proto = cast(ListenProto, rd.proto(match["proto"] or "tcp", path, ("tcp", "udp")))
    ctr_first, ctr_last = _port_range(rd, match["ctr"], path)
    if match["host"] is None or match["host"] == "0":
        host_first, host_last = 0, 0
    else:
        host_first, host_last = _port_range(rd, match["host"], path)
    if ctr_first == ctr_last:
        end = host_last if host_last != host_first else 0
        return [PublishSpec(host_first, ctr_first, proto, host_ip, end)]
    if host_first == 0:
        return [PublishSpec(0, port, proto, host_ip) for port in range(ctr_first, ctr_last + 1)]
    if host_last - host_first != ctr_last - ctr_first:
        rd.fail(path, f"invalid published port {text!r}: host and container ranges differ in length")
    return [
        PublishSpec(host_first + offset, ctr_first + offset, proto, host_ip)
        for offset in range(ctr_last - ctr_first + 1)
    ]


def _port_range(rd: _Reader, text: str, path: str) -> tuple[int, int]:
    first, dash, last = text.partition("-")
    start = rd.port(first, path)
    end = rd.port(last, path) if dash else start
    if end < start:
        rd.fail(path, f"invalid port range {text!r}: the end is below the start")
    return start, end


def _container(rd: _Reader, value: object, path: str, default_host: str) -> ContainerSpec:
    ctr = rd.obj(value, path, D.CONTAINER)
    raw = ctr.raw
    return ContainerSpec(
        name=ctr["name"],
        host=ctr.get("host", default_host),
        networks=tuple(
            _attachment(rd, a, f"{path}.networks[{i}]")
            for i, a in enumerate(rd.seq(raw.get("networks"), f"{path}.networks"))
        ),
        listen=tuple(
            _listen(rd, x, f"{path}.listen[{i}]") for i, x in enumerate(rd.seq(raw.get("listen"), f"{path}.listen"))
        ),
        publish=tuple(
            spec
            for i, x in enumerate(rd.seq(raw.get("publish"), f"{path}.publish"))
            for spec in _publish(rd, x, f"{path}.publish[{i}]")
        ),
        state=ctr.get("state", "running"),
    )


def parse_expectation(data: object, *, file: str = "", path: str = "expect") -> Expectation:
    """One ``{from, to, proto, port, reachable}`` mapping (``netsim trace`` builds one)."""
    return _expectation(_Reader(file), data, path)


def _expectations(rd: _Reader, value: object, path: str) -> tuple[Expectation, ...]:
    """The probes of an ``expect:`` list (its state assertions: :func:`parse_state_checks`)."""
    items = enumerate(rd.seq(value, path))
    return tuple(_expectation(rd, e, f"{path}[{i}]") for i, e in items if not is_state_entry(e))


def _expectation(rd: _Reader, value: object, path: str) -> Expectation:
    if is_dns_entry(value):
        return parse_dns_expectation(rd, value, path)
    exp = rd.obj(value, path, D.PROBE)
    proto = cast(Proto, exp.get("proto", "icmp"))
    target = exp["to"]
    port = exp["port"]
    if target.startswith(PUBLISHED_PREFIX):
        published = rd.port(target[len(PUBLISHED_PREFIX) :], join(path, "to"))
        if port is not None and port != published:
            rd.fail(join(path, "port"), f"port {port} contradicts the published port {published} in 'to'")
        port = published
        target = f"{PUBLISHED_PREFIX}{published}"
        if proto == "icmp":
            rd.fail(join(path, "proto"), "a published port is probed with tcp or udp, not icmp")
    elif ":" in target or target.replace(".", "").isdigit():
        target = rd.ip(target, join(path, "to"))
    elif target.startswith(OUTSIDE_AT):
        target = OUTSIDE_AT + rd.name(target[len(OUTSIDE_AT) :], join(path, "to"))
    elif target.startswith(HOST_AT):
        target = HOST_AT + rd.name(target[len(HOST_AT) :], join(path, "to"))
    elif target != OUTSIDE:
        target = rd.name(target, join(path, "to"))
    if proto == "icmp" and port is not None:
        rd.fail(join(path, "port"), "icmp has no port")
    if proto != "icmp" and port is None:
        rd.fail(join(path, "port"), f"{proto} needs a port")
    keys = parse_probe_keys(rd, exp.raw, path, proto, target)
    source = exp["from"]
    if source.startswith(OUTSIDE_AT):
        source = OUTSIDE_AT + rd.name(source[len(OUTSIDE_AT) :], join(path, "from"))
    return Expectation(
        source=rd.name(source, join(path, "from")) if not source.startswith(OUTSIDE_AT) else source,
        target=target,
        proto=proto,
        port=port,
        reachable=exp.get("reachable", keys.reachable_default),
        outcome=keys.outcome,
        seen_from=keys.seen_from,
        family=keys.family,
        via_dns=exp.get("via_dns", False),
    )


def _step(rd: _Reader, value: object, path: str, default_host: str = "h1") -> Step:
    step = rd.obj(value, path, D.STEP)
    action = next(key for key in _STEP_ACTIONS if key in step)
    sub = step.path(action)
    expect = _expectations(rd, step.raw.get("expect"), step.path("expect"))
    state = parse_state_checks(rd, step.raw.get("expect"), step.path("expect"))
    if action in ("remove_container", "remove_network"):
        name = step[action]
        if action == "remove_container":
            return Step(action=action, container=name, expect=expect, state=state)
        return Step(action=action, network=name, expect=expect, state=state)
    if action in ("start", "stop", "restart"):
        return Step(action=action, container=step[action], expect=expect, state=state)
    if action in ("add_host", "remove_host"):
        return Step(action=action, host=step[action], expect=expect, state=state)
    if action == "create_container":
        ctr = _container(rd, step.raw[action], sub, default_host)
        return Step(action=action, container=ctr.name, new_container=ctr, expect=expect, state=state)
    if action == "create_network":
        net = _network(rd, step.raw[action], sub, default_host)
        return Step(action=action, network=net.name, new_network=net, expect=expect, state=state)
    body = rd.obj(step.raw[action], sub, D.CONNECT if action == "connect" else D.DISCONNECT)
    attachment = _attachment_of(body) if action == "connect" else Attachment(network=body["network"])
    container = body["container"]
    return Step(action, container, attachment.network, attachment, expect=expect, state=state)


def scenario_files(paths: list[str]) -> list[Path]:
    """Expand directories to their ``*.yaml``/``*.yml`` files (sorted)."""
    out: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            found = sorted([*path.glob("*.yaml"), *path.glob("*.yml")])
            if not found:
                raise ScenarioError("no *.yaml scenario files in this directory", file=name)
            out.extend(found)
        else:
            out.append(path)
    return out
