"""JSON <-> driverapi types: field typing, interfaces, join replies, errors."""

from __future__ import annotations

import doctest
import ipaddress
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import netsim.plugin.codec as codec
import netsim.plugin.errors as plugin_errors
from netsim.driverapi import CONNECTED, NEXTHOP, Capability, InterfaceInfo, JoinInfo
from netsim.errors import (
    ConflictError,
    InvalidParameterError,
    KernelExistsError,
    NoSpaceError,
    NotFoundError,
    NotImplementedByDriverError,
    PluginReplyError,
    UnavailableError,
    error_kind,
    kernel_error,
)
from netsim.ipamapi import IpamCapability
from netsim.plugin.codec import Fields, InterfaceValues


def test_doctests() -> None:
    results = doctest.testmod(codec)
    assert results.attempted > 0 and results.failed == 0


@pytest.mark.parametrize(
    ("data", "read", "match"),
    [
        ({"A": 1}, lambda f: f.text("A"), "'A' must be a string, got a number"),
        ({"A": "x"}, lambda f: f.flag("A"), "must be a boolean"),
        ({"A": True}, lambda f: f.number("A"), "must be a number, got a boolean"),
        ({"A": []}, lambda f: f.mapping("A"), "must be an object, got a list"),
        ({"A": {}}, lambda f: f.items("A"), "must be a list"),
        ({"A": {"k": 1}}, lambda f: f.string_map("A"), r"A\['k'\] must be a string"),
        ({}, lambda f: f.text("A", required=True), "missing field 'A'"),
        ({"A": ""}, lambda f: f.text("A", required=True), "missing field 'A'"),
    ],
)
def test_fields_name_the_bad_field(data: dict[str, Any], read: Any, match: str) -> None:
    with pytest.raises(InvalidParameterError, match=match):
        read(Fields(data, "Call request"))


def test_fields_zero_values_for_missing_or_null() -> None:
    fields = Fields({"A": None}, "x")
    assert (fields.text("A"), fields.flag("B"), fields.number("C"), fields.mapping("D"), fields.items("E")) == (
        "",
        False,
        0,
        {},
        [],
    )
    assert fields.sub("A") is None
    with pytest.raises(InvalidParameterError, match="expected a JSON object, got null"):
        Fields(None, "x")


def test_capability_rules() -> None:
    assert codec.capability_from_json({"Scope": "local"}) == Capability("local", "local")
    assert codec.capability_from_json({"Scope": "global", "ConnectivityScope": "local"}) == Capability(
        "global", "local"
    )
    cap = Capability("global", "global")
    assert codec.capability_from_json(codec.capability_to_json(cap)) == cap
    ipam_cap = IpamCapability(True, False)
    assert codec.ipam_capability_from_json(codec.ipam_capability_to_json(ipam_cap)) == ipam_cap


MACS = st.builds(lambda b: "02:" + ":".join(f"{x:02x}" for x in b), st.binary(min_size=5, max_size=5))
V4 = st.builds(
    lambda a, p: ipaddress.IPv4Interface((a, p)),
    st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address),
    st.integers(0, 32),
)
V6 = st.builds(
    lambda a, p: ipaddress.IPv6Interface((a, p)),
    st.integers(0, 2**128 - 1).map(ipaddress.IPv6Address),
    st.integers(0, 128),
)


@settings(max_examples=100, deadline=None)
@given(mac=st.none() | MACS, v4=st.none() | V4, v6=st.none() | V6)
def test_interface_round_trip(mac: str | None, v4: Any, v6: Any) -> None:
    values = InterfaceValues(mac, v4, v6)
    assert InterfaceValues.from_json(Fields(values.to_json(), "Interface")) == values
    ifinfo = InterfaceInfo()
    values.apply_to(ifinfo)
    assert InterfaceValues.of(ifinfo) == values
    assert values.conflicts_with(InterfaceValues()) == []
    assert values.filled_since(values) == InterfaceValues()


def test_interface_conflicts() -> None:
    current = InterfaceValues(address=ipaddress.ip_interface("10.0.0.2/24"))
    reply = InterfaceValues(mac="02:42:00:00:00:01", address=ipaddress.ip_interface("10.0.0.2/24"))
    assert reply.conflicts_with(current) == ["Address 10.0.0.2/24 (already 10.0.0.2/24)"]


ROUTES = st.lists(
    st.tuples(
        st.sampled_from(["10.1.0.0/16", "192.0.2.0/24", "fd00:9::/64"]),
        st.sampled_from([NEXTHOP, CONNECTED]),
        st.sampled_from(["10.0.0.254", "fd00::1", None]),
    ),
    max_size=4,
)


@settings(max_examples=100, deadline=None)
@given(
    names=st.none() | st.tuples(st.text("abcdefvth0123", min_size=1, max_size=15), st.sampled_from(["eth", "net"])),
    gateway=st.none() | st.sampled_from(["10.0.0.1", "172.17.0.1"]),
    gateway6=st.none() | st.sampled_from(["fd00::1", "2001:db8::1"]),
    routes=ROUTES,
    disable=st.booleans(),
)
def test_join_round_trip(
    names: tuple[str, str] | None, gateway: str | None, gateway6: str | None, routes: Any, disable: bool
) -> None:
    jinfo = JoinInfo()
    if names:
        jinfo.set_names(*names)
    if gateway:
        jinfo.set_gateway(ipaddress.IPv4Address(gateway))
    if gateway6:
        jinfo.set_gateway_ipv6(ipaddress.IPv6Address(gateway6))
    for destination, route_type, hop in routes:
        if route_type == NEXTHOP and hop is None:
            continue
        jinfo.add_static_route(
            ipaddress.ip_network(destination), route_type, ipaddress.ip_address(hop) if hop else None
        )
    if disable:
        jinfo.disable_gateway_service()
    decoded = codec.join_reply_from_json(codec.join_reply_to_json(jinfo))
    copy = JoinInfo()
    codec.copy_join_info(decoded, copy)
    assert vars(copy) == vars(jinfo)


def test_ipam_data_decoding_names_the_entry() -> None:
    with pytest.raises(InvalidParameterError, match=r"IPv4Data\[1\]: missing field 'Pool'"):
        codec.ipam_data_from_json(Fields({"IPv4Data": [{"Pool": "10.0.0.0/24"}, {}]}, "req"), "IPv4Data")
    with pytest.raises(InvalidParameterError, match="expected a JSON object, got a string"):
        codec.ipam_data_from_json(Fields({"IPv4Data": ["10.0.0.0/24"]}, "req"), "IPv4Data")
    with pytest.raises(InvalidParameterError, match="malformed IPAMData"):
        codec.ipam_data_from_json(Fields({"IPv4Data": [{"Pool": "bogus"}]}, "req"), "IPv4Data")


@pytest.mark.parametrize(
    ("exc", "category", "base"),
    [
        (NoSpaceError("full"), "no-space", NoSpaceError),
        (UnavailableError("down"), "unavailable", UnavailableError),
        (ConflictError("dup"), "conflict", ConflictError),
        (kernel_error(17, "exists"), "conflict", ConflictError),
        (NotFoundError("gone"), "not-found", NotFoundError),
        (InvalidParameterError("bad"), "invalid-parameter", InvalidParameterError),
        (NotImplementedByDriverError("no"), "not-implemented", NotImplementedByDriverError),
        (RuntimeError("boom"), "", PluginReplyError),
    ],
)
def test_error_reply_round_trip(exc: Exception, category: str, base: type[Exception]) -> None:
    reply = plugin_errors.error_reply(exc)
    assert reply["Err"] == str(exc)
    assert reply.get(plugin_errors.KIND_FIELD, "") == category
    rebuilt = plugin_errors.reply_error(reply["Err"], kind=category, plugin="p", call="C")
    assert isinstance(rebuilt, PluginReplyError) and isinstance(rebuilt, base)
    assert str(rebuilt) == f"p/C: {exc}"
    if category:
        assert error_kind(rebuilt) == category
    assert not isinstance(rebuilt, KernelExistsError)  # the errno does not cross the socket


def test_parse_helpers() -> None:
    assert str(codec.parse_pool("10.0.0.1/24", "x")) == "10.0.0.0/24"
    with pytest.raises(InvalidParameterError, match="not a valid CIDR"):
        codec.parse_cidr("10.0.0.300/24", "x")
    with pytest.raises(InvalidParameterError, match="not a valid IP"):
        codec.parse_plain_ip("10.0.0.1/24", "x")
