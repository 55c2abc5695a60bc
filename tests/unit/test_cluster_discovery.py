"""Node discovery (libnetwork's DiscoverNew/DiscoverDelete NODE) and datastore
discovery reach every driver when hosts come and go or a store is configured."""

from __future__ import annotations

from typing import Any

import pytest

from drivers.overlay.driver import OverlayDriver
from netsim.cluster import Cluster
from netsim.controller import Controller, ControllerConfig
from netsim.driverapi import DiscoveryType
from netsim.kernel.fake import FakeKernel
from netsim.store import MemoryStore


def test_hosts_learn_each_other_and_forget_the_leaving(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, str, str, bool]] = []

    def record(kind: str) -> Any:
        def hook(self: OverlayDriver, dtype: DiscoveryType, data: Any) -> None:
            if dtype == DiscoveryType.NODE:
                seen.append((self.host.name, kind, data["Address"], data["Self"]))

        return hook

    monkeypatch.setattr(OverlayDriver, "discover_new", record("new"))
    monkeypatch.setattr(OverlayDriver, "discover_delete", record("delete"))
    with Cluster(FakeKernel(), ["h1", "h2", "h3"]):
        joined = list(seen)
    assert joined == [
        ("h1", "new", "198.19.0.2", True),
        ("h2", "new", "198.19.0.3", True),
        ("h2", "new", "198.19.0.2", False),
        ("h1", "new", "198.19.0.3", False),
        ("h3", "new", "198.19.0.4", True),
        ("h3", "new", "198.19.0.2", False),
        ("h1", "new", "198.19.0.4", False),
        ("h3", "new", "198.19.0.3", False),
        ("h2", "new", "198.19.0.4", False),
    ]
    # Hosts leave last first; each leaving one is withdrawn from those still there.
    assert seen[len(joined) :] == [
        ("h1", "delete", "198.19.0.4", False),
        ("h2", "delete", "198.19.0.4", False),
        ("h1", "delete", "198.19.0.3", False),
    ]


def test_a_configured_store_is_announced_to_every_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, str]] = []

    def hook(self: OverlayDriver, dtype: DiscoveryType, data: Any) -> None:
        if dtype == DiscoveryType.DATASTORE:
            seen.append(data)

    monkeypatch.setattr(OverlayDriver, "discover_new", hook)
    with Controller(FakeKernel(), ControllerConfig(entry_points=False)):
        assert seen == []  # the embedded default is not a datastore anyone configured
    local, shared = MemoryStore(), MemoryStore()
    with Controller(FakeKernel(), ControllerConfig(store=local, global_store=shared, entry_points=False)):
        assert seen == [
            {"Scope": "local", "Provider": "memory", "Address": "memory://"},
            {"Scope": "global", "Provider": "memory", "Address": "memory://"},
        ]
