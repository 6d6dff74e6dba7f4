from qbench.bench import score


def test_score_bench_runs_both_sides_on_the_same_work_and_reports_ratio_and_memory():
    result = score.run(n=2, size=32, names=("psnr", "piqe"), repeats=1, progress=False)
    assert result["rows"] == {"qbench": 4, "pyiqa_loop": 4}
    assert result["speedup"] == round(result["pyiqa_loop_s"] / result["qbench_s"], 3) or \
        abs(result["speedup"] - result["pyiqa_loop_s"] / result["qbench_s"]) < 0.01
    assert result["peak_rss_mb"]["qbench"] > 50 and result["peak_rss_mb"]["pyiqa_loop"] > 50
