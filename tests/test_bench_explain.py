from qbench.bench import explain


def test_explain_bench_reports_every_ratio_and_its_batched_deletion_matches_the_loop():
    result = explain.run(n=2, n_masks=16, rise_images=2, repeats=1, progress=False)
    s = result["seconds"]

    def consistent(ratio: float, num: str, den: str) -> bool:
        """ratio (3 decimals) lies within what seconds rounded to 0.1 ms allow."""
        lo = (s[num] - 5e-5) / (s[den] + 5e-5)
        hi = (s[num] + 5e-5) / max(s[den] - 5e-5, 1e-9)
        return lo - 5e-4 <= ratio <= hi + 5e-4

    assert consistent(result["speedup_vs_gradcam_pkg"], "gradcam_pkg", "gradcam")
    assert consistent(result["overhead_vs_fwd_bwd"], "gradcam", "forward_backward")
    assert consistent(result["rise_overhead"], "rise", "rise_forwards")
    assert consistent(result["deletion_speedup"], "deletion_loop", "deletion_batched")
    # the batched game computes the same AUCs as the naive per-image loop
    assert result["deletion_max_abs_difference"] < 1e-5
    assert set(result["meets_floors"]) == set(explain.FLOORS)
    others = result["deletion_by_model"]
    assert set(others) == set(explain.ZOO_ARCHITECTURES) - {result["model"]}
    for o in others.values():
        assert abs(o["speedup"] - o["loop"] / o["batched"]) <= 0.05 * o["speedup"] + 1e-3
