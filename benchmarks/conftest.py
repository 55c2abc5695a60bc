"""Benchmark roles, and the fake-kernel-only selection.

* ``@pytest.mark.reference``: a same-run yardstick (a set-based allocator, one
  ``ip`` process per command, building packets alone...). It is measured and
  shown beside what it calibrates, never gated by ``netsim bench compare``:
  when a reference moves, the machine moved, not the code. A benchmark with
  ``reference`` in its node id counts as one without the marker.
* ``@pytest.mark.linux``: needs the real kernel (root, namespaces);
  ``@pytest.mark.stores``: needs a real store server (etcd, ZooKeeper).
* ``--fake-only``: deselects every ``linux`` and ``stores`` benchmark, so the
  rest runs in-process, as any user, without touching a kernel
  (``pytest benchmarks --benchmark-only --fake-only``).
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("netsim benchmarks").addoption(
        "--fake-only",
        action="store_true",
        default=False,
        help="leave out real-kernel and real-server benchmarks (markers linux, stores): in-process only",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "reference: a same-run reference benchmark: measured, never gated")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--fake-only"):
        return
    dropped = [item for item in items if _outside_the_process(item)]
    kept = [item for item in items if not _outside_the_process(item)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def _outside_the_process(item: pytest.Item) -> bool:
    return any(item.get_closest_marker(name) is not None for name in ("linux", "stores"))
