"""The macvlan driver on both kernels: endpoints sit on the parent's LAN (the
outside namespace), not on the host's own address; parent.VLAN sub-interfaces
come and go with their networks; modes."""

from __future__ import annotations

import errno
import ipaddress
from collections.abc import Iterator

import pytest

from netsim import netlabel
from netsim.controller import Controller, ControllerConfig, IpamConfig, Network, PoolConfig
from netsim.controller.testing import ensure_default_ipam
from netsim.errors import InvalidParameterError, KernelError, NotFoundError
from netsim.kernel.base import Kernel
from netsim.probe import probe

MISS = 0.3


@pytest.fixture
def ctrl(kernel: Kernel) -> Iterator[Controller]:
    controller = Controller(kernel, ControllerConfig(host="h1"))
    ensure_default_ipam(controller)
    try:
        yield controller
    finally:
        controller.close()


def lan_network(ctrl: Controller, name: str = "lan", **options: str) -> Network:
    """The uplink's own subnet: the outside (198.18.0.1) is the LAN router."""
    pool = PoolConfig(subnet="198.18.0.0/24", ip_range="198.18.0.128/25", gateway="198.18.0.1")
    return ctrl.create_network(name, "macvlan", options=options, ipam=IpamConfig(pools=[pool]))


def test_macvlan_reaches_the_lan_but_not_the_host(ctrl: Controller) -> None:
    lan_network(ctrl)
    a = ctrl.connect("a", "lan")
    b = ctrl.connect("b", "lan")
    ns_a = ctrl.sandbox("a").namespace
    assert a.address is not None and a.address.ip in ipaddress.ip_network("198.18.0.128/25")
    assert a.address.network == ipaddress.ip_network("198.18.0.0/24") and a.iface == "eth0"
    link = ctrl.kernel.link(ns_a, "eth0")
    assert link.kind == "macvlan" and link.attrs.get("mode") == "bridge"
    assert [r.via for r in ctrl.kernel.routes(ns_a) if r.dst == "default"] == ["198.18.0.1"]
    assert probe(ctrl.kernel, ns_a, ctrl.host.outside_address, timeout=2).reachable
    assert probe(ctrl.kernel, ctrl.host.outside_namespace, str(a.address.ip), timeout=2).reachable
    assert b.address is not None
    assert probe(ctrl.kernel, ns_a, str(b.address.ip), timeout=2).reachable
    # macvlan: the parent's own address is not reachable from its children.
    assert not probe(ctrl.kernel, ns_a, ctrl.host.host_ip, timeout=MISS).reachable
    ctrl.disconnect("a", "lan")
    ctrl.disconnect("b", "lan")
    ctrl.delete_network("lan")
    assert [link.name for link in ctrl.kernel.links(ctrl.host.namespace)] == ["eth0", "lo"]


def test_private_mode_separates_siblings(ctrl: Controller) -> None:
    lan_network(ctrl, **{netlabel.MACVLAN_MODE: "private"})
    ctrl.connect("a", "lan")
    b = ctrl.connect("b", "lan")
    ns_a = ctrl.sandbox("a").namespace
    assert ctrl.kernel.link(ns_a, "eth0").attrs.get("mode") == "private"
    assert probe(ctrl.kernel, ns_a, ctrl.host.outside_address, timeout=2).reachable
    assert b.address is not None
    assert not probe(ctrl.kernel, ns_a, str(b.address.ip), timeout=MISS).reachable


@pytest.mark.parametrize("mode", ["vepa", "passthru"])
def test_other_modes_reach_the_lan(ctrl: Controller, mode: str) -> None:
    lan_network(ctrl, **{netlabel.MACVLAN_MODE: mode})
    ctrl.connect("a", "lan")
    ns_a = ctrl.sandbox("a").namespace
    assert ctrl.kernel.link(ns_a, "eth0").attrs.get("mode") == mode
    assert probe(ctrl.kernel, ns_a, ctrl.host.outside_address, timeout=2).reachable


def vlan_supported(ctrl: Controller) -> bool:
    """Some kernels lack 8021q; creating a vlan then fails with EOPNOTSUPP and must leave nothing."""
    before = ctrl.kernel.snapshot()
    try:
        ctrl.create_network(
            "probe-vlan",
            "macvlan",
            options={netlabel.MACVLAN_PARENT: "eth0.99"},
            ipam=IpamConfig(pools=[PoolConfig(subnet="10.99.0.0/24")]),
        )
    except KernelError as exc:
        assert exc.errno == errno.EOPNOTSUPP, exc
        assert ctrl.kernel.snapshot() == before and ctrl.networks() == []
        return False
    ctrl.delete_network("probe-vlan")
    assert ctrl.kernel.snapshot() == before
    return True


def test_vlan_parent_created_and_removed_with_last_network(ctrl: Controller) -> None:
    if not vlan_supported(ctrl):
        assert ctrl.kernel.kind == "linux", "the fake kernel always models 802.1q"
        return  # documented divergence: this host kernel has no 8021q module
    ctrl.create_network(
        "v10",
        "macvlan",
        options={netlabel.MACVLAN_PARENT: "eth0.10"},
        ipam=IpamConfig(pools=[PoolConfig(subnet="10.1.10.0/24")]),
    )
    ctrl.create_network(
        "v10b",
        "macvlan",
        options={netlabel.MACVLAN_PARENT: "eth0.10"},
        ipam=IpamConfig(pools=[PoolConfig(subnet="10.2.10.0/24")]),
    )
    vlan = ctrl.kernel.link(ctrl.host.namespace, "eth0.10")
    assert vlan.kind == "vlan" and vlan.attrs.get("vlan_id") == 10 and vlan.parent == "eth0"
    ep = ctrl.connect("a", "v10")
    assert ctrl.kernel.link(ctrl.sandbox("a").namespace, "eth0").kind == "macvlan"
    ctrl.disconnect("a", "v10")
    ctrl.delete_network("v10")
    assert ctrl.kernel.link(ctrl.host.namespace, "eth0.10").kind == "vlan"  # still used by v10b
    ctrl.delete_network("v10b")
    assert "eth0.10" not in [link.name for link in ctrl.kernel.links(ctrl.host.namespace)]
    assert ep.name == "a"


def test_existing_vlan_parent_is_left_alone(ctrl: Controller) -> None:
    if not vlan_supported(ctrl):
        return
    ctrl.kernel.add_vlan(ctrl.host.namespace, "eth0.20", "eth0", 20)
    ctrl.create_network(
        "v20",
        "macvlan",
        options={netlabel.MACVLAN_PARENT: "eth0.20"},
        ipam=IpamConfig(pools=[PoolConfig(subnet="10.1.20.0/24")]),
    )
    ctrl.delete_network("v20")
    assert ctrl.kernel.link(ctrl.host.namespace, "eth0.20").kind == "vlan"


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({netlabel.MACVLAN_MODE: "sideways"}, InvalidParameterError, "macvlan_mode"),
        ({netlabel.MACVLAN_PARENT: "eth0.5000"}, InvalidParameterError, "parent"),
        ({netlabel.MACVLAN_PARENT: "eth9"}, NotFoundError, "eth9"),
        ({netlabel.MACVLAN_PARENT: "eth9.10"}, NotFoundError, "eth9"),
        ({netlabel.DRIVER_MTU: "-1"}, InvalidParameterError, "mtu"),
    ],
)
def test_bad_macvlan_options(ctrl: Controller, options: dict[str, str], error: type[Exception], match: str) -> None:
    before = ctrl.kernel.snapshot()
    with pytest.raises(error, match=match):
        ctrl.create_network(
            "bad", "macvlan", options=options, ipam=IpamConfig(pools=[PoolConfig(subnet="10.9.0.0/24")])
        )
    assert ctrl.kernel.snapshot() == before and ctrl.networks() == []
