"""The statistics the analyses state: effect sizes and two significance tests."""

from __future__ import annotations

import math
from collections.abc import Sequence

from scipy import stats as _scipy

__all__ = [
    "cohens_d",
    "cohens_h",
    "magnitude",
    "two_proportion_z_test",
    "welch_t_test",
]


def cohens_h(p1: float, p2: float) -> float:
    """Effect size of two proportions: 2*asin(√p1) - 2*asin(√p2)."""
    return 2 * math.asin(math.sqrt(p1)) - 2 * math.asin(math.sqrt(p2))


def cohens_d(a: Sequence[float], b: Sequence[float]) -> float:
    """Standardized mean difference (pooled standard deviation); ±10 caps a zero spread."""
    if len(a) < 2 or len(b) < 2:
        return 0.0
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    va = sum((x - ma) ** 2 for x in a) / (len(a) - 1)
    vb = sum((x - mb) ** 2 for x in b) / (len(b) - 1)
    pooled = math.sqrt(((len(a) - 1) * va + (len(b) - 1) * vb) / (len(a) + len(b) - 2))
    if pooled == 0:
        return 0.0 if ma == mb else math.copysign(10.0, ma - mb)
    return max(-10.0, min(10.0, (ma - mb) / pooled))


def magnitude(effect: float) -> str:
    """Cohen's conventional words for |d| or |h|."""
    size = abs(effect)
    if size >= 0.8:
        return "large"
    if size >= 0.5:
        return "medium"
    if size >= 0.2:
        return "small"
    return "negligible"


def welch_t_test(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided p-value of Welch's t-test (unequal variances); 1.0 when undefined."""
    if len(a) < 2 or len(b) < 2:
        return 1.0
    result = _scipy.ttest_ind(a, b, equal_var=False)
    p = float(result.pvalue)
    if math.isnan(p):  # both groups constant
        return 1.0 if sum(a) / len(a) == sum(b) / len(b) else 0.0
    return p


def two_proportion_z_test(x1: int, n1: int, x2: int, n2: int) -> float:
    """Two-sided p-value of the pooled two-proportion z-test; 1.0 when undefined."""
    if n1 == 0 or n2 == 0:
        return 1.0
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    z = (x1 / n1 - x2 / n2) / se
    return math.erfc(abs(z) / math.sqrt(2))
