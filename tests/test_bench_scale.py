from qbench.bench import scale


def test_scale_bench_times_local_and_ray_on_identical_rows():
    result = scale.run(n=2, size=32, metrics=("pyiqa:psnr", "sharpness"),
                       corruptions=("gaussian_noise",), severities=(1,), progress=False)
    sides = result["sides"]
    assert set(sides) == {"local", "ray-1", "ray-2"}
    # clean + 1 condition, 2 images; PSNR (FR) sits out the clean condition
    assert {s["rows"] for s in sides.values()} == {2 * 2 + 2}
    assert all(s["identical_to_local"] for s in sides.values())
    for s in sides.values():
        # seconds are rounded to 3 decimals, rows_per_s to 2 (from the unrounded time)
        lo, hi = s["rows"] / (s["seconds"] + 5e-4), s["rows"] / max(s["seconds"] - 5e-4, 1e-9)
        assert lo - 0.005 <= s["rows_per_s"] <= hi + 0.005
    assert result["ray2_vs_ray1"] == round(sides["ray-2"]["rows_per_s"]
                                           / sides["ray-1"]["rows_per_s"], 3)
