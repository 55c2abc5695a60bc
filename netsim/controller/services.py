"""Service records and the embedded DNS: libnetwork's ``svcRecords`` per
network, and a resolver at 127.0.0.11 in every container on a user-defined
network (libnetwork's ``resolver.go``, ``sandbox_dns_unix.go``).

* A join adds the endpoint's records to its network: the container's name
  (with a PTR record for each of its addresses: ``<container>.<network>``),
  the endpoint's name when it differs, and its aliases (Docker's
  ``--network-alias``; no PTR, as ``addContainerNameResolution`` does). A
  leave removes them. Both are O(1 + aliases).
* Only user-defined networks resolve names: Docker gives the default
  ``bridge`` network (and ``host``, ``none``) no service records, so those
  containers keep legacy links only; netsim has no links.
* A container's resolver answers from the networks *it* is on, in join order
  (``Sandbox.ResolveName``): a name on another network does not resolve.
  ``name.network`` resolves ``name`` on that network only.
* Names are case-insensitive (lowercased, trailing dot dropped). Several
  endpoints may carry one name or alias: all their addresses are answered
  (sorted; Docker shuffles them).
* Records of endpoints on other hosts arrive as table events on libnetwork's
  ``endpoint_table`` (:data:`SERVICE_TABLE`) for global-scope networks.

What the controller does with them at a join, a leave, a sandbox's deletion
and a recovery is in :mod:`netsim.controller.discovery`.

Thread-safety: the resolver of the real kernel runs in a server thread while
the controller's lock may be held by a caller waiting for that very answer,
so the records have their own small lock and never take the controller's.

>>> records = ServiceRecords()
>>> records.add("n1", "back", ServiceRecord("e1", "db", ("db1",), "10.0.0.3", None))
>>> records.attach("s1", "n1")
>>> records.lookup("s1", "DB1.", "A"), records.lookup("s1", "db", "AAAA"), records.lookup("s1", "web", "A")
(DnsAnswer(records=('10.0.0.3',)), DnsAnswer(records=()), None)
>>> records.lookup("s1", "3.0.0.10.in-addr.arpa", "PTR")
DnsAnswer(records=('db.back',))
>>> records._check()
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from netsim.errors import InvalidParameterError
from netsim.kernel.dns import DnsAnswer, DnsLookup, address_of_reverse_name

#: libnetwork's networkdb table for service discovery (``libnetworkEPTable``)
SERVICE_TABLE = "endpoint_table"
#: network names Docker does not count as user-defined (``NetworkMode.IsUserDefined``)
NOT_USER_DEFINED = frozenset({"bridge", "host", "none", "default"})
#: driver types whose containers use the host's or no resolver
NO_RESOLVER_TYPES = frozenset({"host", "null"})
_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")


def check_alias(alias: object, what: str = "alias") -> str:
    """A DNS name of labels (letters, digits, ``-``, ``_``), lowercased.

    >>> check_alias("DB-1.back")
    'db-1.back'
    >>> check_alias("db..x")
    Traceback (most recent call last):
    ...
    netsim.errors.InvalidParameterError: invalid alias 'db..x': expected a DNS name (labels of letters, digits, - and _)
    """
    text = alias.lower().rstrip(".") if isinstance(alias, str) else ""
    if not text or len(text) > 253 or not all(_LABEL.match(label) for label in text.split(".")):
        raise InvalidParameterError(
            f"invalid {what} {alias!r}: expected a DNS name (labels of letters, digits, - and _)"
        )
    return text


def check_aliases(aliases: Iterable[object] | None) -> list[str]:
    """Validated, lowercased, duplicates dropped, order kept."""
    if aliases is None:
        return []
    if isinstance(aliases, str):
        raise InvalidParameterError(f"aliases must be a list of names, got the string {aliases!r}")
    return list(dict.fromkeys(check_alias(alias) for alias in aliases))


def resolves_names(network_name: str, driver_type: str) -> bool:
    """Docker's rule: service records and a resolver only on user-defined networks."""
    return network_name not in NOT_USER_DEFINED and driver_type not in NO_RESOLVER_TYPES


@dataclass(slots=True)
class ServiceRecord:
    """One endpoint's names and addresses on one network (addresses without
    prefix). Never changed once made (not frozen only because a frozen
    dataclass costs several microseconds more to build, on every join)."""

    endpoint: str
    container: str
    aliases: tuple[str, ...]
    ipv4: str | None
    ipv6: str | None
    #: the endpoint's name when it is not the container's (netsim's API lets them differ)
    endpoint_name: str | None = None
    _names: tuple[str, ...] = field(init=False, repr=False, compare=False, default=())

    def __post_init__(self) -> None:
        # computed once: every add, remove and check reads it
        container = self.container.lower()
        extra = (self.endpoint_name.lower(),) if self.endpoint_name and self.endpoint_name != self.container else ()
        self._names = (
            tuple(dict.fromkeys((container, *extra, *self.aliases))) if extra or self.aliases else (container,)
        )

    def names(self) -> tuple[str, ...]:
        return self._names

    def to_wire(self) -> bytes:
        fields = {
            "endpoint": self.endpoint,
            "container": self.container,
            "aliases": list(self.aliases),
            "ipv4": self.ipv4,
            "ipv6": self.ipv6,
            "endpoint_name": self.endpoint_name,
        }
        return json.dumps(fields, sort_keys=True).encode()

    @classmethod
    def from_wire(cls, value: bytes) -> ServiceRecord:
        data = json.loads(value)
        return cls(
            endpoint=str(data["endpoint"]),
            container=str(data["container"]),
            aliases=tuple(str(a) for a in data["aliases"]),
            ipv4=data["ipv4"],
            ipv6=data["ipv6"],
            endpoint_name=data.get("endpoint_name"),
        )


class _NetworkRecords:
    """One network's records: by name, by address (PTR) and by endpoint; O(1) each."""

    __slots__ = ("by_address", "by_endpoint", "by_name", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self.by_name: dict[str, dict[str, ServiceRecord]] = {}
        self.by_address: dict[str, dict[str, str]] = {}
        self.by_endpoint: dict[str, ServiceRecord] = {}


class ServiceRecords:
    """Every network's service records, and which networks each sandbox is on."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._networks: dict[str, _NetworkRecords] = {}
        #: sandbox id -> network ids it is on with name resolution, in join order
        self._sandboxes: dict[str, list[str]] = {}
        #: sandbox id -> namespace, for each resolver this controller started
        self.resolvers: dict[str, str] = {}

    # --- records ------------------------------------------------------------------------
    def add(self, nid: str, network_name: str, record: ServiceRecord) -> None:
        """Add (or replace) an endpoint's records. O(1 + names)."""
        with self._lock:
            self._add_locked(nid, network_name, record)

    def _add_locked(self, nid: str, network_name: str, record: ServiceRecord) -> None:
        eid = record.endpoint
        net = self._networks.get(nid)
        if net is None:
            net = self._networks[nid] = _NetworkRecords(network_name)
        elif eid in net.by_endpoint:
            self._remove_locked(net, eid)
        net.by_endpoint[eid] = record
        for name in record.names():
            holders = net.by_name.get(name)
            if holders is None:
                net.by_name[name] = {eid: record}
            else:
                holders[eid] = record
        owner = record.container.lower()
        for address in (record.ipv4, record.ipv6):
            if address:
                owners = net.by_address.get(address)
                if owners is None:
                    net.by_address[address] = {eid: owner}
                else:
                    owners[eid] = owner

    def remove(self, nid: str, eid: str) -> ServiceRecord | None:
        """Remove an endpoint's records; the record removed, or None. O(1 + names)."""
        with self._lock:
            return self._remove_from_network(nid, eid)

    def _remove_from_network(self, nid: str, eid: str) -> ServiceRecord | None:
        net = self._networks.get(nid)
        if net is None:
            return None
        record = self._remove_locked(net, eid)
        if not net.by_endpoint:
            del self._networks[nid]
        return record

    def add_joined(self, sid: str, nid: str, network_name: str, record: ServiceRecord) -> None:
        """:meth:`add` and :meth:`attach`: a join's records and its sandbox's network."""
        with self._lock:
            self._add_locked(nid, network_name, record)
            joined = self._sandboxes.setdefault(sid, [])
            if nid not in joined:
                joined.append(nid)

    def remove_joined(self, sid: str, nid: str, eid: str) -> ServiceRecord | None:
        """:meth:`detach` and :meth:`remove` under one lock: a leave's. The record removed, or None."""
        with self._lock:
            joined = self._sandboxes.get(sid)
            if joined is not None and nid in joined:
                joined.remove(nid)
            return self._remove_from_network(nid, eid)

    @staticmethod
    def _remove_locked(net: _NetworkRecords, eid: str) -> ServiceRecord | None:
        record = net.by_endpoint.pop(eid, None)
        if record is None:
            return None
        for name in record.names():
            holders = net.by_name.get(name, {})
            holders.pop(eid, None)
            if not holders:
                net.by_name.pop(name, None)
        for address in (record.ipv4, record.ipv6):
            owners = net.by_address.get(address or "", {})
            owners.pop(eid, None)
            if not owners:
                net.by_address.pop(address or "", None)
        return record

    def records(self, nid: str) -> list[ServiceRecord]:
        """A network's records, sorted by container name."""
        with self._lock:
            net = self._networks.get(nid)
            found = list(net.by_endpoint.values()) if net is not None else []
        return sorted(found, key=lambda r: (r.container, r.endpoint))

    # --- sandboxes ----------------------------------------------------------------------
    def attach(self, sid: str, nid: str) -> None:
        with self._lock:
            joined = self._sandboxes.setdefault(sid, [])
            if nid not in joined:
                joined.append(nid)

    def detach(self, sid: str, nid: str) -> None:
        with self._lock:
            joined = self._sandboxes.get(sid)
            if joined is not None and nid in joined:
                joined.remove(nid)

    def forget_sandbox(self, sid: str) -> None:
        with self._lock:
            self._sandboxes.pop(sid, None)

    def lookup_for(self, sid: str) -> DnsLookup:
        """The resolver's lookup for sandbox ``sid`` (what its 127.0.0.11 answers)."""
        return lambda name, qtype: self.lookup(sid, name, qtype)

    # --- resolution ---------------------------------------------------------------------
    def lookup(self, sid: str, name: str, qtype: str) -> DnsAnswer | None:
        """libnetwork's Sandbox.ResolveName / ResolveIP over the sandbox's networks.

        None: not known (the resolver answers SERVFAIL). For ``a.b.c`` it tries
        ``a.b.c`` on every network, then ``a.b`` on network ``c``, then ``a`` on
        network ``b.c``. O(labels x networks)."""
        name = name.lower().rstrip(".")
        with self._lock:
            networks = [self._networks[nid] for nid in self._sandboxes.get(sid, ()) if nid in self._networks]
            if qtype == "PTR":
                return self._reverse(networks, name)
            for short, network in _candidates(name):
                for net in networks:
                    if network is not None and net.name.lower() != network:
                        continue
                    holders = net.by_name.get(short)
                    if holders:
                        return _answer(holders.values(), qtype)
        return None

    @staticmethod
    def _reverse(networks: Sequence[_NetworkRecords], name: str) -> DnsAnswer | None:
        address = address_of_reverse_name(name)
        if address is None:
            return None
        for net in networks:
            owners = net.by_address.get(address)
            if owners:
                return DnsAnswer((f"{next(iter(owners.values()))}.{net.name}",))
        return None

    def _check(self) -> None:
        """Invariants: every index entry points at a live record and back."""
        with self._lock:
            for net in self._networks.values():
                assert net.by_endpoint, "an empty network's records are dropped"
                for name, holders in net.by_name.items():
                    assert holders, name
                    for eid, record in holders.items():
                        assert net.by_endpoint[eid] is record and name in record.names()
                for address, owners in net.by_address.items():
                    for eid in owners:
                        assert address in (net.by_endpoint[eid].ipv4, net.by_endpoint[eid].ipv6)
                for record in net.by_endpoint.values():
                    assert all(record.endpoint in net.by_name[n] for n in record.names())


def _candidates(name: str) -> list[tuple[str, str | None]]:
    """``a.b.c`` -> ``[("a.b.c", None), ("a.b", "c"), ("a", "b.c")]`` (libnetwork's order)."""
    found: list[tuple[str, str | None]] = [(name, None)]
    cut = len(name)
    while (cut := name.rfind(".", 0, cut)) > 0:
        found.append((name[:cut], name[cut + 1 :]))
    return found


def _answer(records: Iterable[ServiceRecord], qtype: str) -> DnsAnswer:
    if qtype == "MX":
        return DnsAnswer()  # implicit MX: the name exists
    field = "ipv4" if qtype == "A" else "ipv6"
    return DnsAnswer(tuple(sorted({getattr(r, field) for r in records if getattr(r, field)})))


# --- the controller's hooks (join, leave, sandbox deletion) ---------------------------------
