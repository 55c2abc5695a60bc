"""The ``Isolated`` rule (isolation groups) on the fake AND the real kernel:
listing, errors, snapshots and the packets it drops, with the same
assertions on both (the ``kernel`` fixture runs each test once per kernel).

Three bridges on one host, a container on each, forwarding on: members of one
group do not reach each other through the host; removing one network's
membership opens that network alone.
"""

from __future__ import annotations

from test_kernel_contract import refused

from netsim.kernel.base import Filter, Isolated, Kernel, Masquerade
from netsim.probe import probe

MISS = 0.3  # seconds to wait for an answer that must not come


def three_bridges(kernel: Kernel) -> tuple[str, list[str]]:
    """Host ``h`` with br0..br2 (10.0.N.1/24), container ``cN`` (10.0.N.2) on each."""
    host = kernel.ns("h")
    kernel.add_namespace(host)
    kernel.set_sysctl(host, "net.ipv4.ip_forward", "1")
    containers = []
    for n in range(3):
        bridge, ns = f"br{n}", kernel.ns(f"c{n}")
        kernel.add_bridge(host, bridge)
        kernel.set_link_up(host, bridge)
        kernel.add_address(host, bridge, f"10.0.{n}.1/24")
        kernel.add_namespace(ns)
        kernel.add_veth(host, f"veth{n}", "eth0", ns)
        kernel.set_master(host, f"veth{n}", bridge)
        kernel.set_link_up(host, f"veth{n}")
        kernel.set_link_up(ns, "eth0")
        kernel.add_address(ns, "eth0", f"10.0.{n}.2/24")
        kernel.add_route(ns, "default", via=f"10.0.{n}.1")
        containers.append(ns)
    return host, containers


def reaches(kernel: Kernel, src: str, n: int) -> bool:
    """Whether ``src`` gets an echo reply from container ``n`` (10.0.n.2)."""
    return probe(kernel, src, f"10.0.{n}.2", "icmp", timeout=2.0).reachable


def misses(kernel: Kernel, src: str, n: int) -> bool:
    return not probe(kernel, src, f"10.0.{n}.2", "icmp", timeout=MISS).reachable


def test_memberships_are_rules_listed_in_order_with_errors(kernel: Kernel) -> None:
    host = kernel.ns("h")
    kernel.add_namespace(host)
    masquerade = Masquerade(src="10.0.0.0/24", not_out_iface="br0")
    kernel.add_rule(host, masquerade)
    kernel.add_rule(host, Isolated("br0"))
    kernel.add_rule(host, Isolated("br1"))
    kernel.add_rule(host, Isolated("br0", group="other"))  # one link may be in several groups
    assert kernel.rules(host) == [masquerade, Isolated("br0"), Isolated("br1"), Isolated("br0", group="other")]
    assert kernel.snapshot()[host]["rules"][1] == {"type": "Isolated", "iface": "br0", "group": "bridge"}
    refused(kernel, lambda: kernel.add_rule(host, Isolated("br1")), "kernel-exists:EEXIST")
    refused(kernel, lambda: kernel.delete_rule(host, Isolated("br2")), "kernel-not-found:ENOENT")
    refused(kernel, lambda: kernel.delete_rule(host, Isolated("br1", group="third")), "kernel-not-found:ENOENT")
    for name in ("br*", "@br"):  # valid Linux names nftables would read as a wildcard or a set
        refused(kernel, lambda n=name: kernel.add_rule(host, Isolated(n)), "invalid-parameter")
    for group in ("", "x" * 33, "a b", "br/0", "tab\n"):
        refused(kernel, lambda g=group: kernel.add_rule(host, Isolated("br2", group=g)), "invalid-parameter")
    for name in ("x" * 16, "a/b", ""):
        refused(kernel, lambda n=name: kernel.add_rule(host, Isolated(n)), "kernel-invalid:EINVAL")
    refused(kernel, lambda: kernel.add_rule(host, Isolated(7)), "kernel-invalid:EINVAL")  # type: ignore[arg-type]
    # The last member of a group takes the group with it; a new member makes it again.
    kernel.delete_rule(host, Isolated("br0", group="other"))
    kernel.delete_rule(host, Isolated("br0"))
    kernel.delete_rule(host, Isolated("br1"))
    assert kernel.rules(host) == [masquerade]
    kernel.add_rule(host, Isolated("br1"))
    assert kernel.rules(host) == [masquerade, Isolated("br1")]


def test_members_do_not_reach_each_other_and_removal_opens_one_network(kernel: Kernel) -> None:
    host, (c0, c1, c2) = three_bridges(kernel)
    assert reaches(kernel, c0, 1) and reaches(kernel, c1, 2)
    for n in range(3):
        kernel.add_rule(host, Isolated(f"br{n}"))
    assert misses(kernel, c0, 1) and misses(kernel, c1, 2) and misses(kernel, c2, 0)
    # The host itself (not routed) and the own gateway stay reachable.
    assert reaches(kernel, host, 1)
    assert probe(kernel, c0, "10.0.0.1", "icmp", timeout=2.0).reachable
    # br0 leaves: c0 reaches both others again; br1 and br2 stay apart.
    kernel.delete_rule(host, Isolated("br0"))
    assert reaches(kernel, c0, 1) and reaches(kernel, c2, 0)
    assert misses(kernel, c1, 2) and misses(kernel, c2, 1)


def test_isolation_is_judged_before_accepting_filters_and_per_group(kernel: Kernel) -> None:
    host, (c0, _, c2) = three_bridges(kernel)
    kernel.add_rule(host, Filter("accept", in_iface="br0", out_iface="br1"))
    kernel.add_rule(host, Isolated("br0"))
    kernel.add_rule(host, Isolated("br1"))
    kernel.add_rule(host, Isolated("br2", group="other"))
    assert misses(kernel, c0, 1)  # the accept, though listed first, does not open the group
    # Members of different groups are not isolated from each other.
    assert reaches(kernel, c0, 2) and reaches(kernel, c2, 1)
    kernel.add_rule(host, Isolated("br1", group="other"))
    assert misses(kernel, c2, 1) and reaches(kernel, c2, 0)
