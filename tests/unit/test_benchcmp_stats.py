"""The decision rule of ``netsim bench compare``: exact coverage, verdicts, tolerance."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netsim.benchcmp import stats
from netsim.errors import InvalidParameterError


@pytest.mark.parametrize("n", range(2, 15))
def test_interval_coverage_is_exact(n: int) -> None:
    """Enumerate every sign pattern: the interval [r_(k), r_(n+1-k)] misses the
    median exactly when k-1 or fewer observations fall on one side of it."""
    rank = stats.interval_rank(n, 0.9)
    if rank is None:
        assert n < stats.min_rounds(0.9)
        return
    k, coverage = rank
    misses = sum(1 for signs in itertools.product((0, 1), repeat=n) if sum(signs) < k or n - sum(signs) < k)
    assert coverage == pytest.approx(1 - misses / 2**n)
    assert coverage >= 0.9
    # k is the largest rank that still reaches the confidence.
    if k + 1 <= n // 2:
        assert 1 - 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n < 0.9


def test_min_rounds() -> None:
    assert stats.min_rounds(0.95) == 6
    assert stats.min_rounds(0.90) == 5
    assert stats.min_rounds(0.99) == 8


def test_a_consistent_slowdown_is_slower() -> None:
    decision = stats.decide([1.24, 1.27, 1.25, 1.26, 1.31, 1.22, 1.25, 1.28, 1.26], confidence=0.95, tolerance=0.05)
    assert decision.verdict == "slower"
    assert decision.low == 1.24 and decision.high == 1.28  # k=2 at n=9: second from each end
    assert decision.estimate == 1.26


def test_one_disturbed_round_neither_hides_nor_invents_a_regression() -> None:
    slow = [1.25, 1.27, 0.55, 1.26, 1.24, 1.28, 1.25, 1.26, 1.27]  # one round hit by a burst
    assert stats.decide(slow, confidence=0.95, tolerance=0.05).verdict == "slower"
    same = [1.0, 0.99, 1.8, 1.01, 1.0, 0.98, 1.02, 1.0, 0.99]
    assert stats.decide(same, confidence=0.95, tolerance=0.05).verdict == "same"


def test_a_speedup_is_faster() -> None:
    ratios = [0.8, 0.79, 0.81, 0.78, 0.8, 0.82, 0.8, 0.79, 0.8]
    assert stats.decide(ratios, confidence=0.95, tolerance=0.05).verdict == "faster"


def test_a_small_consistent_drift_is_not_a_regression() -> None:
    ratios = [1.04, 1.045, 1.04, 1.035, 1.04, 1.045, 1.04, 1.04, 1.042]
    assert stats.decide(ratios, confidence=0.95, tolerance=0.05).verdict == "same"


def test_wide_noise_is_unsure_not_slower() -> None:
    ratios = [0.7, 1.4, 1.1, 0.9, 1.3, 1.0, 1.2, 0.8, 1.25]
    assert stats.decide(ratios, confidence=0.95, tolerance=0.05).verdict == "unsure"


def test_too_few_rounds_is_invalid_input() -> None:
    with pytest.raises(InvalidParameterError, match="need 6"):
        stats.decide([1.0] * 5, confidence=0.95, tolerance=0.05)
    with pytest.raises(InvalidParameterError):
        stats.check_confidence(1.0)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(min_value=1 / 1.05, max_value=1.05), min_size=6, max_size=15))
def test_within_tolerance_is_never_slower_or_faster(ratios: list[float]) -> None:
    assert stats.decide(ratios, confidence=0.95, tolerance=0.05).verdict in ("same", "unsure")


def test_paired_ratios_skip_rounds_a_side_missed() -> None:
    assert stats.paired_ratios([2.0, None, 4.0, 1.0], [3.0, 1.0, None, 1.0]) == [1.5, 1.0]


def test_round_figure_is_the_fastest_sample() -> None:
    assert stats.round_figure([3.0, 1.0, 2.0]) == 1.0
    with pytest.raises(InvalidParameterError):
        stats.round_figure([])
