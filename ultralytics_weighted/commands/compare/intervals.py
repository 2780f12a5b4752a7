# ultralytics-weighted, AGPL-3.0 license
"""compare's intervals: the paired Δ of a variant to the baseline over seeds, and verdicts controlled family-wise.

Numpy only.

- `paired_delta`: the Δ of a variant to the first one, seed by seed, its mean, a 95% interval that holds at 2-5 seeds
  (a t-interval on the per-seed Δ widened by the evaluation noise all seeds share: `delta_interval`), its p-value and
  the verdict better / worse / not established;
- `holm`, `familywise`: verdicts across the classes of one report controlled family-wise (Holm).

benchmarks/calibration.py measures the interval's coverage and false calls through these functions.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np


def _erfc(x: np.ndarray) -> np.ndarray:
    """Return the complementary error function of x >= 0 (Numerical Recipes' erfcc: relative error < 1.2e-7)."""
    t = 1.0 / (1.0 + 0.5 * x)
    poly = 0.0
    for c in (0.17087277, -0.82215223, 1.48851587, -1.13520398, 0.27886807, -0.18628806, 0.09678418, 0.37409196):
        poly = (poly + c) * t  # Horner, highest power first
    return t * np.exp(-x * x - 1.26551223 + (poly + 1.00002368) * t)


@lru_cache(maxsize=64)
def _chi2_grid(df: int, points: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """Return df / U on a grid of U ~ chi²(df) and each point's probability (trapezoid in log U, summing to 1).

    U ranges over exp(-30) .. the far upper tail; the mass left out below is under 3e-7, far below any p-value a
    verdict turns on.
    """
    y = np.linspace(-30.0, math.log(df + 12 * math.sqrt(2 * df) + 20), points)
    density = np.exp(df / 2 * y - np.exp(y) / 2 - df / 2 * math.log(2) - math.lgamma(df / 2))  # of log U
    weights = density * np.gradient(y)
    return df / np.exp(y), weights / weights.sum()


def delta_interval(
    delta: float, seed_spread: float, own: float, shared: float, seeds: int, level: float = 0.95
) -> tuple[float, float, float]:
    """Return the interval (lo, hi) and the two-sided p-value of a mean Δ over seeds from its variance components.

    The mean Δ's variance is θ / S + shared: θ = E[s²] (the per-seed Δ's variance: training seed and the evaluation
    noise each seed has alone), estimated by s² with S - 1 degrees of freedom, and `shared` (the evaluation noise all
    seeds share; the per-seed evaluation noise `own` = σ²_own / S is a known floor of θ / S). Its fiducial
    (generalized pivotal) distribution, θ / S = max(s² / S * (S - 1) / U, own) with U ~ chi²(S - 1), gives

        P(|mean Δ - true Δ| > x) = E_U[erfc(x / sqrt(2 * (max(s² / S * (S - 1) / U, own) + shared)))]

    computed by quadrature over U. With shared = own = 0 this is Student's t with S - 1 degrees of freedom exactly (the
    t-interval on the per-seed Δ); with s² = 0 or 1 seed it is the normal interval of the known evaluation variance.

    Args:
        delta (float): The mean Δ over seeds.
        seed_spread (float): s² / S, the per-seed Δ's sample variance over S (0 or NaN: no seed level).
        own (float): σ²_own / S, the evaluation variance each seed's Δ has alone, over S.
        shared (float): The evaluation variance all seeds' Δ share.
        seeds (int): S.
        level (float): Confidence level.

    Returns:
        (tuple[float, float, float]): lo, hi and the p-value of Δ = 0.

    Examples:
        >>> [round(delta_interval(0.0, 1.0, 0.0, 0.0, s)[1], 2) for s in (2, 3, 5)]  # t(1), t(2), t(4) quantiles
        [12.71, 4.3, 2.78]
        >>> round(delta_interval(0.0, 0.0, 1.0, 0.0, 3)[1], 3), round(delta_interval(1.96, 0.0, 0.5, 0.5, 1)[2], 3)
        (1.96, 0.05)
        >>> lo, hi, p = delta_interval(0.1, 0.03**2, 0.01**2, 0.02**2, 3)  # t(2) on all of it: ±0.155
        >>> round(lo, 3), round(hi, 3), round(p, 3)  # the shared part is measured, only the seed part has t's tails
        (-0.033, 0.233, 0.088)
    """
    if seeds > 1 and seed_spread > 0:
        ratio, weights = _chi2_grid(seeds - 1)
        variances = np.maximum(seed_spread * ratio, own) + shared
    else:
        variances, weights = np.array([own + shared]), np.ones(1)
    if not np.isfinite(variances).all() or not np.isfinite(delta):
        return math.nan, math.nan, math.nan
    if variances.max() <= 0:
        return delta, delta, float(delta == 0)
    scales = np.sqrt(2 * np.maximum(variances, 1e-300))

    def tail(x: float) -> float:  # P(|mean Δ - true Δ| > x)
        return float(weights @ _erfc(x / scales))

    low, high = 0.0, 4 * math.sqrt(float(variances.min()))  # bracket, then bisect: the tail falls in x
    while tail(high) > 1 - level:
        low, high = high, 2 * high
    while high - low > 1e-6 * high:  # the half-width to 6 digits
        mid = (low + high) / 2
        low, high = (mid, high) if tail(mid) > 1 - level else (low, mid)
    half = (low + high) / 2
    return delta - half, delta + half, min(1.0, tail(abs(delta)))


INTERVAL_LEVELS = ("both", "seeds", "images")  # what paired_delta's interval counts: `both` is compare's interval


def paired_delta(
    values: np.ndarray,
    resampled: np.ndarray,
    resamples: int | None = None,
    seed: int = 0,
    level: float = 0.95,
    levels: str = "both",
) -> dict:
    """Return the paired Δ of a variant to the baseline, its interval, p-value and verdict, from S seeds of each.

    The Δ of seed s is Δ_s = variant − baseline on the whole evaluation set; the estimate is their mean. Its variance
    has three parts: the training seed's (σ²_seed / S), the evaluation noise each seed's Δ has alone (σ²_own / S) and
    the evaluation noise all seeds share because they are scored on the same images (`shared`). The spread of the
    Δ_s over seeds (s², S − 1 degrees of freedom) estimates σ²_seed + σ²_own, blind to `shared`; the evaluation
    resamples (the same images for every run) measure `shared` as the mean covariance between different seeds' Δ and
    σ²_own as the rest of a seed's own variance. `delta_interval` combines them: a t-interval on the per-seed Δ
    (S − 1 degrees of freedom, the seed level) widened by the shared evaluation noise and never narrower than the
    evaluation noise alone. With 2 seeds the seed level has 1 degree of freedom (t = 12.7): the interval is wide by
    design. With 1 seed nothing measures the seed noise and the interval holds the evaluation noise alone
    (`seed_level` False). A resample in which the metric is undefined (a class without evaluation objects) is left out.

    Args:
        values (np.ndarray): (2, S) the metric on the whole evaluation set: row 0 the baseline, row 1 the variant,
            column s = seed s.
        resampled (np.ndarray): (B, 2, S) the metric on each evaluation resample, the same resamples for every run.
        resamples (int, optional): How many of the B resamples to use (default all).
        seed (int): Unused: the interval draws nothing of its own (the seed bootstrap it replaced did); kept so that
            existing callers keep working.
        level (float): Confidence level of the interval (two-sided).
        levels (str): 'both' (the interval above), or for comparison what one level alone gives: 'seeds' (the plain
            t-interval on the per-seed Δ, blind to the evaluation noise the seeds share) or 'images' (the normal
            interval of the evaluation noise alone, blind to the seeds).

    Returns:
        (dict): `delta_by_seed` (list), `delta` (mean), `lo`, `hi` (the interval), `p` (two-sided p-value of Δ = 0),
            the variance components `seed_spread` (s² / S), `own`, `shared`, `se` (sqrt(max(seed_spread, own) +
            shared)), `seed_level` (whether the seeds' spread entered) and `verdict`: 'better' if lo > 0, 'worse' if
            hi < 0, else 'not established' (one Δ alone; `familywise` controls a family of them).

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> base = rng.normal(0.5, 0.01, (200, 3))  # 200 evaluation resamples x 3 seeds
        >>> same = paired_delta(np.full((2, 3), 0.5), np.stack([base, base], 1))
        >>> same["delta"], same["lo"], same["hi"], same["verdict"]
        (0.0, 0.0, 0.0, 'not established')
        >>> up = paired_delta(np.array([[0.5] * 3, [0.6] * 3]), np.stack([base, base + 0.1], 1))
        >>> round(up["delta"], 3), round(up["lo"], 3), up["verdict"]
        (0.1, 0.1, 'better')
        >>> seeds = paired_delta(np.array([[0.5] * 3, [0.51, 0.6, 0.69]]), np.stack([base, base + 0.1], 1))
        >>> round(seeds["se"], 4), round(seeds["lo"], 3), round(seeds["hi"], 3), seeds["verdict"]  # t(2) = 4.303
        (0.052, -0.124, 0.324, 'not established')
        >>> shared = 0.06 * rng.normal(size=(200, 1))  # evaluation noise that every seed's Δ shares
        >>> both = np.stack([base, base + 0.1 + shared], 1)
        >>> flat = paired_delta(np.array([[0.5] * 3, [0.6] * 3]), both)  # the seeds agree: the images' noise alone
        >>> round(flat["se"], 3), round(flat["lo"], 3), flat["verdict"]
        (0.061, -0.019, 'not established')
        >>> spread = np.array([[0.5] * 3, [0.51, 0.6, 0.69]])  # both kinds of noise: each level alone is too narrow
        >>> rows = [paired_delta(spread, both, levels=x) for x in INTERVAL_LEVELS]  # both, seeds, images
        >>> [(round(r["lo"], 3), round(r["hi"], 3)) for r in rows]
        [(-0.147, 0.347), (-0.124, 0.324), (-0.019, 0.219)]
    """
    if levels not in INTERVAL_LEVELS:
        raise ValueError(f"levels={levels!r} is invalid: use one of {INTERVAL_LEVELS}.")
    values, resampled = np.asarray(values, float), np.asarray(resampled, float)[:resamples]
    by_seed = values[1] - values[0]
    seeds, delta = len(by_seed), float(by_seed.mean())
    diff = resampled[:, 1] - resampled[:, 0]  # (B, S)
    diff = diff[np.isfinite(diff).all(1)]
    if len(diff) > 1:
        cov = np.cov(diff, rowvar=False, ddof=1).reshape(seeds, seeds)
        shared = float(cov.sum() - np.trace(cov)) / (seeds * (seeds - 1)) if seeds > 1 else 0.0
        own = max(0.0, float(np.trace(cov)) / seeds - shared) / seeds
        shared = max(0.0, shared)
    else:
        own = shared = 0.0  # no resample to measure the evaluation noise with
    seed_spread = float(by_seed.var(ddof=1)) / seeds if seeds > 1 and levels != "images" else 0.0
    if levels == "seeds":
        own = shared = 0.0
    lo, hi, p = delta_interval(delta, seed_spread, own, shared, seeds, level)
    verdict = "better" if lo > 0 else "worse" if hi < 0 else "not established"
    row = {"delta_by_seed": by_seed.tolist(), "delta": delta, "lo": lo, "hi": hi, "verdict": verdict, "p": p}
    row |= {"seed_spread": seed_spread, "own": own, "shared": shared}
    return row | {"se": math.sqrt(max(seed_spread, own) + shared), "seed_level": seeds > 1 and levels != "images"}


def holm(p: np.ndarray | list) -> np.ndarray:
    """Return Holm's step-down adjusted p-values: reject where the adjusted p < alpha, family-wise error <= alpha.

    Holm (1979) holds under any dependence between the tests (a balanced variant's per-class Δ are correlated: what the
    tail gains the head may lose) and rejects everything Bonferroni does and more. A NaN p-value counts as 1.

    Args:
        p (np.ndarray | list): Unadjusted p-values of one family.

    Returns:
        (np.ndarray): Adjusted p-values, in the input's order.

    Examples:
        >>> holm([0.01, 0.04, 0.03, 0.5]).round(3).tolist()
        [0.04, 0.09, 0.09, 0.5]
    """
    p = np.nan_to_num(np.asarray(p, float), nan=1.0)
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate(np.minimum(1.0, (len(p) - np.arange(len(p))) * p[order]))
    adjusted = np.empty_like(p)
    adjusted[order] = stepped
    return adjusted


def familywise(rows: list[dict], alpha: float = 0.05) -> list[dict]:
    """Return `paired_delta` rows of one family with verdicts controlled family-wise (Holm) at `alpha`.

    The family is the classes of one report: one metric, one variant, every class (not the 'all' rows, each a single
    question of its own). The chance that a variant identical to the baseline gets any class called better or worse
    stays <= alpha, where unadjusted verdicts on 10 classes would call one about 40% of the time. Each row keeps its
    unadjusted interval (`lo`, `hi`) and verdict (`verdict_unadjusted`); `verdict` becomes the controlled one.

    Args:
        rows (list[dict]): `paired_delta` results, one per class of the family.
        alpha (float): Family-wise error rate (1 - the rows' interval level, for verdicts that agree on one class).

    Returns:
        (list[dict]): New rows with `p_adjusted`, `verdict_unadjusted` and the controlled `verdict`.

    Examples:
        >>> rows = [{"delta": d, "p": p, "verdict": v} for d, p, v in ((0.2, 0.001, "better"), (-0.1, 0.03, "worse"))]
        >>> [(r["p_adjusted"], r["verdict_unadjusted"], r["verdict"]) for r in familywise(rows + [{"delta": 0, "p": 0.9,
        ...     "verdict": "not established"}])]  # doctest: +NORMALIZE_WHITESPACE
        [(0.003, 'better', 'better'), (0.06, 'worse', 'not established'),
         (0.9, 'not established', 'not established')]
    """
    adjusted = holm([r["p"] for r in rows])
    out = []
    for r, p in zip(rows, adjusted):
        verdict = ("better" if r["delta"] > 0 else "worse") if p < alpha else "not established"
        out.append(r | {"p_adjusted": float(p), "verdict_unadjusted": r["verdict"], "verdict": verdict})
    return out
