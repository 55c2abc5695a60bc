"""Peer records: what one host tells the others about an endpoint it joined.

libnetwork's overlay driver publishes a ``PeerRecord`` (endpoint IP with its
prefix, endpoint MAC, tunnel endpoint IP) in the ``overlay_peer_table`` of
networkdb; every other host turns it into a VXLAN FDB entry and a permanent
neighbour (``peerAdd``). Here the value is JSON bytes with libnetwork's field
names, so ``network inspect --verbose`` style decoding reads the same.
"""

from __future__ import annotations

import ipaddress
import json
from collections import Counter
from dataclasses import dataclass

from netsim.driverapi import IPInterface
from netsim.errors import InvalidParameterError
from netsim.validate import parse_mac

PEER_TABLE = "overlay_peer_table"


@dataclass(frozen=True)
class PeerRecord:
    """One endpoint as the other hosts see it.

    >>> record = PeerRecord(ipaddress.ip_interface("10.0.0.2/24"), "02:42:0a:00:00:02", "198.19.0.2")
    >>> PeerRecord.decode(record.encode()) == record
    True
    >>> record.decode_fields()
    {'Host IP': '198.19.0.2'}
    """

    address: IPInterface
    mac: str
    vtep: str
    #: the endpoint's IPv6 address on a dual-stack overlay (libnetwork's record has one
    #: address field; netsim adds ``EndpointIPv6`` so that ND is answered from the table too)
    address_ipv6: IPInterface | None = None

    def encode(self) -> bytes:
        body = {"EndpointIP": str(self.address), "EndpointMAC": self.mac, "TunnelEndpointIP": self.vtep}
        if self.address_ipv6 is not None:
            body["EndpointIPv6"] = str(self.address_ipv6)
        return json.dumps(body, sort_keys=True).encode()

    def addresses(self) -> list[IPInterface]:
        """The endpoint's addresses, IPv4 first."""
        return [self.address] if self.address_ipv6 is None else [self.address, self.address_ipv6]

    @classmethod
    def decode(cls, value: bytes) -> PeerRecord:
        """Parse a table value; anything malformed is InvalidParameterError."""
        try:
            body = json.loads(bytes(value).decode())
            if not isinstance(body, dict):
                raise TypeError("not a JSON object")
            address = ipaddress.ip_interface(str(body["EndpointIP"]))
            vtep = ipaddress.ip_address(str(body["TunnelEndpointIP"]))
            mac = parse_mac(str(body["EndpointMAC"]))
            address6 = ipaddress.ip_interface(str(body["EndpointIPv6"])) if "EndpointIPv6" in body else None
        except (UnicodeDecodeError, ValueError, TypeError, KeyError, InvalidParameterError) as exc:
            raise InvalidParameterError(f"malformed overlay peer record {bytes(value)[:80]!r}: {exc}") from exc
        if address.version != 4 or vtep.version != 4:
            raise InvalidParameterError(f"overlay peer record needs IPv4 endpoint and VTEP addresses, got {body!r}")
        if address6 is not None and address6.version != 6:
            raise InvalidParameterError(f"overlay peer record's EndpointIPv6 is not IPv6: {body!r}")
        return cls(address, mac, str(vtep), address6)

    def decode_fields(self) -> dict[str, str]:
        """What libnetwork's DecodeTableEntry shows for a peer."""
        return {"Host IP": self.vtep}


class FloodRefs:
    """A reference count per key: how many peers need one kernel entry.

    The overlay keys it by ``(VTEP, MAC)`` as libnetwork's ``fdbCnt``: the FDB
    entry MAC → VTEP lives while at least one peer needs it. O(1) per operation.

    >>> refs = FloodRefs()
    >>> refs.add("198.19.0.3"), refs.add("198.19.0.3"), refs.remove("198.19.0.3"), refs.remove("198.19.0.3")
    (True, False, False, True)
    >>> refs.count("198.19.0.3")
    0
    """

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()

    def add(self, vtep: str) -> bool:
        """Count one more peer; True when it is the VTEP's first."""
        self._counts[vtep] += 1
        return self._counts[vtep] == 1

    def remove(self, vtep: str) -> bool:
        """Count one peer less; True when it was the VTEP's last."""
        if self._counts[vtep] <= 0:
            raise InvalidParameterError(f"no overlay peer counted behind VTEP {vtep}")
        self._counts[vtep] -= 1
        if self._counts[vtep] == 0:
            del self._counts[vtep]
            return True
        return False

    def count(self, vtep: str) -> int:
        return self._counts.get(vtep, 0)

    def vteps(self) -> list[str]:
        return sorted(self._counts)

    def _check(self) -> None:
        assert all(count > 0 for count in self._counts.values()), self._counts
