"""One IPAM allocation shared by every host of a cluster.

libnetwork allocates a global-scope network's pools once, on the manager, and
every node uses them. Here each host's controller still runs its own
create_network, so :class:`SharedIpam` wraps one IPAM instance: while the
first host creates the network it *records* the pool and gateway/aux answers,
the other hosts *replay* them, and every hand-out is reference counted so the
real release happens when the last host lets go. Endpoint addresses come
from the one inner instance, so no two hosts ever hold the same address.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping
from typing import Any

from netsim.driverapi import IPAddress, IPInterface, IPNetwork
from netsim.errors import ConflictError, InvalidParameterError
from netsim.ipamapi import Ipam, IpamCapability

Call = tuple[str, tuple[Any, ...], Any]


class SharedIpam(Ipam):
    """Reference-counted, record/replay wrapper of ``inner``; pools come from
    its global address space. Every call is O(1) beside the inner call."""

    def __init__(self, inner: Ipam) -> None:
        self.inner = inner
        self._pool_refs: Counter[str] = Counter()
        self._address_refs: Counter[tuple[str, str]] = Counter()
        self._recording: list[Call] | None = None
        self._replay: list[Call] | None = None
        self._lock = threading.RLock()

    # --- record / replay (driven by the cluster around create_network) ----------------------
    def start_recording(self) -> None:
        with self._lock:
            self._recording, self._replay = [], None

    def stop_recording(self) -> list[Call]:
        with self._lock:
            recorded, self._recording = self._recording or [], None
            return recorded

    def start_replay(self, calls: list[Call]) -> None:
        with self._lock:
            self._replay, self._recording = list(calls), None

    def stop_replay(self) -> None:
        with self._lock:
            left, self._replay = self._replay or [], None
        if left:
            raise ConflictError(f"shared IPAM: {len(left)} recorded allocation(s) were not replayed")

    def _answer(self, kind: str, args: tuple[Any, ...], call: Any) -> Any:
        with self._lock:
            if self._replay is not None:
                if not self._replay or self._replay[0][:2] != (kind, args):
                    expected = self._replay[0][:2] if self._replay else "nothing"
                    raise ConflictError(f"shared IPAM: host asked {kind}{args}, the first host asked {expected}")
                return self._replay.pop(0)[2]
            result = call()
            if self._recording is not None:
                self._recording.append((kind, args, result))
            return result

    # --- the Ipam contract ---------------------------------------------------------------------
    def get_default_address_spaces(self) -> tuple[str, str]:
        _, global_space = self.inner.get_default_address_spaces()
        return global_space, global_space

    def request_pool(
        self, address_space: str, pool: str, sub_pool: str, options: Mapping[str, str], v6: bool
    ) -> tuple[str, IPNetwork, dict[str, str]]:
        args = (address_space, pool, sub_pool, tuple(sorted(options.items())), v6)
        result: tuple[str, IPNetwork, dict[str, str]] = self._answer(
            "pool", args, lambda: self.inner.request_pool(address_space, pool, sub_pool, options, v6)
        )
        with self._lock:
            self._pool_refs[result[0]] += 1
        return result

    def release_pool(self, pool_id: str) -> None:
        with self._lock:
            if self._pool_refs[pool_id] > 1:
                self._pool_refs[pool_id] -= 1
                return
            self._pool_refs.pop(pool_id, None)
        self.inner.release_pool(pool_id)

    def request_address(
        self, pool_id: str, preferred: IPAddress | None, options: Mapping[str, str]
    ) -> tuple[IPInterface, dict[str, str]]:
        args = (pool_id, str(preferred) if preferred else None, tuple(sorted(options.items())))
        result: tuple[IPInterface, dict[str, str]] = self._answer(
            "address", args, lambda: self.inner.request_address(pool_id, preferred, options)
        )
        if result is not None and result[0] is not None:
            with self._lock:
                self._address_refs[(pool_id, str(result[0].ip))] += 1
        return result

    def release_address(self, pool_id: str, address: IPAddress) -> None:
        key = (pool_id, str(address))
        with self._lock:
            if self._address_refs[key] > 1:
                self._address_refs[key] -= 1
                return
            self._address_refs.pop(key, None)
        self.inner.release_address(pool_id, address)

    def is_builtin(self) -> bool:
        return self.inner.is_builtin()

    def capabilities(self) -> IpamCapability:
        capability = self.inner.capabilities()
        if not isinstance(capability, IpamCapability):
            raise InvalidParameterError("shared IPAM: the inner driver's capabilities are malformed")
        return capability

    def held(self) -> tuple[int, int]:
        """``(pools, addresses)`` still referenced: both 0 once every host let go."""
        with self._lock:
            return sum(self._pool_refs.values()), sum(self._address_refs.values())
