"""Input parsing: names, MACs, subnets, booleans, ports."""

from __future__ import annotations

import errno

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netsim.errors import InvalidParameterError, KernelError
from netsim.naming import check_ifname, check_nsname, run_prefix
from netsim.validate import parse_bool, parse_mac, parse_network, parse_port


@given(st.text(max_size=20))
@settings(max_examples=300, deadline=None)
def test_ifname_rule_matches_linux(name: str) -> None:
    raw = name.encode()
    linux_accepts = 0 < len(raw) <= 15 and name not in (".", "..") and not any(c in name for c in "/: \t\n\r\0")
    if linux_accepts:
        check_ifname(name)
    else:
        with pytest.raises(KernelError) as info:
            check_ifname(name)
        assert info.value.errno == errno.EINVAL


def test_namespace_names() -> None:
    check_nsname(run_prefix("abc123") + "h1")
    for bad in ("", "a/b", ".."):
        with pytest.raises(KernelError):
            check_nsname(bad)


@pytest.mark.parametrize("text", ["10.1.0.0/33", "10.1.0.1/24", "10.1.0.0", "fd00::/129", "banana", "300.0.0.0/8"])
def test_bad_subnets_are_invalid_parameters(text: str) -> None:
    with pytest.raises(InvalidParameterError, match="invalid subnet"):
        parse_network(text)


def test_good_subnets_parse() -> None:
    assert str(parse_network("10.1.0.0/16")) == "10.1.0.0/16"
    assert str(parse_network("fd00:1::/64")) == "fd00:1::/64"


@pytest.mark.parametrize("value", ["maybe", "yes", "", "2"])
def test_parse_bool_refuses_what_go_refuses(value: str) -> None:
    with pytest.raises(InvalidParameterError, match="enable_icc"):
        parse_bool(value, what="enable_icc")


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("1", True), ("F", False), ("False", False)])
def test_parse_bool_accepts_go_forms(value: str, expected: bool) -> None:
    assert parse_bool(value, what="x") is expected


@given(st.integers())
@settings(max_examples=100, deadline=None)
def test_ports(value: int) -> None:
    if 1 <= value <= 65535:
        assert parse_port(value) == value
    else:
        with pytest.raises(InvalidParameterError):
            parse_port(value)


def test_macs_normalize() -> None:
    assert parse_mac("02-42-AC-11-00-02") == "02:42:ac:11:00:02"
