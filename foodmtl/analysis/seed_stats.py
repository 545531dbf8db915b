"""Statistics over seeds: a mean with its 95 % confidence interval, and paired differences.

An ablation has a handful of seeds, so the interval is Student's t with n − 1 degrees of freedom
(``mean ± t_{0.975, n−1} · s/√n``, quantile from ``scipy.stats.t``), not the normal approximation.
One value gives neither a std nor an interval (NaN; tables print "–"), and no claim of a difference.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

LEVEL = 0.95


@dataclass(frozen=True)
class Estimate:
    n: int        # finite values used
    mean: float   # NaN when n == 0
    std: float    # sample std (ddof=1); NaN when n < 2
    low: float    # LEVEL t-interval of the mean; NaN when n < 2
    high: float

    @property
    def excludes_zero(self) -> bool:
        """NaN bounds compare False: no interval, no claim."""
        return self.low > 0 or self.high < 0


def estimate(values) -> Estimate:
    """Mean, sample std and t-interval of the finite ``values`` (NaN = a run without that metric)."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return Estimate(0, math.nan, math.nan, math.nan, math.nan)
    mean = float(x.mean())
    if len(x) == 1:
        return Estimate(1, mean, math.nan, math.nan, math.nan)
    std = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.5 + LEVEL / 2, len(x) - 1)) * std / math.sqrt(len(x))
    return Estimate(len(x), mean, std, mean - half, mean + half)


def paired_difference(a: pd.Series, b: pd.Series) -> Estimate:
    """``a − b`` matched on the index (the seed), over the labels where both are finite: the
    paired t-interval, which removes what a seed shares across methods (data order, init)."""
    return estimate(a.sub(b))
