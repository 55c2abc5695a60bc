"""One probe on the fake kernel: validate, build the scapy packet, walk it.

The probe socket sends one ICMP echo request, TCP SYN or UDP datagram from a
namespace and waits (in virtual time) for the answer; every hop lands in the
trace. ``timeout`` bounds the virtual clock, and a delivery budget bounds the
work, so a probe always returns.
"""

from __future__ import annotations

import errno
import ipaddress
import math

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6
from scapy.packet import Packet, Raw

from netsim.errors import InvalidParameterError, kernel_error
from netsim.kernel.base import ProbeResult
from netsim.kernel.fake.dataplane import links, routing, stack
from netsim.kernel.fake.dataplane.packets import make
from netsim.kernel.fake.dataplane.sockets import ProbeSocket
from netsim.kernel.fake.dataplane.walk import Walk
from netsim.kernel.fake.state import FakeNamespace, FakeWorld, IPAddr

PROTOCOLS = ("icmp", "tcp", "udp")
#: the probe's ICMP id and source port (fixed, so repeated probes reuse one conntrack flow)
PROBE_ID = 0x6E73
PROBE_SPORT = 47000
PROBE_PAYLOAD = b"netsim-probe"
REACHABLE = frozenset({"echo-reply", "syn-ack", "udp-reply"})


def probe(
    world: FakeWorld,
    ns: str,
    dst: str,
    proto: str = "icmp",
    port: int | None = None,
    timeout: float = 1.0,
    src: str | None = None,
) -> ProbeResult:
    """Send one probe from namespace ``ns`` to ``dst`` and report what came back."""
    namespace, target, source_arg = _validate(world, ns, dst, proto, port, timeout, src)
    hop = routing.route_to(namespace, target)
    source = source_arg
    if source is None and hop is not None:
        source = routing.source_for(namespace, hop.link, target.version)
    if source is None:
        source = ipaddress.ip_address("0.0.0.0" if target.version == 4 else "::")
    sport = PROBE_ID if proto == "icmp" else PROBE_SPORT
    dport = PROBE_ID if proto == "icmp" else int(port or 0)
    socket = ProbeSocket(ns, proto, str(source), str(target), sport, dport)
    walk = Walk(world, socket=socket)
    packet = _build(proto, source, target, sport, dport)
    walk.hop(namespace, None, "send", f"probe {proto} to {target}" + (f":{port}" if port else ""), packet)
    failure = stack.local_output(walk, namespace, packet)
    if failure is not None:
        socket.outcome, socket.at = failure, 0.0
    else:
        walk.run(links.receive, deadline=timeout)
    outcome = socket.outcome or "timeout"
    if socket.outcome is None:
        walk.hop(namespace, None, "timeout", f"no answer within {timeout} s (virtual)")
    return ProbeResult(
        reachable=outcome in REACHABLE,
        proto=proto,  # type: ignore[arg-type]
        src_namespace=ns,
        dst=str(target),
        port=port,
        reply=socket.reply,
        outcome=outcome,
        rtt=socket.at if socket.reply is not None else None,
        trace=walk.trace,
    )


def _validate(
    world: FakeWorld, ns: str, dst: str, proto: str, port: int | None, timeout: float, src: str | None
) -> tuple[FakeNamespace, IPAddr, IPAddr | None]:
    namespace = world.namespaces.get(ns)
    if namespace is None:
        raise kernel_error(errno.ENOENT, f"probe from unknown namespace {ns!r}")
    if proto not in PROTOCOLS:
        raise InvalidParameterError(f"unsupported probe protocol {proto!r}: expected icmp, tcp or udp")
    try:
        target = ipaddress.ip_address(str(dst).strip())
    except ValueError as exc:
        raise InvalidParameterError(f"invalid probe destination {dst!r}: {exc}") from exc
    if proto == "icmp":
        if port is not None:
            raise InvalidParameterError("an icmp probe takes no port")
    elif isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise InvalidParameterError(f"a {proto} probe needs a port 1-65535, got {port!r}")
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not math.isfinite(timeout) or timeout <= 0:
        raise InvalidParameterError(f"invalid probe timeout {timeout!r}: expected a positive number of seconds")
    source = None
    if src is not None:
        try:
            source = ipaddress.ip_address(str(src).strip())
        except ValueError as exc:
            raise InvalidParameterError(f"invalid probe source {src!r}: {exc}") from exc
        if source.version != target.version:
            raise InvalidParameterError(f"probe source {source} and destination {target} differ in family")
        if not routing.is_local(namespace, source):
            raise kernel_error(errno.EADDRNOTAVAIL, f"probe source {source} is not an address of {ns!r}")
    return namespace, target, source


def _build(proto: str, source: IPAddr, target: IPAddr, sport: int, dport: int) -> Packet:
    if target.version == 4:
        packet: Packet = make(IP, src=str(source), dst=str(target), ttl=64)
    else:
        packet = make(IPv6, src=str(source), dst=str(target), hlim=64)
    if proto == "icmp":
        if target.version == 4:
            layer: Packet = make(ICMP, type=8, id=sport, seq=1)
            layer.add_payload(make(Raw, load=PROBE_PAYLOAD))
        else:
            layer = make(ICMPv6EchoRequest, id=sport, seq=1, data=PROBE_PAYLOAD)
    elif proto == "tcp":
        layer = make(TCP, sport=sport, dport=dport, flags="S", seq=1)
    else:
        layer = make(UDP, sport=sport, dport=dport)
        layer.add_payload(make(Raw, load=PROBE_PAYLOAD))
    packet.add_payload(layer)
    return packet
