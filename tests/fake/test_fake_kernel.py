"""Fake-kernel specifics the contract tests cannot see: internal state,
indexes, deterministic MACs, scale, and options that model other kernels."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from netsim.errors import InvalidParameterError, NetsimError, error_kind
from netsim.kernel.fake import FakeKernel
from netsim.kernel.fake.invariants import dump_world
from netsim.kernel.fake.l3sync import link_local
from netsim.kernel.fake.modelling import NOTES


@pytest.fixture
def fake() -> Iterator[FakeKernel]:
    kernel = FakeKernel("fakeunit")
    yield kernel
    kernel.close()


def refused_unchanged(kernel: FakeKernel, call: object, kind: str) -> None:
    """Refused with ``kind``, and not one field of the world changed."""
    before = dump_world(kernel.world)
    with pytest.raises(NetsimError) as caught:
        call()  # type: ignore[operator]
    assert error_kind(caught.value) == kind
    assert dump_world(kernel.world) == before
    kernel._check()


def test_link_local_is_linux_eui64() -> None:
    # observed on Linux: MAC 1e:30:4d:a7:13:53 -> fe80::1c30:4dff:fea7:1353/64
    assert str(link_local("1e:30:4d:a7:13:53")) == "fe80::1c30:4dff:fea7:1353/64"


def test_macs_are_unique_locally_administered_and_reproducible(fake: FakeKernel) -> None:
    ns = fake.ns("a")
    fake.add_namespace(ns)
    for i in range(50):
        fake.add_veth(ns, f"a{i}", f"b{i}")
    macs = [link.mac for link in fake.links(ns) if link.kind == "veth"]
    assert len(set(macs)) == 100
    assert all(int(mac[:2], 16) & 0x03 == 0x02 for mac in macs)
    again = FakeKernel("fakeunit")
    again.add_namespace(ns)
    again.add_veth(ns, "a0", "b0")
    assert again.link(ns, "a0").mac == fake.link(ns, "a0").mac
    again.close()


def test_namespace_prefix_is_enforced(fake: FakeKernel) -> None:
    with pytest.raises(InvalidParameterError, match="prefix"):
        fake.add_namespace("netsim-otherrun-h1")
    refused_unchanged(fake, lambda: fake.add_namespace(fake.prefix + "a/b"), "kernel-invalid:EINVAL")
    assert fake.namespaces() == []


def test_live_rename_can_model_older_kernels(fake: FakeKernel) -> None:
    ns = fake.ns("a")
    fake.add_namespace(ns)
    fake.add_veth(ns, "v0", "v1")
    fake.set_link_up(ns, "v0")
    fake.allows_live_rename = False
    refused_unchanged(fake, lambda: fake.rename_link(ns, "v0", "eth0"), "kernel-busy:EBUSY")
    fake.set_link_up(ns, "v0", False)
    fake.rename_link(ns, "v0", "eth0")
    assert [link.name for link in fake.links(ns)] == ["eth0", "lo", "v1"]


def test_refused_calls_change_nothing_at_all(fake: FakeKernel) -> None:
    h, c = fake.ns("h"), fake.ns("c")
    fake.add_namespace(h)
    fake.add_namespace(c)
    fake.add_bridge(h, "br0")
    fake.add_veth(h, "v0", "v1", c)
    fake.set_master(h, "v0", "br0")
    fake.set_link_up(h, "v0")
    fake.add_address(h, "v0", "10.0.0.1/24")
    cases = [
        (lambda: fake.add_veth(h, "v0", "x"), "kernel-exists:EEXIST"),
        (lambda: fake.add_veth(h, "x", "v1", c), "kernel-exists:EEXIST"),
        (lambda: fake.move_link(h, "v0", c, "v1"), "kernel-exists:EEXIST"),
        (lambda: fake.move_link(h, "v0", fake.ns("zz")), "kernel-not-found:ENOENT"),
        (lambda: fake.add_route(h, "default", via="10.9.9.9"), "kernel-unreachable:ENETUNREACH"),
        (lambda: fake.add_address(h, "v0", "10.0.0.1/24"), "kernel-exists:EEXIST"),
        (lambda: fake.delete_address(h, "v0", "10.0.0.2/24"), "kernel-not-found:EADDRNOTAVAIL"),
        (lambda: fake.set_mtu(h, "v0", 70000), "kernel-invalid:EINVAL"),
        (lambda: fake.set_master(h, "br0", "br0"), "kernel:ELOOP"),
        (lambda: fake.add_macvlan(h, "m0", "v0"), "kernel-busy:EBUSY"),
        (lambda: fake.set_sysctl(h, "net.ipv4.ip_forward", "yes"), "kernel-invalid:EINVAL"),
        (lambda: fake.add_vxlan(h, "vx0", 1 << 24), "kernel-invalid:ERANGE"),
        (lambda: fake.add_vlan(h, "v0.1", "lo", 1), "kernel-invalid:ENOTSUP"),
    ]
    for call, kind in cases:
        refused_unchanged(fake, call, kind)


def test_indexes_follow_cascades(fake: FakeKernel) -> None:
    h, c = fake.ns("h"), fake.ns("c")
    fake.add_namespace(h)
    fake.add_namespace(c)
    fake.add_bridge(h, "br0")
    fake.add_veth(h, "p0", "p1")
    fake.add_vlan(h, "p1.5", "p1", 5)
    fake.add_macvlan(h, "m0", "p1.5", "vepa")
    fake.add_vxlan(h, "vx0", 9, dev="p1.5")
    fake.set_master(h, "vx0", "br0")
    fake.move_link(h, "m0", c)
    fake._check()
    fake.set_mtu(h, "p1", 1400)  # uppers shrink with their lower device
    assert [fake.link(h, "p1.5").mtu, fake.link(c, "m0").mtu] == [1400, 1400]
    fake._check()
    fake.delete_link(h, "p0")
    assert [link.name for link in fake.links(h)] == ["br0", "lo"]
    assert [link.name for link in fake.links(c)] == ["lo"]
    assert fake.link(h, "br0").mtu == 1500
    fake._check()


def test_bridge_takes_smallest_port_mac_unless_set(fake: FakeKernel) -> None:
    ns = fake.ns("a")
    fake.add_namespace(ns)
    fake.add_bridge(ns, "br0")
    fake.add_veth(ns, "p0", "p1")
    fake.set_mac(ns, "p0", "02:00:00:00:00:02")
    fake.set_master(ns, "p0", "br0")
    assert fake.link(ns, "br0").mac == "02:00:00:00:00:02"
    fake.set_mac(ns, "p0", "02:00:00:00:00:01")
    assert fake.link(ns, "br0").mac == "02:00:00:00:00:01"
    fake.set_mac(ns, "br0", "02:00:00:00:00:aa")
    fake.set_mac(ns, "p0", "02:00:00:00:00:03")
    assert fake.link(ns, "br0").mac == "02:00:00:00:00:aa"
    assert dict(fake.explicit_macs()) == {(ns, "br0"): "02:00:00:00:00:aa", (ns, "p0"): "02:00:00:00:00:03"}
    fake._check()


def test_many_endpoints_on_one_bridge(fake: FakeKernel) -> None:
    """Scale without timing: 500 containers joined and torn down keep every index right."""
    h = fake.ns("h")
    fake.add_namespace(h)
    fake.add_bridge(h, "br0")
    fake.set_link_up(h, "br0")
    fake.add_address(h, "br0", "172.18.0.1/16")
    for i in range(500):
        c = fake.ns(f"c{i}")
        fake.add_namespace(c)
        fake.add_veth(h, f"veth{i}", "tmp", c)
        fake.set_master(h, f"veth{i}", "br0")
        fake.set_link_up(h, f"veth{i}")
        fake.rename_link(c, "tmp", "eth0")
        fake.add_address(c, "eth0", f"172.18.{1 + i // 250}.{1 + i % 250}/16")
        fake.set_link_up(c, "eth0")
        fake.add_route(c, "default", via="172.18.0.1")
    assert len(fake.namespaces()) == 501
    assert len(fake._ports[fake.world.namespaces[h].links["br0"]]) == 500
    fake._check()
    for i in range(500):
        fake.delete_namespace(fake.ns(f"c{i}"))
    assert [link.name for link in fake.links(h)] == ["br0", "lo"]
    fake._check()


def test_close_is_idempotent_and_total(fake: FakeKernel) -> None:
    for role in ("a", "b"):
        fake.add_namespace(fake.ns(role))
    fake.add_veth(fake.ns("a"), "x", "y", fake.ns("b"))
    fake.close()
    fake.close()
    assert fake.namespaces() == [] and fake.world.explicit_macs == {}
    assert fake._ports == {} and fake._uppers == {}


def test_probe_needs_a_namespace(fake: FakeKernel) -> None:
    refused_unchanged(fake, lambda: fake.probe(fake.ns("missing"), "10.0.0.1"), "kernel-not-found:ENOENT")


def test_every_modelling_note_has_a_reason() -> None:
    assert NOTES
    assert all(note.area and note.fake and note.linux and len(note.reason) > 20 for note in NOTES)
    assert len({note.area for note in NOTES}) == len(NOTES)
