"""ipvlan on the real kernel: this machine kind's kernel has no ipvlan link kind
(divergences.py "no-ipvlan-here"). Creating one, an ipvlan network, or running
an ipvlan scenario is refused with a categorized error naming the reason, and
leaves nothing behind. On a kernel that has ipvlan, the same calls must work."""

from __future__ import annotations

import errno
from collections.abc import Callable
from pathlib import Path

import pytest

from netsim.controller import Controller, ControllerConfig, IpamConfig, PoolConfig
from netsim.controller.testing import ensure_default_ipam
from netsim.errors import KernelError, KernelInvalidError, error_kind
from netsim.kernel.base import Kernel

pytestmark = pytest.mark.linux
REASON = "this kernel has no ipvlan link kind"
SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def test_add_ipvlan_is_refused_cleanly_or_works(netsim_kernel_factory: Callable[[str], Kernel]) -> None:
    kernel = netsim_kernel_factory("linux")
    host = kernel.ns("h")
    kernel.add_namespace(host)
    kernel.add_veth(host, "eth0", "peer0")
    before = kernel.snapshot()
    try:
        kernel.add_ipvlan(host, "ipv0", "eth0", "l3", "private")
    except KernelInvalidError as exc:
        assert exc.errno == errno.EOPNOTSUPP and REASON in str(exc), exc
        assert error_kind(exc) == "kernel-invalid:ENOTSUP"
        assert kernel.snapshot() == before  # nothing created
        return
    link = kernel.link(host, "ipv0")  # a kernel with ipvlan: the contract holds
    assert (link.kind, link.parent, dict(link.attrs)) == ("ipvlan", "eth0", {"mode": "l3", "flag": "private"})
    kernel.delete_link(host, "ipv0")
    assert kernel.snapshot() == before


def test_an_ipvlan_network_is_refused_before_any_container(netsim_kernel_factory: Callable[[str], Kernel]) -> None:
    ctrl = Controller(netsim_kernel_factory("linux"), ControllerConfig(host="h1"))
    ensure_default_ipam(ctrl)
    try:
        before = ctrl.kernel.snapshot()
        pool = PoolConfig(subnet="10.66.0.0/24")
        try:
            ctrl.create_network("lan", "ipvlan", options={"ipvlan_mode": "l3"}, ipam=IpamConfig(pools=[pool]))
        except KernelError as exc:
            assert REASON in str(exc), exc
            assert ctrl.networks() == [] and ctrl.kernel.snapshot() == before
            return
        ctrl.connect("a", "lan")  # a kernel with ipvlan: the driver must work there
        assert ctrl.kernel.link(ctrl.sandbox("a").namespace, "eth0").kind == "ipvlan"
    finally:
        ctrl.close()


def test_netsim_run_refuses_an_ipvlan_scenario_with_the_reason(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    from netsim.cli import main
    from netsim.pytest_plugin import session_run_prefix
    from netsim.safety import namespaces_with_prefix

    run_id = session_run_prefix(request.config) + "ipv"
    monkeypatch.setenv("NETSIM_RUN_ID", run_id)
    status = main(["run", str(SCENARIOS / "ipvlan-l3.yaml"), "--kernel", "linux"])
    captured = capsys.readouterr()
    output = captured.out + captured.err
    if REASON in output:
        assert status == 1
        assert "Traceback" not in output and "internal error" not in output
    else:
        assert status == 0, output  # a kernel with ipvlan runs the scenario
    assert namespaces_with_prefix(f"netsim-{run_id}-") == []
