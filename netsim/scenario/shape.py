"""The shape of a scenario file, declared once, read two ways.

A small vocabulary of nodes (:class:`Leaf`, :class:`Obj`, :class:`Seq`,
:class:`Either`, :class:`Strings`) describes every key of the file
(:mod:`netsim.scenario.definition` is that description). The same nodes

* drive the loader: :meth:`ShapeReader.obj` refuses unknown and missing keys
  from an :class:`Obj`, and :class:`Fields` reads each value with its leaf's
  check, so errors keep naming file and key path
  (``x.yaml:networks[1].ipam.subnet: invalid subnet '10.1.0.0/33'``);
* produce the JSON Schema editors use (:func:`to_json_schema`, ``netsim schema``).

Meaning (names resolve, subnets do not overlap) stays in
:mod:`netsim.scenario.checks`: a JSON Schema cannot say it.

>>> NODE = Obj({"name": Leaf("name"), "up": Leaf("flag")}, required=("name",))
>>> rd = ShapeReader("f.yaml")
>>> fields = rd.obj({"name": "web"}, "containers[0]", NODE)
>>> fields.get("name"), fields.get("up", False)
('web', False)
>>> rd.obj({"nme": "web"}, "containers[0]", NODE)
Traceback (most recent call last):
...
netsim.errors.ScenarioError: f.yaml:containers[0].nme: unknown key 'nme'; expected one of: name, up
>>> to_json_schema(NODE)["required"]
['name']
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

from netsim.errors import InvalidParameterError, ScenarioError
from netsim.validate import parse_ip, parse_mac, parse_network, parse_port

#: a container, network or host name (Docker's own rule, 63 characters at most)
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"
_NAME_RE = re.compile(NAME_PATTERN)


@dataclass(frozen=True)
class Leaf:
    """One scalar value, checked by the reader method named by ``kind``
    (see :data:`LEAF_SCHEMAS` for the kinds). ``nullable``: an explicit
    ``null`` means "not given"; ``pattern`` and ``enum`` only narrow the
    JSON Schema (the loader's own parse says more precisely what is wrong)."""

    kind: str
    description: str = ""
    nullable: bool = False
    pattern: str = ""
    enum: tuple[str, ...] = ()


@dataclass(frozen=True)
class Strings:
    """A mapping of strings (driver options, labels): YAML booleans and
    numbers become Docker's strings."""

    description: str = ""


@dataclass(frozen=True)
class Seq:
    """A list (``null`` or absent reads as empty)."""

    item: Node
    description: str = ""


@dataclass(frozen=True)
class Either:
    """One of several shapes (a plain name or a mapping; a probe or a state assertion)."""

    options: tuple[Node, ...]
    description: str = ""
    #: an explicit ``null`` means "not given"
    nullable: bool = False


@dataclass(frozen=True)
class Obj:
    """A mapping with known keys; any other key is refused.

    ``one_of``: groups of keys of which exactly one must be present (a
    step's action, a plugin's command or socket), each with the message
    the loader gives when it is not so.
    """

    fields: Mapping[str, Node]
    required: tuple[str, ...] = ()
    description: str = ""
    title: str = ""
    one_of: tuple[tuple[tuple[str, ...], str], ...] = ()
    #: an explicit ``null`` means "not given" (the reader's caller decides the default)
    nullable: bool = False

    def keys(self) -> tuple[str, ...]:
        return tuple(self.fields)


Node = Leaf | Strings | Seq | Either | Obj

#: what each leaf kind means in JSON Schema (YAML numbers are accepted where
#: the loader turns them into text: ``name: 2024`` is the name "2024")
_TEXT: dict[str, Any] = {"type": ["string", "number"]}
LEAF_SCHEMAS: dict[str, dict[str, Any]] = {
    "text": _TEXT,
    "name": {"type": ["string", "number"], "pattern": NAME_PATTERN},
    "flag": {"type": "boolean"},
    "port": {
        "anyOf": [{"type": "integer", "minimum": 1, "maximum": 65535}, {"type": "string", "pattern": "^ *[0-9]+ *$"}]
    },
    "cidr4": {"type": "string", "pattern": r"^ *[0-9.]+/[0-9]+ *$"},
    "cidr6": {"type": "string", "pattern": r"^ *[0-9A-Fa-f:.]+/[0-9]+ *$"},
    "ip": {"type": "string", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]},
    "ip4": {"type": "string", "format": "ipv4"},
    "ip6": {"type": "string", "format": "ipv6"},
    "mac": {"type": "string", "pattern": r"^ *[0-9A-Fa-f]{2}([:-][0-9A-Fa-f]{2}){5} *$"},
    "proto": {"type": "string"},
    "choice": {"type": "string"},
    "mtu": {"type": "integer", "minimum": 68, "maximum": 65535},
}


class ShapeReader:
    """Shape checks that know which file they read, for error messages."""

    def __init__(self, file: str) -> None:
        self.file = file
        #: the plain leaf kinds' checks, looked up once per value (the hot path of a big file)
        self._plain = {"text": self.text, "name": self.name, "flag": self.flag, "port": self.port, "ip": self.ip}

    def fail(self, path: str, message: str) -> NoReturn:
        raise ScenarioError(message, file=self.file, path=path)

    # --- the declarative road ---------------------------------------------------
    def obj(self, value: object, path: str, node: Obj) -> Fields:
        """``value`` as a mapping of ``node``'s keys (unknown, missing and
        mutually exclusive keys refused), read through :class:`Fields`."""
        raw = self.mapping(value, path, node.keys(), node.required)
        for group, message in node.one_of:
            if sum(key in raw for key in group) != 1:
                self.fail(path, message)
        return Fields(self, node, raw, path)

    def leaf(self, node: Leaf, value: object, path: str) -> Any:
        """One scalar by its kind; a ScenarioError at ``path`` if it is not one."""
        kind = node.kind
        plain = self._plain.get(kind)
        if plain is not None:
            return plain(value, path)
        if kind == "proto":
            return self.proto(value, path, node.enum)
        if kind == "choice":
            text = self.text(value, path).lower()
            if text not in node.enum:
                self.fail(path, f"unknown value {text!r}; expected one of: {', '.join(node.enum)}")
            return text
        if kind == "mtu":
            if isinstance(value, bool) or not isinstance(value, int) or not 68 <= value <= 65535:
                self.fail(path, f"expected an MTU (an integer 68-65535), got {value!r}")
            return value
        if kind in ("cidr4", "cidr6"):
            return self.cidr(value, path, 4 if kind == "cidr4" else 6)
        if kind in ("ip4", "ip6"):
            return self.ip(value, path, 4 if kind == "ip4" else 6)
        if kind == "mac":
            try:
                return parse_mac(self.text(value, path))
            except InvalidParameterError as exc:
                self.fail(path, str(exc))
        raise ValueError(f"unknown leaf kind {kind!r}")

    # --- the checks themselves -------------------------------------------------
    def mapping(
        self, value: object, path: str, allowed: tuple[str, ...], required: tuple[str, ...] = ()
    ) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            self.fail(path, f"expected a mapping, got {type_name(value)}")
        for key in value:
            if key not in allowed:
                self.fail(join(path, str(key)), f"unknown key {key!r}; expected one of: {', '.join(allowed)}")
        for key in required:
            if key not in value:
                self.fail(join(path, key), "required key is missing")
        return dict(value)

    def seq(self, value: object, path: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(path, f"expected a list, got {type_name(value)}")
        return value

    def text(self, value: object, path: str) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            hint = ' (write "null" in quotes for the null driver)' if value is None else ""
            self.fail(path, f"expected a string, got {type_name(value)}{hint}")
        return str(value)

    def name(self, value: object, path: str) -> str:
        text = self.text(value, path)
        if not _NAME_RE.match(text):
            self.fail(path, f"invalid name {text!r}: letters, digits, '_', '.', '-' (max 63)")
        return text

    def flag(self, value: object, path: str) -> bool:
        if not isinstance(value, bool):
            self.fail(path, f"expected true or false, got {type_name(value)}")
        return value

    def strings(self, value: object, path: str) -> dict[str, str]:
        """Driver options and labels: keys and values become strings (YAML
        reads ``false`` as a bool; Docker's options are strings)."""
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.fail(path, f"expected a mapping, got {type_name(value)}")
        out: dict[str, str] = {}
        for key, val in value.items():
            sub = join(path, str(key))
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


class Fields:
    """A checked mapping's values, each read with its declared leaf."""

    __slots__ = ("at", "node", "raw", "reader")

    def __init__(self, reader: ShapeReader, node: Obj, raw: dict[str, Any], at: str = "") -> None:
        self.reader = reader
        self.node = node
        self.raw = raw
        self.at = at

    def __contains__(self, key: str) -> bool:
        return key in self.raw

    def path(self, key: str) -> str:
        return join(self.at, key)

    def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key`` checked by its leaf; ``default`` when absent
        (or null, for a nullable leaf). Only :class:`Leaf` and
        :class:`Strings` keys: nested shapes are read by their own code."""
        node = self.node.fields[key]
        if key not in self.raw:
            return default
        value = self.raw[key]
        if isinstance(node, Strings):
            return self.reader.strings(value, self.path(key))
        if not isinstance(node, Leaf):
            raise TypeError(f"{key!r} is a nested shape: read it with its own function")
        if value is None and node.nullable:
            return default
        return self.reader.leaf(node, value, self.path(key))

    def __getitem__(self, key: str) -> Any:
        return self.get(key)


def type_name(value: object) -> str:
    return "nothing" if value is None else type(value).__name__


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def to_json_schema(node: Node) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12 vocabulary) of one node."""
    if isinstance(node, Leaf):
        out = dict(LEAF_SCHEMAS[node.kind])
        if node.enum:
            # the loader lowercases protocols first; editors see both spellings
            out["enum"] = [*node.enum, *(e.upper() for e in node.enum)]
        if node.pattern:
            out["pattern"] = node.pattern
        if node.nullable:
            out = {"anyOf": [out, {"type": "null"}]}
        return _described(out, node.description)
    if isinstance(node, Strings):
        values = {"type": ["string", "number", "boolean"]}
        return _described({"type": ["object", "null"], "additionalProperties": values}, node.description)
    if isinstance(node, Seq):
        return _described({"type": ["array", "null"], "items": to_json_schema(node.item)}, node.description)
    if isinstance(node, Either):
        options = [to_json_schema(option) for option in node.options] + ([{"type": "null"}] if node.nullable else [])
        return _described({"anyOf": options}, node.description)
    out = {
        "type": ["object", "null"] if node.nullable else "object",
        "properties": {key: to_json_schema(sub) for key, sub in node.fields.items()},
        "additionalProperties": False,
    }
    if node.title:
        out["title"] = node.title
    if node.required:
        out["required"] = list(node.required)
    if node.one_of:
        exactly_one = [{"oneOf": [{"required": [key]} for key in group]} for group, _ in node.one_of]
        out.update(exactly_one[0] if len(exactly_one) == 1 else {"allOf": exactly_one})
    return _described(out, node.description)


def _described(out: dict[str, Any], description: str) -> dict[str, Any]:
    if description:
        out["description"] = description
    return out
