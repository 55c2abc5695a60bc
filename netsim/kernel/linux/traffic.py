"""Packets on the real kernel: the LinuxKernel's listeners, probes and pcap
captures, all made of sockets opened inside netsim's namespaces.

The LinuxKernel owns one :class:`TrafficManager` and forwards its traffic
calls to it. Before it deletes a namespace it calls :meth:`close_namespace`:
an open socket keeps a namespace alive after its name is gone, so every
socket and thread held there must be closed first.

Nothing here is sent from, or opened in, the root namespace: every socket is
created by :func:`~netsim.kernel.linux.traffic_nssocket.open_socket` inside a
namespace the kernel reports as its own.

Linux behaviours a probe meets, which the fake kernel may not model:

* ICMP errors are rate-limited per peer and per namespace. Those limits are
  per-namespace sysctls, lifted here in every namespace of the kernel before
  probing, so repeated probes get every port unreachable they provoke.
* A *router's* answer to a packet it cannot route (net or host unreachable
  from ``ip_error``) has its own limit, 5 in a burst then 1 a second per
  source address, shared with ICMP redirects; its sysctls
  (``net.ipv4.route.error_cost``/``error_burst``) are global to the host and
  are never touched: past that burst such a probe times out.
* A link passes packets only once the kernel's link watcher has seen its
  carrier, up to a second after it went up: a probe right after building a
  topology can time out.
* A packet arriving with one of the namespace's own addresses as source is
  dropped (martian), so a routing loop through the sender ends silently
  instead of in ``time-exceeded``.
"""

from __future__ import annotations

import contextlib
import errno
import threading
from collections.abc import Iterator
from typing import Protocol

from netsim.errors import KernelNotFoundError, kernel_error
from netsim.kernel.base import Listener, ProbeResult, Proto
from netsim.kernel.linux.traffic_capture import PacketCapture
from netsim.kernel.linux.traffic_dns import DnsServers
from netsim.kernel.linux.traffic_listen import RunningListener, check_listener
from netsim.kernel.linux.traffic_nssocket import relax_icmp_rate_limits
from netsim.kernel.linux.traffic_probe import NamespaceProber


class NamespaceOwner(Protocol):
    """What the manager needs of its kernel: the namespaces it created."""

    def namespaces(self) -> list[str]: ...


class TrafficManager:
    """Listeners, probe sockets and captures per namespace of one kernel.

    Thread-safe: a lock guards the registries; probes in different
    namespaces run in parallel, probes in one namespace one at a time.

    Cost: registries are dicts keyed by namespace (and listener), so adding,
    deleting or finding a listener is O(1); ``listeners(ns)`` sorts, O(n log n).
    A probe costs O(namespaces) set lookups (rate limits are lifted once per
    namespace) plus one send and the wait for the answer.
    """

    def __init__(self, kernel: NamespaceOwner) -> None:
        self._kernel = kernel
        self._lock = threading.Lock()
        self._listeners: dict[str, dict[Listener, RunningListener]] = {}
        self._probers: dict[str, NamespaceProber] = {}
        self._captures: dict[str, list[PacketCapture]] = {}
        #: namespaces whose ICMP error rate limits are already lifted
        self._relaxed: set[str] = set()
        #: DNS servers (netsim.kernel.linux.traffic_dns), closed with their namespace
        self.dns = DnsServers()

    def _check_namespace(self, ns: str) -> None:
        """ENOENT unless ``ns`` is one of the kernel's own namespaces."""
        if ns not in self._kernel.namespaces():
            raise kernel_error(errno.ENOENT, f"no namespace {ns!r}")

    # --- listeners --------------------------------------------------------------
    def add_listener(self, ns: str, listener: Listener) -> None:
        """Bind and serve; EADDRINUSE when taken, EINVAL when malformed."""
        check_listener(listener)
        self._check_namespace(ns)
        with self._lock:
            held = self._listeners.setdefault(ns, {})
            # same address and port whatever forward_to says: wildcard UDP sockets set
            # SO_REUSEADDR (for the DNS resolver beside them), so bind would not refuse it
            if any((h.proto, h.port, h.addr) == (listener.proto, listener.port, listener.addr) for h in held):
                raise kernel_error(
                    errno.EADDRINUSE, f"{listener.proto} {listener.addr}:{listener.port} already listening in {ns!r}"
                )
            held[listener] = RunningListener(ns, listener)

    def delete_listener(self, ns: str, listener: Listener) -> None:
        """Stop and close it; ENOENT when no such listener is held."""
        self._check_namespace(ns)
        with self._lock:
            running = self._listeners.get(ns, {}).pop(listener, None)
        if running is None:
            raise kernel_error(errno.ENOENT, f"no {listener.proto} listener {listener.addr}:{listener.port} in {ns!r}")
        running.stop()

    def listeners(self, ns: str) -> list[Listener]:
        """Listeners of ``ns`` sorted by protocol, port and address."""
        self._check_namespace(ns)
        with self._lock:
            held = list(self._listeners.get(ns, {}))
        return sorted(held, key=lambda item: (item.proto, item.port, item.addr))

    # --- probes -----------------------------------------------------------------
    def _prober(self, ns: str) -> NamespaceProber:
        with self._lock:
            prober = self._probers.get(ns)
        if prober is not None:
            return prober
        self._check_namespace(ns)
        with self._lock:
            return self._probers.setdefault(ns, NamespaceProber(ns))

    def _relax_icmp_limits(self) -> None:
        """Lift ICMP error rate limits in every namespace of the kernel, once each.

        Any namespace may be the one answering (a target's port unreachable, a
        router's net unreachable), and Linux drops all but a burst of those
        answers per second: probe results would depend on timing.
        """
        with self._lock:
            pending = [ns for ns in self._kernel.namespaces() if ns not in self._relaxed]
        for ns in pending:
            with contextlib.suppress(KernelNotFoundError):  # deleted meanwhile
                relax_icmp_rate_limits(ns)
                with self._lock:
                    self._relaxed.add(ns)

    def probe(
        self,
        ns: str,
        dst: str,
        proto: Proto = "icmp",
        port: int | None = None,
        timeout: float = 1.0,
        src: str | None = None,
    ) -> ProbeResult:
        """One probe from ``ns``; returns within ``timeout`` (plus scheduling slack)."""
        if proto != "icmp" and port is None:
            raise kernel_error(errno.EINVAL, f"a {proto} probe needs a port")
        prober = self._prober(ns)
        self._relax_icmp_limits()
        return prober.probe(dst, proto, port, timeout, src)

    # --- capture ----------------------------------------------------------------
    @contextlib.contextmanager
    def capture(self, ns: str, ifaces: list[str], path: str) -> Iterator[None]:
        """Write frames crossing ``ifaces`` of ``ns`` to the pcap ``path`` during the block."""
        self._check_namespace(ns)
        running = PacketCapture(ns, list(ifaces), path)
        with self._lock:
            self._captures.setdefault(ns, []).append(running)
        try:
            yield
        finally:
            with self._lock:
                held = self._captures.get(ns, [])
                if running in held:
                    held.remove(running)
            running.stop()

    # --- teardown ---------------------------------------------------------------
    def close_namespace(self, ns: str) -> None:
        """Close every socket and thread held in ``ns``. Idempotent; no check on ``ns``."""
        with self._lock:
            listeners = list(self._listeners.pop(ns, {}).values())
            prober = self._probers.pop(ns, None)
            captures = self._captures.pop(ns, [])
            self._relaxed.discard(ns)
        for running in listeners:
            running.stop()
        if prober is not None:
            prober.close()
        for capture in captures:
            capture.stop()
        self.dns.close_namespace(ns)

    def close(self) -> None:
        """Close everything in every namespace. Idempotent."""
        with self._lock:
            held = set(self._listeners) | set(self._probers) | set(self._captures)
        for ns in sorted(held | set(self.dns.namespaces())):
            self.close_namespace(ns)
        self.dns.close()  # and its serving thread

    def open_namespaces(self) -> list[str]:
        """Namespaces in which this manager still holds a socket (for leak checks)."""
        with self._lock:
            held = {
                ns
                for ns in set(self._listeners) | set(self._probers) | set(self._captures)
                if self._listeners.get(ns) or ns in self._probers or self._captures.get(ns)
            }
        return sorted(held | set(self.dns.namespaces()))
