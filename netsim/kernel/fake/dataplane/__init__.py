"""The fake kernel's dataplane: real scapy packets walk the in-memory model
(:mod:`netsim.kernel.fake.state`) as Linux would move them.

``probe`` sends one packet and reports what came back, with a hop-by-hop
trace; ``capture`` writes what crosses chosen links to a pcap file.
Modules: ``walk`` (event loop), ``links`` (veth, loopback, vlan), ``bridge``,
``macvlan``, ``ipvlan``, ``vxlan``, ``stack`` (IP input/forward/output), ``routing``,
``neighbour`` (ARP/ND), ``nat`` (conntrack), ``filters``, ``sockets``
(listeners, the probe socket), ``pcap``, ``packets`` (scapy helpers).

Where the real kernel answers differently (checked by
tests/linux/test_reachability_agreement.py):

* ICMP "no route" errors a router sends come from Linux's ip_error(), rate
  limited machine-wide (net.ipv4.route.error_cost/error_burst: a burst of 5
  per peer, then 1/s); the fake sends every one.
* IPv6 right after links come up: Linux runs DAD on link-local addresses
  (~1-2 s) and a router cannot resolve IPv6 neighbours meanwhile; the fake
  has no DAD, so routed IPv6 works at once.
* Bridged frames never pass IP-layer NAT (no br_netfilter, as with
  nftables): a hairpin to a published port needs a masquerade on the bridge,
  on both kernels.
* A bridge loop without STP storms on Linux; the fake cuts a walk after
  20,000 deliveries and reports it in the trace.
"""

from __future__ import annotations

from netsim.kernel.fake.dataplane.pcap import capture
from netsim.kernel.fake.dataplane.probe import probe

__all__ = ["capture", "probe"]
