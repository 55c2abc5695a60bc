"""A new TCP connection runs the NAT rules afresh: after a published port's
DNAT rule is removed, the next SYN reaches the host itself (RST), on both
kernels, even when an earlier connection used the same tuple."""

from __future__ import annotations

from netsim.kernel.base import Dnat, Kernel, Listener
from netsim.probe import probe


def test_removed_dnat_rule_no_longer_applies_to_new_connections(kernel: Kernel) -> None:
    host, outside, box = kernel.ns("h"), kernel.ns("o"), kernel.ns("c")
    for ns in (host, outside, box):
        kernel.add_namespace(ns)
        kernel.set_link_up(ns, "lo")
    kernel.add_veth(host, "up0", "up1", peer_ns=outside)
    kernel.add_veth(host, "vc0", "vc1", peer_ns=box)
    for ns, dev, cidr in (
        (host, "up0", "198.18.0.2/24"),
        (outside, "up1", "198.18.0.1/24"),
        (host, "vc0", "10.9.0.1/24"),
        (box, "vc1", "10.9.0.2/24"),
    ):
        kernel.add_address(ns, dev, cidr)
        kernel.set_link_up(ns, dev)
    kernel.add_route(box, "default", via="10.9.0.1")
    kernel.set_sysctl(host, "net.ipv4.ip_forward", "1")
    kernel.add_listener(box, Listener("tcp", 80))
    rule = Dnat(proto="tcp", dport=8080, to_addr="10.9.0.2", to_port=80)
    kernel.add_rule(host, rule)

    first = probe(kernel, outside, "198.18.0.2", "tcp", 8080, timeout=2.0)
    for _ in range(2):  # a link that just came up may drop the very first frames on Linux
        if first.reachable:
            break
        first = probe(kernel, outside, "198.18.0.2", "tcp", 8080, timeout=2.0)
    assert first.outcome == "syn-ack"

    kernel.delete_rule(host, rule)
    for _ in range(3):
        after = probe(kernel, outside, "198.18.0.2", "tcp", 8080, timeout=1.0)
        assert after.outcome == "rst", after.outcome
