"""Load a scenario file: YAML → checked dataclasses, or a ScenarioError.

Two passes. This module checks *shape* (known keys, types, CIDR and port
syntax) and names every error by file and key path
(``networks[1].ipam.subnet``); :mod:`netsim.scenario.checks` then checks
*meaning* (names resolve, subnets do not overlap, static IPs fit). Nothing is
built until both passed.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn, cast

from netsim.errors import InvalidParameterError, ScenarioError
from netsim.scenario.checks import check_semantics
from netsim.scenario.driverchecks import check_drivers
from netsim.scenario.model import (
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
from netsim.scenario.plugins import check_plugin_use, parse_plugins
from netsim.scenario.reading import read_scenario_data
from netsim.store import parse_store_url
from netsim.validate import parse_ip, parse_mac, parse_network, parse_port

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_PUBLISH_RE = re.compile(
    r"^(?:(?:(?P<ip>[0-9.]+|\[[0-9A-Fa-f:.]+\]):)?(?P<host>[^:/]+):)?(?P<ctr>[^:/]+)(?:/(?P<proto>[a-z]+))?$"
)
_PORTS_RE = re.compile(r"^[0-9]+(?:-[0-9]+)?$")
_STEP_ACTIONS: tuple[StepAction, ...] = ("connect", "disconnect", "remove_container", "remove_network")


class _Reader:
    """Shape checks that know which file they read, for error messages."""

    def __init__(self, file: str) -> None:
        self.file = file

    def fail(self, path: str, message: str) -> NoReturn:
        raise ScenarioError(message, file=self.file, path=path)

    def mapping(
        self, value: object, path: str, allowed: tuple[str, ...], required: tuple[str, ...] = ()
    ) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            self.fail(path, f"expected a mapping, got {_type_name(value)}")
        for key in value:
            if key not in allowed:
                self.fail(_join(path, str(key)), f"unknown key {key!r}; expected one of: {', '.join(allowed)}")
        for key in required:
            if key not in value:
                self.fail(_join(path, key), "required key is missing")
        return dict(value)

    def seq(self, value: object, path: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(path, f"expected a list, got {_type_name(value)}")
        return value

    def text(self, value: object, path: str) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            hint = ' (write "null" in quotes for the null driver)' if value is None else ""
            self.fail(path, f"expected a string, got {_type_name(value)}{hint}")
        return str(value)

    def name(self, value: object, path: str) -> str:
        text = self.text(value, path)
        if not _NAME_RE.match(text):
            self.fail(path, f"invalid name {text!r}: letters, digits, '_', '.', '-' (max 63)")
        return text

    def flag(self, value: object, path: str) -> bool:
        if not isinstance(value, bool):
            self.fail(path, f"expected true or false, got {_type_name(value)}")
        return value

    def strings(self, value: object, path: str) -> dict[str, str]:
        """Driver options and labels: keys and values become strings (YAML
        reads ``false`` as a bool; Docker's options are strings)."""
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.fail(path, f"expected a mapping, got {_type_name(value)}")
        out: dict[str, str] = {}
        for key, val in value.items():
            sub = _join(path, str(key))
            out[self.text(key, sub)] = ("true" if val else "false") if isinstance(val, bool) else self.text(val, sub)
        return out

    def cidr(self, value: object, path: str, version: int) -> str:
        text = self.text(value, path)
        try:
            net = parse_network(text)
        except InvalidParameterError as exc:
            self.fail(path, str(exc))
        if net.version != version:
            self.fail(path, f"expected an IPv{version} subnet, got {text!r}")
        return str(net)

    def ip(self, value: object, path: str, version: int | None = None) -> str:
        text = self.text(value, path)
        try:
            addr = parse_ip(text)
        except InvalidParameterError as exc:
            self.fail(path, str(exc))
        if version is not None and addr.version != version:
            self.fail(path, f"expected an IPv{version} address, got {text!r}")
        return str(addr)

    def port(self, value: object, path: str) -> int:
        if isinstance(value, bool):
            self.fail(path, "expected a port number 1-65535, got a boolean")
        try:
            return parse_port(value)
        except InvalidParameterError as exc:
            self.fail(path, str(exc))

    def proto(self, value: object, path: str, allowed: tuple[str, ...]) -> str:
        text = self.text(value, path).lower()
        if text not in allowed:
            self.fail(path, f"unknown protocol {text!r}; expected one of: {', '.join(allowed)}")
        return text


def _type_name(value: object) -> str:
    return "nothing" if value is None else type(value).__name__


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate one YAML file; ScenarioError names file and key path
    (reading is bounded and strict: see :mod:`netsim.scenario.reading`)."""
    return parse_scenario(read_scenario_data(path), file=str(path), default_name=Path(path).stem)


def parse_scenario(data: object, *, file: str = "", default_name: str = "scenario") -> Scenario:
    """Validate already-parsed YAML data (shape, then meaning)."""
    rd = _Reader(file)
    top = rd.mapping(
        data, "", ("name", "description", "hosts", "plugins", "store", "networks", "containers", "expect", "steps")
    )
    hosts = tuple(_host(rd, h, f"hosts[{i}]") for i, h in enumerate(rd.seq(top.get("hosts"), "hosts"))) or ("h1",)
    default_host = hosts[0]
    scenario = Scenario(
        name=rd.name(top["name"], "name") if "name" in top else default_name,
        file=file,
        description=rd.text(top["description"], "description").strip() if top.get("description") else "",
        hosts=hosts,
        networks=tuple(
            _network(rd, n, f"networks[{i}]", default_host)
            for i, n in enumerate(rd.seq(top.get("networks"), "networks"))
        ),
        containers=tuple(
            _container(rd, c, f"containers[{i}]", default_host)
            for i, c in enumerate(rd.seq(top.get("containers"), "containers"))
        ),
        expect=_expectations(rd, top.get("expect"), "expect"),
        steps=tuple(_step(rd, s, f"steps[{i}]") for i, s in enumerate(rd.seq(top.get("steps"), "steps"))),
        plugins=parse_plugins(rd, top.get("plugins"), hosts),
        store=_store(rd, top["store"], hosts) if "store" in top else None,
    )
    check_semantics(scenario, rd.fail)
    check_plugin_use(scenario, rd.fail)
    check_drivers(scenario, rd.fail)
    return scenario


def _store(rd: _Reader, value: object, hosts: tuple[str, ...]) -> StoreChoice:
    """``store: {local: URL, global: URL}``; each URL checked as netsim.store.open_store would."""
    entry = rd.mapping(value, "store", ("local", "global"))
    urls: dict[str, str | None] = {}
    for key in ("local", "global"):
        url = entry.get(key)
        if url is None:
            urls[key] = None
            continue
        text = rd.text(url, f"store.{key}")
        try:
            parse_store_url(text.replace("{host}", hosts[0]))
        except InvalidParameterError as exc:
            rd.fail(f"store.{key}", str(exc))
        urls[key] = text
    local = urls["local"]
    if local is not None and len(hosts) > 1 and "{host}" not in local and not local.startswith("memory:"):
        rd.fail("store.local", f"{len(hosts)} hosts would share one local store: put {{host}} in the URL")
    return StoreChoice(local=local, global_=urls["global"])


def _host(rd: _Reader, value: object, path: str) -> str:
    if isinstance(value, Mapping):
        return rd.name(rd.mapping(value, path, ("name",), ("name",))["name"], _join(path, "name"))
    return rd.name(value, path)


def _network(rd: _Reader, value: object, path: str, default_host: str) -> NetworkSpec:
    keys = ("name", "driver", "host", "options", "ipam", "internal", "ipv6", "labels")
    raw = rd.mapping(value, path, keys, ("name",))
    return NetworkSpec(
        name=rd.name(raw["name"], _join(path, "name")),
        driver=rd.name(raw["driver"], _join(path, "driver")) if "driver" in raw else "bridge",
        host=rd.name(raw["host"], _join(path, "host")) if "host" in raw else default_host,
        options=rd.strings(raw.get("options"), _join(path, "options")),
        ipam=_ipam(rd, raw.get("ipam"), _join(path, "ipam")),
        internal=rd.flag(raw.get("internal", False), _join(path, "internal")),
        ipv6=rd.flag(raw.get("ipv6", False), _join(path, "ipv6")),
        labels=rd.strings(raw.get("labels"), _join(path, "labels")),
    )


def _ipam(rd: _Reader, value: object, path: str) -> IpamSpec:
    if value is None:
        return IpamSpec()
    keys = ("driver", "subnet", "ip_range", "gateway", "aux_addresses", "subnet_v6", "gateway_v6")
    raw = rd.mapping(value, path, keys)

    def opt(key: str, parse: Any) -> Any:
        return parse(raw[key], _join(path, key)) if raw.get(key) is not None else None

    aux = rd.strings(raw.get("aux_addresses"), _join(path, "aux_addresses"))
    return IpamSpec(
        driver=rd.name(raw["driver"], _join(path, "driver")) if "driver" in raw else "default",
        subnet=opt("subnet", lambda v, p: rd.cidr(v, p, 4)),
        ip_range=opt("ip_range", lambda v, p: rd.cidr(v, p, 4)),
        gateway=opt("gateway", lambda v, p: rd.ip(v, p, 4)),
        aux_addresses={k: rd.ip(v, _join(_join(path, "aux_addresses"), k)) for k, v in aux.items()},
        subnet_v6=opt("subnet_v6", lambda v, p: rd.cidr(v, p, 6)),
        gateway_v6=opt("gateway_v6", lambda v, p: rd.ip(v, p, 6)),
    )


def _attachment(rd: _Reader, value: object, path: str) -> Attachment:
    if isinstance(value, str):
        return Attachment(network=rd.name(value, path))
    raw = rd.mapping(value, path, ("network", "ip", "ipv6", "mac"), ("network",))
    mac = None
    if raw.get("mac") is not None:
        try:
            mac = parse_mac(rd.text(raw["mac"], _join(path, "mac")))
        except InvalidParameterError as exc:
            rd.fail(_join(path, "mac"), str(exc))
    return Attachment(
        network=rd.name(raw["network"], _join(path, "network")),
        ip=rd.ip(raw["ip"], _join(path, "ip"), 4) if raw.get("ip") is not None else None,
        ipv6=rd.ip(raw["ipv6"], _join(path, "ipv6"), 6) if raw.get("ipv6") is not None else None,
        mac=mac,
    )


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
    raw = rd.mapping(value, path, ("name", "host", "networks", "listen", "publish"), ("name",))
    return ContainerSpec(
        name=rd.name(raw["name"], _join(path, "name")),
        host=rd.name(raw["host"], _join(path, "host")) if "host" in raw else default_host,
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
    )


def parse_expectation(data: object, *, file: str = "", path: str = "expect") -> Expectation:
    """One ``{from, to, proto, port, reachable}`` mapping (``netsim trace`` builds one)."""
    return _expectation(_Reader(file), data, path)


def _expectations(rd: _Reader, value: object, path: str) -> tuple[Expectation, ...]:
    return tuple(_expectation(rd, e, f"{path}[{i}]") for i, e in enumerate(rd.seq(value, path)))


def _expectation(rd: _Reader, value: object, path: str) -> Expectation:
    raw = rd.mapping(value, path, ("from", "to", "proto", "port", "reachable"), ("from", "to"))
    proto = cast(Proto, rd.proto(raw.get("proto", "icmp"), _join(path, "proto"), ("icmp", "tcp", "udp")))
    target = rd.text(raw["to"], _join(path, "to"))
    port = rd.port(raw["port"], _join(path, "port")) if raw.get("port") is not None else None
    if target.startswith(PUBLISHED_PREFIX):
        published = rd.port(target[len(PUBLISHED_PREFIX) :], _join(path, "to"))
        if port is not None and port != published:
            rd.fail(_join(path, "port"), f"port {port} contradicts the published port {published} in 'to'")
        port = published
        target = f"{PUBLISHED_PREFIX}{published}"
        if proto == "icmp":
            rd.fail(_join(path, "proto"), "a published port is probed with tcp or udp, not icmp")
    elif ":" in target or target.replace(".", "").isdigit():
        target = rd.ip(target, _join(path, "to"))
    elif target.startswith(OUTSIDE_AT):
        target = OUTSIDE_AT + rd.name(target[len(OUTSIDE_AT) :], _join(path, "to"))
    elif target != OUTSIDE:
        target = rd.name(target, _join(path, "to"))
    if proto == "icmp" and port is not None:
        rd.fail(_join(path, "port"), "icmp has no port")
    if proto != "icmp" and port is None:
        rd.fail(_join(path, "port"), f"{proto} needs a port")
    source = rd.text(raw["from"], _join(path, "from"))
    if source.startswith(OUTSIDE_AT):
        source = OUTSIDE_AT + rd.name(source[len(OUTSIDE_AT) :], _join(path, "from"))
    return Expectation(
        source=rd.name(source, _join(path, "from")) if not source.startswith(OUTSIDE_AT) else source,
        target=target,
        proto=proto,
        port=port,
        reachable=rd.flag(raw.get("reachable", True), _join(path, "reachable")),
    )


def _step(rd: _Reader, value: object, path: str) -> Step:
    raw = rd.mapping(value, path, (*_STEP_ACTIONS, "expect"))
    actions = [key for key in _STEP_ACTIONS if key in raw]
    if len(actions) != 1:
        rd.fail(path, f"a step needs exactly one action of: {', '.join(_STEP_ACTIONS)}")
    action = actions[0]
    sub = _join(path, action)
    expect = _expectations(rd, raw.get("expect"), _join(path, "expect"))
    if action in ("remove_container", "remove_network"):
        name = rd.name(raw[action], sub)
        if action == "remove_container":
            return Step(action=action, container=name, expect=expect)
        return Step(action=action, network=name, expect=expect)
    allowed = ("container", "network", "ip", "ipv6", "mac") if action == "connect" else ("container", "network")
    body = rd.mapping(raw[action], sub, allowed, ("container", "network"))
    container = rd.name(body.pop("container"), _join(sub, "container"))
    attachment = _attachment(rd, body, sub)
    return Step(action=action, container=container, network=attachment.network, attachment=attachment, expect=expect)


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


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
