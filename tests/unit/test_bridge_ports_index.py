"""The fake bridge's port index (smallest MTU and MAC of its ports) and the
bridge driver's host-port table, against plain models under churn."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from drivers.bridge.ports import PortTable
from netsim.errors import ConflictError
from netsim.kernel.fake.bridgeports import BridgePorts
from netsim.kernel.fake.state import FakeLink, FakeNamespace
from netsim.netlabel import PortBinding


def test_bridge_ports_follow_a_model_and_stay_small_under_churn() -> None:
    rng = random.Random(7)
    space = FakeNamespace("ns")
    ports = BridgePorts()
    members: dict[str, FakeLink] = {}
    for step in range(5000):
        action = rng.random()
        if action < 0.45 or not members:
            name = f"p{step}"
            link = FakeLink(
                name, "veth", step + 2, f"02:00:00:00:{rng.randrange(256):02x}:{rng.randrange(4):02x}", space
            )
            link.mtu = rng.choice([1400, 1500, 9000])
            members[name] = link
            ports.add(link)
        elif action < 0.8:
            ports.remove(members.pop(rng.choice(sorted(members))))
        else:
            link = members[rng.choice(sorted(members))]
            old, link.mac = link.mac, f"02:00:00:01:{rng.randrange(256):02x}:00"
            ports.mac_changed(old, link.mac)
        expected_mac = min((link.mac for link in members.values()), default=None)
        expected_mtu = min((link.mtu for link in members.values()), default=None)
        assert (ports.min_mac(), ports.min_mtu(), len(ports)) == (expected_mac, expected_mtu, len(members))
        # Stale heap entries are dropped on the way: memory stays O(ports).
        assert len(ports._mac_heap) <= 2 * len(members) + 17
    ports._check()
    assert ports._macs == Counter(link.mac for link in members.values())


def test_port_table_releases_by_owner_and_checks_only_what_is_asked() -> None:
    table = PortTable()
    for n in range(200):
        table.reserve("tcp", None, 10000 + n, f"ep{n}")
    table.release_owner("ep7")
    table.release_owner("never-published")
    assert ("tcp", 10007) not in table.by_port and "ep7" not in table.by_owner
    table.reserve("tcp", "198.18.0.2", 10007, "ep-new")
    with pytest.raises(ConflictError, match="tcp/10008"):
        table.check_all([PortBinding("tcp", 80, 10008)], None)
    with pytest.raises(ConflictError, match="tcp/9000"):  # a duplicate inside one request
        table.check_all([PortBinding("tcp", 80, 9000), PortBinding("tcp", 81, 9000)], None)
    with pytest.raises(ConflictError, match="all ports are allocated"):
        table.check_all([PortBinding("tcp", 80, 10000, host_port_end=10001)], None)
    table.check_all([PortBinding("tcp", 80, 10000, host_port_end=10200), PortBinding("udp", 53, 10000)], None)
    table._check()
    assert len(table.by_owner) == 200
