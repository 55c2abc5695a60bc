"""FakeKernel: an in-memory Linux network stack behind the Kernel contract.

The control plane (this package) changes a :class:`FakeWorld` the way
netlink and nftables calls change Linux; the dataplane
(:mod:`netsim.kernel.fake.dataplane`) moves scapy packets through the same
world. Errnos are Linux's; ``tests/linux/test_kernel_contract.py`` runs the
same assertions on both kernels. Accepted divergences are listed in
:mod:`netsim.kernel.divergences`; the model's simplifications, each with its
reason, in :mod:`netsim.kernel.fake.modelling`.

>>> kernel = FakeKernel("doctest")
>>> ns = kernel.ns("h1")
>>> kernel.add_namespace(ns)
>>> kernel.add_veth(ns, "eth0", "peer0")
>>> kernel.set_link_up(ns, "eth0")
>>> kernel.add_address(ns, "eth0", "10.0.0.2/24")
>>> [(r.dst, r.dev, r.proto) for r in kernel.routes(ns) if r.family == 4]
[('10.0.0.0/24', 'eth0', 'kernel')]
>>> kernel.close()
>>> kernel.namespaces()
[]
"""

from __future__ import annotations

import contextlib
import errno
import functools
import ipaddress
from collections.abc import Mapping

from netsim.errors import InvalidParameterError, kernel_error
from netsim.kernel.base import Listener, ProbeResult, Proto
from netsim.kernel.dns import DNS_PORT, RESOLVE_TIMEOUT, RESOLVER_ADDRESS, DnsLookup, DnsResult
from netsim.kernel.fake import l3sync
from netsim.kernel.fake.layer3 import Layer3Mixin
from netsim.kernel.fake.links import LinksMixin
from netsim.kernel.fake.state import FakeLink, FakeNamespace
from netsim.kernel.fake.tables import TablesMixin, check_listener
from netsim.naming import check_nsname

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@functools.lru_cache(maxsize=64)
def _dns_socket(addr: str) -> tuple[IPAddress, str, Listener]:
    """A DNS server's address checked as a UDP listener's, its text, and the
    listener it would clash with (memoized: a resolver goes into every
    container at 127.0.0.11, 10,000 of them in one recovery)."""
    address = check_listener(Listener("udp", DNS_PORT, addr))
    return address, str(address), Listener("udp", DNS_PORT, str(address))


class FakeKernel(LinksMixin, Layer3Mixin, TablesMixin):
    """The in-memory kernel. All state lives in ``self.world``."""

    kind = "fake"

    def __init__(self, run_id: str | None = None) -> None:
        super().__init__(run_id)
        self._init_world()

    # --- namespaces ---------------------------------------------------------------
    def add_namespace(self, name: str) -> None:
        if not isinstance(name, str) or not name.startswith(self.prefix):
            raise InvalidParameterError(
                f"refusing namespace {name!r}: namespaces must start with this run's prefix {self.prefix!r}"
            )
        check_nsname(name)
        if name in self.world.namespaces:
            raise kernel_error(errno.EEXIST, f"namespace {name!r} exists")
        space = FakeNamespace(name)
        self.world.namespaces[name] = space
        # every namespace has lo, down and without addresses until it first goes up
        lo = FakeLink(name="lo", kind="loopback", ifindex=1, mac="00:00:00:00:00:00", ns=space, mtu=65536)
        space.links["lo"] = lo
        l3sync.arrive_link(space, lo)

    def delete_namespace(self, name: str) -> None:
        space = self._ns(name)
        doomed: list[FakeLink] = []
        seen: set[int] = set()
        for link in list(space.links.values()):
            for victim in self._doomed_with(link):
                if id(victim) not in seen:
                    seen.add(id(victim))
                    doomed.append(victim)
        self._destroy(doomed)
        del self.world.namespaces[name]
        self._local_tables.discard(name)

    def namespaces(self) -> list[str]:
        return sorted(self.world.namespaces)

    # --- packets: the dataplane ------------------------------------------------------
    def probe(
        self,
        ns: str,
        dst: str,
        proto: Proto = "icmp",
        port: int | None = None,
        timeout: float = 1.0,
        src: str | None = None,
    ) -> ProbeResult:
        from netsim.kernel.fake.dataplane import probe as dataplane_probe

        self._ns(ns)
        return dataplane_probe(self.world, ns, dst, proto, port, timeout, src)

    def link_names(self, ns: str) -> list[str]:
        """The names :meth:`links` lists, without building its LinkInfo views."""
        return sorted(self._ns(ns).links)

    # --- DNS servers: netsim.kernel.fake.dataplane.dns --------------------------------
    def add_dns_server(self, ns: str, addr: str, lookup: DnsLookup) -> None:
        space = self._ns(ns)
        address, text, socket = _dns_socket(addr) if addr.__class__ is str else _dns_socket.__wrapped__(addr)
        if text in space.dns_servers or socket in space.listeners:
            raise kernel_error(errno.EADDRINUSE, f"udp {addr}:{DNS_PORT} is taken in {ns!r}")
        lo = space.links.get("lo")
        on_lo = address.is_loopback and lo is not None and any(a.ip.is_loopback for a in lo.addresses)
        if not on_lo and not self._bindable(space, address):  # 127/8 is bound through lo's 127.0.0.1/8
            raise kernel_error(errno.EADDRNOTAVAIL, f"{addr} is not an address of namespace {ns!r}")
        space.dns_servers[text] = lookup

    def delete_dns_server(self, ns: str, addr: str) -> None:
        if self._ns(ns).dns_servers.pop(addr, None) is None:
            raise kernel_error(errno.ENOENT, f"no DNS server on {addr} in {ns!r}")

    def dns_servers(self, ns: str) -> list[str]:
        return sorted(self._ns(ns).dns_servers)

    def resolve(
        self, ns: str, name: str, qtype: str = "A", server: str = RESOLVER_ADDRESS, timeout: float = RESOLVE_TIMEOUT
    ) -> DnsResult:
        from netsim.kernel.fake.dataplane import dns

        return dns.resolve(self.world, ns, name, qtype, server, timeout)

    def capture(self, ns: str, ifaces: list[str], path: str) -> contextlib.AbstractContextManager[None]:
        from netsim.kernel.fake.dataplane import capture as dataplane_capture

        self._ns(ns)
        return dataplane_capture(self.world, ns, ifaces, path)

    # --- whole kernel -----------------------------------------------------------------
    def explicit_macs(self) -> Mapping[tuple[str, str], str]:
        current = {}
        for (ns, name), mac in self.world.explicit_macs.items():
            space = self.world.namespaces.get(ns)
            link = space.links.get(name) if space is not None else None
            if link is not None and link.mac == mac:
                current[(ns, name)] = mac
        return current

    def _check(self) -> None:
        """Assert the world's invariants (see :mod:`netsim.kernel.fake.invariants`)."""
        from netsim.kernel.fake.invariants import check_kernel

        check_kernel(self)

    def close(self) -> None:
        """Delete every namespace (idempotent)."""
        for name in list(self.world.namespaces):
            self.delete_namespace(name)
