"""The bridge driver's published-port parsing (BindingParser: each distinct
JSON entry parsed once) and its single-binding table check: the same
bindings and the same refusals as parsing every entry every time."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.bridge.ports import BindingParser, PortTable
from netsim.errors import ConflictError, InvalidParameterError
from netsim.netlabel import PORT_MAP, PortBinding, port_bindings

entries = st.fixed_dictionaries(
    {
        "Proto": st.sampled_from(["tcp", "udp", "sctp"]),
        "ContainerPort": st.integers(-1, 70000),
        "HostPort": st.integers(0, 70000),
        "HostIP": st.sampled_from(["", "198.18.0.2", "::1", "nope"]),
    },
    optional={"HostPortEnd": st.integers(0, 70000)},
)


def _outcome(parse: Any, options: dict[str, Any]) -> Any:
    try:
        return parse(options)
    except InvalidParameterError as exc:
        return type(exc), str(exc)


@settings(max_examples=200, deadline=None)
@given(batches=st.lists(st.lists(entries, max_size=3), max_size=6))
def test_the_parser_answers_as_parsing_every_time(batches: list[list[dict[str, Any]]]) -> None:
    parse = BindingParser()
    for batch in batches + batches:  # the second pass is served from what the first parsed
        options = {PORT_MAP: [dict(entry) for entry in batch]}
        assert _outcome(parse, options) == _outcome(port_bindings, options)


def test_one_object_per_distinct_entry_and_a_bounded_memory() -> None:
    parse = BindingParser()
    entry = {"Proto": "tcp", "ContainerPort": 80, "HostPort": 8080, "HostIP": ""}
    first = parse({PORT_MAP: [entry]})[0]
    assert parse({PORT_MAP: [dict(entry)]})[0] is first
    given_binding = PortBinding("udp", 53, 5353)
    assert parse({PORT_MAP: [given_binding]}) == [given_binding]
    assert parse({}) == [] and parse({PORT_MAP: None}) == []
    for port in range(1, BindingParser.LIMIT + 10):
        parse({PORT_MAP: [{"Proto": "tcp", "ContainerPort": port, "HostPort": 0, "HostIP": ""}]})
    assert len(parse._parsed) <= BindingParser.LIMIT


def test_unhashable_and_malformed_entries_are_parsed_and_refused_every_time() -> None:
    parse = BindingParser()
    odd = {"Proto": "tcp", "ContainerPort": 80, "HostPort": 8080, "HostIP": "", "Extra": [1]}
    assert parse({PORT_MAP: [odd]}) == [PortBinding("tcp", 80, 8080)]
    for _ in range(2):
        with pytest.raises(InvalidParameterError, match="malformed port binding"):
            parse({PORT_MAP: [{"Proto": "tcp"}]})
        with pytest.raises(InvalidParameterError, match="protocol"):
            parse({PORT_MAP: [{"Proto": "icmp", "ContainerPort": 1, "HostPort": 1, "HostIP": ""}]})
    assert parse._parsed == {}  # nothing refused (nor unhashable) was kept


@pytest.mark.parametrize("host_ip", [None, "198.18.0.2"])
def test_a_single_fixed_binding_is_checked_against_the_table(host_ip: str | None) -> None:
    table = PortTable()
    table.reserve("tcp", None, 8080, "ep1")
    with pytest.raises(ConflictError, match="host port tcp/8080 is already published"):
        table.check_all([PortBinding("tcp", 80, 8080)], host_ip)
    table.check_all([PortBinding("tcp", 80, 8081)], host_ip)
    table.check_all([PortBinding("udp", 80, 8080)], host_ip)
    with pytest.raises(ConflictError):  # two of one call clash with each other (the scratch table's case)
        table.check_all([PortBinding("tcp", 80, 9000), PortBinding("tcp", 81, 9000)], host_ip)
    table._check()
