"""Building a simulated host: its namespace, and an outside namespace on its
uplink standing for the world beyond it.

Host index n: host ``eth0`` 198.18.n.2/24 and 2001:2:0:n::2/64, outside
``eth0`` 198.18.n.1/24 and 2001:2:0:n::1/64 (the IPv4 and IPv6 benchmarking
ranges), the host's default routes via the outside, IPv4 forwarding on in
the host (IPv6 forwarding is the bridge driver's, for its IPv6 networks).
The outside has no route back into container subnets, as a real LAN router
would not: only masquerade and DNAT make external connectivity work.
"""

from __future__ import annotations

import ipaddress

from netsim.host import Host
from netsim.kernel.base import Kernel
from netsim.undo import Undo, rollback_on_error

UPLINK = "eth0"


def host_addresses(index: int) -> tuple[str, str]:
    """``(host uplink CIDR, outside address)`` for host index ``index``."""
    return f"198.18.{index}.2/24", f"198.18.{index}.1"


def host_addresses_v6(index: int) -> tuple[str, str]:
    """``(host uplink IPv6 CIDR, outside IPv6 address)``: one /64 of 2001:2::/48 per host.

    >>> host_addresses_v6(0), host_addresses_v6(17)
    (('2001:2::2/64', '2001:2::1'), ('2001:2:0:11::2/64', '2001:2:0:11::1'))
    """
    net = ipaddress.ip_network(f"2001:2:0:{index:x}::/64")
    return f"{net[2]}/64", str(net[1])


def _intact(kernel: Kernel, host_ns: str, outside_ns: str, uplink_cidr: str) -> bool:
    """Whether a host left by an earlier process is whole (both namespaces, uplink addressed)."""
    namespaces = set(kernel.namespaces())
    if host_ns not in namespaces or outside_ns not in namespaces:
        return False
    return (UPLINK, uplink_cidr) in kernel.addresses(host_ns) and any(
        link.name == UPLINK for link in kernel.links(outside_ns)
    )


def build_host(kernel: Kernel, name: str, index: int, *, adopt: bool = False) -> tuple[Host, Undo, bool]:
    """Create the host and outside namespaces; returns the host, its teardown,
    and whether an existing host was adopted.

    With ``adopt`` (a controller restarting on a store), a whole host left by
    an earlier process is taken over as it is; a half-built one is removed
    and built afresh.
    """
    host_ns, outside_ns = kernel.ns(name), kernel.ns(f"{name}-out")
    uplink_cidr, outside_ip = host_addresses(index)
    uplink_cidr_v6, outside_ip_v6 = host_addresses_v6(index)
    prefix = uplink_cidr.split("/")[1]
    adopted = adopt and _intact(kernel, host_ns, outside_ns, uplink_cidr)
    if adopt and not adopted:
        for ns in (host_ns, outside_ns):
            if ns in kernel.namespaces():
                kernel.delete_namespace(ns)
    host = Host(
        name=name,
        kernel=kernel,
        namespace=host_ns,
        uplink=UPLINK,
        uplink_address=uplink_cidr,
        outside_namespace=outside_ns,
        outside_address=outside_ip,
        uplink_address_v6=uplink_cidr_v6,
        outside_address_v6=outside_ip_v6,
    )
    if adopted:
        teardown = Undo()
        for ns in (host_ns, outside_ns):
            teardown.push(f"delete namespace {ns}", lambda ns=ns: kernel.delete_namespace(ns))  # type: ignore[misc]
        return host, teardown, True
    with rollback_on_error() as undo:
        for ns in (host_ns, outside_ns):
            kernel.add_namespace(ns)
            undo.push(f"delete namespace {ns}", lambda ns=ns: kernel.delete_namespace(ns))  # type: ignore[misc]
            kernel.set_link_up(ns, "lo")
        kernel.add_veth(host_ns, UPLINK, UPLINK, peer_ns=outside_ns)
        kernel.add_address(host_ns, UPLINK, uplink_cidr)
        kernel.add_address(outside_ns, UPLINK, f"{outside_ip}/{prefix}")
        kernel.set_link_up(host_ns, UPLINK)
        kernel.set_link_up(outside_ns, UPLINK)
        # IPv6 after the link is up: added before, Linux lost the first neighbour
        # solicitation across it in most runs (a 1 s retransmit on the first probe)
        kernel.add_address(host_ns, UPLINK, uplink_cidr_v6)
        kernel.add_address(outside_ns, UPLINK, f"{outside_ip_v6}/64")
        kernel.add_route(host_ns, "default", via=outside_ip)
        kernel.add_route(host_ns, "default6", via=outside_ip_v6)
        kernel.set_sysctl(host_ns, "net.ipv4.ip_forward", "1")
        teardown = Undo()
        teardown.extend(undo)
    return host, teardown, False
