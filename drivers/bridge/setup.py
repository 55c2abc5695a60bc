"""Bridge network setup in small ordered steps (libnetwork's setup_*.go).

Each step does one thing in the host namespace and pushes onto ``undo`` how
to take it back. The driver runs :data:`SETUP_STEPS` in order under one undo
log: if a step fails the log runs at once (nothing half-made); if all succeed
the log is kept and becomes the network's teardown.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from drivers.bridge.config import BridgeNetworkConfig
from drivers.bridge.options import BridgeDriverConfig, ExtraNetworkOptions
from netsim.kernel.base import DnatExempt, Filter, Isolated, Kernel, Masquerade, Rule
from netsim.netutils import mac_from_ipv4
from netsim.undo import Undo

IPV4_FORWARD = "net.ipv4.ip_forward"
IPV6_FORWARD = "net.ipv6.conf.all.forwarding"
#: the isolation group every bridge network of the driver joins (Docker isolates
#: all bridge networks of a daemon from each other)
ISOLATION_GROUP = "bridge"


@dataclass
class SetupContext:
    kernel: Kernel
    #: the host namespace
    ns: str
    config: BridgeNetworkConfig
    #: True while another network of the driver still needs IPv6 forwarding
    others_need_ipv6: Callable[[], bool]
    #: True while the driver has another network (IPv4 forwarding stays on for it)
    others_exist: Callable[[], bool] = lambda: False
    #: the driver's own configuration (Docker's daemon options)
    driver_config: BridgeDriverConfig = field(default_factory=BridgeDriverConfig)
    extra: ExtraNetworkOptions = field(default_factory=ExtraNetworkOptions)


def _add_rule(ctx: SetupContext, undo: Undo, rule: Rule) -> None:
    ctx.kernel.add_rule(ctx.ns, rule)
    undo.push(f"delete rule {rule}", lambda: ctx.kernel.delete_rule(ctx.ns, rule))


def setup_device(ctx: SetupContext, undo: Undo) -> None:
    """Create the bridge; deleting it takes its addresses and MTU with it."""
    name = ctx.config.bridge_name
    ctx.kernel.add_bridge(ctx.ns, name)
    undo.push(f"delete bridge {name}", lambda: ctx.kernel.delete_link(ctx.ns, name))
    # A fixed MAC (as libnetwork sets one): Linux would otherwise give the bridge its
    # lowest port's MAC and change the gateway's MAC under the containers' ARP caches
    # whenever that port goes. Derived from the gateway, so it is reproducible.
    ctx.kernel.set_mac(ctx.ns, name, mac_from_ipv4(ctx.config.mac_source))


def setup_mtu(ctx: SetupContext, undo: Undo) -> None:
    if ctx.config.mtu is not None:
        ctx.kernel.set_mtu(ctx.ns, ctx.config.bridge_name, ctx.config.mtu)


def setup_ip(ctx: SetupContext, undo: Undo) -> None:
    """The IPv4 gateway address on the bridge (the containers' next hop), unless
    ``inhibit_ipv4`` says the bridge gets none (libnetwork's setupBridgeIPv4 is
    skipped then)."""
    if ctx.extra.inhibit_ipv4 or ctx.config.gateway is None:
        return
    ctx.kernel.add_address(ctx.ns, ctx.config.bridge_name, str(ctx.config.gateway))


def setup_ipv6(ctx: SetupContext, undo: Undo) -> None:
    if ctx.config.enable_ipv6 and ctx.config.gateway_ipv6 is not None:
        ctx.kernel.add_address(ctx.ns, ctx.config.bridge_name, str(ctx.config.gateway_ipv6))


def setup_device_up(ctx: SetupContext, undo: Undo) -> None:
    ctx.kernel.set_link_up(ctx.ns, ctx.config.bridge_name)


def _set_forwarding(ctx: SetupContext, undo: Undo, key: str, still_needed: Callable[[], bool]) -> None:
    before = ctx.kernel.get_sysctl(ctx.ns, key)
    if before == "1":
        return
    ctx.kernel.set_sysctl(ctx.ns, key, "1")

    def restore() -> None:
        if not still_needed():
            ctx.kernel.set_sysctl(ctx.ns, key, before)

    undo.push(f"restore {key}={before}", restore)


def setup_forwarding(ctx: SetupContext, undo: Undo) -> None:
    """Routing between bridge and uplink; restored only when no network needs it.
    With the driver's ``enable_ip_forwarding`` off the sysctls are left alone
    (libnetwork's setupIPForwarding is not queued)."""
    if not ctx.driver_config.enable_ip_forwarding:
        return
    _set_forwarding(ctx, undo, IPV4_FORWARD, ctx.others_exist)
    if ctx.config.enable_ipv6:
        _set_forwarding(ctx, undo, IPV6_FORWARD, ctx.others_need_ipv6)


def icc_rules(bridge: str) -> list[Filter]:
    """enable_icc=false as Docker has it (iptables ``-i BR -o BR -j DROP``, seen by
    bridged frames through br_netfilter): IP packets between two ports are
    dropped, ARP is not (iptables never sees ARP), and so are routed packets
    that leave by the bridge they came in by (hairpin NAT between containers)."""
    return [
        Filter(action="drop", in_iface=bridge, out_iface=bridge, layer="bridge", src="0.0.0.0/0"),
        Filter(action="drop", in_iface=bridge, out_iface=bridge, layer="bridge", src="::/0"),
        Filter(action="drop", in_iface=bridge, out_iface=bridge),
    ]


def setup_icc(ctx: SetupContext, undo: Undo) -> None:
    """enable_icc=false: drop IP traffic between containers of this bridge (not ARP)."""
    if not ctx.config.enable_icc and ctx.driver_config.enable_iptables:
        for rule in icc_rules(ctx.config.bridge_name):
            _add_rule(ctx, undo, rule)


def setup_masquerade(ctx: SetupContext, undo: Undo) -> None:
    """Docker's ``-s SUBNET ! -o BRIDGE -j MASQUERADE`` (never for internal
    networks); for an IPv6 network ip6tables' same rule on the IPv6 subnet
    (Docker's default since ip6tables is on by default, gateway mode nat)."""
    if ctx.config.enable_ip_masquerade and not ctx.config.internal and ctx.driver_config.enable_iptables:
        if ctx.config.gateway is not None:
            _add_rule(ctx, undo, Masquerade(src=ctx.config.subnet, not_out_iface=ctx.config.bridge_name))
        if ctx.config.enable_ipv6 and ctx.config.gateway_ipv6 is not None:
            subnet_v6 = str(ctx.config.gateway_ipv6.network)
            _add_rule(ctx, undo, Masquerade(src=subnet_v6, not_out_iface=ctx.config.bridge_name))


def setup_hairpin(ctx: SetupContext, undo: Undo) -> None:
    """Userland proxy off: hairpin NAT. A container reaching a published port
    through the host's address is DNATed back out of the bridge; masquerading
    that traffic makes the answer come back through the host to be un-NATed.
    (Docker masquerades only a container reaching itself, ``-s C -d C``: the
    other hairpin answers are un-NATed by br_netfilter on the bridge, which
    netsim's kernels do not run.)"""
    config = ctx.config
    if ctx.driver_config.userland_proxy or config.internal or not ctx.driver_config.enable_iptables:
        return
    if config.gateway is not None:
        _add_rule(ctx, undo, Masquerade(src=config.subnet, out_iface=config.bridge_name))


def setup_skip_dnat(ctx: SetupContext, undo: Undo) -> None:
    """Userland proxy on: nothing arriving from this bridge is DNATed, so a
    container reaching any published port through the host's address gets the
    docker-proxy on the host (which then connects to the backend from the host),
    whichever network the backend is on. Docker <= 28's "SKIP DNAT" rule
    (``-t nat -I DOCKER -i BRIDGE -j RETURN``, setupIPTablesInternal: with
    masquerading on and hairpin mode off; never for internal networks)."""
    config, driver = ctx.config, ctx.driver_config
    if driver.enable_iptables and driver.userland_proxy and config.enable_ip_masquerade and not config.internal:
        _add_rule(ctx, undo, DnatExempt(config.bridge_name))


def setup_internal(ctx: SetupContext, undo: Undo) -> None:
    """Internal networks: nothing is routed into or out of the bridge."""
    if ctx.config.internal and ctx.driver_config.enable_iptables:
        br = ctx.config.bridge_name
        _add_rule(ctx, undo, Filter(action="drop", in_iface=br))
        _add_rule(ctx, undo, Filter(action="drop", out_iface=br))


def isolation_rule(bridge: str) -> Isolated:
    """The bridge's membership of the driver's isolation group."""
    return Isolated(iface=bridge, group=ISOLATION_GROUP)


def setup_isolation(ctx: SetupContext, undo: Undo) -> None:
    """Drop routed traffic between this bridge and every other bridge network,
    both ways: one membership of the driver's isolation group, whatever the
    number of networks (Docker's DOCKER-ISOLATION-STAGE-1/2 pair of rules per
    network: ``-i BR ! -o BR -j STAGE-2``, ``-o BR -j DROP``). Internal
    networks stay out, as in Docker (``isolateNetwork`` returns early for
    them): their own drops already stop everything routed in or out."""
    if ctx.driver_config.enable_iptables and not ctx.config.internal:
        _add_rule(ctx, undo, isolation_rule(ctx.config.bridge_name))


SETUP_STEPS: tuple[Callable[[SetupContext, Undo], None], ...] = (
    setup_device,
    setup_mtu,
    setup_ip,
    setup_ipv6,
    setup_device_up,
    setup_forwarding,
    setup_icc,
    setup_masquerade,
    setup_hairpin,
    setup_skip_dnat,
    setup_internal,
    setup_isolation,
)
