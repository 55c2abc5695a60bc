"""A simulated host: the namespace a controller and its drivers act in.

On both kernels a host is a namespace (never the root namespace). Its uplink
``eth0`` leads to an *outside* namespace standing for the world beyond the
host, addressed from the benchmarking ranges 198.18.0.0/15 (RFC 2544) and
2001:2::/48 (RFC 5180) so that nothing in a simulation resembles a real network.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from netsim.kernel.base import Kernel

OUTSIDE_SUBNET = "198.18.0.0/15"
OUTSIDE_SUBNET_V6 = "2001:2::/48"


@dataclass(frozen=True)
class Host:
    name: str
    kernel: Kernel
    #: the host's namespace: bridges, NAT rules and host-driver containers live here
    namespace: str
    #: the host's uplink link in ``namespace`` (leads to ``outside_namespace``)
    uplink: str = "eth0"
    #: uplink address with prefix, e.g. "198.18.0.2/24"
    uplink_address: str = "198.18.0.2/24"
    outside_namespace: str = ""
    #: the outside world's address on that LAN, e.g. "198.18.0.1"
    outside_address: str = "198.18.0.1"
    extra: dict[str, str] = field(default_factory=dict)
    #: the uplink's IPv6 address with prefix, e.g. "2001:2:0:0::2/64" ("" : none)
    uplink_address_v6: str = ""
    #: the outside world's IPv6 address on that LAN, e.g. "2001:2::1" ("": none)
    outside_address_v6: str = ""

    @property
    def host_ip(self) -> str:
        """The host's address as seen from outside (published ports land here)."""
        return self.uplink_address.split("/")[0]

    @property
    def host_ip_v6(self) -> str:
        """The host's IPv6 address as seen from outside ("" when it has none)."""
        return self.uplink_address_v6.split("/")[0]
