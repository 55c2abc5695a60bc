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
from netsim.kernel.base import Filter, Kernel, Masquerade, Rule
from netsim.netutils import mac_from_ipv4
from netsim.undo import Undo

IPV4_FORWARD = "net.ipv4.ip_forward"
IPV6_FORWARD = "net.ipv6.conf.all.forwarding"


@dataclass
class IsolationRules:
    """The drop rules between bridge networks, shared by all networks of a driver.

    A pair's rules are added by the later network but must go with either, so
    they are kept here and removed by bridge name. O(r) per removal.
    """

    rules: list[Filter] = field(default_factory=list)

    def mentioning(self, bridge: str) -> list[Filter]:
        return [r for r in self.rules if bridge in (r.in_iface, r.out_iface)]


@dataclass
class SetupContext:
    kernel: Kernel
    #: the host namespace
    ns: str
    config: BridgeNetworkConfig
    isolation: IsolationRules
    #: bridges of the driver's other networks (isolated from this one)
    other_bridges: list[str]
    #: True while another network of the driver still needs IPv6 forwarding
    others_need_ipv6: Callable[[], bool]
    #: True while the driver has another network (IPv4 forwarding stays on for it)
    others_exist: Callable[[], bool] = lambda: False


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
    ctx.kernel.set_mac(ctx.ns, name, mac_from_ipv4(ctx.config.gateway))


def setup_mtu(ctx: SetupContext, undo: Undo) -> None:
    if ctx.config.mtu is not None:
        ctx.kernel.set_mtu(ctx.ns, ctx.config.bridge_name, ctx.config.mtu)


def setup_ip(ctx: SetupContext, undo: Undo) -> None:
    """The IPv4 gateway address on the bridge (the containers' next hop)."""
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
    """Routing between bridge and uplink; restored only when no network needs it."""
    _set_forwarding(ctx, undo, IPV4_FORWARD, ctx.others_exist)
    if ctx.config.enable_ipv6:
        _set_forwarding(ctx, undo, IPV6_FORWARD, ctx.others_need_ipv6)


def setup_icc(ctx: SetupContext, undo: Undo) -> None:
    """enable_icc=false: drop frames bridged between two ports of this bridge."""
    if not ctx.config.enable_icc:
        br = ctx.config.bridge_name
        _add_rule(ctx, undo, Filter(action="drop", in_iface=br, out_iface=br, layer="bridge"))


def setup_masquerade(ctx: SetupContext, undo: Undo) -> None:
    """Docker's ``-s SUBNET ! -o BRIDGE -j MASQUERADE`` (never for internal networks)."""
    if ctx.config.enable_ip_masquerade and not ctx.config.internal:
        _add_rule(ctx, undo, Masquerade(src=ctx.config.subnet, not_out_iface=ctx.config.bridge_name))


def setup_internal(ctx: SetupContext, undo: Undo) -> None:
    """Internal networks: nothing is routed into or out of the bridge."""
    if ctx.config.internal:
        br = ctx.config.bridge_name
        _add_rule(ctx, undo, Filter(action="drop", in_iface=br))
        _add_rule(ctx, undo, Filter(action="drop", out_iface=br))


def setup_isolation(ctx: SetupContext, undo: Undo) -> None:
    """Drop routed traffic between this bridge and every other bridge network, both ways."""
    br = ctx.config.bridge_name

    def remove_mine() -> None:
        # Also removes the rules a later network added about this bridge.
        for rule in ctx.isolation.mentioning(br):
            ctx.kernel.delete_rule(ctx.ns, rule)
            ctx.isolation.rules.remove(rule)

    undo.push(f"delete isolation rules of {br}", remove_mine)
    for other in ctx.other_bridges:
        for rule in (
            Filter(action="drop", in_iface=br, out_iface=other),
            Filter(action="drop", in_iface=other, out_iface=br),
        ):
            ctx.kernel.add_rule(ctx.ns, rule)
            ctx.isolation.rules.append(rule)


SETUP_STEPS: tuple[Callable[[SetupContext, Undo], None], ...] = (
    setup_device,
    setup_mtu,
    setup_ip,
    setup_ipv6,
    setup_device_up,
    setup_forwarding,
    setup_icc,
    setup_masquerade,
    setup_internal,
    setup_isolation,
)
