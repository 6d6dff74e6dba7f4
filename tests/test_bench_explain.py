import pytest

from qbench.bench import explain


def test_explain_bench_reports_every_ratio_and_its_batched_deletion_matches_the_loop():
    result = explain.run(n=2, n_masks=16, rise_images=2, repeats=1, progress=False)
    s = result["seconds"]  # rounded to 0.1 ms, hence the tolerance
    close = pytest.approx
    assert result["speedup_vs_gradcam_pkg"] == close(s["gradcam_pkg"] / s["gradcam"], rel=0.02)
    assert result["overhead_vs_fwd_bwd"] == close(s["gradcam"] / s["forward_backward"], rel=0.02)
    assert result["rise_overhead"] == close(s["rise"] / s["rise_forwards"], rel=0.02)
    assert result["deletion_speedup"] == close(s["deletion_loop"] / s["deletion_batched"],
                                               rel=0.02)
    # the batched game computes the same AUCs as the naive per-image loop
    assert result["deletion_max_abs_difference"] < 1e-5
    assert set(result["meets_floors"]) == set(explain.FLOORS)
