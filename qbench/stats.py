"""The one statistics module: correlations and bootstrap confidence intervals.

Every analysis (causal, leaderboard, marking audit, explainer evaluation, reports) takes its
correlations and intervals from here. It sits in the bottom layer: numpy, scipy, the standard
library and :mod:`qbench.errors` only.

Correlations (:func:`plcc`, :func:`srcc`, :func:`krcc`, :func:`plcc_logistic`,
:func:`correlations`, :func:`rowwise_spearman`):

* every score passed in is "higher = better quality" once :func:`oriented` has been applied;
  no correlation is ever made absolute, so a metric with the wrong direction shows a negative
  sign;
* items with a NaN or inf in either input are dropped before anything is computed;
* a statistic that is undefined (fewer than 3 items, constant input) is ``nan``, never an error.

Bootstrap (percentile intervals; the level and the resampling unit are arguments):

* the resampling unit is a *cluster* (``groups``: one label per item; every item of a drawn
  cluster enters the replicate, e.g. all distortions of one reference image) or the item
  itself (``groups=None``); :func:`cluster_replicates` also takes an outer level (e.g. seeds)
  resampled first;
* every replicate draws as many units as there are, with replacement, from
  ``np.random.default_rng(seed)`` as ``rng.integers(0, n_units, size=(n_boot, n_units))``
  (:func:`draws`); ``seed`` may also be a ``numpy.random.Generator`` whose stream continues;
  the same seed gives the same draws, so two statistics bootstrapped with one seed are
  *paired* and their difference has an interval too (:func:`paired_bootstrap`);
* :func:`interval` is the percentile interval of the finite replicates at ``level``.
"""

from __future__ import annotations

import functools
import itertools
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as _st
from scipy.optimize import curve_fit
from scipy.special import expit

from qbench.errors import InvalidInputError

__all__ = [
    "CI_LEVEL",
    "MIN_ITEMS",
    "Estimate",
    "bootstrap",
    "cluster_replicates",
    "correlations",
    "draws",
    "group_codes",
    "group_counts",
    "interval",
    "item_weights",
    "krcc",
    "level_order_consistency",
    "level_pair_accuracy",
    "logistic_fit",
    "mean_ci",
    "normal_interval",
    "oriented",
    "paired_bootstrap",
    "plcc",
    "plcc_logistic",
    "ratio_ci",
    "rowwise_spearman",
    "srcc",
    "summarize",
    "weighted_nanmean",
]

NAN = float("nan")
MIN_ITEMS = 3  # fewer finite items than this: every correlation is nan
CI_LEVEL = 0.95

Seed = int | np.random.Generator


@dataclass(frozen=True)
class Estimate:
    """A point estimate with a bootstrap percentile interval."""

    value: float  # the statistic on all (finite) data; nan if undefined
    low: float  # lower percentile of the bootstrap replicates (2.5 % at level 0.95)
    high: float  # upper percentile (97.5 % at level 0.95)
    n: int  # number of items the estimate rests on


# --------------------------------------------------------------------------- helpers


def _pair(pred, target) -> tuple[np.ndarray, np.ndarray]:
    """Both inputs as 1-d float arrays of the same length (no filtering)."""
    p = np.asarray(pred, dtype=float).reshape(-1)
    t = np.asarray(target, dtype=float).reshape(-1)
    if p.shape != t.shape:
        raise InvalidInputError(f"pred and target differ in length: {p.size} vs {t.size}")
    return p, t


def _finite_pair(pred, target) -> tuple[np.ndarray, np.ndarray]:
    """Both inputs with every item that is non-finite in either one dropped."""
    p, t = _pair(pred, target)
    keep = np.isfinite(p) & np.isfinite(t)
    if keep.all():
        return p, t
    return p[keep], t[keep]


def _is_constant(x: np.ndarray) -> bool:
    return x.size == 0 or bool(x.min() == x.max())


def _unit(x: np.ndarray) -> np.ndarray | None:
    """x centred and scaled to unit length (overflow-safe); None if x is constant."""
    if _is_constant(x):
        return None
    scale = np.max(np.abs(x))
    xs = x / scale if np.isfinite(scale) and scale > 0 else x
    xs = xs - xs.mean()
    norm = np.sqrt(np.dot(xs, xs))
    if not np.isfinite(norm) or norm == 0:
        return None
    return xs / norm


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson's r of two clean arrays; nan if either is constant."""
    ux, uy = _unit(x), _unit(y)
    if ux is None or uy is None:
        return NAN
    return float(np.clip(np.dot(ux, uy), -1.0, 1.0))


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rho (Pearson on average ranks) of two clean arrays."""
    if _is_constant(x) or _is_constant(y):
        return NAN
    return _pearson(_st.rankdata(x), _st.rankdata(y))


def _kendall(x: np.ndarray, y: np.ndarray) -> float:
    """Kendall's tau-b of two clean arrays."""
    if _is_constant(x) or _is_constant(y):
        return NAN
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", _st.ConstantInputWarning)
        return float(_st.kendalltau(x, y).statistic)


# --------------------------------------------------------------------------- correlations


def plcc(pred, target) -> float:
    """Pearson linear correlation of the raw scores (nan if < 3 finite items or constant)."""
    p, t = _finite_pair(pred, target)
    return _pearson(p, t) if p.size >= MIN_ITEMS else NAN


def srcc(pred, target) -> float:
    """Spearman rank correlation (average ranks for ties)."""
    p, t = _finite_pair(pred, target)
    return _spearman(p, t) if p.size >= MIN_ITEMS else NAN


def krcc(pred, target) -> float:
    """Kendall rank correlation, tau-b."""
    p, t = _finite_pair(pred, target)
    return _kendall(p, t) if p.size >= MIN_ITEMS else NAN


def _logistic(x, b1, b2, b3, b4):
    """The VQEG 4-parameter logistic: (b1 - b2) / (1 + exp(-(x - b3) / |b4|)) + b2."""
    return (b1 - b2) * expit((x - b3) / np.abs(b4)) + b2


def _logistic_jac(x, b1, b2, b3, b4):
    s = np.abs(b4)
    z = (x - b3) / s
    e = expit(z)
    d = (b1 - b2) * e * (1.0 - e)
    return np.column_stack([e, 1.0 - e, -d / s, -d * z / s * np.sign(b4)])


def _standardizer(x: np.ndarray) -> tuple[float, float]:
    """(centre, spread) with x = centre + spread * z for standardized z (overflow-safe)."""
    k = float(np.max(np.abs(x)))
    k = k if np.isfinite(k) and k > 0 else 1.0
    xs = x / k
    return k * float(xs.mean()), k * float(xs.std())


Params = tuple[float, float, float, float]


def _fit_logistic(x: np.ndarray, t: np.ndarray,
                  start: Params | None = None) -> tuple[np.ndarray, Params | None]:
    """The logistic fitted to clean arrays: (values at x, (b1, b2, b3, b4) or None for the
    line or a constant, the fallbacks).

    The fit runs on standardized x and t, an exact reparametrisation that keeps huge ranges
    well conditioned; tolerances of 1e-6 change a PLCC by ~1e-6 and halve the iterations.
    ``start`` (parameters from a fit to similar data) is tried before the standard start.
    """
    n = x.size
    if n == 0:
        return np.empty(0), None
    cx, sx = _standardizer(x)
    ct, st = _standardizer(t)
    with np.errstate(all="ignore"):
        flat = np.full(n, ct)
        if _is_constant(x) or _is_constant(t) or not (sx > 0 and st > 0):
            return flat, None
        xz, tz = (x - cx) / sx, (t - ct) / st
        # the straight line, least squares (also the fallback)
        xc = xz - xz.mean()
        lin_z = tz.mean() + xc * (np.dot(xc, tz - tz.mean()) / np.dot(xc, xc))
        sse_lin = float(np.sum((lin_z - tz) ** 2))
        linear = ct + st * lin_z
    if not (np.all(np.isfinite(linear)) and np.isfinite(sse_lin)):
        return flat, None
    if n < 4:
        return linear, None
    starts = [[float(tz.max()), float(tz.min()), 0.0, 0.25]]  # b3 = mean(x), b4 = std(x) / 4
    if start is not None:
        b1, b2, b3, b4 = start
        with np.errstate(all="ignore"):
            warm = [(b1 - ct) / st, (b2 - ct) / st, (b3 - cx) / sx, b4 / sx]
        if np.all(np.isfinite(warm)) and warm[3] != 0:
            starts.insert(0, warm)
    for p0 in starts:
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                pz, _ = curve_fit(_logistic, xz, tz, p0=p0, jac=_logistic_jac, maxfev=2000,
                                  ftol=1e-6, xtol=1e-6)
                fit_z = _logistic(xz, *pz)
                sse = float(np.sum((fit_z - tz) ** 2))
        except Exception:  # curve_fit fails in many ways (RuntimeError, LinAlgError, ...)
            continue
        # not converged, or a local optimum worse than the line it contains: the line
        if np.all(np.isfinite(fit_z)) and np.isfinite(sse) and sse <= sse_lin * (1 + 1e-9):
            b1z, b2z, b3z, b4z = (float(v) for v in pz)
            return ct + st * fit_z, (ct + st * b1z, ct + st * b2z, cx + sx * b3z, sx * b4z)
    return linear, None


def logistic_fit(pred, target) -> np.ndarray:
    """Predictions mapped through the 4-parameter logistic fitted to target (least squares).

    Fitted with ``scipy.optimize.curve_fit`` from b1 = max(target), b2 = min(target),
    b3 = mean(pred), b4 = std(pred) / 4; falls back to the least-squares line if the fit fails
    or ends worse than that line. Items non-finite in either input map to nan. Never raises
    for inputs of equal length.
    """
    p, t = _pair(pred, target)
    keep = np.isfinite(p) & np.isfinite(t)
    out = np.full(p.size, NAN)
    out[keep] = _fit_logistic(p[keep], t[keep])[0]
    return out


def _plcc_after_fit(x: np.ndarray, t: np.ndarray, start: Params | None = None) -> float:
    if x.size < MIN_ITEMS:
        return NAN
    mapped = _fit_logistic(x, t, start)[0]
    # The fitted curve may be decreasing; the PLCC is taken for the curve turned increasing
    # (the correlation of target with an increasing function of pred), so that the sign of a
    # wrongly oriented metric is not hidden by the fit.
    direction = _pearson(mapped, x)
    if not np.isfinite(direction):
        return NAN
    return float(np.sign(direction)) * _pearson(mapped, t)


def plcc_logistic(pred, target) -> float:
    """PLCC after :func:`logistic_fit`, signed by the direction of the fitted curve.

    For an increasing fit (every correctly oriented metric) this is the usual PLCC of the
    mapped predictions; a decreasing fit gives the negative of it, never a hidden sign flip.
    """
    p, t = _finite_pair(pred, target)
    return _plcc_after_fit(p, t)


def correlations(pred, target) -> dict[str, float]:
    """All four correlations: plcc, plcc_logistic, srcc, krcc."""
    p, t = _finite_pair(pred, target)
    return {"plcc": plcc(p, t), "plcc_logistic": plcc_logistic(p, t), "srcc": srcc(p, t),
            "krcc": krcc(p, t)}


def oriented(scores, higher_is_better: bool) -> np.ndarray:
    """Scores as floats with "higher = better quality" (negated if lower is better)."""
    if not isinstance(higher_is_better, (bool, np.bool_)):
        raise InvalidInputError(f"higher_is_better must be a bool, got {higher_is_better!r}")
    s = np.array(scores, dtype=float)
    return s if higher_is_better else -s


def rowwise_spearman(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman rho of each row of ``a`` with the same row of ``b`` (NaN columns dropped;
    nan where fewer than 3 columns remain or a row is constant)."""
    out = np.full(a.shape[0], np.nan)
    full = np.isfinite(a).all(axis=1) & np.isfinite(b).all(axis=1)
    if full.any() and a.shape[1] >= 3:  # the common case, vectorised
        x, y = _st.rankdata(a[full], axis=1), _st.rankdata(b[full], axis=1)
        x, y = x - x.mean(1, keepdims=True), y - y.mean(1, keepdims=True)
        den = np.sqrt((x * x).sum(1) * (y * y).sum(1))
        with np.errstate(invalid="ignore", divide="ignore"):
            out[full] = np.where(den > 0, (x * y).sum(1) / np.where(den > 0, den, 1), np.nan)
    for r in np.flatnonzero(~full):
        ok = np.isfinite(a[r]) & np.isfinite(b[r])
        if ok.sum() < 3:
            continue
        x, y = _st.rankdata(a[r, ok]), _st.rankdata(b[r, ok])
        if x.std() == 0 or y.std() == 0:
            continue
        out[r] = float(np.corrcoef(x, y)[0, 1])
    return out


# --------------------------------------------------------------------------- resampling


def draws(n_units: int, n_boot: int, seed: Seed) -> np.ndarray:
    """``n_boot x n_units`` unit numbers: replicate b draws the units ``draws[b]`` (with
    replacement). One block from ``np.random.default_rng(seed)``, the same numbers as
    ``rng.integers(0, n_units, n_units)`` called once per replicate (or ``rng.choice``)."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, n_units, size=(n_boot, n_units))


def unit_counts(drawn: np.ndarray, n_units: int) -> np.ndarray:
    """``n_boot x n_units`` float counts: how often each unit is in each replicate."""
    n_boot = drawn.shape[0]
    flat = (np.arange(n_boot)[:, None] * n_units + drawn).ravel()
    return np.bincount(flat, minlength=n_boot * n_units).reshape(n_boot, n_units).astype(float)


def group_counts(n_groups: int, n_boot: int, seed: Seed) -> np.ndarray:
    """``n_boot x n_groups`` counts: how often each group is drawn in each replicate."""
    return unit_counts(draws(n_groups, n_boot, seed), n_groups)


def item_weights(groups, n_boot: int, seed: Seed) -> np.ndarray:
    """``n_boot x n_items`` weights: each item weighs as often as its group was drawn.

    Groups are numbered in the sorted order of their labels *as strings* (``str(label)``),
    which fixes which group each column of :func:`draws` belongs to."""
    _, codes = np.unique(np.asarray(groups).astype(str), return_inverse=True)
    counts = group_counts(int(codes.max()) + 1 if len(codes) else 0, n_boot, seed)
    return counts[:, codes]


def weighted_nanmean(weights: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``weights (B x n) @ matrix (n x K)`` averaged over the non-NaN entries -> B x K."""
    ok = np.isfinite(matrix)
    num = weights @ np.where(ok, matrix, 0.0)
    den = weights @ ok.astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _tails(level: float, exact_tail: bool) -> tuple[float, float]:
    if not 0.0 < level < 1.0:
        raise InvalidInputError(f"level must lie in (0, 1), got {level}")
    a = (1 - level) / 2
    if exact_tail:
        a = round(a, 12)
    return a, 1 - a


def interval(samples, level: float = CI_LEVEL, *, exact_tail: bool = False,
             finite_only: bool = True) -> tuple[float, float]:
    """Percentile interval (linear interpolation, as ``np.quantile``) of the replicates:
    the ``(1 - level) / 2`` and ``1 - (1 - level) / 2`` quantiles; (nan, nan) when empty.

    ``finite_only`` drops NaN/inf replicates first (else a NaN gives a NaN interval).
    ``exact_tail`` takes the tail as the decimal it names (0.025 at level 0.95) instead of
    the floating-point ``(1 - 0.95) / 2 = 0.025000000000000022``; the two differ in the last
    bits only, and each analysis keeps the one it always used so its numbers stay identical.
    """
    lo_q, hi_q = _tails(level, exact_tail)
    s = np.asarray(samples, float).reshape(-1)
    if finite_only:
        s = s[np.isfinite(s)]
    if s.size == 0:
        return NAN, NAN
    lo, hi = np.quantile(s, [lo_q, hi_q])
    return float(lo), float(hi)


def normal_interval(mean, sd, n, z: float = 1.96):
    """``mean -/+ z * sd / sqrt(n)``: the normal-approximation interval of a mean (z = 1.96
    for 95 %); elementwise on arrays or pandas Series."""
    half = z * sd / np.sqrt(n)
    return mean - half, mean + half


def group_codes(groups, n: int) -> np.ndarray:
    """Integer codes 0..G-1 (sorted label order) for a group label per item (any hashable
    labels; rows of a 2-d array are one label each); None gives every item its own group."""
    return _group_codes(groups, n)


def mean_ci(values, n_boot: int = 1000, seed: Seed = 0, level: float = CI_LEVEL, *,
            exact_tail: bool = False) -> Estimate:
    """Mean of the finite ``values`` with the percentile interval of the item bootstrap
    (each value a unit; pass per-cluster means to resample clusters). ``n`` = finite values;
    all nan when there are none."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return Estimate(NAN, NAN, NAN, 0)
    means = v[draws(len(v), n_boot, seed)].mean(1)
    low, high = interval(means, level, exact_tail=exact_tail)
    return Estimate(float(v.mean()), low, high, len(v))


def ratio_ci(num, den, n_boot: int = 1000, seed: Seed = 0, level: float = CI_LEVEL, *,
             exact_tail: bool = False) -> Estimate:
    """``sum(num) / sum(den)`` over units (e.g. per image: a sum of values and their count,
    so the ratio is the mean over all values) with the interval of the unit bootstrap:
    each replicate is ``sum(num[drawn]) / sum(den[drawn])``. ``n`` = number of units."""
    s, c = np.asarray(num), np.asarray(den)
    if s.shape != c.shape or s.ndim != 1:
        raise InvalidInputError(f"num and den must be 1-d of one length, got {s.shape} and "
                                f"{c.shape}")
    if s.size == 0:
        return Estimate(NAN, NAN, NAN, 0)
    d = draws(len(c), n_boot, seed)
    boots = s[d].sum(axis=1) / c[d].sum(axis=1)
    low, high = interval(boots, level, exact_tail=exact_tail)
    return Estimate(float(s.sum() / c.sum()), low, high, len(c))


def cluster_replicates(stat: Callable[[np.ndarray], float], clusters: Sequence[np.ndarray],
                       n_boot: int = 1000, seed: Seed = 0,
                       outer: Sequence[Sequence[int]] | None = None) -> np.ndarray:
    """``stat(idx)`` for each of ``n_boot`` cluster-bootstrap replicates (float array).

    ``clusters`` holds the item indices of each cluster; a replicate draws as many clusters
    as there are, with replacement, and ``idx`` concatenates their items in draw order.
    ``outer`` (lists of cluster numbers, e.g. the images of each seed) adds a level above:
    when it has more than one unit, each replicate first draws that many outer units, then
    within every drawn one as many of its clusters as it holds (a two-stage bootstrap).
    """
    if n_boot < 1:
        raise InvalidInputError(f"n_boot must be >= 1, got {n_boot}")
    rng = np.random.default_rng(seed)
    tops = [list(range(len(clusters)))] if outer is None else [list(o) for o in outer]
    reps = np.full(n_boot, NAN)
    for b in range(n_boot):
        picked = rng.integers(0, len(tops), len(tops)) if len(tops) > 1 else range(len(tops))
        idx = np.concatenate([clusters[tops[o][k]] for o in picked
                              for k in rng.integers(0, len(tops[o]), len(tops[o]))])
        reps[b] = stat(idx)
    return reps


def paired_bootstrap(stat: Callable[..., float], a, b, target=None, groups=None,
                     n_boot: int = 1000, seed: Seed = 0, level: float = CI_LEVEL, *,
                     exact_tail: bool = False, finite_only: bool = True) -> Estimate:
    """``stat(a) - stat(b)`` for two measurements of the same units (rows of ``a`` and ``b``,
    e.g. two models' outputs on one test set) with a paired bootstrap interval: every
    replicate resamples the units once and applies the same draw to both, so what the two
    share cancels. With ``target`` the statistic is ``stat(x, target)`` (e.g. a
    correlation with the ground truth). ``groups`` resamples clusters of rows instead of
    rows. ``n`` = number of rows."""
    a, b = np.asarray(a), np.asarray(b)
    if len(a) != len(b) or (target is not None and len(target) != len(a)):
        raise InvalidInputError(f"a, b (and target) must have one row per unit, got {len(a)}, "
                                f"{len(b)}" + ("" if target is None else f", {len(target)}"))
    t = None if target is None else np.asarray(target)

    def diff(idx):
        if t is None:
            return stat(a[idx]) - stat(b[idx])
        return stat(a[idx], t[idx]) - stat(b[idx], t[idx])

    n = len(a)
    if n == 0:
        return Estimate(NAN, NAN, NAN, 0)
    if groups is None:
        reps = np.array([diff(idx) for idx in draws(n, n_boot, seed)], dtype=float)
    else:
        reps = cluster_replicates(diff, _members(_group_codes(groups, n)), n_boot, seed)
    low, high = interval(reps, level, exact_tail=exact_tail, finite_only=finite_only)
    return Estimate(float(diff(np.arange(n))), low, high, n)


# --------------------------------------------------------------------------- (pred, target)
# statistics with cluster-bootstrap intervals: vectorised replicates for plcc and srcc


def _group_codes(groups, n: int) -> np.ndarray:
    """Integer codes 0..G-1 for a group label per item (any hashable labels; rows of a
    2-d array are one label each); None gives every item its own group."""
    if groups is None:
        return np.arange(n)
    try:
        g = np.asarray(groups)
    except ValueError:  # ragged labels, e.g. tuples of different lengths
        g = np.empty(n, dtype=object)
        g[:] = [tuple(k) if isinstance(k, list) else k for k in groups]
    if g.ndim == 0 or g.shape[0] != n:
        raise InvalidInputError(f"groups must have one label per item ({n}), got shape {g.shape}")
    if g.ndim == 1 and g.dtype != object:
        return np.unique(g, return_inverse=True)[1].reshape(-1)
    if g.ndim == 2 and g.dtype != object:
        return np.unique(g, axis=0, return_inverse=True)[1].reshape(-1)
    seen: dict = {}
    keys = (tuple(row) for row in g) if g.ndim > 1 else (
        tuple(k) if isinstance(k, list | np.ndarray) else k for k in g)
    return np.fromiter((seen.setdefault(k, len(seen)) for k in keys), dtype=np.intp, count=n)


def _members(codes: np.ndarray) -> list[np.ndarray]:
    """Index array of each group (codes compacted to 0..G-1 first)."""
    codes = np.unique(codes, return_inverse=True)[1].reshape(-1)
    order = np.argsort(codes, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(codes))])
    return [order[a:b] for a, b in itertools.pairwise(bounds)]


def _bootstrap(stat, p, t, codes, n_boot: int, seed: Seed, level: float) -> Estimate:
    """The cluster bootstrap on clean arrays."""
    n = int(p.size)
    if n < MIN_ITEMS:
        return Estimate(NAN, NAN, NAN, n)
    value = float(stat(p, t))
    codes = np.unique(codes, return_inverse=True)[1].reshape(-1)
    n_groups = int(codes.max()) + 1
    drawn = draws(n_groups, n_boot, seed)
    fast = next((kind for fn, kind in _FAST if fn is stat), None)
    if fast is not None:
        reps = _weighted_replicates(fast, p, t, codes, drawn)
    else:
        if stat is plcc_logistic or stat is _plcc_after_fit:  # refit, warm-started
            stat = functools.partial(_plcc_after_fit, start=_fit_logistic(p, t)[1])
        members = _members(codes)
        reps = np.full(n_boot, NAN)
        for b, row in enumerate(drawn.tolist()):
            idx = np.concatenate([members[k] for k in row])
            if idx.size >= MIN_ITEMS:
                reps[b] = stat(p[idx], t[idx])
    reps = reps[np.isfinite(reps)]
    if reps.size == 0:
        return Estimate(value, NAN, NAN, n)
    low, high = interval(reps, level)
    return Estimate(value, low, high, n)


def _rank_blocks(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sort order, start of each tie block in sorted order, block of each item)."""
    order = np.argsort(x, kind="stable")
    xs = x[order]
    new = np.r_[True, xs[1:] != xs[:-1]]
    block = np.empty(x.size, dtype=np.intp)
    block[order] = np.cumsum(new) - 1
    return order, np.flatnonzero(new), block


def _weighted_ranks(w: np.ndarray, blocks) -> np.ndarray:
    """Average ranks of every item in replicates given as item multiplicities w (rows).

    An item drawn k times is k tied copies, so its rank is that of its tie block:
    (items before the block) + (block weight + 1) / 2.
    """
    order, starts, block = blocks
    wb = np.add.reduceat(w[:, order], starts, axis=1)
    return (np.cumsum(wb, axis=1) - (wb - 1.0) / 2.0)[:, block]


def _weighted_replicates(kind: str, p, t, codes, picks) -> np.ndarray:
    """Pearson or Spearman of every replicate at once, from item multiplicities.

    A replicate is a multiset of items, so its statistic is the weighted one with weights
    = how often each item's group was drawn; equal (to rounding) to computing it on the
    concatenated replicate, but with no per-replicate sort.
    """
    n_boot, n_groups = picks.shape
    mult = unit_counts(picks, n_groups)
    drawn = mult > 0
    size = mult @ np.bincount(codes, minlength=n_groups)
    constant = np.zeros(n_boot, dtype=bool)
    for v in (p, t):  # a replicate is constant iff all its drawn groups share one value
        lo = np.full(n_groups, np.inf)
        hi = np.full(n_groups, -np.inf)
        np.minimum.at(lo, codes, v)
        np.maximum.at(hi, codes, v)
        constant |= np.where(drawn, lo, np.inf).min(1) == np.where(drawn, hi, -np.inf).max(1)
    reps = np.full(n_boot, NAN)
    ok = (size >= MIN_ITEMS) & ~constant
    if kind == "pearson":  # moments by group, then one product with the multiplicities
        x, y = _unit(p), _unit(t)
        if x is None or y is None:
            return reps
        cols = np.stack([np.ones_like(x), x, y, x * x, y * y, x * y], axis=1)
        by_group = np.zeros((n_groups, 6))
        np.add.at(by_group, codes, cols)
        s1, sx, sy, sxx, syy, sxy = (mult @ by_group).T
        with np.errstate(all="ignore"):
            mx, my = sx / s1, sy / s1
            vx, vy = sxx / s1 - mx * mx, syy / s1 - my * my
            r = (sxy / s1 - mx * my) / np.sqrt(vx * vy)
        reps[ok] = np.clip(r[ok], -1.0, 1.0)
        # a replicate far narrower than the data loses digits to cancellation: do it directly
        shaky = ok & ~((vx > 1e-6 * sxx / s1) & (vy > 1e-6 * syy / s1))
        if shaky.any():
            members = _members(codes)
            for b in np.flatnonzero(shaky):
                idx = np.concatenate([members[k] for k in picks[b]])
                reps[b] = _pearson(p[idx], t[idx])
        return reps
    bx, by = _rank_blocks(p), _rank_blocks(t)
    chunk = max(1, 2_000_000 // p.size)
    for a in range(0, n_boot, chunk):
        sel = np.arange(a, min(a + chunk, n_boot))
        sel = sel[ok[sel]]
        if sel.size == 0:
            continue
        w = mult[sel][:, codes]
        mean = ((size[sel] + 1.0) / 2.0)[:, None]  # ranks 1..N average (N + 1) / 2
        dx = _weighted_ranks(w, bx) - mean
        dy = _weighted_ranks(w, by) - mean
        wdx = w * dx
        r = np.einsum("ij,ij->i", wdx, dy) / np.sqrt(
            np.einsum("ij,ij->i", wdx, dx) * np.einsum("ij,ij->i", w * dy, dy))
        reps[sel] = np.clip(r, -1.0, 1.0)
    return reps


def _prepare(pred, target, groups, n_boot: int, level: float):
    if n_boot < 1:
        raise InvalidInputError(f"n_boot must be >= 1, got {n_boot}")
    if not 0.0 < level < 1.0:
        raise InvalidInputError(f"level must lie in (0, 1), got {level}")
    p, t = _pair(pred, target)
    codes = _group_codes(groups, p.size)
    keep = np.isfinite(p) & np.isfinite(t)
    return p[keep], t[keep], codes[keep]


def bootstrap(stat: Callable[[np.ndarray, np.ndarray], float], pred, target, groups,
              n_boot: int = 1000, seed: Seed = 0, level: float = CI_LEVEL) -> Estimate:
    """Cluster-bootstrap percentile interval of ``stat(pred, target)``.

    Each replicate draws as many groups as there are, with replacement, and takes every item
    of each drawn group (so items of one reference image stay together). ``value`` is the
    statistic on all finite items, ``low``/``high`` the percentiles of the finite replicates.
    Items non-finite in pred or target are dropped first; ``groups=None`` resamples items.
    Deterministic for a given seed.

    For :func:`plcc` and :func:`srcc` all replicates are computed at once from how often each
    group was drawn (same draws, same numbers to rounding, no per-replicate sort); for
    :func:`plcc_logistic` every replicate refits the logistic, starting from the all-data fit.
    Any other callable is called once per replicate on the concatenated items.
    """
    p, t, codes = _prepare(pred, target, groups, n_boot, level)
    return _bootstrap(stat, p, t, codes, n_boot, seed, level)


def summarize(pred, target, groups, higher_is_better: bool, n_boot: int = 1000,
              seed: Seed = 0, level: float = CI_LEVEL) -> dict[str, Estimate]:
    """plcc, plcc_logistic, srcc and krcc of a metric with cluster-bootstrap intervals
    (95 % by default).

    pred are raw metric scores (oriented here); target are subjective scores with higher =
    better (MOS, or -DMOS). All four statistics use the same replicates (the same seed);
    the logistic is refitted on every replicate (one ``curve_fit`` each), which dominates
    the cost on large sets.
    """
    p, t, codes = _prepare(oriented(pred, higher_is_better), target, groups, n_boot, level)
    stats = {"plcc": _pearson, "plcc_logistic": _plcc_after_fit, "srcc": _spearman,
             "krcc": _kendall}
    return {name: _bootstrap(fn, p, t, codes, n_boot, seed, level) for name, fn in stats.items()}


# statistics whose replicates _weighted_replicates computes all at once
_FAST = ((plcc, "pearson"), (_pearson, "pearson"), (srcc, "spearman"), (_spearman, "spearman"))


# --------------------------------------------------------------------------- level order


def _level_groups(scores, levels, groups):
    """Clean scores/levels and the index arrays of each group."""
    s, lv = _pair(scores, levels)
    codes = _group_codes(groups, s.size)
    keep = np.isfinite(s) & np.isfinite(lv)
    s, lv, codes = s[keep], lv[keep], codes[keep]
    return s, lv, (_members(codes) if s.size else [])


def level_order_consistency(scores, levels, groups) -> float:
    """Mean over groups of Spearman(scores, -levels) within the group.

    Groups are e.g. (reference, distortion type); levels run 1 (mildest) ... L (strongest),
    0 for a clean image. scores are oriented (higher = better), so a perfect metric gets 1.0
    and a reversed one -1.0. Groups with fewer than 2 distinct levels are skipped; a group
    with constant scores counts 0. nan if no group qualifies.
    """
    s, lv, members = _level_groups(scores, levels, groups)
    values = []
    for idx in members:
        gl, gs = lv[idx], s[idx]
        if _is_constant(gl):
            continue
        values.append(0.0 if _is_constant(gs) else _spearman(gs, -gl))
    return float(np.mean(values)) if values else NAN


def level_pair_accuracy(scores, levels, groups) -> float:
    """Share of same-group pairs with levels[i] < levels[j] where scores[i] > scores[j].

    Ties in score count 0.5 (RankIQA's pairwise ranking accuracy); pooled over all pairs of
    all groups. nan if there are no such pairs.
    """
    s, lv, members = _level_groups(scores, levels, groups)
    hits, pairs = 0.0, 0
    for idx in members:
        gl, gs = lv[idx], s[idx]
        for level in np.unique(gl)[1:]:  # j at this level against every milder i
            worse = np.sort(gs[gl == level])
            milder = gs[gl < level]
            below = np.searchsorted(worse, milder, side="left")  # scores[i] > scores[j]
            tied = np.searchsorted(worse, milder, side="right") - below
            hits += float(below.sum()) + 0.5 * float(tied.sum())
            pairs += milder.size * worse.size
    return hits / pairs if pairs else NAN
