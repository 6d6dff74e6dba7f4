"""Statistics for the IQA leaderboard: correlations, the logistic mapping, cluster-bootstrap
confidence intervals and the level-order scores of the corruption benchmarks.

Conventions:

* every score passed in is "higher = better quality" once :func:`oriented` has been applied;
  that function is the only place a metric's direction is used, and no correlation is ever
  made absolute, so a metric with the wrong direction shows up with a negative sign;
* items with a NaN or inf in either input are dropped before anything is computed;
* a statistic that is undefined (fewer than 3 items, constant input) is ``nan``, never an error.
"""

from __future__ import annotations

import functools
import itertools
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats as _st
from scipy.optimize import curve_fit
from scipy.special import expit

__all__ = [
    "Estimate",
    "bootstrap",
    "correlations",
    "krcc",
    "level_order_consistency",
    "level_pair_accuracy",
    "logistic_fit",
    "oriented",
    "plcc",
    "plcc_logistic",
    "srcc",
    "summarize",
]

NAN = float("nan")
MIN_ITEMS = 3  # fewer finite items than this: every correlation is nan


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
        raise ValueError(f"pred and target differ in length: {p.size} vs {t.size}")
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
        raise TypeError(f"higher_is_better must be a bool, got {higher_is_better!r}")
    s = np.array(scores, dtype=float)
    return s if higher_is_better else -s


# --------------------------------------------------------------------------- bootstrap


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
        raise ValueError(f"groups must have one label per item ({n}), got shape {g.shape}")
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


def _bootstrap(stat, p, t, codes, n_boot: int, seed: int, level: float) -> Estimate:
    """The cluster bootstrap on clean arrays."""
    n = int(p.size)
    if n < MIN_ITEMS:
        return Estimate(NAN, NAN, NAN, n)
    value = float(stat(p, t))
    codes = np.unique(codes, return_inverse=True)[1].reshape(-1)
    n_groups = int(codes.max()) + 1
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_groups, size=(n_boot, n_groups))
    fast = next((kind for fn, kind in _FAST if fn is stat), None)
    if fast is not None:
        reps = _weighted_replicates(fast, p, t, codes, draws)
    else:
        if stat is plcc_logistic or stat is _plcc_after_fit:  # refit, warm-started
            stat = functools.partial(_plcc_after_fit, start=_fit_logistic(p, t)[1])
        members = _members(codes)
        reps = np.full(n_boot, NAN)
        for b, drawn in enumerate(draws.tolist()):
            idx = np.concatenate([members[k] for k in drawn])
            if idx.size >= MIN_ITEMS:
                reps[b] = stat(p[idx], t[idx])
    reps = reps[np.isfinite(reps)]
    if reps.size == 0:
        return Estimate(value, NAN, NAN, n)
    alpha = (1.0 - level) / 2.0
    low, high = np.percentile(reps, [100.0 * alpha, 100.0 * (1.0 - alpha)])
    return Estimate(value, float(low), float(high), n)


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


def _weighted_replicates(kind: str, p, t, codes, draws) -> np.ndarray:
    """Pearson or Spearman of every replicate at once, from item multiplicities.

    A replicate is a multiset of items, so its statistic is the weighted one with weights
    = how often each item's group was drawn; equal (to rounding) to computing it on the
    concatenated replicate, but with no per-replicate sort.
    """
    n_boot, n_groups = draws.shape
    mult = np.bincount((np.arange(n_boot)[:, None] * n_groups + draws).ravel(),
                       minlength=n_boot * n_groups).reshape(n_boot, n_groups).astype(float)
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
                idx = np.concatenate([members[k] for k in draws[b]])
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
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    p, t = _pair(pred, target)
    codes = _group_codes(groups, p.size)
    keep = np.isfinite(p) & np.isfinite(t)
    return p[keep], t[keep], codes[keep]


def bootstrap(stat: Callable[[np.ndarray, np.ndarray], float], pred, target, groups,
              n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> Estimate:
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
              seed: int = 0) -> dict[str, Estimate]:
    """plcc, plcc_logistic, srcc and krcc of a metric with 95 % cluster-bootstrap intervals.

    pred are raw metric scores (oriented here); target are subjective scores with higher =
    better (MOS, or -DMOS). All four statistics use the same replicates (the same seed);
    the logistic is refitted on every replicate (one ``curve_fit`` each), which dominates
    the cost on large sets.
    """
    p, t, codes = _prepare(oriented(pred, higher_is_better), target, groups, n_boot, 0.95)
    stats = {"plcc": _pearson, "plcc_logistic": _plcc_after_fit, "srcc": _spearman,
             "krcc": _kendall}
    return {name: _bootstrap(fn, p, t, codes, n_boot, seed, 0.95) for name, fn in stats.items()}


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
