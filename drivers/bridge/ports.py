"""Published ports of a host (libnetwork's portmapper): which host ports are
taken, so a second binding of the same port is a ConflictError before any
DNAT rule is written."""

from __future__ import annotations

from collections.abc import Mapping as MappingType
from dataclasses import dataclass, field
from typing import Any

from netsim.errors import ConflictError
from netsim.netlabel import PORT_MAP, PortBinding


@dataclass(frozen=True)
class Mapping:
    proto: str
    host_ip: str | None  # None: every host address
    host_port: int
    owner: str  # endpoint id


class BindingParser:
    """``options[PORT_MAP]`` as PortBindings, each distinct JSON entry parsed
    once: a join hands the driver the endpoint's stored bindings, the same
    few entries endpoint after endpoint, and parsing one costs more than the
    rest of the publication's bookkeeping. A PortBinding is immutable, so
    one may be handed out many times. O(entries) per call; at most
    :attr:`LIMIT` entries kept.

    >>> parse = BindingParser()
    >>> entry = {"Proto": "tcp", "ContainerPort": 80, "HostPort": 8080, "HostIP": ""}
    >>> parse({PORT_MAP: [entry]})[0] is parse({PORT_MAP: [dict(entry)]})[0]
    True
    """

    LIMIT = 4096

    def __init__(self) -> None:
        self._parsed: dict[tuple[tuple[Any, Any], ...], PortBinding] = {}

    def __call__(self, options: MappingType[str, Any]) -> list[PortBinding]:
        out = []
        for item in options.get(PORT_MAP) or []:
            if isinstance(item, PortBinding):
                out.append(item)
                continue
            if not isinstance(item, dict):
                out.append(PortBinding.from_json(item))
                continue
            key = tuple(item.items())
            try:
                binding = self._parsed.get(key)
            except TypeError:  # an unhashable value: parse it (from_json says whether it is valid)
                out.append(PortBinding.from_json(item))
                continue
            if binding is None:
                binding = PortBinding.from_json(item)  # a malformed entry raises here, every time
                if len(self._parsed) >= self.LIMIT:
                    self._parsed.clear()
                self._parsed[key] = binding
            out.append(binding)
        return out


@dataclass
class PortTable:
    """Host ports in use, keyed by (proto, port), and by owner for releases.
    O(k) per check for k bindings of one port; releasing an owner is O(its bindings).

    >>> table = PortTable()
    >>> table.reserve("tcp", None, 8080, "ep1")
    >>> table.reserve("tcp", "198.18.0.2", 8080, "ep2")
    Traceback (most recent call last):
    ...
    netsim.errors.ConflictError: host port tcp/8080 is already published (by endpoint ep1 on 0.0.0.0)
    >>> table.release_owner("ep1"); table.reserve("tcp", "198.18.0.2", 8080, "ep2")
    """

    by_port: dict[tuple[str, int], list[Mapping]] = field(default_factory=dict)
    by_owner: dict[str, list[Mapping]] = field(default_factory=dict)

    def check(self, proto: str, host_ip: str | None, host_port: int) -> None:
        for taken in self.by_port.get((proto, host_port), ()):
            if taken.host_ip is None or host_ip is None or taken.host_ip == host_ip:
                raise ConflictError(
                    f"host port {proto}/{host_port} is already published "
                    f"(by endpoint {taken.owner[:12]} on {taken.host_ip or '0.0.0.0'})"
                )

    def _free(self, proto: str, host_ip: str | None, port: int) -> bool:
        return all(
            not (taken.host_ip is None or host_ip is None or taken.host_ip == host_ip)
            for taken in self.by_port.get((proto, port), ())
        )

    def _add(self, mapping: Mapping) -> None:
        self.by_port.setdefault((mapping.proto, mapping.host_port), []).append(mapping)
        self.by_owner.setdefault(mapping.owner, []).append(mapping)

    def reserve(self, proto: str, host_ip: str | None, host_port: int, owner: str) -> None:
        self.check(proto, host_ip, host_port)
        self._add(Mapping(proto, host_ip, host_port, owner))

    def allocate(self, proto: str, host_ip: str | None, first: int, last: int, owner: str) -> int:
        """Reserve the first free port of ``first``..``last`` (libnetwork's
        portallocator); ConflictError naming the range when none is free.
        O(range x bindings of a port) at worst.

        >>> table = PortTable(); table.reserve("tcp", None, 9000, "ep1")
        >>> table.allocate("tcp", None, 9000, 9005, "ep2")
        9001
        """
        for port in range(first, last + 1):
            if self._free(proto, host_ip, port):
                self._add(Mapping(proto, host_ip, port, owner))
                return port
        where = f"{host_ip or '0.0.0.0'}:{first}" + (f"-{last}" if last != first else "")
        raise ConflictError(f"bind for {proto} {where} failed: all ports are allocated")

    def release_owner(self, owner: str) -> None:
        for mapping in self.by_owner.pop(owner, ()):
            key = (mapping.proto, mapping.host_port)
            kept = [m for m in self.by_port[key] if m is not mapping]
            if kept:
                self.by_port[key] = kept
            else:
                del self.by_port[key]

    def _check(self) -> None:
        """Invariant: no empty slot; each mapping filed under its own (proto, port)
        and its owner, once; no two overlap."""
        for (proto, port), mappings in self.by_port.items():
            assert mappings, (proto, port)
            for i, mapping in enumerate(mappings):
                assert (mapping.proto, mapping.host_port) == (proto, port), mapping
                for other in mappings[i + 1 :]:
                    assert None not in (mapping.host_ip, other.host_ip) and mapping.host_ip != other.host_ip
        by_port = sorted(id(m) for mappings in self.by_port.values() for m in mappings)
        by_owner = sorted(id(m) for mappings in self.by_owner.values() for m in mappings)
        assert by_port == by_owner and all(self.by_owner.values())
        assert all(m.owner == owner for owner, mappings in self.by_owner.items() for m in mappings)

    def check_all(self, bindings: list[PortBinding], host_ip_default: str | None) -> None:
        """Refuse duplicates inside ``bindings`` too, before anything is reserved.
        O(bindings x their ports' bindings): a scratch table holds only this call's."""
        if len(bindings) == 1 and bindings[0].fixed:  # the common case: nothing to clash with but the table
            binding = bindings[0]
            self.check(binding.proto, binding.host_ip or host_ip_default, binding.host_port)
            return
        scratch = PortTable()
        for binding in bindings:
            host_ip = binding.host_ip or host_ip_default
            if binding.fixed:
                self.check(binding.proto, host_ip, binding.host_port)
                scratch.reserve(binding.proto, host_ip, binding.host_port, "this endpoint")
                continue
            first, last = binding.host_range()
            for port in range(first, last + 1):
                if self._free(binding.proto, host_ip, port) and scratch._free(binding.proto, host_ip, port):
                    scratch._add(Mapping(binding.proto, host_ip, port, "this endpoint"))
                    break
            else:
                where = f"{host_ip or '0.0.0.0'}:{first}" + (f"-{last}" if last != first else "")
                raise ConflictError(f"bind for {binding.proto} {where} failed: all ports are allocated")
