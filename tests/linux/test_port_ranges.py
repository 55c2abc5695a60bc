"""Port publishing as Docker does it (libnetwork's portallocator): a host port
left to the driver comes from 49153-60999, a host range gives the first free
port of the range, range to range maps one to one; refusals name the port.
Both kernels: the chosen port is the one that answers from outside."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from drivers.bridge.ports import PortTable
from netsim.controller import Controller, ControllerConfig, IpamConfig, PoolConfig
from netsim.errors import ConflictError, InvalidParameterError, ScenarioError
from netsim.kernel.base import Kernel, Listener
from netsim.netlabel import PORT_MAP, PortBinding
from netsim.scenario.schema import parse_scenario


@pytest.fixture
def ctrl(kernel: Kernel) -> Iterator[Controller]:
    controller = Controller(kernel, ControllerConfig(host="h1", entry_points=False))
    controller.create_network("front", "bridge", ipam=IpamConfig(pools=[PoolConfig(subnet="10.66.0.0/24")]))
    try:
        yield controller
    finally:
        controller.close()


def _published(ctrl: Controller, container: str) -> list[int]:
    ep = ctrl.endpoint("front", container)
    info = ctrl.registry.driver("bridge").driver.endpoint_oper_info(ep.network_id, ep.id)
    return [binding["HostPort"] for binding in info[PORT_MAP]]


def test_ranges_and_ephemeral_ports(ctrl: Controller, kernel: Kernel) -> None:
    ranged = [PortBinding("tcp", 80, 9000, host_port_end=9001)]
    ctrl.connect("a", "front", ports=ranged)
    ctrl.connect("b", "front", ports=ranged)
    assert _published(ctrl, "a") == [9000] and _published(ctrl, "b") == [9001]
    with pytest.raises(ConflictError, match="9000-9001"):
        ctrl.connect("c", "front", ports=ranged)
    assert "c" not in {s.container for s in ctrl.sandboxes()}  # refused whole
    ctrl.connect("d", "front", ports=[PortBinding("udp", 53, 0)])
    assert _published(ctrl, "d") == [49153]
    # The chosen port is the one that answers from outside.
    kernel.add_listener(ctrl.sandbox("b").namespace, Listener("tcp", 80))
    outside = ctrl.host.outside_namespace
    assert kernel.probe(outside, ctrl.host.host_ip, "tcp", 9001).outcome == "syn-ack"
    kernel.delete_listener(ctrl.sandbox("b").namespace, Listener("tcp", 80))
    # A freed port of the range is taken again first.
    ctrl.disconnect("a", "front")
    ctrl.connect("e", "front", ports=ranged)
    assert _published(ctrl, "e") == [9000]


def test_port_binding_validation_and_docker_shape() -> None:
    binding = PortBinding("tcp", 80, 9000, host_port_end=9005)
    assert PortBinding.from_json(binding.to_docker_json()) == binding
    assert PortBinding.from_json(binding.to_json()) == binding
    assert PortBinding("tcp", 80, 8080).to_json() == {
        "Proto": "tcp",
        "ContainerPort": 80,
        "HostPort": 8080,
        "HostIP": "",
    }
    for bad in ({"host_port": 9005, "host_port_end": 9000}, {"host_port": 0, "host_port_end": 9000}):
        with pytest.raises(InvalidParameterError, match="range"):
            PortBinding("tcp", 80, **bad)


def test_port_table_first_free_of_a_range() -> None:
    table = PortTable()
    table.reserve("tcp", None, 9000, "x")
    assert table.allocate("tcp", "198.18.0.2", 9000, 9002, "y") == 9001
    assert table.allocate("tcp", None, 9000, 9002, "z") == 9002
    with pytest.raises(ConflictError, match=r"tcp 0\.0\.0\.0:9000-9002"):
        table.allocate("tcp", None, 9000, 9002, "w")
    table._check()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("80", [(0, 0, 80)]),
        ("0:53/udp", [(0, 0, 53)]),
        ("9000-9005:80", [(9000, 9005, 80)]),
        ("8000-8002:80-82", [(8000, 0, 80), (8001, 0, 81), (8002, 0, 82)]),
        ("127.0.0.1:8080:80", [(8080, 0, 80)]),
    ],
)
def test_scenario_publish_syntax(text: str, expected: list[tuple[int, int, int]]) -> None:
    scenario = parse_scenario(
        {"networks": [{"name": "n"}], "containers": [{"name": "a", "networks": ["n"], "publish": [text]}]}
    )
    got = [(p.host_port, p.host_port_end, p.container_port) for p in scenario.containers[0].publish]
    assert got == expected


@pytest.mark.parametrize("text", ["8000-8001:80-82", "9005-9000:80", "80-70", "x:80"])
def test_bad_publish_ranges_name_the_key(text: str) -> None:
    with pytest.raises(ScenarioError, match=r"containers\[0\]\.publish\[0\]"):
        parse_scenario(
            {"networks": [{"name": "n"}], "containers": [{"name": "a", "networks": ["n"], "publish": [text]}]}
        )
