"""A bridge option netsim refuses is refused when the scenario loads (exit 2,
file and key), not when it runs: the loader asks the driver's own parser."""

from __future__ import annotations

import pytest

from netsim.errors import ScenarioError
from netsim.scenario.schema import parse_scenario


@pytest.mark.parametrize(
    "option",
    [
        {"com.docker.network.bridge.gateway_mode_ipv4": "routed"},
        {"com.docker.network.bridge.default_bridge": "true"},
    ],
)
def test_refused_bridge_options_fail_at_load(option: dict[str, str]) -> None:
    data = {
        "networks": [{"name": "n", "options": option, "ipam": {"subnet": "10.9.0.0/24"}}],
        "containers": [{"name": "a", "networks": ["n"]}],
    }
    with pytest.raises(ScenarioError, match=r"s\.yaml:networks\[0\]\.options"):
        parse_scenario(data, file="s.yaml")
