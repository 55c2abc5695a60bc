"""One HTTP/1.1 connection to a plugin: a request goes out in one write and
the reply is read with a deadline and a size limit.

http.client would do, but parses headers through the email package (tens of
µs per call) and cannot bound a reply's total time; plugin replies are small
JSON documents, so a lean reader is both faster and stricter. It accepts
what Go's net/http sends: ``Content-Length`` or chunked bodies, 1xx interim
replies, ``Connection: close``, HTTP/1.0 read-to-close bodies.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

from netsim import waiting

_MAX_LINE = 64 * 1024
_MAX_HEADERS = 100
_READ_CHUNK = 64 * 1024


class BrokenReply(OSError):
    """The plugin sent something that is not an HTTP reply, or stopped mid-reply."""


class BodyTooLarge(Exception):
    """The reply body is over the client's limit (a protocol error, not a lost connection)."""


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    will_close: bool


class Connection:
    """A kept-alive connection; not thread-safe (the client lends it to one call at a time)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reader = sock.makefile("rb")

    def closed_by_peer(self) -> bool:
        """Readable while idle means the plugin closed it (or sent junk)."""
        return bool(waiting.readable([self.sock], 0))  # poll(): a descriptor past 1023 is fine

    def close(self) -> None:
        self.reader.close()
        self.sock.close()

    def _arm(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("deadline passed")
        self.sock.settimeout(remaining)

    def _line(self, deadline: float) -> bytes:
        """One line, the deadline rearmed before every read: ``readline`` alone
        restarts the socket timeout on each byte, so a plugin sending a byte
        every half second held a caller far past its deadline."""
        parts: list[bytes] = []
        size = 0
        while True:
            self._arm(deadline)
            buffered = self.reader.peek(1)  # at most one recv, bounded by what is left
            if not buffered:
                if parts:  # a last line without its newline, as readline() returns it: callers judge it
                    return b"".join(parts)
                raise BrokenReply("connection closed before the reply was complete")
            end = buffered.find(b"\n")
            take = self.reader.read(len(buffered) if end < 0 else end + 1)  # from the buffer: no I/O
            parts.append(take)
            size += len(take)
            if size > _MAX_LINE:
                raise BrokenReply(f"reply line longer than {_MAX_LINE} bytes")
            if end >= 0:
                return b"".join(parts)

    def exchange(self, request: bytes, deadline: float, max_body: int) -> Reply:
        """Send ``request`` and read the reply; TimeoutError past ``deadline``."""
        self._arm(deadline)
        self.sock.sendall(request)
        while True:
            version, status = self._status_line(deadline)
            headers = self._headers(deadline)
            if not 100 <= status < 200:
                break
        connection = headers.get("connection", "").lower()
        will_close = "close" in connection or (version == "HTTP/1.0" and "keep-alive" not in connection)
        if status in (204, 304):
            return Reply(status, b"", will_close)
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return Reply(status, self._chunked(deadline, max_body), will_close)
        if "content-length" in headers:
            try:
                length = int(headers["content-length"])
            except ValueError:
                raise BrokenReply(f"invalid Content-Length {headers['content-length']!r}") from None
            if length < 0:
                raise BrokenReply(f"invalid Content-Length {length}")
            if length > max_body:
                raise BodyTooLarge(f"reply body of {length} bytes exceeds the {max_body}-byte limit")
            return Reply(status, self._exactly(length, deadline), will_close)
        return Reply(status, self._until_close(deadline, max_body), True)

    def _status_line(self, deadline: float) -> tuple[str, int]:
        line = self._line(deadline)
        parts = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit() or len(parts[1]) != 3:
            raise BrokenReply(f"not an HTTP reply: {line[:60]!r}")
        return parts[0], int(parts[1])

    def _headers(self, deadline: float) -> dict[str, str]:
        headers: dict[str, str] = {}
        for _ in range(_MAX_HEADERS):
            line = self._line(deadline)
            if line in (b"\r\n", b"\n"):
                return headers
            name, sep, value = line.decode("latin-1").partition(":")
            if not sep:
                raise BrokenReply(f"malformed reply header {line[:60]!r}")
            headers[name.strip().lower()] = value.strip()
        raise BrokenReply(f"more than {_MAX_HEADERS} reply headers")

    def _exactly(self, length: int, deadline: float) -> bytes:
        chunks: list[bytes] = []
        left = length
        while left:
            self._arm(deadline)
            chunk = self.reader.read1(min(left, _READ_CHUNK))
            if not chunk:
                raise BrokenReply(f"connection closed after {length - left} of {length} body bytes")
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def _chunked(self, deadline: float, max_body: int) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            line = self._line(deadline).split(b";", 1)[0].strip()
            try:
                length = int(line, 16)
            except ValueError:
                raise BrokenReply(f"invalid chunk size {line[:20]!r}") from None
            if length == 0:
                while self._line(deadline) not in (b"\r\n", b"\n"):
                    pass  # trailer headers: ignored
                return b"".join(chunks)
            size += length
            if size > max_body:
                raise BodyTooLarge(f"reply body exceeds the {max_body}-byte limit")
            chunks.append(self._exactly(length, deadline))
            if self._line(deadline) not in (b"\r\n", b"\n"):
                raise BrokenReply("chunk not followed by CRLF")

    def _until_close(self, deadline: float, max_body: int) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            self._arm(deadline)
            chunk = self.reader.read1(_READ_CHUNK)
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > max_body:
                raise BodyTooLarge(f"reply body exceeds the {max_body}-byte limit")
            chunks.append(chunk)
