"""RankIQA: ranked data, the two Siamese schemes, the crop protocol, targets, metric, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import qbench.rankiqa as R
from qbench.rankiqa.pairs import n_pairs

TINY = (4, 8)  # widths of a tiny rankiqa-cnn


def _ranked(r=3, t=2, n_levels=4, side=20) -> R.RankedSet:
    """A synthetic ranked set whose pixel values encode (reference, type, level)."""
    g = torch.Generator().manual_seed(0)
    base = torch.randint(0, 200, (r, 1, 1, 3, side, side), generator=g, dtype=torch.uint8)
    level = torch.arange(n_levels).view(1, 1, n_levels, 1, 1, 1).to(torch.uint8) * 10
    images = (base + level).expand(r, t, n_levels, 3, side, side).contiguous()
    return R.RankedSet(images, [f"r{i}" for i in range(r)], [f"t{i}" for i in range(t)],
                       list(range(n_levels)))


def test_efficient_and_naive_give_the_same_loss_and_gradients_with_fewer_passes():
    batch = torch.rand(2, 2, 4, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    grads, losses, passes = [], [], []
    for fn in (R.efficient_loss, R.naive_loss):
        model = R.new_model(TINY, seed=3)
        loss, p = fn(model, batch, 1.0)
        loss.backward()
        grads.append(torch.cat([q.grad.flatten() for q in model.parameters()]))
        losses.append(float(loss.detach()))
        passes.append(p)
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
    assert torch.allclose(grads[0], grads[1], rtol=1e-4, atol=1e-7)
    assert passes == [1, 2 * n_pairs(2, 2, 4)] == [1, 48]


def test_hinge_counts_every_better_worse_pair_inside_a_block_only():
    better, worse = R.level_pairs(4)
    assert list(zip(better.tolist(), worse.tolist(), strict=True)) == [
        (0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]

    class Fixed(torch.nn.Module):  # the score is the image's first pixel value
        def forward(self, x):
            return x[:, 0, 0, 0] * 0 + x[:, 0, 0, 0]

    x = torch.zeros(1, 1, 3, 3, 2, 2)
    x[0, 0, :, 0, 0, 0] = torch.tensor([3.0, 2.0, 0.0])  # well ordered, margins 1, 3, 2
    loss, _ = R.efficient_loss(Fixed(), x, margin=2.0)
    assert float(loss) == pytest.approx((1.0 + 0 + 0) / 3)


def test_pair_accuracy_counts_order_and_gives_ties_half():
    good = torch.tensor([[[3.0, 2.0, 1.0]]])
    assert R.pair_accuracy(good).tolist() == [1.0]
    assert R.pair_accuracy(-good).tolist() == [0.0]
    assert R.pair_accuracy(torch.zeros(1, 1, 3)).tolist() == [0.5]


def test_reference_split_is_disjoint_complete_and_seeded():
    tr, te = R.split_references(20, 0.2, seed=0)
    assert not set(tr) & set(te) and sorted(tr + te) == list(range(20)) and len(te) == 4
    assert R.split_references(20, 0.2, seed=0) == (tr, te)
    assert R.split_references(20, 0.2, seed=1) != (tr, te)


def test_batches_share_one_crop_per_block_and_are_deterministic():
    ranked = _ranked()
    a = R.sample_batch(ranked, 2, 8, torch.Generator().manual_seed(5))
    b = R.sample_batch(ranked, 2, 8, torch.Generator().manual_seed(5))
    assert a.shape == (2, 2, 4, 3, 8, 8) and torch.equal(a, b)
    steps = (a[:, :, 1:] - a[:, :, :-1]) * 255  # same crop: levels differ by exactly 10
    assert torch.allclose(steps, torch.full_like(steps, 10.0), atol=1e-3)


def test_build_puts_pristine_first_and_is_a_pure_function_of_its_inputs():
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    a = R.build(x, ["a", "b"], ["rankiqa-live:wn", "rankiqa-live:jpeg"], seed=0)
    b = R.build(x, ["a", "b"], ["rankiqa-live:wn", "rankiqa-live:jpeg"], seed=0)
    assert a.images.shape == (2, 2, 6, 3, 32, 32) and torch.equal(a.images, b.images)
    assert torch.equal(a.images[:, 0, 0], (x * 255).round().to(torch.uint8))
    assert a.subset_levels(R.level_subset(6, 3)).levels == [0, 2, 5]  # spread out, ends kept


def test_crop_protocol_is_deterministic_and_independent_of_the_batch():
    model = R.new_model(TINY, seed=0).eval()
    x = torch.rand(3, 3, 40, 40, generator=torch.Generator().manual_seed(2))
    together = R.score_images(model, x, crop=16, n_crops=30, seed=0)
    alone = R.score_images(model, x[1:2], crop=16, n_crops=30, seed=0)
    assert together.dtype == torch.float64 and together.shape == (3,)
    assert torch.allclose(together[1:2], alone, rtol=1e-5)
    assert torch.equal(together, R.score_images(model, x, crop=16, n_crops=30, seed=0))


def test_ranking_training_learns_to_order_noise_levels():
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 0.5 + 0.25
    ranked = R.build(x, list("abcd"), ["rankiqa-live:wn"], seed=0)
    cfg = R.RankConfig(steps=40, sources=2, crop=24, seed=0, widths=TINY, lr=3e-3)
    model, hist = R.train_ranking(ranked, cfg)
    assert hist.forward_passes == 40 and len(hist.losses) == 40
    assert np.mean(hist.losses[-10:]) < np.mean(hist.losses[:10])
    assert R.ranking_accuracy(model, ranked, crop=24, n_crops=4)["all"] > 0.8


def test_targets_from_a_real_release_are_oriented_scaled_and_split_by_reference(tmp_path):
    from tests.dataset_fixtures import write_kadid

    ts = R.from_dataset("kadid10k", root=write_kadid(tmp_path))
    assert len(ts) == 12 and ts.target.min() >= 0 and ts.target.max() <= 1
    lv1 = ts.target[ts.levels == 1].mean()
    assert lv1 > ts.target[ts.levels == 3].mean()  # higher = better after orientation
    train, test = R.split_by_reference(ts, 0.5, seed=0)
    assert not set(train.refs) & set(test.refs) and len(train) + len(test) == 12


def test_pseudo_labels_are_full_reference_scores_oriented_and_scaled():
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    ts = R.pseudo_labelled(x, ["a", "b"], ["kadid:gaussian_blur"], levels=(1, 5),
                           metric="pyiqa:psnr")
    assert len(ts) == 6 and np.isfinite(ts.target).all()
    assert ts.target.max() == 1.0 and ts.target.min() == 0.0
    assert (ts.target[ts.levels == 0] == 1.0).all()
    assert (ts.target[ts.levels == 1] > ts.target[ts.levels == 5]).all()
    assert "pseudo-labels" in ts.ground_truth and ts.source == "refs"


def test_missing_checkpoint_names_the_path_and_the_train_command(monkeypatch, tmp_path):
    import qbench.models.checkpoint as ck
    from qbench.metrics import create
    from qbench.metrics.registry import PluginError

    monkeypatch.setattr(ck, "SHIPPED", tmp_path / "none")
    monkeypatch.setattr("qbench.rankiqa.metric.SHIPPED", tmp_path / "none")
    with pytest.raises(PluginError) as err:
        create("rankiqa")
    msg = str(err.value)
    assert "rankiqa.pt" in msg and str(tmp_path / "none") in msg
    assert "qbench rankiqa train --name rankiqa" in msg


def test_cli_trains_and_finetunes_a_checkpoint_usable_as_a_metric(tmp_path, monkeypatch):
    from qbench.cli import cli
    from qbench.rankiqa.metric import RankIQAMetric

    zoo = tmp_path / "zoo"
    res = CliRunner().invoke(cli, ["rankiqa", "train", "--size", "40", "--crop", "32",
                                   "--steps", "3", "--sources", "1", "--name", "rq-tiny",
                                   "--out", str(zoo)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "held-out pair accuracy all" in res.output
    prov = json.loads((zoo / "rq-tiny.json").read_text())
    assert prov["extra"]["crop"] == 32 and "refs-kadid" in prov["extra"]["trained_on"]
    assert set(prov["extra"]["train_refs"]).isdisjoint(prov["extra"]["test_refs"])
    res = CliRunner().invoke(cli, ["rankiqa", "eval", "--name", str(zoo / "rq-tiny.pt"),
                                   "--n-crops", "2"], catch_exceptions=False)
    assert res.exit_code == 0 and "held-out pair accuracy all" in res.output
    assert ", ".join(prov["extra"]["test_refs"]) in res.output
    res = CliRunner().invoke(cli, ["rankiqa", "finetune", "--from", str(zoo / "rq-tiny.pt"),
                                   "--metric", "pyiqa:psnr", "--types", "1", "--steps", "2",
                                   "--batch", "4", "--name", "rq-tiny-ft", "--out", str(zoo)],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "after fine-tuning: SRCC" in res.output
    monkeypatch.setenv("QBENCH_HOME", str(tmp_path))  # the user zoo is $QBENCH_HOME/zoo
    m = RankIQAMetric("rq-tiny-ft")
    assert (m.info.kind, m.info.higher_is_better, m.info.needs_weights) == ("NR", True, True)
    assert m.info.min_size == 32 and "refs" in m.info.trained_on
    x = torch.rand(2, 3, 40, 40, generator=torch.Generator().manual_seed(0))
    assert torch.equal(m(x), m(x)) and m(x).shape == (2,)


def test_bench_reports_forward_counts_and_the_same_training_path():
    from qbench.bench import rankiqa as bench

    r = bench.run(n=24, steps=2, crop=24, size=48, seed=0)
    assert r["forwards_efficient"] == 1 and r["forwards_naive"] == 2 * 60
    assert r["forward_ratio"] == 120 and r["image_forward_ratio"] == 5
    assert r["first_step_grad_rel_diff"] < 1e-4
    assert {"wallclock_speedup", "acc_efficient", "acc_naive"} <= set(r)


def test_shipped_rankiqa_passes_the_leaderboard_admission_probe():
    from qbench.leaderboard.probe import probe
    from qbench.metrics import create
    from qbench.models.checkpoint import SHIPPED

    if not (SHIPPED / "rankiqa.pt").exists():
        pytest.fail(f"shipped checkpoint missing: {SHIPPED / 'rankiqa.pt'}")
    for name in ("rankiqa", "rankiqa-ft"):
        report = probe(create(name), name)
        assert report.passed, report.reason
