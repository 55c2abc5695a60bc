"""The controller's fast paths answer as the slow ones: the docker_gwbridge
check skipped when nothing can change, recovery with the cyclic collector
paused (and left as found), the fake kernel's link names and link-local
text written without the ipaddress module."""

from __future__ import annotations

import gc
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from netsim.controller import Controller, ControllerConfig
from netsim.controller import default_gateway as gw
from netsim.controller.testing import ensure_default_ipam
from netsim.kernel.fake import FakeKernel
from netsim.kernel.fake.l3sync import link_local, link_local_text
from netsim.netlabel import PortBinding


@settings(max_examples=300, deadline=None)
@given(raw=st.integers(0, 2**48 - 1) | st.sampled_from([0, 2**41, 0x020000000001, 0xFFFFFFFFFFFF]))
def test_link_local_text_is_the_ipaddress_text(raw: int) -> None:
    mac = ":".join(f"{(raw >> shift) & 0xFF:02x}" for shift in range(40, -8, -8))
    assert link_local_text(mac) == link_local(mac).with_prefixlen


def test_link_names_are_the_links_names() -> None:
    kernel = FakeKernel()
    try:
        ns = kernel.ns("names")
        kernel.add_namespace(ns)
        kernel.add_veth(ns, "vb", "va")
        kernel.add_bridge(ns, "br0")
        assert kernel.link_names(ns) == [link.name for link in kernel.links(ns)] == ["br0", "lo", "va", "vb"]
    finally:
        kernel.close()


def test_gateway_check_is_skipped_only_when_nothing_can_change() -> None:
    with Controller(FakeKernel(), ControllerConfig(host="fp", entry_points=False)) as ctrl:
        ensure_default_ipam(ctrl)
        ctrl.create_network("front", "bridge")
        ep = ctrl.connect("web", "front", ports=[PortBinding("tcp", 80, 8080)])
        sid = ctrl.sandbox("web").id
        assert not gw.may_change(ctrl, sid)  # a bridge network's gateway, no docker_gwbridge
        host = ctrl.create_sandbox("hostnet", host_namespace=True)
        assert not gw.may_change(ctrl, host.id)
        ctrl.create_network(gw.GW_NETWORK, "bridge", gw.GW_OPTIONS)
        assert gw.may_change(ctrl, sid)  # a gateway network exists: the full check runs
        ctrl.leave(ep, "web")
        ctrl.join(ep, "web")
        assert gw.gateway_endpoint(ctrl, ctrl.records.sandbox_view(sid)) is None


def test_recovery_leaves_the_collector_as_it_found_it(tmp_path: Path) -> None:
    kernel = FakeKernel()
    url = f"sqlite:///{tmp_path}/fast.db"
    try:
        first = Controller(kernel, ControllerConfig(host="gc", local_store=url, entry_points=False))
        first.create_network("front", "bridge")
        first.connect("web", "front")
        first.stores.close()  # a crash: the kernel keeps everything, the store its records
        for enabled in (True, False):
            if not enabled:
                gc.disable()
            try:
                ctrl = Controller(kernel, ControllerConfig(host="gc", local_store=url, entry_points=False))
                assert gc.isenabled() is enabled
                assert ctrl.recovery is not None and ctrl.recovery.clean, ctrl.recovery
                assert [s.container for s in ctrl.sandboxes()] == ["web"]
                ctrl.stores.close()
            finally:
                gc.enable()
    finally:
        kernel.close()
