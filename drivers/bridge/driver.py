"""Docker's bridge driver on a netsim kernel.

A Linux bridge per network in the host namespace, the gateway address on it,
a veth pair per endpoint (host side enslaved, container side handed to the
sandbox through JoinInfo), iptables-like rules from the kernel's rule model:
isolation between bridges, ICC, masquerade, internal, and DNAT for published
ports. All state is per driver instance (one per controller/host).
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from drivers.bridge.config import BridgeNetworkConfig, parse_network_config
from drivers.bridge.options import BridgeDriverConfig, ExtraNetworkOptions, parse_extra_options
from drivers.bridge.ports import BindingParser, PortTable
from drivers.bridge.setup import SETUP_STEPS, SetupContext
from netsim import netlabel
from netsim.driverapi import Driver, InterfaceInfo, IPAMData, IPInterface, JoinInfo, NetworkInfo
from netsim.errors import ConflictError, ForbiddenError, InvalidParameterError, KernelError, NotFoundError
from netsim.host import Host
from netsim.kernel.base import Dnat, Kernel, Listener
from netsim.netutils import mac_from_ipv4
from netsim.undo import Undo, rollback_on_error

NETWORK_TYPE = "bridge"
CONTAINER_IFACE_PREFIX = "eth"
VETH_PREFIX = "veth"


@dataclass
class BridgeEndpoint:
    eid: str
    host_side: str
    container_side: str
    #: None on an IPv6-only network
    address: IPInterface | None
    address_ipv6: IPInterface | None
    mac: str
    dnat_rules: list[Dnat] = field(default_factory=list)
    #: the docker-proxy listeners serving this endpoint's published ports (userland proxy on)
    proxies: list[Listener] = field(default_factory=list)
    #: every published binding, as endpoint_oper_info reports them
    published: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class BridgeNetwork:
    config: BridgeNetworkConfig
    #: the setup steps' undo log, kept as the network's teardown
    teardown: Undo
    endpoints: dict[str, BridgeEndpoint] = field(default_factory=dict)
    extra: ExtraNetworkOptions = field(default_factory=ExtraNetworkOptions)


class BridgeDriver(Driver):
    def __init__(self, kernel: Kernel, host: Host, config: BridgeDriverConfig | None = None) -> None:
        self.kernel = kernel
        self.host = host
        self.config = config if config is not None else BridgeDriverConfig()
        self.networks: dict[str, BridgeNetwork] = {}
        #: bridge name -> id of the network using it (a name check in O(1), however many networks)
        self._bridge_users: dict[str, str] = {}
        self.ports = PortTable()
        self._parse_bindings = BindingParser()
        self._lock = threading.RLock()

    # --- networks -------------------------------------------------------------------------
    def _network(self, nid: str) -> BridgeNetwork:
        network = self.networks.get(nid)
        if network is None:
            raise NotFoundError(f"bridge network {nid[:12]!r} not found")
        return network

    def _endpoint(self, nid: str, eid: str) -> tuple[BridgeNetwork, BridgeEndpoint]:
        network = self._network(nid)
        endpoint = network.endpoints.get(eid)
        if endpoint is None:
            raise NotFoundError(f"bridge endpoint {eid[:12]!r} not found in network {nid[:12]!r}")
        return network, endpoint

    def network_allocate(
        self, nid: str, options: Mapping[str, str], ipv4_data: Sequence[IPAMData], ipv6_data: Sequence[IPAMData]
    ) -> dict[str, str]:
        return {}

    def network_free(self, nid: str) -> None:
        return None

    def create_network(
        self,
        nid: str,
        options: Mapping[str, Any],
        ninfo: NetworkInfo,
        ipv4_data: Sequence[IPAMData],
        ipv6_data: Sequence[IPAMData],
    ) -> None:
        config = parse_network_config(nid, options, ipv4_data, ipv6_data)
        extra = parse_extra_options(netlabel.generic_options(options))
        with self._lock:
            if nid in self.networks:
                raise ConflictError(f"bridge network {nid[:12]!r} exists already")
            used_by = self._bridge_users.get(config.bridge_name)
            if used_by is not None:
                raise ConflictError(f"{netlabel.BRIDGE_NAME}={config.bridge_name!r} is already used by {used_by[:12]}")
            ctx = SetupContext(
                kernel=self.kernel,
                ns=self.host.namespace,
                config=config,
                others_need_ipv6=lambda: any(
                    n.config.enable_ipv6 for n in self.networks.values() if n.config.nid != nid
                ),
                others_exist=lambda: any(n.config.nid != nid for n in self.networks.values()),
                driver_config=self.config,
                extra=extra,
            )
            with rollback_on_error() as undo:
                for step in SETUP_STEPS:
                    step(ctx, undo)
                teardown = Undo()
                teardown.extend(undo)
            self.networks[nid] = BridgeNetwork(config, teardown, extra=extra)
            self._bridge_users[config.bridge_name] = nid

    def delete_network(self, nid: str) -> None:
        with self._lock:
            network = self._network(nid)
            if network.endpoints:
                raise ForbiddenError(f"bridge network {nid[:12]} has {len(network.endpoints)} active endpoints")
            del self.networks[nid]
            del self._bridge_users[network.config.bridge_name]
            problems = network.teardown.run()
            if problems:
                raise KernelError(errno.EIO, f"bridge network {nid[:12]} teardown incomplete: {'; '.join(problems)}")

    # --- endpoints ------------------------------------------------------------------------
    def create_endpoint(self, nid: str, eid: str, ifinfo: InterfaceInfo, options: Mapping[str, Any]) -> None:
        with self._lock:
            network = self._network(nid)
            if eid in network.endpoints:
                raise ConflictError(f"bridge endpoint {eid[:12]} exists already")
            if ifinfo.address is None and network.config.gateway is not None:
                raise InvalidParameterError("bridge endpoint needs an IPv4 address")
            if network.config.enable_ipv6 and ifinfo.address_ipv6 is None:
                raise InvalidParameterError("bridge endpoint on an IPv6 network needs an IPv6 address")
            if ifinfo.mac_address is None:
                source = ifinfo.address or ifinfo.address_ipv6
                assert source is not None  # an IPv6-only network's endpoint has its IPv6 address (checked above)
                ifinfo.set_mac_address(mac_from_ipv4(source))
            assert ifinfo.mac_address is not None
            # 44 bits of the id each (15 bytes, Linux's limit): 10,000 endpoints on one
            # host collide with odds of ~1e-5, where 28 bits gave ~1 in 3.
            endpoint = BridgeEndpoint(
                eid=eid,
                host_side=f"{VETH_PREFIX}{eid[:11]}",
                container_side=f"{VETH_PREFIX}{eid[11:22]}",
                address=ifinfo.address,
                address_ipv6=ifinfo.address_ipv6,
                mac=ifinfo.mac_address,
            )
            self._make_veth(network.config, endpoint, ifinfo.sandbox_key)
            if ifinfo.sandbox_key is not None:
                ifinfo.set_created_in_container(True)
            network.endpoints[eid] = endpoint

    def _make_veth(self, config: BridgeNetworkConfig, endpoint: BridgeEndpoint, sandbox: str | None) -> None:
        """The pair, its container end made directly in the container's namespace when
        that is known (libnetwork since v28: no move at join)."""
        kernel, ns = self.kernel, self.host.namespace
        container_ns = sandbox or ns
        with rollback_on_error() as undo:
            kernel.add_veth(ns, endpoint.host_side, endpoint.container_side, peer_ns=container_ns)
            undo.push("delete veth", lambda: kernel.delete_link(ns, endpoint.host_side))
            if config.mtu is not None:
                kernel.set_mtu(ns, endpoint.host_side, config.mtu)
                kernel.set_mtu(container_ns, endpoint.container_side, config.mtu)
            # libnetwork sets the container side's MAC here, not in the sandbox.
            kernel.set_mac(container_ns, endpoint.container_side, endpoint.mac)
            kernel.set_master(ns, endpoint.host_side, config.bridge_name)
            kernel.set_link_up(ns, endpoint.host_side)

    def delete_endpoint(self, nid: str, eid: str) -> None:
        with self._lock:
            network, endpoint = self._endpoint(nid, eid)
            if endpoint.published:
                self.revoke_external_connectivity(nid, eid)
            # NotFound: the pair went with a deleted sandbox namespace, nothing left to remove.
            with contextlib.suppress(NotFoundError):
                self.kernel.delete_link(self.host.namespace, endpoint.host_side)
            del network.endpoints[eid]

    def endpoint_oper_info(self, nid: str, eid: str) -> dict[str, Any]:
        _, endpoint = self._endpoint(nid, eid)
        return {
            netlabel.MAC_ADDRESS: endpoint.mac,
            netlabel.PORT_MAP: [dict(binding) for binding in endpoint.published],
        }

    # --- sandbox --------------------------------------------------------------------------
    def join(self, nid: str, eid: str, sbox_key: str, jinfo: JoinInfo, options: Mapping[str, Any]) -> None:
        network, endpoint = self._endpoint(nid, eid)
        jinfo.set_names(endpoint.container_side, network.extra.container_iface_prefix)
        if network.config.internal:
            return  # no gateway: internal networks have no route out
        if network.config.gateway is not None:
            gateway = network.config.gateway.ip
            assert isinstance(gateway, ipaddress.IPv4Address)
            jinfo.set_gateway(gateway)
        if network.config.gateway_ipv6 is not None:
            gateway6 = network.config.gateway_ipv6.ip
            assert isinstance(gateway6, ipaddress.IPv6Address)
            jinfo.set_gateway_ipv6(gateway6)

    def leave(self, nid: str, eid: str) -> None:
        self._endpoint(nid, eid)

    def program_external_connectivity(self, nid: str, eid: str, options: Mapping[str, Any]) -> None:
        """Publish ports (libnetwork's port_mapping_linux.go, portmappers/nat).

        With iptables, a DNAT per binding from the host's address; with the
        userland proxy on (Docker's default) that DNAT skips traffic from the
        bridge (``! -i BRIDGE``) and a docker-proxy listens on the host port in
        the host namespace, so the host's own containers reach the port
        through it; with the proxy off, the DNAT applies to the bridge too
        (hairpin NAT, see setup_hairpin)."""
        with self._lock:
            network, endpoint = self._endpoint(nid, eid)
            bindings = self._parse_bindings(options)
            if network.config.internal or not bindings:
                return
            if endpoint.published:
                raise ConflictError(f"bridge endpoint {eid[:12]} has its ports programmed already")
            default_ip = network.config.host_binding_ipv4
            self.ports.check_all(bindings, default_ip)
            ns, bridge = self.host.namespace, network.config.bridge_name
            container_ip = str(endpoint.address.ip) if endpoint.address is not None else ""
            with rollback_on_error() as undo:
                undo.push("release host ports", lambda: self.ports.release_owner(eid))
                undo.push("forget bindings", lambda: _forget(endpoint))
                for binding in bindings:
                    host_ip = binding.host_ip or default_ip
                    if host_ip == "0.0.0.0":
                        host_ip = None
                    # A fixed port, or the first free one of a range or of the ephemeral range.
                    if binding.fixed:
                        port = binding.host_port
                        self.ports.reserve(binding.proto, host_ip, port, eid)
                    else:
                        port = self.ports.allocate(binding.proto, host_ip, *binding.host_range(), eid)
                    endpoint.published.append(
                        {
                            "Proto": binding.proto,
                            "HostIP": host_ip or "",
                            "HostPort": port,
                            "ContainerPort": binding.container_port,
                        }
                    )
                    if self.config.enable_iptables and endpoint.address is not None:
                        rule = Dnat(
                            proto=binding.proto,
                            dport=port,
                            to_addr=container_ip,
                            to_port=binding.container_port,
                            dst=host_ip,
                            not_in_iface=bridge if self.config.userland_proxy else None,
                        )
                        self.kernel.add_rule(ns, rule)
                        # Described by port, not repr(rule): a dataclass repr costs more than the rule.
                        undo.push(
                            f"delete DNAT {rule.proto}/{rule.dport}",
                            lambda rule=rule: self.kernel.delete_rule(ns, rule),  # type: ignore[misc]
                        )
                        endpoint.dnat_rules.append(rule)
                    if self.config.userland_proxy and endpoint.address is not None:
                        target = (container_ip, binding.container_port)
                        proxy = Listener(binding.proto, port, host_ip or "0.0.0.0", forward_to=target)
                        self.kernel.add_listener(ns, proxy)
                        undo.push(
                            f"stop docker-proxy {proxy.proto}/{proxy.port}",
                            lambda proxy=proxy: self.kernel.delete_listener(ns, proxy),  # type: ignore[misc]
                        )
                        endpoint.proxies.append(proxy)
                    if host_ip is None and network.config.enable_ipv6 and endpoint.address_ipv6 is not None:
                        self._publish_ipv6(ns, bridge, endpoint, binding.proto, port, binding.container_port, undo)

    def _publish_ipv6(
        self,
        ns: str,
        bridge: str,
        endpoint: BridgeEndpoint,
        proto: Literal["tcp", "udp"],
        port: int,
        to_port: int,
        undo: Undo,
    ) -> None:
        """A binding on every address of a container with an IPv6 address is
        published on [::] too, to that address (Docker with ip6tables, its
        default: a DNAT in ip6 nat and a docker-proxy on [::])."""
        assert endpoint.address_ipv6 is not None
        target = str(endpoint.address_ipv6.ip)
        if self.config.enable_iptables:
            rule = Dnat(
                proto=proto,
                dport=port,
                to_addr=target,
                to_port=to_port,
                not_in_iface=bridge if self.config.userland_proxy else None,
            )
            self.kernel.add_rule(ns, rule)
            undo.push(
                f"delete DNAT6 {rule.proto}/{rule.dport}",
                lambda: self.kernel.delete_rule(ns, rule),
            )
            endpoint.dnat_rules.append(rule)
        if self.config.userland_proxy:
            proxy = Listener(proto, port, "::", forward_to=(target, to_port))
            self.kernel.add_listener(ns, proxy)
            undo.push(f"stop docker-proxy [::] {proto}/{port}", lambda: self.kernel.delete_listener(ns, proxy))
            endpoint.proxies.append(proxy)

    def revoke_external_connectivity(self, nid: str, eid: str) -> None:
        with self._lock:
            _, endpoint = self._endpoint(nid, eid)
            ns = self.host.namespace
            with rollback_on_error() as undo:
                for proxy in reversed(endpoint.proxies):
                    self.kernel.delete_listener(ns, proxy)
                    undo.push(
                        f"restart docker-proxy {proxy.proto}/{proxy.port}",
                        lambda proxy=proxy: self.kernel.add_listener(ns, proxy),  # type: ignore[misc]
                    )
                for rule in reversed(endpoint.dnat_rules):
                    self.kernel.delete_rule(ns, rule)
                    undo.push(
                        f"restore DNAT {rule.proto}/{rule.dport}",
                        lambda rule=rule: self.kernel.add_rule(ns, rule),  # type: ignore[misc]
                    )
            _forget(endpoint)
            self.ports.release_owner(eid)

    def type(self) -> str:
        return NETWORK_TYPE

    def is_builtin(self) -> bool:
        return True


def _forget(endpoint: BridgeEndpoint) -> None:
    endpoint.dnat_rules.clear()
    endpoint.proxies.clear()
    endpoint.published.clear()
