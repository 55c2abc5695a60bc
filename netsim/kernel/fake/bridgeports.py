"""The ports of one fake bridge, with what Linux derives from them.

An unpinned Linux bridge runs at its ports' smallest MTU and, without an
explicit MAC, takes its ports' smallest MAC. Recomputing those on every
join or leave is O(ports), which makes setting up N containers on one
bridge O(N^2); this index keeps both answers at O(log ports) per change.
The MACs sit in a binary heap with lazy deletion (heapq is C; a sorted
list costs several times more per change on this per-endpoint path).
"""

from __future__ import annotations

import heapq
from collections import Counter

from netsim.kernel.fake.state import FakeLink


class BridgePorts:
    """Ports of one bridge. Membership O(1); add, remove and MTU/MAC changes
    O(log ports) amortized for the MAC heap plus O(distinct MTUs) for the
    minimum MTU (a handful in practice).

    >>> from netsim.kernel.fake.state import FakeNamespace
    >>> space = FakeNamespace("ns")
    >>> a = FakeLink("a", "veth", 2, "02:00:00:00:00:0b", space, mtu=9000)
    >>> b = FakeLink("b", "veth", 3, "02:00:00:00:00:0a", space, mtu=1400)
    >>> ports = BridgePorts()
    >>> ports.add(a); ports.add(b)
    >>> ports.min_mtu(), ports.min_mac()
    (1400, '02:00:00:00:00:0a')
    >>> ports.remove(b)
    >>> ports.min_mtu(), ports.min_mac(), len(ports)
    (9000, '02:00:00:00:00:0b', 1)
    >>> ports._check()
    """

    def __init__(self) -> None:
        self._members: dict[FakeLink, None] = {}
        self._mtus: Counter[int] = Counter()
        #: members' MACs, each as often as members have it
        self._macs: Counter[str] = Counter()
        #: a heap of MACs: every member's MAC, plus stale ones dropped when they surface
        self._mac_heap: list[str] = []

    def __len__(self) -> int:
        return len(self._members)

    def __contains__(self, link: object) -> bool:
        return link in self._members

    def members(self) -> list[FakeLink]:
        """In joining order."""
        return list(self._members)

    def add(self, port: FakeLink) -> None:
        if port in self._members:
            return
        self._members[port] = None
        self._mtus[port.mtu] += 1
        self._add_mac(port.mac)

    def remove(self, port: FakeLink) -> None:
        if port not in self._members:
            return
        del self._members[port]
        self._drop_mtu(port.mtu)
        self._drop_mac(port.mac)

    def _drop_mtu(self, mtu: int) -> None:
        self._mtus[mtu] -= 1
        if self._mtus[mtu] == 0:
            del self._mtus[mtu]

    def mtu_changed(self, old: int, new: int) -> None:
        """A member's MTU went from ``old`` to ``new`` (call after the change)."""
        self._drop_mtu(old)
        self._mtus[new] += 1

    def mac_changed(self, old: str, new: str) -> None:
        self._drop_mac(old)
        self._add_mac(new)

    def _add_mac(self, mac: str) -> None:
        self._macs[mac] += 1
        heapq.heappush(self._mac_heap, mac)

    def _drop_mac(self, mac: str) -> None:
        self._macs[mac] -= 1
        if not self._macs[mac]:
            del self._macs[mac]
        # Stale entries leave when they reach the top (min_mac); rebuild before
        # they outnumber the live ones, so memory stays O(ports).
        if len(self._mac_heap) > 2 * len(self._members) + 16:
            self._mac_heap = list(self._macs.elements())
            heapq.heapify(self._mac_heap)

    def min_mtu(self) -> int | None:
        return min(self._mtus) if self._mtus else None

    def min_mac(self) -> str | None:
        heap, live = self._mac_heap, self._macs
        while heap:
            top = heap[0]
            if top in live:  # copies of a MAC still held by a member count as live
                return top
            heapq.heappop(heap)
        return None

    def _check(self) -> None:
        """Invariant: the derived indexes match the members."""
        assert Counter(p.mtu for p in self._members) == self._mtus
        assert self._macs == Counter(p.mac for p in self._members)
        assert not +(self._macs - Counter(self._mac_heap)), "a member's MAC is missing from the heap"
