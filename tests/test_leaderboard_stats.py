"""The leaderboard's statistics: correlations, orientation, the logistic mapping, the cluster
bootstrap and the level-order scores, on synthetic data."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import stats as st

from qbench import stats as S
from qbench.stats import Estimate


def clustered(n_items: int, n_groups: int, seed: int = 0, group_sd: float = 1.0):
    """pred, mos, groups: items of a reference share a random offset."""
    rng = np.random.default_rng(seed)
    groups = rng.integers(0, n_groups, n_items)
    offset = rng.normal(0, group_sd, n_groups)[groups]
    mos = offset + rng.normal(0, 1, n_items)
    pred = mos + rng.normal(0, 1, n_items)
    return pred, mos, groups


def sigmoid_data(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, n)
    return x, 1 + 4 / (1 + np.exp(-3 * x)) + rng.normal(0, 0.2, n)


# --------------------------------------------------------------------------- correlations


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_correlations_agree_with_scipy_on_random_data(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=300)
    y = 0.5 * x + rng.normal(size=300)
    xr, yr = np.round(x, 1), np.round(y, 1)  # with ties
    for a, b in ((x, y), (xr, yr), (x, -y)):
        c = S.correlations(a, b)
        assert c["plcc"] == pytest.approx(st.pearsonr(a, b).statistic, abs=1e-12)
        assert c["srcc"] == pytest.approx(st.spearmanr(a, b).statistic, abs=1e-12)
        assert c["krcc"] == pytest.approx(st.kendalltau(a, b).statistic, abs=1e-12)
        assert S.plcc(a, b) == c["plcc"] and S.srcc(a, b) == c["srcc"]
        assert S.krcc(a, b) == c["krcc"]
        assert c["plcc_logistic"] == S.plcc_logistic(a, b)
        assert set(c) == {"plcc", "plcc_logistic", "srcc", "krcc"}


def test_constant_input_gives_nan_correlations_without_warnings():
    x = np.arange(10.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for c in (S.correlations(np.ones(10), x), S.correlations(x, np.full(10, 3.3))):
            assert all(math.isnan(v) for v in c.values())
        est = S.summarize(np.ones(10), x, np.arange(10) % 3, True, n_boot=20)
        assert all(math.isnan(e.value) and math.isnan(e.low) for e in est.values())


def test_fewer_than_three_items_give_nan_not_an_exception():
    for n in (0, 1, 2):
        x = np.arange(float(n))
        assert all(math.isnan(v) for v in S.correlations(x, x).values())
        for name, e in S.summarize(x, x, np.zeros(n), True, n_boot=10).items():
            assert (math.isnan(e.value) and math.isnan(e.low) and math.isnan(e.high)), name
            assert e.n == n
        e = S.bootstrap(S.srcc, x, x, np.arange(n), n_boot=10)
        assert math.isnan(e.value) and e.n == n


# --------------------------------------------------------------------------- orientation


def test_oriented_negates_only_when_lower_is_better():
    s = [1.0, -2.0, 3.5]
    assert S.oriented(s, True).tolist() == s
    assert S.oriented(s, False).tolist() == [-1.0, 2.0, -3.5]
    assert S.oriented(s, np.bool_(False)).tolist() == [-1.0, 2.0, -3.5]
    with pytest.raises(TypeError):
        S.oriented(s, "False")  # a truthy string must not silently mean "higher is better"


def test_lower_is_better_metric_gets_positive_srcc_and_the_sign_is_not_hidden():
    rng = np.random.default_rng(3)
    mos = rng.uniform(1, 5, 200)
    groups = rng.integers(0, 20, 200)
    distance = np.exp(-mos)  # a distance: perfectly anti-correlated with MOS, nonlinear
    right = S.summarize(distance, mos, groups, higher_is_better=False, n_boot=50)
    wrong = S.summarize(distance, mos, groups, higher_is_better=True, n_boot=50)
    assert right["srcc"].value == pytest.approx(1.0)
    assert right["krcc"].value == pytest.approx(1.0)
    assert right["plcc"].value > 0 and right["plcc_logistic"].value > 0.95
    assert wrong["srcc"].value == pytest.approx(-1.0)
    assert wrong["krcc"].value == pytest.approx(-1.0)
    assert wrong["plcc"].value == pytest.approx(-right["plcc"].value)
    # a fitted logistic could turn any monotone relation positive; the sign must survive it
    assert wrong["plcc_logistic"].value == pytest.approx(-right["plcc_logistic"].value)
    assert wrong["srcc"].high == pytest.approx(-1.0)


# --------------------------------------------------------------------------- logistic


def test_logistic_plcc_at_least_raw_plcc_on_sigmoid_data():
    for seed in range(3):
        x, y = sigmoid_data(400, seed)
        assert S.plcc_logistic(x, y) > S.plcc(x, y) + 0.01
        mapped = S.logistic_fit(x, y)
        assert np.all(np.diff(mapped[np.argsort(x)]) >= -1e-9)  # an increasing curve
        assert np.mean((mapped - y) ** 2) < np.mean((np.polyval(np.polyfit(x, y, 1), x) - y) ** 2)


def test_logistic_plcc_on_linear_data_is_close_to_raw_plcc():
    pred, mos, _ = clustered(500, 10, seed=4)
    assert S.plcc_logistic(pred, mos) >= S.plcc(pred, mos) - 1e-6
    assert S.plcc_logistic(pred, mos) == pytest.approx(S.plcc(pred, mos), abs=0.01)


def test_logistic_plcc_keeps_the_sign_of_a_reversed_metric():
    x, y = sigmoid_data(300, 5)
    assert S.plcc_logistic(-x, y) == pytest.approx(-S.plcc_logistic(x, y), abs=1e-6)


TOUGH = {
    "constant pred": (np.ones(20), np.arange(20.0)),
    "constant target": (np.arange(20.0), np.ones(20)),
    "constant-ish pred": (1 + 1e-15 * np.arange(20), np.arange(20.0)),
    "four points": (np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 3.0, 2.0, 5.0])),
    "three points": (np.array([1.0, 2.0, 3.0]), np.array([2.0, 1.0, 3.0])),
    "two points": (np.array([1.0, 2.0]), np.array([2.0, 1.0])),
    "one point": (np.array([1.0]), np.array([2.0])),
    "empty": (np.array([]), np.array([])),
    "huge range": (np.linspace(-1e300, 1e300, 50), np.linspace(0, 1e299, 50)),
    "tiny range": (np.linspace(0, 1e-300, 50), np.linspace(1, 2, 50)),
    "huge offset": (1e12 + np.arange(30.0), np.sin(np.arange(30.0))),
    "step": (np.arange(40.0), (np.arange(40) >= 20).astype(float)),
    "two values": (np.array([0, 0, 0, 1, 1, 1.0]), np.array([1, 2, 3, 4, 5, 6.0])),
    "pure noise": tuple(np.random.default_rng(6).normal(size=(2, 30))),
    "outlier": (np.r_[np.arange(20.0), 1e9], np.r_[np.arange(20.0), 0.0]),
}


@pytest.mark.parametrize("case", sorted(TOUGH))
def test_logistic_fit_never_raises_on_tough_input(case):
    pred, target = TOUGH[case]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mapped = S.logistic_fit(pred, target)
        r = S.plcc_logistic(pred, target)
    assert mapped.shape == pred.shape
    assert np.all(np.isfinite(mapped))
    assert math.isnan(r) or -1.0 <= r <= 1.0


def test_logistic_fit_maps_non_finite_items_to_nan():
    x, y = sigmoid_data(50, 7)
    x[3], y[10] = np.nan, np.inf
    mapped = S.logistic_fit(x, y)
    assert np.isnan(mapped[[3, 10]]).all()
    assert np.isfinite(np.delete(mapped, [3, 10])).all()


# --------------------------------------------------------------------------- bootstrap


def test_bootstrap_ci_contains_the_point_estimate():
    pred, mos, groups = clustered(600, 30, seed=8)
    for stat in (S.plcc, S.srcc, S.krcc, S.plcc_logistic):
        e = S.bootstrap(stat, pred, mos, groups, n_boot=200)
        assert e.low <= e.value <= e.high, stat.__name__
        assert e.value == pytest.approx(stat(pred, mos))
        assert e.n == 600


def test_bootstrap_ci_narrows_with_more_groups():
    few = S.bootstrap(S.srcc, *clustered(300, 10, seed=9), n_boot=300)
    many = S.bootstrap(S.srcc, *clustered(3000, 100, seed=9), n_boot=300)
    assert many.high - many.low < 0.6 * (few.high - few.low)


def test_bootstrap_is_identical_for_the_same_seed_and_differs_for_another():
    data = clustered(400, 20, seed=10)
    a = S.bootstrap(S.srcc, *data, n_boot=100, seed=1)
    b = S.bootstrap(S.srcc, *data, n_boot=100, seed=1)
    c = S.bootstrap(S.srcc, *data, n_boot=100, seed=2)
    assert a == b
    assert (a.low, a.high) != (c.low, c.high)
    assert a.value == c.value


def test_bootstrap_resamples_whole_groups():
    sizes = np.array([1, 2, 3, 5, 8, 13])
    groups = np.repeat(np.arange(sizes.size), sizes)
    rng = np.random.default_rng(11)
    order = rng.permutation(groups.size)  # groups need not be contiguous
    groups = groups[order]
    item = np.arange(groups.size, dtype=float)  # pred carries the item's identity
    seen = []

    def record(pred, target):
        seen.append(pred.astype(int))
        return float(pred.mean())

    S.bootstrap(record, item, np.zeros(item.size), groups, n_boot=200, seed=0)
    replicates = seen[1:]  # the first call is the point estimate on all data
    assert len(replicates) == 200
    drawn_sets = set()
    for rep in replicates:
        counts = np.bincount(rep, minlength=item.size)
        per_group = np.array([counts[groups == g] for g in range(sizes.size)], dtype=object)
        draws = []
        for g, c in enumerate(per_group):
            assert np.all(c == c[0]), "a group was split"  # every item of a drawn group
            draws.append(c[0])
            assert sizes[g] == c.size
        assert sum(draws) == sizes.size  # as many group draws as there are groups
        assert sum(d > 0 for d in draws) <= sizes.size
        drawn_sets.add(tuple(draws))
    assert len(drawn_sets) > 50  # and the draws vary


def test_cluster_bootstrap_is_wider_than_item_bootstrap_when_references_share_offsets():
    rng = np.random.default_rng(12)
    groups = np.repeat(np.arange(20), 30)
    offset = rng.normal(0, 1, 20)[groups]  # between-group spread, no within-group noise
    pred = offset
    target = offset + rng.normal(0, 0.5, 20)[groups]
    clustered_ci = S.bootstrap(S.plcc, pred, target, groups, n_boot=300)
    item_ci = S.bootstrap(S.plcc, pred, target, None, n_boot=300)
    assert (clustered_ci.high - clustered_ci.low) > 2 * (item_ci.high - item_ci.low)


def test_group_labels_may_be_strings_tuples_or_rows():
    pred, mos, groups = clustered(200, 8, seed=13)
    expected = S.bootstrap(S.srcc, pred, mos, groups, n_boot=50)
    as_str = [f"ref{g}" for g in groups]
    as_tuples = [(f"ref{g}", "blur") for g in groups]
    as_rows = np.stack([groups, np.zeros_like(groups)], axis=1)
    for labels in (as_str, as_tuples, as_rows):
        assert S.bootstrap(S.srcc, pred, mos, labels, n_boot=50) == expected
    with pytest.raises(ValueError):
        S.bootstrap(S.srcc, pred, mos, groups[:-1], n_boot=10)


@pytest.mark.parametrize("stat", [S.plcc, S.srcc], ids=["plcc", "srcc"])
def test_vectorised_bootstrap_matches_calling_the_statistic_per_replicate(stat):
    rng = np.random.default_rng(18)
    pred, mos, groups = clustered(300, 12, seed=18)
    pred, mos = np.round(pred, 1), np.round(mos)  # many ties
    pred[groups == 3] = 7.0  # a constant group
    groups = np.r_[groups, 99, 99, 98]  # a two-item and a one-item group
    pred, mos = np.r_[pred, 1.0, 2.0, 3.0], np.r_[mos, 0.0, 1.0, 0.0]
    data = [(pred, mos, groups),
            (rng.normal(size=12), rng.normal(size=12), np.repeat([0, 1], 6)),  # few groups
            (np.r_[np.ones(5), np.arange(5.0)], np.arange(10.0), np.repeat([0, 1], 5)),
            # one wide group, three narrow ones: replicates of narrow groups only
            (np.r_[rng.normal(0, 1e6, 50), 5 + 1e-4 * rng.normal(size=150)],
             rng.normal(size=200), np.repeat(np.arange(4), 50))]
    for p, t, g in data:
        for level in (0.5, 0.9, 0.95):
            fast = S.bootstrap(stat, p, t, g, n_boot=300, seed=4, level=level)
            slow = S.bootstrap(lambda a, b: stat(a, b), p, t, g, n_boot=300, seed=4,
                               level=level)
            assert fast.value == slow.value and fast.n == slow.n
            assert fast.low == pytest.approx(slow.low, abs=1e-12)
            assert fast.high == pytest.approx(slow.high, abs=1e-12)


def test_logistic_bootstrap_refits_each_replicate():
    x, y = sigmoid_data(200, 19)
    groups = np.arange(200) % 20
    e = S.bootstrap(S.plcc_logistic, x, y, groups, n_boot=100)
    assert e.value == S.plcc_logistic(x, y)
    cold = S.bootstrap(lambda a, b: S.plcc_logistic(a, b), x, y, groups, n_boot=100)
    assert (e.low, e.high) == pytest.approx((cold.low, cold.high), abs=1e-5)
    fixed_curve = S.logistic_fit(x, y)  # not refitted: replicates fall below refitted ones
    fixed = S.bootstrap(S.plcc, fixed_curve, y, groups, n_boot=100)
    assert e.low > fixed.low


def test_summarize_returns_four_estimates_on_oriented_scores():
    pred, mos, groups = clustered(300, 15, seed=14)
    out = S.summarize(pred, mos, groups, True, n_boot=100)
    assert list(out) == ["plcc", "plcc_logistic", "srcc", "krcc"]
    assert all(isinstance(e, Estimate) and e.n == 300 for e in out.values())
    assert out["srcc"] == S.bootstrap(S.srcc, pred, mos, groups, n_boot=100)
    assert out["plcc"].value == pytest.approx(S.plcc(pred, mos))
    assert out["plcc_logistic"].value == pytest.approx(S.plcc_logistic(pred, mos))
    assert out["krcc"].value == pytest.approx(S.krcc(pred, mos))
    assert out["plcc_logistic"] == S.bootstrap(S.plcc_logistic, pred, mos, groups, n_boot=100)


def test_nans_are_dropped_and_n_counts_what_remains():
    pred, mos, groups = clustered(100, 10, seed=15)
    pred[[1, 5]] = np.nan
    pred[7] = np.inf
    mos[9] = -np.inf
    keep = np.isfinite(pred) & np.isfinite(mos)
    out = S.summarize(pred, mos, groups, False, n_boot=50)
    clean = S.summarize(pred[keep], mos[keep], groups[keep], False, n_boot=50)
    assert out == clean
    assert all(e.n == 96 for e in out.values())
    assert all(np.isfinite([e.value, e.low, e.high]).all() for e in out.values())
    assert S.correlations(pred, mos) == S.correlations(pred[keep], mos[keep])


def test_bootstrap_of_srcc_runs_with_a_thousand_replicates_on_ten_thousand_items():
    pred, mos, groups = clustered(10_000, 80, seed=16)
    e = S.bootstrap(S.srcc, pred, mos, groups, n_boot=1000)  # ~0.5 s: replicates vectorised
    assert np.isfinite([e.value, e.low, e.high]).all() and e.n == 10_000
    assert e.low < e.value < e.high


# --------------------------------------------------------------------------- level order


def corruption_grid(n_refs: int = 6, n_types: int = 3, n_levels: int = 5):
    """levels 0 (clean) .. n_levels for each (reference, type) group."""
    ref, kind, level = np.meshgrid(np.arange(n_refs), np.arange(n_types),
                                   np.arange(n_levels + 1), indexing="ij")
    groups = np.stack([ref.ravel(), kind.ravel()], axis=1)
    return level.ravel().astype(float), groups


def test_level_order_consistency_is_one_for_a_perfect_metric_and_minus_one_reversed():
    levels, groups = corruption_grid()
    offset = 0.37 * groups[:, 0] + 0.11 * groups[:, 1]  # groups differ, not the order within
    perfect = offset - np.log1p(levels)
    assert S.level_order_consistency(perfect, levels, groups) == pytest.approx(1.0)
    assert S.level_order_consistency(-perfect, levels, groups) == pytest.approx(-1.0)
    assert S.level_order_consistency(np.ones(levels.size), levels, groups) == 0.0


def test_level_order_consistency_skips_single_level_groups():
    levels, groups = corruption_grid(n_refs=3, n_types=1, n_levels=4)
    scores = -levels
    lone_levels = np.array([2.0, 2.0, 3.0])  # three groups with one level each
    lone_groups = np.array([[100, 0], [100, 0], [101, 0]])
    lone_scores = np.array([5.0, -5.0, 9.0])  # would count as anything but 1 if used
    all_levels = np.r_[levels, lone_levels]
    all_groups = np.r_[groups, lone_groups]
    all_scores = np.r_[scores, lone_scores]
    assert S.level_order_consistency(all_scores, all_levels, all_groups) == pytest.approx(1.0)
    assert math.isnan(S.level_order_consistency(lone_scores, lone_levels, lone_groups))


def test_level_order_consistency_is_the_mean_over_groups():
    levels = np.array([1.0, 2.0, 3.0, 1.0, 2.0, 3.0])
    groups = np.array(["a", "a", "a", "b", "b", "b"])
    scores = np.array([3.0, 2.0, 1.0, 1.0, 3.0, 2.0])  # a: perfect (1); b: rho = -0.5
    expected = (1.0 + st.spearmanr([1.0, 3.0, 2.0], [-1.0, -2.0, -3.0]).statistic) / 2
    assert S.level_order_consistency(scores, levels, groups) == pytest.approx(expected)


def test_level_pair_accuracy_is_one_zero_and_half():
    levels, groups = corruption_grid()
    assert S.level_pair_accuracy(-levels, levels, groups) == 1.0
    assert S.level_pair_accuracy(levels, levels, groups) == 0.0
    assert S.level_pair_accuracy(np.zeros(levels.size), levels, groups) == 0.5


def test_level_pair_accuracy_counts_pairs_within_groups_only():
    levels = np.array([1.0, 2.0, 3.0, 1.0, 1.0, 2.0])
    groups = np.array([0, 0, 0, 1, 1, 1])
    scores = np.array([3.0, 2.0, 2.0, 0.0, 9.0, 5.0])
    # group 0: (1,2) right, (1,3) right, (2,3) tie -> 2.5 of 3
    # group 1: (1a,2) wrong, (1b,2) right; the two level-1 items are no pair -> 1 of 2
    assert S.level_pair_accuracy(scores, levels, groups) == pytest.approx(3.5 / 5)
    assert math.isnan(S.level_pair_accuracy(scores, np.ones(6), groups))


def test_level_scores_drop_non_finite_items():
    levels, groups = corruption_grid(n_refs=2, n_types=2)
    scores = -levels.copy()
    scores[[0, 7]] = np.nan
    assert S.level_order_consistency(scores, levels, groups) == pytest.approx(1.0)
    assert S.level_pair_accuracy(scores, levels, groups) == 1.0
