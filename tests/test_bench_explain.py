from qbench.bench import explain


def test_explain_bench_reports_every_ratio_and_its_batched_deletion_matches_the_loop():
    result = explain.run(n=2, n_masks=16, rise_images=2, repeats=1, progress=False)
    s = result["seconds"]
    assert result["speedup_vs_gradcam_pkg"] == round(s["gradcam_pkg"] / s["gradcam"], 3)
    assert result["overhead_vs_fwd_bwd"] == round(s["gradcam"] / s["forward_backward"], 3)
    assert result["rise_overhead"] == round(s["rise"] / s["rise_forwards"], 3)
    assert result["deletion_speedup"] == round(s["deletion_loop"] / s["deletion_batched"], 3)
    # the batched game computes the same AUCs as the naive per-image loop
    assert result["deletion_max_abs_difference"] < 1e-5
    assert set(result["meets_floors"]) == set(explain.FLOORS)
