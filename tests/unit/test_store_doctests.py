"""Doctests of the controller's data structures, and the port table's invariant."""

from __future__ import annotations

import doctest
import types

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import drivers.bridge.ports
import netsim.store.base
import netsim.store.memory
import netsim.store.url
import netsim.store.watch
import netsim.store.zknodes
import netsim.undo
from drivers.bridge.ports import PortTable
from netsim.errors import ConflictError


@pytest.mark.parametrize(
    "module",
    [
        netsim.store.base,
        netsim.store.memory,
        netsim.store.url,
        netsim.store.watch,
        netsim.store.zknodes,
        netsim.undo,
        drivers.bridge.ports,
    ],
)
def test_doctests(module: types.ModuleType) -> None:
    result = doctest.testmod(module)
    assert result.failed == 0 and result.attempted > 0


reservations = st.lists(
    st.tuples(
        st.sampled_from(["tcp", "udp"]),
        st.sampled_from([None, "198.18.0.2", "198.18.0.3"]),
        st.sampled_from([80, 8080]),
        st.sampled_from(["e1", "e2", "e3"]),
        st.booleans(),
    ),
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(reservations)
def test_port_table_against_a_model(ops: list[tuple[str, str | None, int, str, bool]]) -> None:
    table = PortTable()
    model: list[tuple[str, str | None, int, str]] = []
    for proto, host_ip, port, owner, release in ops:
        if release:
            table.release_owner(owner)
            model = [m for m in model if m[3] != owner]
        else:
            clash = any(
                p == proto and n == port and (i is None or host_ip is None or i == host_ip) for p, i, n, _ in model
            )
            if clash:
                before = {k: list(v) for k, v in table.by_port.items()}
                with pytest.raises(ConflictError, match=f"{proto}/{port}"):
                    table.reserve(proto, host_ip, port, owner)
                assert table.by_port == before
            else:
                table.reserve(proto, host_ip, port, owner)
                model.append((proto, host_ip, port, owner))
        table._check()
    assert sorted(
        (m.proto, m.host_ip or "", m.host_port, m.owner) for v in table.by_port.values() for m in v
    ) == sorted((p, i or "", n, o) for p, i, n, o in model)
