"""Fake dataplane captures: pcap files of what crosses chosen links."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP
from scapy.layers.l2 import ARP, Ether
from scapy.layers.vxlan import VXLAN
from scapy.utils import rdpcap

from netsim.errors import InvalidParameterError, NotFoundError
from netsim.kernel.base import Kernel


@pytest.fixture
def fake(netsim_kernel_factory: Callable[[str], Kernel]) -> Kernel:
    return netsim_kernel_factory("fake")


def pair(kernel: Kernel) -> tuple[str, str]:
    a, b = kernel.ns("a"), kernel.ns("b")
    kernel.add_namespace(a)
    kernel.add_namespace(b)
    kernel.add_veth(a, "eth0", "eth0", b)
    for ns, cidr in ((a, "10.0.0.1/24"), (b, "10.0.0.2/24")):
        kernel.set_link_up(ns, "eth0")
        kernel.add_address(ns, "eth0", cidr)
    return a, b


def test_capture_holds_the_exchange(fake: Kernel, tmp_path: Path) -> None:
    a, _ = pair(fake)
    path = tmp_path / "a.pcap"
    with fake.capture(a, ["eth0"], str(path)):
        fake.probe(a, "10.0.0.2")
    fake.probe(a, "10.0.0.2")  # after the block: not captured
    frames = rdpcap(str(path))
    kinds = [(f[ARP].op if ARP in f else f[ICMP].type) for f in frames]
    assert kinds == [1, 2, 8, 0]  # who-has, is-at, echo request, echo reply
    request = frames[2]
    assert isinstance(request, Ether) and request[IP].src == "10.0.0.1" and request[IP].dst == "10.0.0.2"
    assert request[IP].chksum == IP(bytes(request[IP]))[IP].chksum  # valid checksums were written
    assert fake.world.taps == []  # type: ignore[attr-defined]


def test_idle_capture_is_a_valid_empty_pcap(fake: Kernel, tmp_path: Path) -> None:
    a, _ = pair(fake)
    path = tmp_path / "idle.pcap"
    with fake.capture(a, ["eth0"], str(path)):
        pass
    assert len(rdpcap(str(path))) == 0
    assert path.read_bytes()[:4] in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4")


@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="tcpdump is not installed")
def test_tcpdump_reads_the_capture(fake: Kernel, tmp_path: Path) -> None:
    a, _ = pair(fake)
    path = tmp_path / "dump.pcap"
    with fake.capture(a, ["eth0"], str(path)):
        fake.probe(a, "10.0.0.2")
    out = subprocess.run(["tcpdump", "-nn", "-r", str(path)], capture_output=True, text=True, check=True, timeout=30)
    assert "ICMP echo request" in out.stdout and "ICMP echo reply" in out.stdout


def test_capture_on_the_underlay_sees_vxlan(fake: Kernel, tmp_path: Path) -> None:
    a, b = pair(fake)
    for ns, local, remote, cidr in (
        (a, "10.0.0.1", "10.0.0.2", "10.9.0.1/24"),
        (b, "10.0.0.2", "10.0.0.1", "10.9.0.2/24"),
    ):
        fake.add_vxlan(ns, "vx0", 9, local=local, remote=remote, dev="eth0")
        fake.set_link_up(ns, "vx0")
        fake.add_address(ns, "vx0", cidr)
    path = tmp_path / "under.pcap"
    with fake.capture(b, ["eth0", "vx0"], str(path)):
        assert fake.probe(a, "10.9.0.2").outcome == "echo-reply"
    frames = rdpcap(str(path))
    assert any(VXLAN in f and f[VXLAN].vni == 9 for f in frames)
    assert any(VXLAN not in f and ICMP in f for f in frames)  # the decapsulated side on vx0


@pytest.mark.parametrize(
    ("ns_role", "ifaces", "error"),
    [("zz", ["eth0"], NotFoundError), ("a", ["nope0"], NotFoundError), ("a", [], InvalidParameterError)],
)
def test_bad_captures_register_nothing(
    fake: Kernel, tmp_path: Path, ns_role: str, ifaces: list[str], error: type
) -> None:
    pair(fake)
    with pytest.raises(error), fake.capture(fake.ns(ns_role), ifaces, str(tmp_path / "x.pcap")):
        pass
    assert fake.world.taps == []  # type: ignore[attr-defined]


def test_unwritable_path(fake: Kernel, tmp_path: Path) -> None:
    a, _ = pair(fake)
    with pytest.raises(InvalidParameterError), fake.capture(a, ["eth0"], str(tmp_path / "no" / "such" / "x.pcap")):
        pass
    assert fake.world.taps == []  # type: ignore[attr-defined]


def test_tap_is_removed_when_the_block_raises(fake: Kernel, tmp_path: Path) -> None:
    a, _ = pair(fake)
    with pytest.raises(RuntimeError), fake.capture(a, ["eth0"], str(tmp_path / "x.pcap")):
        raise RuntimeError("boom")
    assert fake.world.taps == []  # type: ignore[attr-defined]
