"""qbench.stats against independent answers: scipy's correlations, numpy's percentiles,
planted clusters, known differences, and the coverage of the nominal 95 % interval."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as st

from qbench import stats as S
from qbench.errors import InvalidInputError

# --------------------------------------------------------------------------- correlations


@pytest.mark.parametrize("seed", [0, 1])
def test_correlations_agree_with_scipy_including_ties(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=200)
    y = 0.6 * x + rng.normal(size=200)
    for a, b in ((x, y), (np.round(x, 1), np.round(y)), (x, -y)):  # the second with ties
        assert S.plcc(a, b) == pytest.approx(st.pearsonr(a, b).statistic, abs=1e-12)
        assert S.srcc(a, b) == pytest.approx(st.spearmanr(a, b).statistic, abs=1e-12)
        assert S.krcc(a, b) == pytest.approx(st.kendalltau(a, b).statistic, abs=1e-12)


def test_correlations_drop_non_finite_items_and_are_nan_when_undefined():
    x, y = np.arange(10.0), np.arange(10.0) ** 2
    xn, yn = np.r_[x, np.nan, 3.0], np.r_[y, 5.0, np.inf]
    assert S.srcc(xn, yn) == S.srcc(x, y) == pytest.approx(1.0)
    assert np.isnan(S.plcc(np.ones(10), y)) and np.isnan(S.srcc([1.0, 2.0], [2.0, 1.0]))


def test_rowwise_spearman_matches_scipy_row_by_row():
    rng = np.random.default_rng(2)
    a, b = np.round(rng.normal(size=(20, 8)), 1), rng.normal(size=(20, 8))
    a[3, 1], b[7, :6] = np.nan, np.nan  # one row with a gap, one with too few columns
    got = S.rowwise_spearman(a, b)
    for r in range(20):
        ok = np.isfinite(a[r]) & np.isfinite(b[r])
        want = st.spearmanr(a[r, ok], b[r, ok]).statistic if ok.sum() >= 3 else np.nan
        assert got[r] == pytest.approx(want, abs=1e-12, nan_ok=True)


# --------------------------------------------------------------------------- intervals


def test_interval_is_numpys_percentile_interval():
    s = np.arange(101.0)  # the q-th percentile of 0..100 is q
    assert S.interval(s, 0.9) == pytest.approx((5.0, 95.0))
    rng = np.random.default_rng(3)
    r = rng.normal(size=997)
    lo, hi = S.interval(np.r_[r, np.nan, np.inf], 0.95, exact_tail=True)  # non-finite dropped
    assert (lo, hi) == (np.percentile(r, 2.5), np.percentile(r, 97.5))
    lo, hi = S.interval(r, 0.8)
    assert lo == pytest.approx(np.percentile(r, 10)) and hi == pytest.approx(np.percentile(r, 90))
    assert np.isnan(S.interval([np.nan], 0.95)).all()
    assert np.isnan(S.interval([1.0, np.nan], finite_only=False)).all()
    with pytest.raises(InvalidInputError):
        S.interval(r, 1.5)


def test_mean_ci_and_ratio_ci_are_the_bootstrap_of_the_mean():
    v = np.array([1.0, 2.0, 3.0, 10.0, np.nan])
    e = S.mean_ci(v, n_boot=2000, seed=0)
    assert e.value == 4.0 and e.n == 4 and e.low < 4.0 < e.high
    d = S.draws(4, 2000, 0)
    assert (e.low, e.high) == S.interval(v[:4][d].mean(1))
    # per unit: a sum and a count; the ratio of sums is the mean over all values
    num, den = np.array([3.0, 4.0, 10.0]), np.array([2, 1, 4])
    r = S.ratio_ci(num, den, n_boot=500, seed=1)
    assert r.value == pytest.approx(17 / 7) and r.low <= r.value <= r.high and r.n == 3


def test_normal_interval_is_mean_plus_minus_z_standard_errors():
    lo, hi = S.normal_interval(np.array([1.0]), np.array([2.0]), np.array([16]))
    assert (lo[0], hi[0]) == pytest.approx((1 - 0.98, 1 + 0.98))


# --------------------------------------------------------------------------- bootstrap


def test_cluster_bootstrap_of_identical_items_equals_the_bootstrap_of_cluster_values():
    """Items of a cluster are identical copies: resampling whole clusters must give exactly
    the interval of resampling the cluster values themselves (same draws, same seed)."""
    rng = np.random.default_rng(4)
    g, k = 15, 6
    cx, cy = rng.normal(size=g), rng.normal(size=g)
    cy = cy + cx
    groups = np.repeat(np.arange(g), k)
    order = rng.permutation(g * k)  # clusters need not be contiguous
    x, y, groups = np.repeat(cx, k)[order], np.repeat(cy, k)[order], groups[order]
    for stat in (S.plcc, S.srcc, lambda a, b: S.plcc(a, b)):  # vectorised and per replicate
        by_item = S.bootstrap(stat, x, y, groups, n_boot=400, seed=5)
        by_cluster = S.bootstrap(stat, cx, cy, None, n_boot=400, seed=5)
        assert by_item.value == pytest.approx(by_cluster.value, abs=1e-12)
        assert by_item.low == pytest.approx(by_cluster.low, abs=1e-9)
        assert by_item.high == pytest.approx(by_cluster.high, abs=1e-9)
    clusters = [np.flatnonzero(groups == c) for c in range(g)]
    reps = S.cluster_replicates(lambda idx: x[idx].mean(), clusters, n_boot=400, seed=6)
    means = S.mean_ci(cx, n_boot=400, seed=6)
    assert S.interval(reps) == pytest.approx((means.low, means.high), abs=1e-12)
    # and an item bootstrap, which ignores the copies, is much narrower
    naive = S.mean_ci(x, n_boot=400, seed=6)
    assert naive.high - naive.low < 0.6 * (means.high - means.low)


def test_cluster_replicates_draw_whole_clusters_and_the_outer_level_first():
    clusters = [np.array([0, 1]), np.array([2]), np.array([3, 4, 5])]
    seen = []
    S.cluster_replicates(lambda idx: seen.append(idx) or 0.0, clusters, n_boot=50, seed=0)
    for idx in seen:
        counts = np.bincount(idx, minlength=6)
        assert counts[0] == counts[1] and counts[3] == counts[4] == counts[5]
        assert counts[0] + counts[2] + counts[3] == 3  # three cluster draws
    seen.clear()  # outer level: unit 0 holds clusters 0 and 1, unit 1 holds cluster 2
    S.cluster_replicates(lambda idx: seen.append(idx) or 0.0, clusters, 200, 0, [[0, 1], [2]])
    for idx in seen:  # two outer draws; a drawn unit 0 brings two draws of clusters 0, 1
        counts = np.bincount(idx, minlength=6)
        assert counts[0] == counts[1] and counts[3] == counts[4] == counts[5]
        assert (counts[0] + counts[2]) % 2 == 0 and (counts[0] + counts[2]) / 2 + counts[3] == 2
    assert len({len(idx) for idx in seen}) > 3


def test_paired_bootstrap_of_a_known_difference():
    rng = np.random.default_rng(7)
    a = rng.normal(0, 5, 200)  # a large unit effect that both measurements share
    e = S.paired_bootstrap(np.mean, a + 0.5, a, n_boot=300, seed=0)
    assert e.value == pytest.approx(0.5) and e.low == pytest.approx(0.5)
    assert e.high == pytest.approx(0.5) and e.n == 200
    b = a + 0.5 + rng.normal(0, 0.1, 200)
    e = S.paired_bootstrap(np.mean, b, a, n_boot=1000, seed=0)
    assert e.low < 0.5 < e.high and e.high - e.low < 0.05  # unpaired: ~2 wide
    # with a target: twin minus marked SRCC, on the same resampled images
    t = rng.normal(size=200)
    good, bad = t + rng.normal(0, 0.3, 200), t + rng.normal(0, 3, 200)
    e = S.paired_bootstrap(S.srcc, good, bad, t, n_boot=300, seed=1)
    assert e.value == pytest.approx(S.srcc(good, t) - S.srcc(bad, t)) and e.low > 0
    g = S.paired_bootstrap(np.mean, b, a, groups=np.arange(200) // 4, n_boot=300, seed=0)
    assert g.low < 0.5 < g.high


def test_same_seed_same_numbers_other_seed_other_numbers():
    rng = np.random.default_rng(8)
    x, y, g = rng.normal(size=120), rng.normal(size=120), rng.integers(0, 20, 120)
    for f in (lambda s: S.bootstrap(S.srcc, x, y, g, n_boot=200, seed=s),
              lambda s: S.mean_ci(x, 200, s),
              lambda s: S.paired_bootstrap(np.mean, x, y, n_boot=200, seed=s),
              lambda s: S.item_weights(g, 50, s)):
        assert np.array_equal(np.asarray(_flat(f(1))), np.asarray(_flat(f(1))))
        assert not np.array_equal(np.asarray(_flat(f(1))), np.asarray(_flat(f(2))))
    # a Generator passed as the seed continues its stream
    gen = np.random.default_rng(9)
    first, second = S.draws(5, 3, gen), S.draws(5, 3, gen)
    both = np.random.default_rng(9).integers(0, 5, size=(6, 5))
    assert np.array_equal(np.vstack([first, second]), both)


def _flat(e):
    return [e.value, e.low, e.high] if isinstance(e, S.Estimate) else e


# --------------------------------------------------------------------------- coverage


def _coverage(estimates, truth) -> float:
    return float(np.mean([e.low <= truth <= e.high for e in estimates]))


def test_nominal_95_percent_intervals_cover_the_truth():
    """~300 small data sets from generators with a known mean / correlation / clustered
    mean: the empirical coverage of the 95 % percentile interval lies in [0.90, 0.99]."""
    rng = np.random.default_rng(2024)
    n_sets, n_boot = 300, 400
    # mean of n=40 skewed values (exponential, mean 1)
    data = rng.exponential(1.0, size=(n_sets, 40))
    cov_mean = _coverage([S.mean_ci(d, n_boot, seed=i) for i, d in enumerate(data)], 1.0)
    # Pearson correlation rho = 0.5 of n=60 bivariate normals (vectorised replicates)
    rho = 0.5
    z1, z2 = rng.normal(size=(2, n_sets, 60))
    xs, ys = z1, rho * z1 + np.sqrt(1 - rho**2) * z2
    cov_r = _coverage([S.bootstrap(S.plcc, x, y, None, n_boot, seed=i)
                       for i, (x, y) in enumerate(zip(xs, ys, strict=True))], rho)
    # mean of 30 clusters x 5 items with a shared cluster effect (true mean 0): the cluster
    # bootstrap (of the cluster means: equal sizes) covers; items as independent do not
    g = np.repeat(np.arange(30), 5)
    vals = rng.normal(0, 1, (n_sets, 30))[:, g] + rng.normal(0, 0.5, (n_sets, 150))
    per_cluster = vals.reshape(n_sets, 30, 5).mean(2)
    cov_cluster = _coverage([S.mean_ci(c, n_boot, seed=i) for i, c in enumerate(per_cluster)],
                            0.0)
    cov_items = _coverage([S.mean_ci(v, n_boot, seed=i) for i, v in enumerate(vals)], 0.0)
    print(f"coverage: mean {cov_mean:.3f}, pearson {cov_r:.3f}, cluster {cov_cluster:.3f}, "
          f"items-as-independent {cov_items:.3f}")
    assert 0.90 <= cov_mean <= 0.99
    assert 0.90 <= cov_r <= 0.99
    assert 0.90 <= cov_cluster <= 0.99
    assert cov_items < 0.85


# --------------------------------------------------------------------------- layering


def test_stats_imports_only_numpy_scipy_stdlib_and_errors():
    tree = ast.parse(Path(S.__file__).read_text())
    mods = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    mods |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    qbench = {m for m in mods if m.split(".")[0] == "qbench"}
    assert qbench <= {"qbench.errors"}, qbench
    third = {m.split(".")[0] for m in mods} - {"qbench", "__future__"}
    import sys

    assert third - set(sys.stdlib_module_names) <= {"numpy", "scipy"}
