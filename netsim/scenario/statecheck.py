"""State assertions: what a container's namespace or a network's bridge must hold.

```yaml
expect:
  - {container: web, has: {interface: eth0, address: 10.1.0.10/24, mtu: 1500,
                           mac: "02:42:0a:01:00:0a", default_via: 10.1.0.1,
                           routes: [{to: 10.9.0.0/16, via: 10.1.0.254}]}}
  - {container: db, has: {interfaces: [lo, eth0], default_via: none}}
  - {network: front, has: {gateway: 10.1.0.1, subnet: 10.1.0.0/24}}
```

They sit in the same ``expect:`` lists as probes and hold after the same
step. This module is the data and its shape (read with the declaration in
:mod:`netsim.scenario.definition`); :mod:`netsim.scenario.state` reads the
kernel and compares.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from netsim.scenario import definition as D
from netsim.scenario.shape import ShapeReader, join

#: ``default_via: none``: no default route of that family
NO_ROUTE = "none"


@dataclass(frozen=True)
class RouteFact:
    """A route the main table must hold: ``to`` is "default" or a CIDR."""

    to: str
    via: str | None = None
    dev: str | None = None

    def __str__(self) -> str:
        return self.to + (f" via {self.via}" if self.via else "") + (f" dev {self.dev}" if self.dev else "")


@dataclass(frozen=True)
class StateCheck:
    """One ``{container|network: NAME, has: {...}}`` entry; None means "not asserted".

    >>> StateCheck("container", "web", interface="eth0", addresses=("10.1.0.2/24",), mtu=1500).describe()
    'web eth0: address 10.1.0.2/24, mtu 1500'
    """

    subject: Literal["container", "network"]
    name: str
    #: the key path of the entry (``expect[2]``, ``steps[1].expect[0]``)
    path: str = ""
    interface: str | None = None
    interfaces: tuple[str, ...] | None = None
    addresses: tuple[str, ...] = ()
    no_addresses: tuple[str, ...] = ()
    mtu: int | None = None
    mac: str | None = None
    up: bool | None = None
    default_via: str | None = None
    default_via_v6: str | None = None
    routes: tuple[RouteFact, ...] = ()
    gateway: str | None = None
    subnet: str | None = None
    gateway_v6: str | None = None
    subnet_v6: str | None = None
    bridge: str | None = None

    def facts(self) -> list[tuple[str, str]]:
        """``(key, expected value)`` pairs in a fixed order, as the report shows them."""
        out: list[tuple[str, str]] = []
        if self.interfaces is not None:
            out.append(("interfaces", ",".join(self.interfaces) or "(none)"))
        out += [("address", a) for a in self.addresses]
        out += [("no_address", a) for a in self.no_addresses]
        for key in ("mtu", "mac", "up", "default_via", "default_via_v6", "gateway", "subnet", "gateway_v6"):
            value = getattr(self, key)
            if value is not None:
                out.append((key, str(value).lower() if isinstance(value, bool) else str(value)))
        if self.subnet_v6 is not None:
            out.append(("subnet_v6", self.subnet_v6))
        if self.bridge is not None:
            out.append(("bridge", self.bridge))
        out += [("route", str(r)) for r in self.routes]
        return out

    def describe(self) -> str:
        where = f"{self.name} {self.interface}" if self.interface else self.name
        return f"{where}: " + ", ".join(f"{key} {value}" for key, value in self.facts())


def is_state_entry(value: object) -> bool:
    """An ``expect:`` item that is a state assertion, not a probe."""
    return isinstance(value, Mapping) and "from" not in value and bool({"container", "network", "has"} & set(value))


def parse_state_checks(rd: ShapeReader, value: object, path: str) -> tuple[StateCheck, ...]:
    """The state assertions of one ``expect:`` list (probes are read elsewhere)."""
    items = rd.seq(value, path)
    return tuple(_state(rd, item, f"{path}[{i}]") for i, item in enumerate(items) if is_state_entry(item))


def _state(rd: ShapeReader, value: Mapping[str, Any], path: str) -> StateCheck:
    if "network" in value and "container" not in value:
        entry = rd.obj(value, path, D.NETWORK_STATE)
        facts = rd.obj(entry.raw["has"], entry.path("has"), D.NETWORK_FACTS)
        if not facts.raw:
            rd.fail(entry.path("has"), "nothing to check: give gateway, subnet, gateway_v6, subnet_v6, bridge or mtu")
        return StateCheck(
            "network",
            entry["network"],
            path,
            mtu=facts["mtu"],
            gateway=facts["gateway"],
            subnet=facts["subnet"],
            gateway_v6=facts["gateway_v6"],
            subnet_v6=facts["subnet_v6"],
            bridge=facts["bridge"],
        )
    if "container" not in value:
        rd.fail(path, "a state assertion names a container or a network (then has: {...})")
    entry = rd.obj(value, path, D.CONTAINER_STATE)
    at = entry.path("has")
    facts = rd.obj(entry.raw["has"], at, D.CONTAINER_FACTS)
    if not facts.raw:
        rd.fail(at, "nothing to check: give interface, interfaces, address, mtu, mac, up, default_via or routes")
    raw = facts.raw
    interface = facts["interface"]
    for key in ("mtu", "mac", "up"):
        if key in raw and interface is None:
            rd.fail(join(at, key), f"{key} is a property of one interface: name it with interface:")
    interfaces = None
    if "interfaces" in raw:
        names = rd.seq(raw["interfaces"], join(at, "interfaces"))
        interfaces = tuple(sorted(rd.name(n, f"{at}.interfaces[{i}]") for i, n in enumerate(names)))
    return StateCheck(
        "container",
        entry["container"],
        path,
        interface=interface,
        interfaces=interfaces,
        addresses=_addresses(rd, raw.get("address"), join(at, "address")),
        no_addresses=_addresses(rd, raw.get("no_address"), join(at, "no_address")),
        mtu=facts["mtu"],
        mac=facts["mac"],
        up=facts["up"],
        default_via=_gateway(rd, raw.get("default_via"), join(at, "default_via"), 4),
        default_via_v6=_gateway(rd, raw.get("default_via_v6"), join(at, "default_via_v6"), 6),
        routes=tuple(
            _route(rd, r, f"{at}.routes[{i}]") for i, r in enumerate(rd.seq(raw.get("routes"), join(at, "routes")))
        ),
    )


def _addresses(rd: ShapeReader, value: object, path: str) -> tuple[str, ...]:
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    out = []
    for i, item in enumerate(items):
        where = f"{path}[{i}]" if isinstance(value, list) else path
        text = rd.text(item, where).strip()
        try:
            out.append(str(ipaddress.ip_interface(text)) if "/" in text else str(ipaddress.ip_address(text)))
        except ValueError as exc:
            rd.fail(where, f"invalid address {text!r}: {exc}")
    return tuple(out)


def _gateway(rd: ShapeReader, value: object, path: str, version: int) -> str | None:
    if value is None:
        return None
    text = rd.text(value, path).strip()
    return NO_ROUTE if text.lower() == NO_ROUTE else rd.ip(text, path, version)


def _route(rd: ShapeReader, value: object, path: str) -> RouteFact:
    route = rd.obj(value, path, D.ROUTE)
    to = str(route["to"]).strip()
    if to != "default":
        try:
            to = str(ipaddress.ip_network(to, strict=True))
        except ValueError as exc:
            rd.fail(route.path("to"), f"invalid route destination {to!r}: expected default or a CIDR ({exc})")
    via = route["via"]
    if via is not None and to != "default" and ipaddress.ip_address(via).version != ipaddress.ip_network(to).version:
        rd.fail(route.path("via"), f"gateway {via} is not of the family of {to}")
    return RouteFact(to, via, route["dev"])
