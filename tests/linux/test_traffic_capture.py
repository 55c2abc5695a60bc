"""pcap capture on the real kernel, read back with scapy and with tcpdump."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP, TCP
from scapy.utils import rdpcap

from netsim.errors import KernelInvalidError, KernelNotFoundError, NotFoundError
from netsim.kernel import make_kernel
from netsim.kernel.base import Kernel, Listener
from netsim.probe import probe
from netsim.pytest_plugin import session_run_prefix, skip_unless_linux

pytestmark = pytest.mark.linux


@pytest.fixture(scope="module")
def lan(request: pytest.FixtureRequest) -> Iterator[tuple[Kernel, str, str]]:
    """``a`` (10.6.0.1) and ``b`` (10.6.0.2 on bridge ``br0``, port ``pa``; tcp/80 open)."""
    skip_unless_linux()
    kernel = make_kernel("linux", f"{session_run_prefix(request.config)}cap")
    try:
        a, b = kernel.ns("a"), kernel.ns("b")
        kernel.add_namespace(a)
        kernel.add_namespace(b)
        kernel.add_veth(a, "eth0", "pa", b)
        kernel.add_bridge(b, "br0")
        kernel.set_master(b, "pa", "br0")
        kernel.add_address(a, "eth0", "10.6.0.1/24")
        kernel.add_address(b, "br0", "10.6.0.2/24")
        for ns, dev in ((a, "eth0"), (a, "lo"), (b, "pa"), (b, "br0")):
            kernel.set_link_up(ns, dev)
        kernel.add_listener(b, Listener("tcp", 80))
        # a new bridge port forwards once the kernel's link watcher has seen its
        # carrier, up to a second later: wait for that before measuring anything
        assert probe(kernel, b, "10.6.0.1", timeout=3.0).outcome == "echo-reply"
        yield kernel, a, b
    finally:
        kernel.close()


def test_capture_records_both_directions(lan: tuple[Kernel, str, str], tmp_path: Path) -> None:
    kernel, a, _ = lan
    path = tmp_path / "a.pcap"
    with kernel.capture(a, ["eth0"], str(path)):
        assert probe(kernel, a, "10.6.0.2").outcome == "echo-reply"
        assert probe(kernel, a, "10.6.0.2", "tcp", 80).outcome == "syn-ack"
    packets = rdpcap(str(path))
    echoes = [(p[IP].src, p[ICMP].type) for p in packets if ICMP in p]
    assert ("10.6.0.1", 8) in echoes and ("10.6.0.2", 0) in echoes
    flags = {str(p[TCP].flags) for p in packets if TCP in p}
    assert {"S", "SA"} <= flags
    stamps = [float(p.time) for p in packets]
    assert stamps == sorted(stamps)  # kernel timestamps, in the order frames crossed


def test_capture_several_interfaces_of_a_bridge(lan: tuple[Kernel, str, str], tmp_path: Path) -> None:
    kernel, a, b = lan
    path = tmp_path / "bridge.pcap"
    with kernel.capture(b, ["pa", "br0"], str(path)):
        probe(kernel, a, "10.6.0.2")
    requests = [p for p in rdpcap(str(path)) if ICMP in p and p[ICMP].type == 8]
    assert len(requests) == 2  # seen entering the port and arriving on the bridge


@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="tcpdump not installed")
def test_tcpdump_reads_the_file(lan: tuple[Kernel, str, str], tmp_path: Path) -> None:
    kernel, a, _ = lan
    path = tmp_path / "t.pcap"
    with kernel.capture(a, ["eth0"], str(path)):
        probe(kernel, a, "10.6.0.2")
    out = subprocess.run(["tcpdump", "-nn", "-r", str(path)], capture_output=True, text=True, timeout=30, check=True)
    assert "10.6.0.1 > 10.6.0.2: ICMP echo request" in out.stdout
    assert "10.6.0.2 > 10.6.0.1: ICMP echo reply" in out.stdout
    assert "EN10MB" in out.stderr


def test_empty_capture_is_a_valid_pcap(lan: tuple[Kernel, str, str], tmp_path: Path) -> None:
    kernel, a, _ = lan
    path = tmp_path / "empty.pcap"
    with kernel.capture(a, ["lo"], str(path)):
        pass
    assert len(rdpcap(str(path))) == 0


@pytest.mark.parametrize(
    ("ifaces", "error"),
    [(["nope0"], KernelNotFoundError), ([], KernelInvalidError), (["eth0", "nope0"], KernelNotFoundError)],
)
def test_bad_interfaces_are_refused_and_write_nothing(
    lan: tuple[Kernel, str, str], tmp_path: Path, ifaces: list[str], error: type[Exception]
) -> None:
    kernel, a, _ = lan
    path = tmp_path / "bad.pcap"
    with pytest.raises(error), kernel.capture(a, ifaces, str(path)):
        pytest.fail("the block must not run")
    assert not path.exists()


def test_unwritable_path_is_refused(lan: tuple[Kernel, str, str], tmp_path: Path) -> None:
    kernel, a, _ = lan
    with pytest.raises(KernelNotFoundError), kernel.capture(a, ["eth0"], str(tmp_path / "no-such-dir" / "x.pcap")):
        pytest.fail("the block must not run")
    with kernel.capture(a, ["eth0"], str(tmp_path / "ok.pcap")):  # nothing was left half-open
        probe(kernel, a, "10.6.0.2")
    assert len(rdpcap(str(tmp_path / "ok.pcap"))) >= 2


def test_unknown_namespace_is_not_found(lan: tuple[Kernel, str, str], tmp_path: Path) -> None:
    kernel, _, _ = lan
    with pytest.raises(NotFoundError), kernel.capture(kernel.ns("ghost"), ["eth0"], str(tmp_path / "x.pcap")):
        pytest.fail("the block must not run")


def test_capture_survives_an_exception_in_the_block(lan: tuple[Kernel, str, str], tmp_path: Path) -> None:
    kernel, a, _ = lan
    path = tmp_path / "raised.pcap"
    with pytest.raises(RuntimeError, match="inside"), kernel.capture(a, ["eth0"], str(path)):
        probe(kernel, a, "10.6.0.2")
        raise RuntimeError("inside")
    assert any(ICMP in p for p in rdpcap(str(path)))
