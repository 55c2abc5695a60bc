"""State assertions and lifecycle steps on both kernels.

State is read from the kernel, not from netsim's records: changing the
kernel behind the controller's back makes an assertion fail, naming what
differs. ``stop`` releases the sandbox (the namespace goes, the endpoints
are deleted) and ``start`` builds it again with the static address it had;
everything is gone after teardown (the runner's leak check)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from netsim.kernel.base import Kernel
from netsim.scenario.report import format_table
from netsim.scenario.runner import Backend, built, run_scenario
from netsim.scenario.schema import parse_scenario
from netsim.scenario.state import check_state

SCENARIO: dict[str, Any] = {
    "name": "state",
    "networks": [
        {
            "name": "front",
            "options": {"com.docker.network.bridge.name": "br-front"},
            "ipam": {"subnet": "10.71.0.0/24", "gateway": "10.71.0.1"},
        }
    ],
    "containers": [
        {"name": "web", "networks": [{"network": "front", "ip": "10.71.0.10"}], "listen": ["tcp/80"]},
        {"name": "app", "networks": ["front"]},
    ],
    "expect": [
        {
            "container": "web",
            "has": {"interface": "eth0", "address": "10.71.0.10/24", "mtu": 1500, "default_via": "10.71.0.1"},
        },
        {"network": "front", "has": {"gateway": "10.71.0.1", "subnet": "10.71.0.0/24", "mtu": 1500}},
    ],
    "steps": [
        {"stop": "web", "expect": [{"from": "app", "to": "web", "proto": "tcp", "port": 80, "reachable": False}]},
        {
            "start": "web",
            "expect": [
                {"from": "app", "to": "web", "proto": "tcp", "port": 80},
                {"container": "web", "has": {"interface": "eth0", "address": "10.71.0.10/24"}},
            ],
        },
    ],
}


def test_state_is_read_from_the_kernel_not_the_records(
    kernel_kind: str, netsim_kernel_factory: Callable[[str], Kernel]
) -> None:
    scenario = parse_scenario(SCENARIO, file="state.yaml")
    web_check, front_check = scenario.state
    leaks: list[str] = []
    with built(scenario, kernel_kind, backend=Backend(make_kernel=netsim_kernel_factory), leaks=leaks) as world:
        assert check_state(world, web_check, "initial").outcome == "holds"
        assert check_state(world, front_check, "initial").outcome == "holds"
        ns = world.containers["web"].namespace
        host_ns = world.controllers["h1"].host.namespace
        # behind the controller's back: what the records say no longer holds in the kernel
        world.kernel.set_mtu(ns, "eth0", 1400)
        world.kernel.delete_route(ns, "default", via="10.71.0.1")
        world.kernel.delete_address(host_ns, "br-front", "10.71.0.1/24")
        web = check_state(world, web_check, "initial")
        front = check_state(world, front_check, "initial")
        assert web.outcome == "differs" and not web.passed
        assert web.problems == ["mtu of eth0 is 1400, not 1500", "default_via: no default route, not 10.71.0.1"]
        assert ("mtu", "1400") in web.got and ("default_via", "none") in web.got
        assert front.problems == [
            "br-front does not have the gateway 10.71.0.1",
            "br-front has no address in subnet 10.71.0.0/24",
        ]
        # give back what teardown removes itself
        world.kernel.add_address(host_ns, "br-front", "10.71.0.1/24")
        world.kernel.add_route(ns, "default", via="10.71.0.1")
    assert leaks == []


def test_stop_releases_the_sandbox_and_start_builds_it_again(
    kernel_kind: str, netsim_kernel_factory: Callable[[str], Kernel]
) -> None:
    scenario = parse_scenario(SCENARIO, file="state.yaml")
    stop, start = scenario.steps
    leaks: list[str] = []
    with built(scenario, kernel_kind, backend=Backend(make_kernel=netsim_kernel_factory), leaks=leaks) as world:
        ctrl = world.controllers["h1"]
        first_ns = world.containers["web"].namespace
        assert first_ns in world.kernel.namespaces()
        world.apply(stop)
        # moby's releaseNetwork: sb.Delete() leaves and deletes every endpoint, the namespace goes
        assert first_ns not in world.kernel.namespaces()
        assert "web" not in [sb.container for sb in ctrl.sandboxes()]
        assert [ep.name for net in ctrl.networks() for ep in net.endpoints()] == ["app"]
        world.apply(start)
        ns = world.containers["web"].namespace
        assert ns in world.kernel.namespaces()
        assert ("eth0", "10.71.0.10/24") in world.kernel.addresses(ns)  # the static address again
        assert [lst.port for lst in world.kernel.listeners(ns)] == [80, 80]  # its processes run again
    assert leaks == []


def test_a_wrong_state_assertion_fails_the_run(
    kernel_kind: str, netsim_kernel_factory: Callable[[str], Kernel]
) -> None:
    data = dict(SCENARIO)
    data["expect"] = [{"container": "app", "has": {"interface": "eth0", "address": "10.71.0.99/24", "mtu": 9000}}]
    result = run_scenario(parse_scenario(data), kernel_kind, backend=Backend(make_kernel=netsim_kernel_factory))
    assert result.error is None and result.leaks == []
    assert not result.passed and result.failures == 1
    (state,) = [r for r in result.state_results if r.phase == "initial"]
    assert state.problems == ["no address 10.71.0.99/24 on eth0", "mtu of eth0 is 1500, not 9000"]
    assert "differs: no address 10.71.0.99/24 on eth0" in format_table([result])


@pytest.mark.parametrize("name", ["container-state", "stop-start-restart", "network-mid-run"])
def test_the_new_scenarios_agree_on_both_kernels(name: str, netsim_kernel_factory: Callable[[str], Kernel]) -> None:
    from pathlib import Path

    from netsim.scenario.schema import load_scenario

    path = Path(__file__).resolve().parents[2] / "scenarios" / f"{name}.yaml"
    scenario = load_scenario(path)
    verdicts = {}
    for kind in ("fake", "linux"):
        result = run_scenario(scenario, kind, backend=Backend(make_kernel=netsim_kernel_factory), timeout=0.5)
        assert result.passed, "\n" + format_table([result])
        verdicts[kind] = [(r.check.describe(), r.got) for r in result.state_results]
    assert verdicts["fake"] == verdicts["linux"]  # the same values read from both kernels
