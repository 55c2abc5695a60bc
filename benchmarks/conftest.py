"""Benchmark roles, and the fake-kernel-only selection.

* ``@pytest.mark.reference``: a same-run yardstick (a set-based allocator, one
  ``ip`` process per command, building packets alone...). It is measured and
  shown beside what it calibrates, never gated by ``netsim bench compare``:
  when a reference moves, the machine moved, not the code. A benchmark with
  ``reference`` in its node id counts as one without the marker.
* ``@pytest.mark.linux``: needs the real kernel (root, namespaces).
* ``--fake-only``: deselects every ``linux`` benchmark, so the rest runs as
  any user and without touching a kernel (``pytest benchmarks --fake-only``).
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("netsim benchmarks").addoption(
        "--fake-only",
        action="store_true",
        default=False,
        help="leave out the real-kernel benchmarks (marker linux): fake kernel and pure code only",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "reference: a same-run reference benchmark: measured, never gated")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--fake-only"):
        return
    kept = [item for item in items if item.get_closest_marker("linux") is None]
    dropped = [item for item in items if item.get_closest_marker("linux") is not None]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
