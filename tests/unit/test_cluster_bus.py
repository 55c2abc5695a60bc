"""The table-event bus: entries, delivery to the other hosts only, failures recorded."""

from __future__ import annotations

import pytest

from netsim.cluster.bus import TableEventBus
from netsim.driverapi import EventType
from netsim.errors import ConflictError, InvalidParameterError, NotFoundError

Event = tuple[EventType, str, str, str, bytes]


def _bus_with(*hosts: str) -> tuple[TableEventBus, dict[str, list[Event]]]:
    bus = TableEventBus()
    seen: dict[str, list[Event]] = {host: [] for host in hosts}
    for host in hosts:
        bus.subscribe(host, lambda *event, host=host: seen[host].append(event))
    return bus, seen


def test_publish_reaches_every_other_host_and_not_the_origin() -> None:
    bus, seen = _bus_with("h1", "h2", "h3")
    bus.publish("h1", EventType.CREATE, "n", "t", "k", b"v")
    assert seen["h1"] == []
    assert seen["h2"] == seen["h3"] == [(EventType.CREATE, "n", "t", "k", b"v")]


def test_entries_follow_create_update_delete() -> None:
    bus, _ = _bus_with("h1")
    bus.publish("h1", EventType.CREATE, "n", "t", "k", b"1")
    bus.publish("h1", EventType.UPDATE, "n", "t", "k", b"2")
    assert [(e.key, e.value) for e in bus.entries("n")] == [("k", b"2")]
    bus.publish("h1", EventType.CREATE, "other", "t", "k", b"x")
    assert [e.nid for e in bus.entries()] == ["n", "other"]
    bus.publish("h1", EventType.DELETE, "n", "t", "k", b"")
    assert bus.entries("n") == []
    # Deleting an entry nobody holds is delivered but changes nothing.
    bus.publish("h1", EventType.DELETE, "n", "t", "k", b"")
    assert [e.nid for e in bus.entries()] == ["other"]


def test_a_failing_subscriber_is_recorded_and_does_not_stop_the_others() -> None:
    bus, seen = _bus_with("h3")

    def broken(*event: object) -> None:
        raise RuntimeError("remote host down")

    bus.subscribe("h2", broken)
    bus.publish("h1", EventType.CREATE, "n", "t", "k", b"v")
    assert len(seen["h3"]) == 1
    assert len(bus.failures) == 1 and "remote host down" in bus.failures[0] and bus.failures[0].startswith("h2:")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("h1", 1, "n", "t", "k", b"v"), "EventType"),
        (("", EventType.CREATE, "n", "t", "k", b"v"), "origin"),
        (("h1", EventType.CREATE, "", "t", "k", b"v"), "network id"),
        (("h1", EventType.CREATE, "n", "", "k", b"v"), "table"),
        (("h1", EventType.CREATE, "n", "t", "", b"v"), "key"),
        (("h1", EventType.CREATE, "n", "t", "k", "v"), "bytes"),
    ],
)
def test_invalid_events_are_refused_and_change_nothing(args: tuple[object, ...], message: str) -> None:
    bus, seen = _bus_with("h2")
    with pytest.raises(InvalidParameterError, match=message):
        bus.publish(*args)  # type: ignore[arg-type]
    assert bus.entries() == [] and seen["h2"] == []


def test_subscription_is_once_per_host() -> None:
    bus, _ = _bus_with("h1")
    with pytest.raises(ConflictError, match="already subscribed"):
        bus.subscribe("h1", lambda *event: None)
    bus.unsubscribe("h1")
    with pytest.raises(NotFoundError, match="not subscribed"):
        bus.unsubscribe("h1")
