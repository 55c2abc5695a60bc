"""What the far end of a probe saw: ``seen_from:``.

The far end is a namespace: the target container, the host (``to: host``),
the world beyond a host (``to: outside``), or, for a published port, the
container that publishes it (where DNAT delivers the packet). While the probe
runs, that namespace's interfaces are captured through the Kernel contract
(:meth:`netsim.kernel.base.Kernel.capture`, the same on both kernels: the
fake kernel's taps, AF_PACKET sockets on Linux), and the first request that
arrived for one of its own addresses (an echo request, a TCP SYN, a UDP
datagram, from an address not its own) gives the source address it saw.
So masquerade shows the host's address and DNAT keeps the client's, as the
kernels really translated them, not as netsim's records say they should.

A capture costs a pcap file per probe, so only expectations with
``seen_from`` are observed.
"""

from __future__ import annotations

import contextlib
import ipaddress
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6
from scapy.packet import Packet
from scapy.utils import rdpcap

from netsim.kernel.base import Kernel

_SYN, _ACK = 0x02, 0x10


class Observation:
    """Filled in when the ``with`` block of :func:`observed` ends: ``source``
    is the address the far end saw the request come from (None: it never arrived)."""

    def __init__(self) -> None:
        self.source: str | None = None


def own_addresses(kernel: Kernel, ns: str) -> set[str]:
    """Every address of ``ns`` (without prefix)."""
    return {str(ipaddress.ip_interface(cidr).ip) for _, cidr in kernel.addresses(ns)}


@contextlib.contextmanager
def observed(kernel: Kernel, ns: str | None, proto: str) -> Iterator[Observation]:
    """Capture ``ns`` around the block; afterwards ``.source`` says who the
    first ``proto`` request delivered to ``ns`` came from. ``ns`` None or gone
    (a removed container): nothing is observed."""
    seen = Observation()
    if ns is None or ns not in kernel.namespaces():
        yield seen
        return
    ifaces = [link.name for link in kernel.links(ns) if link.kind != "loopback"]
    if not ifaces:
        yield seen
        return
    with tempfile.TemporaryDirectory(prefix="netsim-seen-") as tmp:
        path = str(Path(tmp) / "far-end.pcap")
        with kernel.capture(ns, ifaces, path):
            yield seen
        seen.source = first_request_source(rdpcap(path), proto, own_addresses(kernel, ns))


def first_request_source(frames: Iterable[Packet], proto: str, own: set[str]) -> str | None:
    """The source of the first ``proto`` request in ``frames`` addressed to
    one of ``own`` and not sent from one of them (a frame crossing two of the
    namespace's interfaces is the same request: the first copy counts)."""
    for frame in frames:
        ip = frame.getlayer(IP) or frame.getlayer(IPv6)
        if ip is None or str(ip.dst) not in own or str(ip.src) in own:
            continue
        if _is_request(ip.payload, proto):
            return str(ip.src)
    return None


def _is_request(l4: Packet, proto: str) -> bool:
    if proto == "icmp":
        return (isinstance(l4, ICMP) and int(l4.type) == 8) or type(l4) is ICMPv6EchoRequest
    if proto == "tcp":
        return isinstance(l4, TCP) and bool(int(l4.flags) & _SYN) and not int(l4.flags) & _ACK
    return isinstance(l4, UDP)


def matches(seen: str | None, expected: Iterable[str]) -> bool:
    """Whether the observed source is one of the expected addresses."""
    return seen is not None and seen in set(expected)


def translation_line(sent_from: str | None, far_end: str | None, seen: str | None, prefix: str = "") -> str | None:
    """``netsim trace``'s summary of the source translation, on either kernel:
    ``source: sent from 10.1.0.2, seen by h1-out as 198.18.0.2 (translated)``.
    None when the far end was not watched (an address with no known owner)."""
    if far_end is None:
        return None
    where = far_end[len(prefix) :] if prefix and far_end.startswith(prefix) else far_end
    sent = sent_from or "the address the kernel chose"
    if seen is None:
        return f"source: sent from {sent}; nothing arrived at {where}"
    verdict = "unchanged" if seen == sent_from else "translated"
    return f"source: sent from {sent}, seen by {where} as {seen} ({verdict})"
