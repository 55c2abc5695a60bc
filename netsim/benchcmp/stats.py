"""The decision: is HEAD slower than BASE, beyond noise, by more than a tolerance?

Each round gives one BASE figure and one HEAD figure (the fastest of that
run's samples: see :func:`round_figure`), measured back to back. Their ratio ``head / base`` is one
observation of the slowdown with the machine's slow drift divided out. Over
``n`` rounds the estimate is the median of the ``n`` ratios, and its
confidence interval comes from order statistics (the sign test's interval):
``[r_(k), r_(n+1-k)]`` covers the true median ratio with probability
``1 - 2 * P(Binomial(n, 1/2) <= k - 1)``, whatever the noise's distribution.
No normality, no resampling randomness (the same samples always give the
same verdict), and one disturbed round moves one order statistic, not the
interval. docs/benchmarks.md explains the choice against the alternatives.

A benchmark is **slower** only when the whole interval lies above
``1 + tolerance``: we are confident the slowdown exceeds the tolerance, so
a few per cent of systematic drift between two trees is never a regression.

>>> ratios = [1.29, 1.31, 1.27, 1.33, 1.30, 1.28]
>>> decide(ratios, confidence=0.95, tolerance=0.05).verdict
'slower'
>>> decide([1.02, 0.97, 1.01, 0.99, 1.03, 0.98], confidence=0.95, tolerance=0.05).verdict
'same'
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from netsim.errors import InvalidParameterError

VERDICTS = ("slower", "faster", "same", "unsure")


@dataclass(frozen=True)
class Decision:
    estimate: float  # the median of the per-round ratios head/base
    low: float
    high: float
    coverage: float  # the interval's exact confidence (>= the one asked for)
    verdict: str  # one of VERDICTS


def _binomial_cdf_half(n: int, j: int) -> float:
    """P(Binomial(n, 1/2) <= j)."""
    return sum(math.comb(n, i) for i in range(j + 1)) / float(2**n)


def interval_rank(n: int, confidence: float) -> tuple[int, float] | None:
    """The largest ``k`` whose order-statistic interval has coverage >= ``confidence``.

    >>> interval_rank(6, 0.95)
    (1, 0.96875)
    >>> interval_rank(5, 0.95) is None
    True
    """
    best: tuple[int, float] | None = None
    for k in range(1, n // 2 + 1):
        coverage = 1 - 2 * _binomial_cdf_half(n, k - 1)
        if coverage >= confidence:
            best = (k, coverage)
    return best


def min_rounds(confidence: float) -> int:
    """The fewest rounds that can give an interval at ``confidence``.

    >>> min_rounds(0.95), min_rounds(0.99)
    (6, 8)
    """
    n = 2
    while interval_rank(n, confidence) is None:
        n += 1
    return n


def check_confidence(confidence: float) -> None:
    if not 0.5 <= confidence < 1:
        raise InvalidParameterError(f"confidence {confidence} must be in [0.5, 1)")


def decide(ratios: Sequence[float], *, confidence: float, tolerance: float, detectable: float = 0.2) -> Decision:
    """The verdict on per-round ratios head/base.

    * ``slower``: the interval lies above ``1 + tolerance``;
    * ``faster``: the interval lies below ``1 / (1 + tolerance)``;
    * ``same``: the interval lies within ``1 ± detectable`` (no change that big);
    * ``unsure``: too noisy to rule out a ``detectable`` change either way.
    """
    check_confidence(confidence)
    ranked = sorted(ratios)
    rank = interval_rank(len(ranked), confidence)
    if rank is None:
        raise InvalidParameterError(
            f"{len(ranked)} paired rounds cannot give a {confidence:.0%} interval: need {min_rounds(confidence)}"
        )
    k, coverage = rank
    low, high = ranked[k - 1], ranked[len(ranked) - k]
    if low > 1 + tolerance:
        verdict = "slower"
    elif high < 1 / (1 + tolerance):
        verdict = "faster"
    elif low >= 1 / (1 + detectable) and high <= 1 + detectable:
        verdict = "same"
    else:
        verdict = "unsure"
    return Decision(statistics.median(ranked), low, high, coverage, verdict)


def round_figure(samples: Sequence[float]) -> float:
    """One run's figure for one benchmark: its fastest sample (seconds).

    Other load only ever adds time to a sample, so the fastest is the least
    disturbed: on a shared machine it moves far less from run to run than
    the median (measured: see docs/benchmarks.md). The cost: a regression
    that slows only a few calls in many (a periodic rehash, say) hides.
    """
    if not samples:
        raise InvalidParameterError("a round without samples has no figure")
    return min(samples)


def paired_ratios(base: Sequence[float | None], head: Sequence[float | None]) -> list[float]:
    """``head[i] / base[i]`` for each round where both sides measured something."""
    return [h / b for b, h in zip(base, head, strict=True) if b is not None and h is not None and b > 0]
