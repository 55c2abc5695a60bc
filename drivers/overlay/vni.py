"""VXLAN network identifiers, allocated in the global store (libnetwork's
ovmanager keeps them in a cluster-wide id manager).

Two keys per allocation, both written with compare-and-set so that several
hosts sharing one store never hand out the same VNI:
``overlay/vni/<vni>`` → network id, ``overlay/network/<nid>`` → vni.
"""

from __future__ import annotations

from netsim.errors import ConflictError, InvalidParameterError, NoSpaceError, NotFoundError
from netsim.store import MUST_NOT_EXIST, KVStore

#: libnetwork's vxlanIDStart / vxlanIDEnd
FIRST_VNI = 4096
LAST_VNI = (1 << 24) - 1
VNI_PREFIX = "overlay/vni/"
NETWORK_PREFIX = "overlay/network/"


def parse_vni(text: str) -> int:
    """A VNI from libnetwork's ``vxlanid_list`` option (first of a comma list)."""
    first = str(text).split(",")[0].strip()
    if not first.isdigit() or not 1 <= int(first) <= LAST_VNI:
        raise InvalidParameterError(f"invalid VXLAN id {text!r}: expected an integer 1-{LAST_VNI}")
    return int(first)


class VniAllocator:
    """VNIs of a (possibly shared) store.

    ``allocate`` costs O(k log k) for k allocated VNIs (one sorted prefix
    listing); ``free`` and ``lookup`` O(log n).

    >>> from netsim.store import MemoryStore
    >>> vnis = VniAllocator(MemoryStore())
    >>> vnis.allocate("a" * 64), vnis.allocate("b" * 64)
    (4096, 4097)
    >>> vnis.free("a" * 64), vnis.allocate("c" * 64)
    (4096, 4096)
    """

    def __init__(self, store: KVStore) -> None:
        self.store = store

    def lookup(self, nid: str) -> int | None:
        if not self.store.exists(NETWORK_PREFIX + nid):
            return None
        return int(self.store.get(NETWORK_PREFIX + nid).value)

    def owner(self, vni: int) -> str | None:
        key = f"{VNI_PREFIX}{vni}"
        return self.store.get(key).value if self.store.exists(key) else None

    def allocate(self, nid: str, wanted: int | None = None) -> int:
        """Claim ``wanted`` (ConflictError if taken) or the lowest free VNI."""
        if self.lookup(nid) is not None:
            raise ConflictError(f"overlay network {nid[:12]!r} already has VXLAN id {self.lookup(nid)}")
        while True:
            vni = wanted if wanted is not None else self._lowest_free()
            try:
                self.store.put(f"{VNI_PREFIX}{vni}", nid, previous_version=MUST_NOT_EXIST)
            except ConflictError:
                if wanted is not None:
                    raise ConflictError(f"VXLAN id {vni} is already used by network {self.owner(vni)!r}") from None
                continue  # another host took it between the scan and the claim
            try:
                self.store.put(NETWORK_PREFIX + nid, str(vni), previous_version=MUST_NOT_EXIST)
            except ConflictError:
                self.store.delete(f"{VNI_PREFIX}{vni}")
                raise
            return vni

    def _lowest_free(self) -> int:
        used = sorted(int(pair.key[len(VNI_PREFIX) :]) for pair in self.store.list(VNI_PREFIX))
        candidate = FIRST_VNI
        for vni in used:
            if vni < candidate:
                continue
            if vni > candidate:
                break
            candidate += 1
        if candidate > LAST_VNI:
            raise NoSpaceError("no free VXLAN id left")
        return candidate

    def free(self, nid: str) -> int:
        vni = self.lookup(nid)
        if vni is None:
            raise NotFoundError(f"overlay network {nid[:12]!r} has no VXLAN id allocated")
        self.store.delete(f"{VNI_PREFIX}{vni}")
        self.store.delete(NETWORK_PREFIX + nid)
        return vni
