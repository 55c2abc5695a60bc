"""A simulated host: the namespace a controller and its drivers act in.

On both kernels a host is a namespace (never the root namespace). Its uplink
``eth0`` leads to an *outside* namespace standing for the world beyond the
host, addressed from the benchmarking range 198.18.0.0/15 (RFC 2544) so that
nothing in a simulation resembles a real network.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from netsim.kernel.base import Kernel

OUTSIDE_SUBNET = "198.18.0.0/15"


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

    @property
    def host_ip(self) -> str:
        """The host's address as seen from outside (published ports land here)."""
        return self.uplink_address.split("/")[0]
