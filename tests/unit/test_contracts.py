"""The shared contract types: set-once interface info, join info validation,
IPAMData JSON, capabilities, and the error tree's errno mapping."""

from __future__ import annotations

import errno
import ipaddress
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netsim.driverapi import CONNECTED, NEXTHOP, Capability, InterfaceInfo, IPAMData, JoinInfo
from netsim.errors import (
    ConflictError,
    InvalidParameterError,
    KernelError,
    NetsimError,
    NotFoundError,
    error_kind,
    kernel_error,
)


def test_interface_info_values_are_set_once() -> None:
    info = InterfaceInfo()
    info.set_mac_address("02:42:AC:11:00:02")
    info.set_ip_address(ipaddress.ip_interface("172.17.0.2/16"))
    info.set_ip_address(ipaddress.ip_interface("fd00::2/64"))
    assert info.mac_address == "02:42:ac:11:00:02"
    with pytest.raises(ConflictError, match="MAC address already set"):
        info.set_mac_address("02:42:ac:11:00:03")
    with pytest.raises(ConflictError, match="IPv4 address already set"):
        info.set_ip_address(ipaddress.ip_interface("172.17.0.3/16"))
    with pytest.raises(ConflictError, match="IPv6 address already set"):
        info.set_ip_address(ipaddress.ip_interface("fd00::3/64"))
    assert str(info.address) == "172.17.0.2/16" and str(info.address_ipv6) == "fd00::2/64"


@pytest.mark.parametrize("mac", ["zz:00:00:00:00:00", "01:00:5e:00:00:01", "00:00:00:00:00:00", "02:42", ""])
def test_interface_info_refuses_bad_macs_and_keeps_none(mac: str) -> None:
    info = InterfaceInfo()
    with pytest.raises(InvalidParameterError):
        info.set_mac_address(mac)
    assert info.mac_address is None


def test_join_info_validates_routes_and_gateways() -> None:
    jinfo = JoinInfo()
    with pytest.raises(InvalidParameterError, match="route type"):
        jinfo.add_static_route(ipaddress.ip_network("10.0.0.0/8"), 7)
    with pytest.raises(InvalidParameterError, match="needs a next hop"):
        jinfo.add_static_route(ipaddress.ip_network("10.0.0.0/8"), NEXTHOP)
    jinfo.add_static_route(ipaddress.ip_network("10.0.0.0/8"), CONNECTED)
    with pytest.raises(InvalidParameterError):
        jinfo.set_gateway(ipaddress.ip_address("fd00::1"))  # type: ignore[arg-type]
    assert len(jinfo.static_routes) == 1 and jinfo.gateway is None


def test_capability_refuses_unknown_scopes() -> None:
    assert Capability("global", "global").data_scope == "global"
    with pytest.raises(InvalidParameterError, match="data scope"):
        Capability("galactic")  # type: ignore[arg-type]


@given(
    pool=st.sampled_from(["10.0.0.0/24", "172.17.0.0/16", "fd00::/64", "192.168.0.0/20"]),
    gateway_index=st.integers(1, 200),
    aux=st.dictionaries(st.text("abcdef", min_size=1, max_size=5), st.integers(2, 100), max_size=3),
)
@settings(max_examples=50, deadline=None)
def test_ipam_data_json_round_trip(pool: str, gateway_index: int, aux: dict[str, int]) -> None:
    net = ipaddress.ip_network(pool)
    data = IPAMData(
        "LocalDefault",
        net,
        ipaddress.ip_interface(f"{net[gateway_index]}/{net.prefixlen}"),
        {k: ipaddress.ip_interface(f"{net[v]}/{net.prefixlen}") for k, v in aux.items()},
    )
    assert IPAMData.from_json(data.to_json()) == data


@pytest.mark.parametrize("bad", [{}, {"Pool": "10.0.0.0/33"}, {"Pool": "x"}, {"Pool": "10.0.0.0/24", "Gateway": 5}])
def test_ipam_data_from_bad_json_names_the_problem(bad: dict[str, object]) -> None:
    with pytest.raises(InvalidParameterError, match="malformed IPAMData"):
        IPAMData.from_json(bad)


@pytest.mark.parametrize(
    ("err", "category"),
    [
        (errno.EEXIST, ConflictError),
        (errno.ENODEV, NotFoundError),
        (errno.EINVAL, InvalidParameterError),
        (errno.EBUSY, ConflictError),
        (errno.EIO, KernelError),
    ],
)
def test_kernel_errors_keep_errno_and_category(err: int, category: type[NetsimError]) -> None:
    exc = kernel_error(err, "something")
    assert isinstance(exc, KernelError) and isinstance(exc, category)
    assert exc.errno == err
    assert errno.errorcode[err] in str(exc) and errno.errorcode[err] in error_kind(exc)
    again = pickle.loads(pickle.dumps(exc))
    assert type(again) is type(exc) and again.errno == err
