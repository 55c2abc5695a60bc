"""pcap capture on the real kernel: AF_PACKET sockets opened inside the
namespace, one per interface, read by a background thread into a pcap file
(Ethernet link type) that tcpdump and Wireshark read. Each frame carries the
kernel's timestamp; with several interfaces, frames are written in batches
per interface, so the file is ordered per interface, not globally (readers
sort by timestamp).

Frames reach a packet socket synchronously as they are sent or received, so
whatever crossed an interface before :meth:`PacketCapture.stop` is already
queued; ``stop`` drains the queues before it closes the file, and nothing
that happened inside the ``with`` block is lost.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import struct
import threading
import time

from scapy.utils import RawPcapWriter

from netsim import waiting
from netsim.errors import kernel_error
from netsim.kernel.linux.traffic_nssocket import open_socket

ETH_P_ALL = 0x0003
LINKTYPE_ETHERNET = 1
SNAPLEN = 65535
RX_BUFFER = 4 << 20
STOP_JOIN_SECONDS = 2.0
#: the kernel stamps each frame when it crosses the interface; the reading
#: thread may see it much later, so its own clock would misorder frames
SO_TIMESTAMPNS = 35  # also SCM_TIMESTAMPNS; not exported by Python's socket module
TIMESPEC = struct.Struct("@qq")
TIMESTAMP_CMSG_SPACE = socket.CMSG_SPACE(TIMESPEC.size)


def frame_time(ancillary: list[tuple[int, int, bytes]]) -> tuple[int, int]:
    """``(seconds, nanoseconds)`` of the kernel's receive stamp, or now if absent."""
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= TIMESPEC.size:
            seconds, nanoseconds = TIMESPEC.unpack_from(data)
            return int(seconds), int(nanoseconds)
    now = time.time_ns()
    return now // 1_000_000_000, now % 1_000_000_000


def open_packet_socket(ns: str, iface: str) -> socket.socket:
    """An AF_PACKET socket in ``ns`` seeing every frame in and out of ``iface``.

    ENODEV (KernelNotFoundError) when the namespace has no such interface.
    """
    sock = open_socket(ns, socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RX_BUFFER)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        sock.bind((iface, ETH_P_ALL))
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise kernel_error(exc.errno or errno.EINVAL, f"capture on {iface!r} in {ns!r}: {exc}") from exc
    return sock


def open_pcap(path: str) -> RawPcapWriter:
    """A pcap writer with its header written (a capture of nothing is still a
    valid, empty pcap); an unwritable path is a KernelError with its errno."""
    try:
        writer = RawPcapWriter(path, linktype=LINKTYPE_ETHERNET, snaplen=SNAPLEN, sync=False)
    except OSError as exc:
        raise kernel_error(exc.errno or errno.EINVAL, f"cannot write pcap {path!r}: {exc.strerror}") from exc
    writer.write_header(None)
    return writer


class PacketCapture:
    """Frames crossing ``ifaces`` of ``ns`` written to ``path`` until ``stop``."""

    def __init__(self, ns: str, ifaces: list[str], path: str) -> None:
        if not ifaces:
            raise kernel_error(errno.EINVAL, "capture needs at least one interface")
        self.ns = ns
        self.path = path
        self.frames = 0
        self._sockets: list[socket.socket] = []
        try:
            for iface in dict.fromkeys(ifaces):
                self._sockets.append(open_packet_socket(ns, iface))
            self._writer = open_pcap(path)
        except BaseException:
            for sock in self._sockets:
                sock.close()
            raise
        self._wake_read, self._wake_write = os.pipe()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name=f"netsim-capture-{ns}", daemon=True)
        self._thread.start()

    def _write_queued(self, sock: socket.socket) -> None:
        while True:
            try:
                frame, ancillary, _, _ = sock.recvmsg(SNAPLEN, TIMESTAMP_CMSG_SPACE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # the interface went away: nothing more will come
                return
            seconds, nanoseconds = frame_time(ancillary)
            self._writer.write_packet(
                frame, sec=seconds, usec=nanoseconds // 1000, caplen=len(frame), wirelen=len(frame)
            )
            self.frames += 1

    def _run(self) -> None:
        while True:
            try:
                watched: list[socket.socket | int] = [*self._sockets, self._wake_read]
                readable = waiting.readable(watched)  # poll: select() stops at descriptor 1023
            except (OSError, ValueError):
                return
            if self._wake_read in readable:
                return
            for sock in readable:
                if isinstance(sock, socket.socket):
                    self._write_queued(sock)

    def stop(self) -> None:
        """Stop the thread, write what is still queued, close sockets and file. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        with contextlib.suppress(OSError):
            os.write(self._wake_write, b"x")
        self._thread.join(STOP_JOIN_SECONDS)
        try:
            for sock in self._sockets:
                self._write_queued(sock)
        finally:
            for sock in self._sockets:
                sock.close()
            self._writer.close()
            os.close(self._wake_read)
            os.close(self._wake_write)
