"""Hypothesis strategies for driver authors' own property tests.

>>> from hypothesis import given
>>> @given(ipv4_subnets())
... def test_any_subnet(subnet): ...

What each draws:

* :func:`ipv4_subnets`: an :class:`ipaddress.IPv4Network` in 10.0.0.0/8,
  e.g. ``IPv4Network("10.3.16.0/20")``;
* :func:`ipv6_subnets`: an :class:`ipaddress.IPv6Network` in fd00::/8;
* :func:`bridge_options` / :func:`invalid_bridge_options`: ``dict[str, str]``
  of Docker's bridge option names, e.g. ``{"com.docker.network.driver.mtu":
  "1500"}``;
* :func:`endpoint_plans`: ``list[EndpointPlan]``, e.g.
  ``[EndpointPlan("ca", 7), EndpointPlan("c1x", None)]`` (distinct container
  names, distinct host numbers; None lets IPAM choose).

``netsim new-driver`` writes a property test that uses
:func:`ipv4_subnets` and :func:`endpoint_plans` with the controller.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from hypothesis import strategies as st

BRIDGE_BOOL_OPTIONS = (
    "com.docker.network.bridge.enable_icc",
    "com.docker.network.bridge.enable_ip_masquerade",
)


def ipv4_subnets(min_prefix: int = 16, max_prefix: int = 29) -> st.SearchStrategy[ipaddress.IPv4Network]:
    """Private IPv4 subnets inside 10.0.0.0/8, host bits zero, prefix length in
    ``[min_prefix, max_prefix]`` (``IPv4Network("10.3.16.0/20")``)."""

    def build(prefix: int, value: int) -> ipaddress.IPv4Network:
        base = int(ipaddress.IPv4Address("10.0.0.0")) + (value << (32 - prefix))
        return ipaddress.IPv4Network((base, prefix))

    return st.integers(min_prefix, max_prefix).flatmap(
        lambda prefix: st.integers(0, (1 << (prefix - 8)) - 1).map(lambda value: build(prefix, value))
    )


def ipv6_subnets(min_prefix: int = 48, max_prefix: int = 120) -> st.SearchStrategy[ipaddress.IPv6Network]:
    """Unique-local IPv6 subnets inside fd00::/8, prefix length in
    ``[min_prefix, max_prefix]`` (``IPv6Network("fd00:12::/64")``)."""

    def build(prefix: int, value: int) -> ipaddress.IPv6Network:
        base = int(ipaddress.IPv6Address("fd00::")) + (value << (128 - prefix))
        return ipaddress.IPv6Network((base, prefix))

    return st.integers(min_prefix, max_prefix).flatmap(
        lambda prefix: st.integers(0, (1 << min(prefix - 8, 64)) - 1).map(lambda value: build(prefix, value))
    )


def bridge_options() -> st.SearchStrategy[dict[str, str]]:
    """Valid option maps for the bridge driver (Docker's option names)."""
    booleans = st.sampled_from(["true", "false"])
    return st.fixed_dictionaries(
        {},
        optional={
            BRIDGE_BOOL_OPTIONS[0]: booleans,
            BRIDGE_BOOL_OPTIONS[1]: booleans,
            "com.docker.network.driver.mtu": st.integers(1280, 9000).map(str),
        },
    )


def invalid_bridge_options() -> st.SearchStrategy[dict[str, str]]:
    """Option maps the bridge driver must refuse with InvalidParameterError."""
    junk = st.text(min_size=1, max_size=8).filter(
        lambda s: s not in ("1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False")
    )
    return st.one_of(
        st.builds(lambda k, v: {k: v}, st.sampled_from(BRIDGE_BOOL_OPTIONS), junk),
        st.builds(lambda v: {"com.docker.network.driver.mtu": v}, st.sampled_from(["-1", "0", "abc", "70000"])),
    )


@dataclass(frozen=True)
class EndpointPlan:
    """A container and the host number it asks for (None: let IPAM choose).

    The address is ``subnet[host_number]``; host numbers are 2..200, so use
    subnets of /24 or larger.
    """

    container: str
    host_number: int | None


def endpoint_plans(max_endpoints: int = 6) -> st.SearchStrategy[list[EndpointPlan]]:
    """1..``max_endpoints`` plans: distinct container names (``c`` + 1-6 of
    ``[a-z0-9]``), the host numbers given distinct."""
    names = st.lists(st.from_regex(r"c[a-z0-9]{1,6}", fullmatch=True), min_size=1, max_size=max_endpoints, unique=True)

    def plans(containers: list[str]) -> st.SearchStrategy[list[EndpointPlan]]:
        numbers = st.lists(
            st.one_of(st.none(), st.integers(2, 200)), min_size=len(containers), max_size=len(containers)
        ).filter(lambda nums: len([n for n in nums if n is not None]) == len({n for n in nums if n is not None}))
        return numbers.map(lambda nums: [EndpointPlan(c, n) for c, n in zip(containers, nums, strict=True)])

    return names.flatmap(plans)
