"""The fake kernel's modelling choices where it knowingly simplifies Linux.

The one list of divergences the agreement test tolerates is
:mod:`netsim.kernel.divergences`; this module records, for readers of the
fake, *why* the model looks the way it does, including choices that snapshot
normalization (netsim.kernel.snapshot) hides entirely. Observations are from
Linux 6.18 through pyroute2, in throwaway namespaces, and from the
differential runs of the contract tests (tests/linux/test_kernel_contract.py).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModellingNote:
    area: str
    fake: str
    linux: str
    reason: str


NOTES: tuple[ModellingNote, ...] = (
    # --- hidden by snapshot normalization -------------------------------------------
    ModellingNote(
        "IPv6 link-local routes",
        "no fe80::/64 route per link (the fe80:: address itself is there)",
        "one fe80::/64 route (metric 256) per up link with IPv6",
        "one route per link makes every route update O(links) in a host with thousands of "
        "veths; snapshots drop fe80 routes, and the dataplane needs no route for on-link fe80",
    ),
    ModellingNote(
        "IPv6 link-local addresses",
        "not stored in FakeLink.addresses; the addresses() view derives the EUI-64 fe80:: address "
        "of every link with carrier (FakeLink.oper_up) and IPv6 enabled",
        "created when the carrier comes up (asynchronously, through linkwatch) and removed on down",
        "building one IPv6Interface per link going up was 40% of a container endpoint setup; "
        "snapshots drop fe80, and the dataplane sources IPv6 from global addresses",
    ),
    ModellingNote(
        "random MACs and ifindexes",
        "MACs are 02:<salt>:<ifindex>; ifindexes are unique across the whole world",
        "MACs are random; ifindexes are per namespace",
        "deterministic runs; snapshots leave both out",
    ),
    # --- visible ---------------------------------------------------------------------
    ModellingNote(
        "namespace deletion",
        "synchronous: veth peers elsewhere and upper devices are gone when the call returns",
        "devices are destroyed by the cleanup_net workqueue, some milliseconds later",
        "a test must not depend on timing; contract tests wait for Linux to settle",
    ),
    ModellingNote(
        "802.1q VLANs",
        "supported",
        "EOPNOTSUPP on machines without the 8021q module (this CI machine)",
        "the model follows a kernel with 802.1q; the contract test skips on Linux without it",
    ),
    ModellingNote(
        "sysctls",
        "models net.ipv4.ip_forward (alias net.ipv4.conf.all.forwarding), "
        "net.ipv6.conf.all.forwarding and net.ipv6.conf.{all,default,<dev>}.disable_ipv6; "
        "other per-namespace keys are ENOENT",
        "every per-namespace key exists",
        "only these keys change what the dataplane does",
    ),
    ModellingNote(
        "listeners",
        "EADDRINUSE for the same address or a wildcard of the same family on that port; "
        "EADDRNOTAVAIL for an address no link of the namespace holds",
        "the socket layer decides (SO_REUSEADDR, IPV6_V6ONLY as set by netsim.kernel.linux)",
        "the rule reproduces what those socket options give for netsim's listeners",
    ),
    ModellingNote(
        "gateway validation",
        "IPv4 gateways need a link-scope route, IPv6 ones a route without a gateway; "
        "no onlink flag, no nexthop objects, no policy routing",
        "full fib_check_nh / ip6_validate_gw logic",
        "the contract exposes none of the omitted features",
    ),
    ModellingNote(
        "deleted connected routes",
        "come back at the link's next address change (connected routes are recomputed per link)",
        "come back only when the link goes up again or their own address is re-added",
        "recomputing keeps kernel routes exactly derived from addresses; deleting them by hand is rare",
    ),
    ModellingNote(
        "bridge local FDB entries",
        "not stored: adding a port's or the bridge's own MAC is EEXIST, deleting a port's own MAC succeeds "
        "and changes nothing",
        "a permanent 'local' entry per port MAC and for the bridge; deleting one really removes it",
        "they follow every MAC change and enslavement; fdb() leaves them out on both kernels",
    ),
    ModellingNote(
        "live rename",
        "allowed while up (FakeKernel.allows_live_rename = True; set False for EBUSY)",
        "allowed since Linux 6.2, EBUSY before",
        "follows the kernel CI runs on; the flag models older kernels",
    ),
)
