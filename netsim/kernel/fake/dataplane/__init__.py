"""The fake kernel's dataplane: real scapy packets walk the in-memory model
(:mod:`netsim.kernel.fake.state`) as Linux would move them.

``probe`` sends one packet and reports what came back, with a hop-by-hop
trace; ``capture`` writes what crosses chosen links to a pcap file.
Modules: ``walk`` (event loop), ``links`` (veth, loopback, vlan), ``bridge``,
``macvlan``, ``vxlan``, ``stack`` (IP input/forward/output), ``routing``,
``neighbour`` (ARP/ND), ``nat`` (conntrack), ``filters``, ``sockets``
(listeners, the probe socket), ``pcap``, ``packets`` (scapy helpers).
"""

from __future__ import annotations

from netsim.kernel.fake.dataplane.pcap import capture
from netsim.kernel.fake.dataplane.probe import probe

__all__ = ["capture", "probe"]
