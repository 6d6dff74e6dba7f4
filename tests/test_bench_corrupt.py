"""The corruption benchmark's bookkeeping, with a stand-in baseline (the real one, the
imagecorruptions package, is an optional extra and is not installed by ``make test``)."""

import json

import numpy as np
from click.testing import CliRunner

from qbench.bench import corrupt as bench
from qbench.cli import cli


def fake_baseline(image, corruption_name, severity):
    if corruption_name == "fog":
        raise AttributeError("`np.float_` was removed in the NumPy 2.0 release")
    if corruption_name == "contrast":  # the reference formula, per-channel means
        x = image / 255.0
        c = [0.4, 0.3, 0.2, 0.1, 0.05][severity - 1]
        m = x.mean(axis=(0, 1), keepdims=True)
        return np.clip((x - m) * c + m, 0, 1) * 255
    return image


def test_speed_result_has_per_corruption_ratios_and_leaves_broken_baselines_out():
    r = bench.run_speed(n=2, size=32, names=("contrast", "fog", "pixelate"), progress=False,
                        baseline=fake_baseline)
    d = r.as_dict()
    assert set(d["per_corruption"]) == {"contrast", "fog", "pixelate"}
    assert d["per_corruption"]["fog"]["speedup"] is None
    assert "float_" in d["per_corruption"]["fog"]["baseline_error"]
    assert d["aggregate_over"] == ["contrast", "pixelate"]
    both = [t for t in r.timings if t.name in d["aggregate_over"]]
    expected = sum(t.baseline_s for t in both) / sum(t.qbench_s for t in both)
    assert r.aggregate_speedup == expected
    assert d["aggregate_speedup"] == round(expected, 3)


def test_fidelity_compares_pixels_for_deterministic_corruptions():
    report = bench.run_fidelity(n=2, size=32, names=("contrast",), baseline=fake_baseline)
    rows = report["contrast"]["severities"]
    assert len(rows) == 5 and all(r["psnr_qbench_vs_baseline"] > 40 for r in rows)


def test_cli_prints_json_with_aggregate_speedup(monkeypatch):
    monkeypatch.setattr(bench, "_baseline", lambda: fake_baseline)
    monkeypatch.setattr(bench, "NAMES", ("contrast", "pixelate"))
    monkeypatch.setattr(bench.run_speed, "__defaults__",
                        (64, 224, "cpu", ("contrast", "pixelate"), True, None))
    res = CliRunner().invoke(cli, ["bench", "corrupt", "--json", "-n", "2", "--size", "32"])
    assert res.exit_code == 0, res.output
    assert "aggregate_speedup" in json.loads(res.output)


def test_missing_baseline_package_gives_the_install_command(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_imagecorruptions(name, *a, **k):
        if name.startswith("imagecorruptions"):
            raise ImportError("No module named 'imagecorruptions'")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_imagecorruptions)
    try:
        bench._baseline()
    except bench.QbenchError as exc:
        assert ".[bench]" in str(exc)
    else:
        raise AssertionError("expected a QbenchError")
