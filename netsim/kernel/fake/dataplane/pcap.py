"""Packet capture: frames crossing chosen links are written to a pcap file.

A capture registers a :class:`Tap` in ``FakeWorld.taps`` for the length of a
``with`` block; the dataplane calls :func:`record` for every frame a link
sends or receives. The file is a classic pcap (Ethernet link type), the
format tcpdump and Wireshark read; its header is written on open, so an idle
capture still yields a valid, empty file.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scapy.packet import Packet
from scapy.utils import PcapWriter

from netsim.errors import InvalidParameterError, kernel_error

if TYPE_CHECKING:
    from netsim.kernel.fake.state import FakeLink, FakeWorld

DLT_EN10MB = 1


@dataclass(eq=False)
class Tap:
    namespace: str
    ifaces: frozenset[str]
    writer: Any  # scapy PcapWriter (untyped)
    frames: int = 0


def record(world: FakeWorld, link: FakeLink, frame: Packet) -> None:
    """Write ``frame`` to every tap on ``link``. O(taps); free when none."""
    if not world.taps:
        return
    for tap in world.taps:
        if tap.namespace == link.ns.name and link.name in tap.ifaces:
            tap.writer.write(frame)
            tap.frames += 1


@contextlib.contextmanager
def capture(world: FakeWorld, ns: str, ifaces: list[str], path: str) -> Iterator[None]:
    """Capture what crosses ``ifaces`` of namespace ``ns`` into ``path``.

    Unknown namespace: ENOENT; unknown link: ENODEV (as ``tcpdump -i`` would
    fail); an empty list or a path that cannot be written: invalid parameter.
    Nothing is registered when validation fails.
    """
    namespace = world.namespaces.get(ns)
    if namespace is None:
        raise kernel_error(errno.ENOENT, f"no namespace {ns!r}")
    if not ifaces:
        raise InvalidParameterError("capture needs at least one interface")
    for name in ifaces:
        if name not in namespace.links:
            raise kernel_error(errno.ENODEV, f"no link {name!r} in namespace {ns!r}")
    try:
        writer = PcapWriter(path, linktype=DLT_EN10MB, sync=False)
    except OSError as exc:
        raise InvalidParameterError(f"cannot write capture file {path!r}: {exc.strerror}") from exc
    tap = Tap(ns, frozenset(ifaces), writer)
    try:
        writer.write_header(None)
        world.taps.append(tap)
        yield
    finally:
        if tap in world.taps:
            world.taps.remove(tap)
        writer.close()
