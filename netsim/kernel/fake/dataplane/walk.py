"""The event loop one probe runs in: a FIFO of frame deliveries on a virtual clock.

Every delivery is ``(time, link, frame)``: the frame arrives on ``link``. Equal
hop latencies keep the FIFO in time order; slower events (neighbour
resolution giving up after 3 s, like Linux's 3 solicitations 1 s apart) are
timers that fire when the FIFO runs dry. Nothing sleeps, nothing threads: the
walk of one probe is a pure function of the world it reads and updates.
"""

from __future__ import annotations

import heapq
import ipaddress
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from scapy.packet import Packet

from netsim.kernel.base import TraceHop
from netsim.kernel.fake.dataplane.packets import describe

if TYPE_CHECKING:
    from netsim.kernel.fake.state import FakeLink, FakeNamespace, FakeWorld, IPAddr

#: virtual time one hop takes (seconds): enough for rtt to read as a small value
HOP_DELAY = 1e-6
#: Linux gives up resolving a neighbour after mcast_solicit (3) x retrans (1 s)
NEIGHBOUR_GIVE_UP = 3.0
#: a broadcast storm (bridges looped without STP) is cut here and reported
MAX_DELIVERIES = 20_000


@dataclass
class Walk:
    """One probe's run through the world.

    Complexity: each delivery is O(1) to queue and pop; timers are a heap,
    O(log t). Trace summaries are cached per frame object until it changes.

    >>> from netsim.kernel.fake.state import FakeLink, FakeNamespace, FakeWorld
    >>> world = FakeWorld()
    >>> ns = world.namespaces["n"] = FakeNamespace("n")
    >>> lo = ns.links["lo"] = FakeLink("lo", "loopback", 1, "00:00:00:00:00:00", ns, up=True)
    >>> walk = Walk(world)
    >>> walk.deliver(lo, "first"); walk.deliver(lo, "second")
    >>> walk.after(3.0, lambda: walk.deliver(lo, "late"))
    >>> seen = []
    >>> walk.run(lambda w, link, frame: seen.append((frame, w.clock)), deadline=10.0)
    >>> [(frame, round(when, 6)) for frame, when in seen]
    [('first', 1e-06), ('second', 1e-06), ('late', 3.000001)]
    >>> walk._check()
    """

    world: FakeWorld
    clock: float = 0.0
    deliveries: deque[tuple[float, FakeLink, Packet]] = field(default_factory=deque)
    timers: list[tuple[float, int, Callable[[], None]]] = field(default_factory=list)
    trace: list[TraceHop] = field(default_factory=list)
    #: set by the probe socket when its answer arrived: stops the loop
    done: bool = False
    steps: int = 0
    _timer_seq: int = 0
    _summaries: dict[int, tuple[Packet, str]] = field(default_factory=dict)
    #: (namespace, dev, neighbour ip) -> [(IP packet, was it forwarded)] parked until resolved
    pending: dict[tuple[str, str, str], list[tuple[Packet, bool]]] = field(default_factory=dict)
    #: ids of conntrack entries created for the packet now walking, not yet confirmed
    fresh: set[int] = field(default_factory=set)
    #: per-walk cache of macvlan children by parent (built lazily: links do not change mid-walk)
    _children: dict[int, list[FakeLink]] | None = None
    #: what the sockets module needs to recognise the probe's answer
    socket: Any = None
    #: parsed addresses and each namespace's local addresses, cached for the walk
    _addresses: dict[str, IPAddr] = field(default_factory=dict)
    _locals: dict[int, frozenset[IPAddr]] = field(default_factory=dict)

    # --- scheduling -------------------------------------------------------------
    def deliver(self, link: FakeLink, frame: Packet) -> None:
        """Queue ``frame`` to arrive on ``link`` one hop from now."""
        self.deliveries.append((self.clock + HOP_DELAY, link, frame))

    def after(self, delay: float, action: Callable[[], None]) -> None:
        self._timer_seq += 1
        heapq.heappush(self.timers, (self.clock + delay, self._timer_seq, action))

    def run(self, receive: Callable[[Walk, FakeLink, Packet], None], deadline: float) -> None:
        """Process deliveries (and then timers) until done, idle or past ``deadline``."""
        while not self.done:
            if self.deliveries:
                when, link, frame = self.deliveries.popleft()
                if when > deadline:
                    return
                self.clock = when
                self.steps += 1
                if self.steps > MAX_DELIVERIES:
                    self.hop(link.ns, link, "drop", f"walk stopped after {MAX_DELIVERIES} deliveries (loop?)", frame)
                    return
                receive(self, link, frame)
            elif self.timers:
                when, _, action = heapq.heappop(self.timers)
                if when > deadline:
                    return
                self.clock = when
                action()
            else:
                return

    def _check(self) -> None:
        """Invariants: nothing queued in the past, FIFO times never decrease,
        timers form a heap, the delivery budget holds."""
        times = [when for when, _, _ in self.deliveries]
        assert all(when >= self.clock for when in times), "a delivery is queued in the past"
        assert times == sorted(times), "deliveries out of time order"
        assert all(self.timers[(i - 1) // 2] <= self.timers[i] for i in range(1, len(self.timers)))
        assert self.steps <= MAX_DELIVERIES + 1

    # --- trace ------------------------------------------------------------------
    def summary(self, pkt: Packet) -> str:
        cached = self._summaries.get(id(pkt))
        if cached is not None and cached[0] is pkt:
            return cached[1]
        text = describe(pkt)
        self._summaries[id(pkt)] = (pkt, text)
        return text

    def changed(self, pkt: Packet) -> None:
        """Forget the cached summary of a packet rewritten in place."""
        self._summaries.pop(id(pkt), None)
        if pkt.underlayer is not None:
            self._summaries.pop(id(pkt.underlayer), None)

    def hop(
        self, ns: FakeNamespace, link: FakeLink | None, action: str, detail: str = "", pkt: Packet | None = None
    ) -> None:
        summary = self.summary(pkt) if pkt is not None else ""
        self.trace.append(TraceHop(ns.name, link.name if link is not None else None, action, detail, summary))

    # --- addresses (cached for the walk: the control plane does not run mid-walk) ---
    def address(self, text: str) -> IPAddr:
        found = self._addresses.get(text)
        if found is None:
            found = self._addresses[text] = ipaddress.ip_address(text)
        return found

    def is_local(self, ns: FakeNamespace, addr: IPAddr) -> bool:
        """Linux's weak host model: any address of a link that is up, 127/8 on lo."""
        local = self._locals.get(id(ns))
        if local is None:
            local = self._locals[id(ns)] = frozenset(
                iface.ip for link in ns.links.values() if link.up for iface in link.addresses
            )
        return addr in local or (addr.version == 4 and addr.is_loopback and _loopback_up(ns))

    # --- topology helpers (cached for the walk) -------------------------------------
    def macvlans_of(self, parent: FakeLink) -> list[FakeLink]:
        """Macvlan, vlan and ipvlan links whose parent is ``parent``, in any namespace."""
        if self._children is None:
            children: dict[int, list[FakeLink]] = {}
            for ns in self.world.namespaces.values():
                for link in ns.links.values():
                    if link.kind in ("macvlan", "vlan", "ipvlan") and link.parent is not None:
                        children.setdefault(id(link.parent), []).append(link)
            self._children = children
        return self._children.get(id(parent), [])


def _loopback_up(ns: FakeNamespace) -> bool:
    return any(link.kind == "loopback" and link.up for link in ns.links.values())
