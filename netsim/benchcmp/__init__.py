"""Same-machine performance comparison of two commits, for a CI gate.

``netsim bench compare BASE [HEAD]`` checks out both trees as git worktrees,
gives each its own venv with the same pinned pytest-benchmark, runs the
selected benchmarks in interleaved rounds (BASE and HEAD back to back,
alternating which goes first), and decides per benchmark from the paired
per-round ratios with a distribution-free confidence interval. References
are measured, never gated. See docs/benchmarks.md.
"""

from __future__ import annotations

from netsim.benchcmp.compare import CompareOptions, Comparison, Row, compare

__all__ = ["CompareOptions", "Comparison", "Row", "compare"]
