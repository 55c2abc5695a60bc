"""DNS on both kernels: the embedded resolver's wire format, built and read
with scapy, and the types of the Kernel contract's DNS calls.

A DNS server on either kernel is a UDP socket on ``addr:53`` in a namespace
whose every query goes through :func:`answer_query` with a :data:`DnsLookup`
(the controller's service records); :meth:`~netsim.kernel.base.Kernel.resolve` sends one query
built by :func:`build_query` and reads the answer with :func:`read_response`.
The kernels differ only in how the datagrams travel, so their answers agree
by construction and the agreement tests check the transport.

What the answers follow (libnetwork's ``resolver.go``):

* a reply copies the query's id, opcode, RD bit and question, sets QR and RA
  (``createRespMsg``), is not authoritative, and carries TTL 600 (``respTTL``);
* A and AAAA answer the name's addresses of that family; a name known only
  with the other family answers NOERROR with no records (``ResolveName``
  returns found-but-empty);
* PTR answers one name for an address of a known container;
* MX for a known name answers NOERROR with no records ("implicit MX");
* anything else, and every name the records do not hold, would be forwarded
  to the external servers; netsim forwards nothing outside, which is Docker
  with no external servers: ``serveDNS`` answers SERVFAIL then;
* a malformed datagram, or one that is itself a response, gets no answer.

>>> wire = build_query("db", "A", ident=7)
>>> reply = answer_query(wire, lambda name, qtype: DnsAnswer(records=("10.0.0.3",)))
>>> read_response(reply, ident=7)
('NOERROR', ('10.0.0.3',))
>>> read_response(answer_query(wire, lambda name, qtype: None), ident=7)
('SERVFAIL', ())
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from dataclasses import dataclass
from struct import error as struct_error  # scapy raises it on truncated input
from typing import TYPE_CHECKING

from netsim.errors import InvalidParameterError

if TYPE_CHECKING:
    from scapy.layers.dns import DNS

# scapy is imported where a message is built or read, not here: the Kernel
# contract imports this module's types, and importing scapy costs every netsim
# and plugin process ~0.2 s at start whether it ever handles DNS or not.

log = logging.getLogger(__name__)

#: where Docker's embedded resolver listens in every container on a user-defined network
RESOLVER_ADDRESS = "127.0.0.11"
DNS_PORT = 53
#: libnetwork's respTTL
RESPONSE_TTL = 600
QUERY_TYPES = {"A": 1, "AAAA": 28, "PTR": 12, "MX": 15, "SRV": 33, "TXT": 16}
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}
SERVFAIL = 2
#: how long :meth:`~netsim.kernel.base.Kernel.resolve` waits for the answer by default (seconds)
RESOLVE_TIMEOUT = 1.0
#: a UDP DNS message without EDNS0 is at most 512 bytes (RFC 1035 4.2.1); longer ones are truncated
MAX_UDP_MESSAGE = 512
DNS_HEADER = 12
MAX_NAME = 253
MAX_LABEL = 63
_QTYPE_NAMES = {number: name for name, number in QUERY_TYPES.items()}


@dataclass(frozen=True)
class DnsAnswer:
    """What a lookup found: records of the asked type (addresses for A/AAAA,
    domain names for PTR), possibly none (the name exists, not with that type)."""

    records: tuple[str, ...] = ()


#: ``(name, qtype) -> answer``: the name lowercased, without its trailing dot;
#: qtype one of ``QUERY_TYPES``' names; None when the name is not known
#: (answered SERVFAIL, as Docker without external servers does)
DnsLookup = Callable[[str, str], DnsAnswer | None]


@dataclass(frozen=True)
class DnsResult:
    """The answer :meth:`~netsim.kernel.base.Kernel.resolve` got (``rcode`` is ``"timeout"`` when none came)."""

    name: str
    qtype: str
    rcode: str
    records: tuple[str, ...] = ()

    @property
    def answered(self) -> bool:
        return self.rcode != "timeout"


def check_qtype(qtype: str) -> int:
    """The numeric type for a query type's name; ValueError for other names."""
    number = QUERY_TYPES.get(qtype)
    if number is None:
        raise ValueError(f"unsupported DNS query type {qtype!r}: expected one of {', '.join(QUERY_TYPES)}")
    return number


def check_query(
    name: str, qtype: str, server: str, timeout: float
) -> tuple[int, ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """Validate :meth:`~netsim.kernel.base.Kernel.resolve`'s arguments alike on both kernels: the
    numeric query type and the server's address (InvalidParameterError)."""
    if not isinstance(name, str) or not name.strip(".") or len(name) > MAX_NAME or ".." in name:
        raise InvalidParameterError(f"invalid DNS name {name!r}")
    if any(len(label) > MAX_LABEL for label in name.strip(".").split(".")):
        raise InvalidParameterError(f"invalid DNS name {name!r}: a label is over {MAX_LABEL} bytes")
    try:
        number = check_qtype(qtype)
    except ValueError as exc:
        raise InvalidParameterError(str(exc)) from exc
    try:
        address = ipaddress.ip_address(server)
    except ValueError as exc:
        raise InvalidParameterError(f"invalid DNS server address {server!r}") from exc
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout < float("inf"):
        raise InvalidParameterError(f"invalid DNS timeout {timeout!r}: expected a positive number of seconds")
    return number, address


def reverse_name(address: str) -> str:
    """The PTR name of an address: ``10.0.0.3`` -> ``3.0.0.10.in-addr.arpa``.

    >>> reverse_name("fd00::1")[:12], reverse_name("fd00::1")[-9:]
    ('1.0.0.0.0.0.', '.ip6.arpa')
    """
    return ipaddress.ip_address(address).reverse_pointer


def address_of_reverse_name(name: str) -> str | None:
    """The address a PTR name stands for (None if it is not one).

    >>> address_of_reverse_name("3.0.0.10.in-addr.arpa"), address_of_reverse_name("db")
    ('10.0.0.3', None)
    """
    labels = name.lower().rstrip(".").split(".")
    try:
        if labels[-2:] == ["in-addr", "arpa"] and len(labels) == 6:
            return str(ipaddress.IPv4Address(".".join(reversed(labels[:4]))))
        if labels[-2:] == ["ip6", "arpa"] and len(labels) == 34 and all(len(n) == 1 for n in labels[:32]):
            digits = "".join(reversed(labels[:32]))
            return str(ipaddress.IPv6Address(int(digits, 16)))
    except ValueError:
        return None
    return None


def build_query(name: str, qtype: str, ident: int) -> bytes:
    """One recursive query for ``name`` (a stub resolver's: RD set)."""
    from scapy.layers.dns import DNS, DNSQR

    return bytes(DNS(id=ident, rd=1, qd=DNSQR(qname=name, qtype=check_qtype(qtype))))


def _decode_name(raw: bytes | str) -> str:
    text = raw.decode("ascii", "replace") if isinstance(raw, bytes) else str(raw)
    return text.rstrip(".").lower()


def _parse(data: bytes) -> DNS | None:
    """A DNS message, or None for anything shorter than a header or malformed.
    (scapy fills a short packet with its defaults, and may raise many kinds of
    errors on crafted input: a server must neither answer the first nor die
    of the second.)"""
    if len(data) < DNS_HEADER:
        return None
    from scapy.error import Scapy_Exception
    from scapy.layers.dns import DNS

    try:
        message = DNS(data)
        message.qd, message.an  # noqa: B018  (decode the sections now, inside the try)
    except (Scapy_Exception, ValueError, IndexError, TypeError, AttributeError, struct_error, RecursionError):
        return None
    return message


def answer_query(data: bytes, lookup: DnsLookup) -> bytes | None:
    """The server's reply to the datagram ``data`` (None: no reply at all)."""
    from scapy.layers.dns import DNS, DNSQR, DNSRR

    query = _parse(data)
    if query is None or int(query.qr) == 1 or int(query.qdcount) != 1:
        return None
    questions = list(query.qd or [])
    if len(questions) != 1 or not isinstance(questions[0], DNSQR):
        return None
    question = questions[0]
    name = _decode_name(question.qname)
    qtype = _QTYPE_NAMES.get(int(question.qtype))
    try:
        found = lookup(name, qtype) if qtype in ("A", "AAAA", "PTR", "MX") else None
    except Exception:  # libnetwork answers SERVFAIL when handling a query fails
        log.exception("DNS lookup of %s %s failed", qtype, name)
        found = None
    reply = DNS(id=query.id, qr=1, opcode=query.opcode, rd=query.rd, ra=1, qd=question)
    if found is None:
        reply.rcode = SERVFAIL
        return bytes(reply)
    owner = name + "."
    records = [
        DNSRR(rrname=owner, type=qtype, ttl=RESPONSE_TTL, rdata=value.rstrip(".") + "." if qtype == "PTR" else value)
        for value in found.records
    ]
    if records:
        reply.an = records
    wire = bytes(reply)
    while len(wire) > MAX_UDP_MESSAGE and records:  # TC: the client may retry over TCP (netsim has none)
        records.pop()
        reply.an, reply.tc = records or None, 1
        wire = bytes(reply)
    return wire


def read_response(data: bytes, ident: int) -> tuple[str, tuple[str, ...]] | None:
    """``(rcode, records)`` of a reply to query ``ident`` (None: not such a reply)."""
    reply = _parse(data)
    if reply is None or int(reply.qr) != 1 or int(reply.id) != ident:
        return None
    rcode = RCODES.get(int(reply.rcode), str(int(reply.rcode)))
    records = []
    for record in reply.an or []:
        kind = _QTYPE_NAMES.get(int(record.type))
        if kind in ("A", "AAAA"):
            records.append(str(record.rdata))
        elif kind == "PTR":
            records.append(_decode_name(record.rdata))
    return rcode, tuple(records)
