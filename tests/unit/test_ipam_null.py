"""Null IPAM: one catch-all IPv4 pool, no addresses, unknown IDs refused."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from ipam.null import NULL_POOL_ID, NullIpam, init
from netsim.errors import InvalidParameterError, NotFoundError


def test_pool_and_address() -> None:
    driver = NullIpam()
    assert driver.get_default_address_spaces() == ("null", "null")
    assert driver.is_builtin()
    pool_id, pool, data = driver.request_pool("null", "", "", {}, False)
    assert (pool_id, str(pool), data) == (NULL_POOL_ID, "0.0.0.0/0", {})
    assert driver.request_address(pool_id, None, {}) == (None, {})
    assert driver.request_address(pool_id, ipaddress.ip_address("10.0.0.1"), {}) == (None, {})
    driver.release_address(pool_id, ipaddress.ip_address("10.0.0.1"))
    driver.release_pool(pool_id)


@pytest.mark.parametrize(
    ("args", "error", "words"),
    [
        (("LocalDefault", "", "", {}, False), NotFoundError, "address space"),
        (("null", "10.0.0.0/24", "", {}, False), InvalidParameterError, "specific pool"),
        (("null", "", "10.0.0.0/25", {}, False), InvalidParameterError, "sub-pool"),
        (("null", "", "", {}, True), InvalidParameterError, "IPv6"),
    ],
)
def test_refused_pool_requests(args: tuple[Any, ...], error: type[Exception], words: str) -> None:
    with pytest.raises(error, match=words):
        NullIpam().request_pool(*args)


def test_unknown_pool_ids() -> None:
    driver = NullIpam()
    with pytest.raises(NotFoundError, match="pool id"):
        driver.request_address("LocalDefault/10.0.0.0/24", None, {})
    with pytest.raises(NotFoundError, match="pool id"):
        driver.release_address("nope", ipaddress.ip_address("10.0.0.1"))
    with pytest.raises(NotFoundError, match="pool id"):
        driver.release_pool("nope")


def test_init_registers_null() -> None:
    registered: dict[str, Any] = {}

    class Registry:
        def register_ipam_driver(self, name: str, driver: Any, capability: Any = None) -> None:
            registered[name] = driver

    init(Registry(), {})
    assert isinstance(registered["null"], NullIpam)
