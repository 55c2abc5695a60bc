"""How a probe ended, in the words an expectation's ``outcome:`` uses.

A probe reports what came back (:data:`netsim.probe.REACHABLE_OUTCOMES` and
the ICMP error names, see :mod:`netsim.kernel.base`); an expectation names
one of :data:`OUTCOMES`. Every name here is something both kernels tell
apart from the packets alone: a positive answer of any protocol (``ok``), a
TCP reset, silence until the deadline, and the four ICMP destination
unreachable kinds Linux sends (port, network, host, and "administratively
prohibited", which nftables' ``reject`` and a ``prohibit`` route send).

>>> observed_outcome("syn-ack"), observed_outcome("timeout (retried)"), observed_outcome("rst")
('ok', 'timeout', 'rst')
>>> outcome_problem("rst", True)
"outcome 'rst' means unreachable, but the expectation says 'reachable: true'"
"""

from __future__ import annotations

from typing import Any, Protocol

from netsim.probe import REACHABLE_OUTCOMES

#: what ``outcome:`` may name, in the order the docs list them
OUTCOMES = ("ok", "rst", "timeout", "port-unreachable", "net-unreachable", "host-unreachable", "admin-prohibited")
#: the suffix the runner adds when a positive expectation was probed again after a timeout
RETRY_SUFFIX = " (retried)"
#: outcomes a protocol never produces: an echo request has no port and no reset, a datagram no reset
_IMPOSSIBLE = {"icmp": ("rst", "port-unreachable"), "udp": ("rst",)}


def observed_outcome(probe_outcome: str) -> str:
    """The probe's outcome in :data:`OUTCOMES` terms (``ok`` for any positive
    answer); an outcome outside the list (``time-exceeded``, ``no-address``,
    an error) is returned as it is, and matches no expectation."""
    plain = probe_outcome.removesuffix(RETRY_SUFFIX)
    return "ok" if plain in REACHABLE_OUTCOMES else plain


def outcome_problem(outcome: str, reachable: bool) -> str | None:
    """Why ``outcome`` contradicts ``reachable`` (None when they agree)."""
    if (outcome == "ok") != reachable:
        says = "reachable" if outcome == "ok" else "unreachable"
        return f"outcome {outcome!r} means {says}, but the expectation says 'reachable: {str(reachable).lower()}'"
    return None


def protocol_problem(outcome: str, proto: str) -> str | None:
    """Why ``proto`` can never end in ``outcome`` (None when it can)."""
    if outcome in _IMPOSSIBLE.get(proto, ()):
        return f"a {proto} probe never ends in {outcome!r}"
    return None


class _Observed(Protocol):
    """What an expectation's result says about how its probe ended (results.ExpectationResult)."""

    expectation: Any
    outcome: str
    seen: str | None


def observed_text(result: _Observed) -> str:
    """The result table's outcome cell: the probe's outcome, and for
    ``seen_from`` the source the far end saw (``syn-ack; seen from 198.18.0.2``)."""
    if result.expectation.seen_from is None:
        return result.outcome
    return f"{result.outcome}; seen from {result.seen or 'nothing'}"


def observed_json(result: _Observed) -> dict[str, Any]:
    """The JSON report's keys for what an expectation with the traffic keys
    asked: with ``outcome:``, ``expect_outcome`` and the observed ``outcome``
    (in :data:`OUTCOMES` terms); with ``family:``, ``family``; with
    ``seen_from:``, ``seen_from`` (as written) and ``seen`` (the address)."""
    exp = result.expectation
    out: dict[str, Any] = {}
    if exp.outcome is not None:
        out["expect_outcome"], out["outcome"] = exp.outcome, observed_outcome(result.outcome)
    if exp.family is not None:
        out["family"] = exp.family
    if exp.seen_from is not None:
        out["seen_from"], out["seen"] = exp.seen_from, result.seen
    return out
