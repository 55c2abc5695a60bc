"""Probes: does a packet from this namespace reach that address, and does the
answer come back? The same question on the fake and the real kernel.

:func:`probe` checks its arguments before any packet moves, so a bad call
fails the same way on both kernels (NotFoundError for an unknown namespace,
InvalidParameterError for everything malformed) and never waits.
:func:`reachability_matrix` asks the question for every source, target and
protocol, which is what agreement tests compare and the CLI prints.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from netsim.errors import InvalidParameterError, NotFoundError
from netsim.kernel.base import Kernel, ProbeResult, Proto

PROTOS: tuple[Proto, ...] = ("icmp", "tcp", "udp")
MAX_TIMEOUT = 30.0
#: outcomes that mean "reachable": the target itself answered positively
REACHABLE_OUTCOMES = frozenset({"echo-reply", "syn-ack", "udp-reply"})

#: one column of a reachability matrix: "icmp", or a protocol with a port
ProtoSpec = str | tuple[str, int]


def check_proto(proto: object) -> Proto:
    for known in PROTOS:
        if proto == known:
            return known
    raise InvalidParameterError(f"invalid probe protocol {proto!r}: expected one of {', '.join(PROTOS)}")


def check_port(proto: Proto, port: object) -> int | None:
    """tcp/udp need a port in 1-65535; icmp must not have one."""
    if proto == "icmp":
        if port is not None:
            raise InvalidParameterError(f"an icmp probe takes no port (got {port!r})")
        return None
    if port is None:
        raise InvalidParameterError(f"a {proto} probe needs a port")
    if isinstance(port, bool) or not isinstance(port, int):
        raise InvalidParameterError(f"invalid probe port {port!r}: expected an integer 1-65535")
    if not 1 <= port <= 65535:
        raise InvalidParameterError(f"invalid probe port {port}: expected 1-65535")
    return port


def check_timeout(timeout: object) -> float:
    """A number of seconds in (0, 30]: a probe must never hang."""
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise InvalidParameterError(f"invalid probe timeout {timeout!r}: expected seconds as a number")
    value = float(timeout)
    if math.isnan(value) or not 0 < value <= MAX_TIMEOUT:
        raise InvalidParameterError(
            f"invalid probe timeout {timeout!r}: expected more than 0 and at most {MAX_TIMEOUT:g}"
        )
    return value


def check_address(text: object, *, what: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """A plain unicast-or-broadcast IP (no prefix, not the unspecified address)."""
    if not isinstance(text, str):
        raise InvalidParameterError(f"invalid probe {what} {text!r}: expected an IP address string")
    try:
        addr = ipaddress.ip_address(text.strip())
    except ValueError as exc:
        raise InvalidParameterError(f"invalid probe {what} {text!r}: not an IP address") from exc
    if addr.is_unspecified:
        raise InvalidParameterError(f"invalid probe {what} {text!r}: the unspecified address")
    return addr


def probe(
    kernel: Kernel,
    src_namespace: str,
    dst: str,
    proto: str = "icmp",
    port: int | None = None,
    timeout: float = 1.0,
    src: str | None = None,
) -> ProbeResult:
    """Send one ICMP echo, TCP SYN or UDP datagram from ``src_namespace`` to
    ``dst`` and report what came back within ``timeout`` seconds.

    ``result.reachable`` is true for an echo reply, a SYN-ACK or an echoed UDP
    datagram; ``result.outcome`` names the answer (``rst``,
    ``port-unreachable``, ``net-unreachable``, ``timeout``...).
    """
    checked_proto = check_proto(proto)
    checked_port = check_port(checked_proto, port)
    checked_timeout = check_timeout(timeout)
    dst_addr = check_address(dst, what="destination")
    src_text: str | None = None
    if src is not None:
        src_addr = check_address(src, what="source")
        if src_addr.version != dst_addr.version:
            raise InvalidParameterError(f"probe source {src} and destination {dst} are of different IP versions")
        src_text = str(src_addr)
    if src_namespace not in kernel.namespaces():
        raise NotFoundError(f"no namespace {src_namespace!r} to probe from")
    return kernel.probe(src_namespace, str(dst_addr), checked_proto, checked_port, checked_timeout, src_text)


def proto_label(spec: ProtoSpec) -> str:
    """``"icmp"``, ``("tcp", 80)`` → ``"tcp/80"``; the matrix's column names."""
    return spec if isinstance(spec, str) else f"{spec[0]}/{spec[1]}"


def _split_spec(spec: ProtoSpec) -> tuple[Proto, int | None]:
    if isinstance(spec, str):
        name, _, port_text = spec.partition("/")
        port: int | None = None
        if port_text:
            try:
                port = int(port_text)
            except ValueError as exc:
                raise InvalidParameterError(f"invalid probe protocol {spec!r}: port is not a number") from exc
        proto = check_proto(name)
        return proto, check_port(proto, port)
    if not isinstance(spec, tuple) or len(spec) != 2:
        raise InvalidParameterError(f"invalid probe protocol {spec!r}: expected 'icmp', 'tcp/80' or ('tcp', 80)")
    proto = check_proto(spec[0])
    return proto, check_port(proto, spec[1])


def reachability_matrix(
    kernel: Kernel,
    sources: Iterable[str],
    targets: Iterable[str],
    protos: Iterable[ProtoSpec] = ("icmp",),
    *,
    timeout: float = 1.0,
    workers: int = 1,
) -> dict[tuple[str, str, str], str]:
    """``(source namespace, target address, proto label) → outcome`` for every combination.

    ``protos`` items are ``"icmp"``, ``"tcp/80"`` or ``("udp", 53)``. Outcomes
    are compared as strings, so kernels must agree on *why* something is
    unreachable, not only that it is. Every argument is checked before the
    first probe is sent. Cost: one probe per cell, each bounded by ``timeout``.

    ``workers`` > 1 probes that many *sources* at once on the real kernel,
    where each unanswered cell costs wall-clock time (probes from one
    namespace still go one at a time); the fake kernel always runs in order.
    """
    source_list = list(sources)
    target_list = [str(check_address(t, what="destination")) for t in targets]
    columns = [(proto_label(spec), *_split_spec(spec)) for spec in protos]
    check_timeout(timeout)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InvalidParameterError(f"invalid workers {workers!r}: expected a positive integer")
    held = set(kernel.namespaces())
    for ns in source_list:
        if ns not in held:
            raise NotFoundError(f"no namespace {ns!r} to probe from")

    def row(ns: str) -> dict[tuple[str, str, str], str]:
        return {
            (ns, dst, label): probe(kernel, ns, dst, proto, port, timeout).outcome
            for dst in target_list
            for label, proto, port in columns
        }

    if workers == 1 or kernel.kind != "linux" or len(source_list) < 2:
        rows = [row(ns) for ns in source_list]
    else:
        with ThreadPoolExecutor(max_workers=min(workers, len(source_list)), thread_name_prefix="netsim-matrix") as pool:
            rows = list(pool.map(row, source_list))
    return {key: outcome for cells in rows for key, outcome in cells.items()}


def reachable(matrix: dict[tuple[str, str, str], str]) -> dict[tuple[str, str, str], bool]:
    """The matrix reduced to reachable / not."""
    return {key: outcome in REACHABLE_OUTCOMES for key, outcome in matrix.items()}
