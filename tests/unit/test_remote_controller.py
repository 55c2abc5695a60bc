"""The remote driver behind the controller: the bridge driver served as a
plugin works like the bridge driver itself (on both kernels), and a plugin
that fails or misbehaves leaves no half-made network or endpoint."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from test_plugin_helpers import HANG, FakePlugin, MemoryIpam, http_reply, network_plugin, short_dir

from drivers.remote import RemoteDriver
from netsim.errors import PluginError, PluginProtocolError, PluginReplyError, PluginUnavailableError
from netsim.kernel.base import Kernel
from netsim.plugin import PluginServer
from netsim.plugin.client import ClientConfig

controller_api = pytest.importorskip("netsim.controller")
# a CreateEndpoint reply that tries to change the address the controller set
CHANGES_ADDRESS = {"Interface": {"Address": "10.9.9.9/24"}}
FAST = ClientConfig(timeout=0.5, retries=1, backoff=0.01)


@pytest.fixture
def ctrl(kernel: Kernel) -> Iterator[Any]:
    controller = controller_api.Controller(kernel, controller_api.ControllerConfig(host="h1", entry_points=False))
    try:
        controller.registry.register_ipam_driver("mem", MemoryIpam())
        yield controller
    finally:
        controller.close()


def ipam(subnet: str) -> Any:
    return controller_api.IpamConfig(driver="mem", pools=[controller_api.PoolConfig(subnet=subnet)])


def sandbox_view(kernel: Kernel, namespace: str) -> list[tuple[str, list[str]]]:
    """Links and addresses of a sandbox, without names that embed ids."""
    addresses: dict[str, list[str]] = {}
    for dev, address in kernel.addresses(namespace):
        if not address.startswith("fe80"):
            addresses.setdefault(dev, []).append(address)
    return sorted((link.name, sorted(addresses.get(link.name, []))) for link in kernel.links(namespace))


def test_bridge_served_as_plugin_matches_bridge(ctrl: Any, kernel: Kernel) -> None:
    before = kernel.snapshot()
    bridge = ctrl.registry.driver("bridge")
    with short_dir() as directory:
        served = PluginServer(driver=bridge.driver, socket_path=directory / "br.sock", capability=bridge.capability)
        with served:
            ctrl.registry.add_driver(RemoteDriver.init_for(served.address, name="rbridge", config=FAST), {})
            views = []
            for driver, subnet in (("bridge", "10.31.0.0/24"), ("rbridge", "10.32.0.0/24")):
                net = ctrl.create_network(f"net-{driver}", driver=driver, ipam=ipam(subnet))
                ep = ctrl.connect(f"c-{driver}", net)
                sandbox = ctrl.sandbox(f"c-{driver}")
                view = sandbox_view(kernel, sandbox.namespace)
                views.append([(name, [a.replace(subnet[:7], "X") for a in addrs]) for name, addrs in view])
                assert str(ep.address).startswith(subnet[:7])
            assert views[0] == views[1]
            assert ("eth0", ["X.2/24"]) in views[1]
            for driver in ("bridge", "rbridge"):
                ctrl.disconnect(f"c-{driver}", f"net-{driver}")
                ctrl.delete_sandbox(f"c-{driver}")
                ctrl.delete_network(f"net-{driver}")
            ctrl.registry.driver("rbridge").driver.close()
    assert kernel.snapshot() == before


def _flaky(directory: Any, call: str, reply: Callable[[Any], Any]) -> FakePlugin:
    return FakePlugin(directory / "flaky.sock", network_plugin({call: reply}))


@pytest.mark.parametrize(
    ("call", "reply", "error"),
    [
        ("NetworkDriver.CreateNetwork", lambda r: http_reply(500, {"Err": "no bridge for you"}), PluginReplyError),
        ("NetworkDriver.CreateNetwork", lambda r: http_reply(200, "{oops"), PluginProtocolError),
        ("NetworkDriver.CreateNetwork", lambda r: HANG, PluginUnavailableError),
    ],
)
def test_failed_network_leaves_nothing(ctrl: Any, kernel: Kernel, call: str, reply: Any, error: type) -> None:
    with short_dir() as directory, _flaky(directory, call, reply) as plugin:
        ctrl.registry.add_driver(RemoteDriver.init_for(plugin.address, name="flaky", config=FAST), {})
        before = (kernel.snapshot(), ctrl.networks())
        with pytest.raises(error) as info:
            ctrl.create_network("n", driver="flaky", ipam=ipam("10.40.0.0/24"))
        assert isinstance(info.value, PluginError) and info.value.plugin == "flaky"
        assert (kernel.snapshot(), ctrl.networks()) == before
        # the pool went back to the IPAM: the same subnet can be used again
        ctrl.registry.driver("flaky").driver.close()
    assert ctrl.registry.ipam("mem").driver.pools == {}


@pytest.mark.parametrize(
    ("call", "reply", "error"),
    [
        (
            "NetworkDriver.CreateEndpoint",
            lambda r: http_reply(200, CHANGES_ADDRESS),
            PluginProtocolError,
        ),
        ("NetworkDriver.CreateEndpoint", lambda r: http_reply(200, {"Err": "nope"}), PluginReplyError),
        ("NetworkDriver.Join", lambda r: http_reply(200, {"Gateway": "not-an-ip"}), PluginProtocolError),
        ("NetworkDriver.Join", lambda r: HANG, PluginUnavailableError),
    ],
)
def test_failed_endpoint_leaves_nothing(ctrl: Any, kernel: Kernel, call: str, reply: Any, error: type) -> None:
    with short_dir() as directory, _flaky(directory, call, reply) as plugin:
        ctrl.registry.add_driver(RemoteDriver.init_for(plugin.address, name="flaky", config=FAST), {})
        net = ctrl.create_network("n", driver="flaky", ipam=ipam("10.41.0.0/24"))
        used_before = {k: set(v[1]) for k, v in ctrl.registry.ipam("mem").driver.pools.items()}
        before = kernel.snapshot()
        with pytest.raises(error):
            ctrl.connect("c1", net)
        assert net.endpoints() == []
        assert ctrl.sandboxes() == []
        assert kernel.snapshot() == before
        assert {k: set(v[1]) for k, v in ctrl.registry.ipam("mem").driver.pools.items()} == used_before
        ctrl.delete_network(net)
        ctrl.registry.driver("flaky").driver.close()


def test_plugins_configured_through_the_controller(kernel: Kernel) -> None:
    """The registry loads ``drivers.remote:init`` / ``ipam.remote:init`` from
    the entry points with ``driver_options["remote"]`` as their options."""
    from test_plugin_helpers import MemoryDriver

    with (
        short_dir() as directory,
        PluginServer(driver=MemoryDriver(), socket_path=directory / "memnet.sock") as net_server,
        PluginServer(ipam=MemoryIpam(), socket_path=directory / "plugins.sock"),
    ):
        options = {"remote": {"plugins": [{"address": net_server.address}], "plugin_dirs": [str(directory)]}}
        config = controller_api.ControllerConfig(host="h1", entry_points=True, driver_options=options)
        controller = controller_api.Controller(kernel, config)
        try:
            assert isinstance(controller.registry.driver("memnet").driver, RemoteDriver)
            remote_ipam = controller.registry.ipam("plugins").driver
            assert remote_ipam.capabilities().requires_mac_address is True
            pool = controller_api.PoolConfig(subnet="10.50.0.0/24")
            net = controller.create_network(
                "n", driver="memnet", ipam=controller_api.IpamConfig(driver="plugins", pools=[pool])
            )
            ep = controller.create_endpoint(net, "e")
            assert str(ep.address).startswith("10.50.0.")
            controller.delete_endpoint(ep)
            controller.delete_network(net)
        finally:
            controller.close()
            controller.registry.driver("memnet").driver.close()
            remote_ipam.close()
