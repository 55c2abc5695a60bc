"""DNS expectations: a container asks its resolver (127.0.0.11) for a name.

```yaml
expect:
  - {from: web, resolve: db, expect: [10.0.0.3]}          # A records, exactly these
  - {from: web, resolve: db1, type: AAAA, expect: ["fd00::3"]}
  - {from: web, resolve: 10.0.0.3, expect: [db.back]}     # an address: PTR
  - {from: web, resolve: cache, expect: []}               # no address (any answer, or none)
  - {from: web, resolve: nosuch, expect: servfail}        # that response code, no records
```

They sit in the same ``expect:`` lists as probes and run in the same order;
the query is one real DNS message from the container's namespace
(:meth:`netsim.kernel.base.Kernel.resolve`). A name Docker's resolver does not
know is answered SERVFAIL (it would forward it, and netsim has no external
DNS: see :mod:`netsim.kernel.dns`); a container without a resolver (only on
the default ``bridge``) gets no answer at all (ICMP port unreachable), and
``expect: []`` holds for both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from netsim.errors import InvalidParameterError, NetsimError
from netsim.kernel.dns import reverse_name
from netsim.netutils import is_ip_address

if TYPE_CHECKING:
    from netsim.scenario.model import Expectation
    from netsim.scenario.results import ExpectationResult
    from netsim.scenario.shape import ShapeReader

QUERY_TYPES = ("A", "AAAA", "PTR")
#: ``expect: WORD``: the response code, with no records
RCODE_WORDS = {"servfail": "SERVFAIL", "nxdomain": "NXDOMAIN", "refused": "REFUSED"}


@dataclass(frozen=True)
class DnsQuery:
    """What a DNS expectation asks and wants: ``records`` exactly (sorted), or
    with ``rcode`` that response code and no records; ``records == ()`` and no
    rcode: no records, whatever the answer (or none)."""

    qtype: str = "A"
    records: tuple[str, ...] = ()
    rcode: str | None = None

    def describe(self, source: str, name: str) -> str:
        """``web resolves db (A): 10.0.0.3``."""
        wanted = self.rcode or (", ".join(self.records) if self.records else "no address")
        return f"{source} resolves {name} ({self.qtype}): {wanted}"

    def matches(self, rcode: str, records: tuple[str, ...]) -> bool:
        if self.rcode is not None:
            return rcode == self.rcode and not records
        return tuple(sorted(records)) == self.records


def is_dns_entry(value: object) -> bool:
    return isinstance(value, Mapping) and "resolve" in value


def parse_dns_expectation(rd: ShapeReader, value: object, path: str) -> Expectation:
    """One ``{from, resolve, type, expect}`` mapping, shape-checked."""
    from netsim.scenario import definition as D
    from netsim.scenario.model import Expectation

    entry = rd.obj(value, path, D.DNS_EXPECTATION)
    name = entry["resolve"].strip()
    is_address = is_ip_address(name)
    qtype = entry.get("type") or ("PTR" if is_address else "A")
    if qtype not in QUERY_TYPES:
        rd.fail(f"{path}.type", f"unsupported query type {qtype!r}; expected one of: {', '.join(QUERY_TYPES)}")
    if qtype == "PTR" and not is_address:
        rd.fail(f"{path}.resolve", f"a PTR query takes an address, got {name!r}")
    if qtype != "PTR" and is_address:
        rd.fail(f"{path}.type", f"{name!r} is an address: ask its name with type PTR (the default for an address)")
    if not is_address:
        check_dns_name(rd, name, f"{path}.resolve")
    wanted = entry.raw["expect"]
    records: tuple[str, ...] = ()
    rcode = None
    if isinstance(wanted, list):
        read = _reader(rd, qtype)
        records = tuple(sorted(read(item, f"{path}.expect[{i}]") for i, item in enumerate(wanted)))
    else:
        word = rd.text(wanted, f"{path}.expect").strip().lower()
        if word not in RCODE_WORDS:
            rd.fail(
                f"{path}.expect",
                f"expected a list of {'names' if qtype == 'PTR' else 'addresses'} or one of "
                f"{', '.join(RCODE_WORDS)}, got {wanted!r}",
            )
        rcode = RCODE_WORDS[word]
    return Expectation(
        source=rd.name(entry["from"], f"{path}.from"),
        target=name,
        proto="udp",
        port=53,
        dns=DnsQuery(qtype, records, rcode),
    )


def check_dns_name(rd: ShapeReader, text: str, path: str) -> str:
    """A name (or alias) the resolver can answer: ScenarioError at ``path`` otherwise."""
    from netsim.controller.services import check_alias

    try:
        return check_alias(text, "DNS name")
    except InvalidParameterError as exc:
        rd.fail(path, str(exc))


def _reader(rd: ShapeReader, qtype: str) -> Callable[[object, str], str]:
    if qtype == "PTR":
        return lambda item, where: check_dns_name(rd, rd.text(item, where).strip(), where)
    version = 4 if qtype == "A" else 6
    return lambda item, where: rd.ip(item, where, version)


def check_dns_expectation(
    specs: Mapping[str, Any], absent: Callable[[str], str | None], exp: Expectation
) -> str | None:
    """What makes a DNS expectation impossible at its point (None: nothing)."""
    if exp.source not in specs:
        return f"unknown container {exp.source!r} (a DNS query is sent from a container)"
    reason = absent(exp.source)
    if reason is not None:
        return f"container {exp.source!r} {reason}"
    return None


def probe_dns(kernel: Any, namespace: str, exp: Expectation, phase: str, timeout: float) -> ExpectationResult:
    """Ask, compare, and report as a probe result: ``dst`` is what was asked,
    ``outcome`` the answer (``NOERROR 10.0.0.3``, ``SERVFAIL``, ``port-unreachable``)."""
    from netsim.scenario.results import ExpectationResult

    query = exp.dns
    assert query is not None
    name = reverse_name(exp.target) if query.qtype == "PTR" else exp.target
    result = ExpectationResult(exp, phase, dst=exp.target)  # the table shows what was asked, not its PTR form
    try:
        answer = kernel.resolve(namespace, name, query.qtype, timeout=timeout)
    except NetsimError as exc:
        result.reachable, result.outcome = False, f"error: {exc}"
        return result
    result.outcome = answer.rcode + (f" {', '.join(answer.records)}" if answer.records else "")
    result.reachable = query.matches(answer.rcode, answer.records)
    return result


__all__ = ["DnsQuery", "check_dns_expectation", "check_dns_name", "is_dns_entry", "parse_dns_expectation", "probe_dns"]


def resolve_by_name(kernel: Any, namespace: str, exp: Expectation, timeout: float) -> tuple[str, str]:
    """``via_dns: true``: the address the source's resolver gives for ``to``
    (its first A record, AAAA with ``family: 6``), and "" with the reason when
    it gives none (``unresolved (SERVFAIL)``)."""
    qtype = "AAAA" if exp.family == 6 else "A"
    try:
        answer = kernel.resolve(namespace, exp.target, qtype, timeout=timeout)
    except NetsimError as exc:
        return "", f"unresolved (error: {exc})"
    if not answer.records:
        return "", f"unresolved ({answer.rcode})"
    return answer.records[0], ""


def check_via_dns(exp: Expectation, specs: Mapping[str, Any]) -> tuple[str, str] | None:
    """``(key, problem)`` when ``via_dns`` cannot apply to this probe (None: it can)."""
    if exp.source not in specs:
        return "from", "via_dns: the probe must start in a container (its resolver answers)"
    if exp.seen_from is not None:
        return "seen_from", "via_dns and seen_from cannot be combined"
    if is_ip_address(exp.target) or ":" in exp.target or "@" in exp.target or exp.target in ("outside", "host"):
        return "to", f"via_dns: 'to' must be a name the resolver answers, got {exp.target!r}"
    return None
