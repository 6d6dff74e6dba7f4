import re

from qbench.demo import run_demo
from qbench.store import Store
from tests.conftest import SMALL


def test_demo_job_builds_data_scores_with_real_pyiqa_metrics_and_writes_a_report(tmp_path):
    report = run_demo(tmp_path / "demo", n_scenes=4, n_refs=3, refs_size=176,
                      corruptions=("gaussian_noise", "gaussian_blur"), severities=(1, 5),
                      metrics=("pyiqa:psnr", "pyiqa:ms_ssim", "pyiqa:entropy"),
                      scenes_options={**SMALL, "size": 32}, progress=False)
    assert report.exists()
    store = Store(tmp_path / "demo" / "store")
    rows, fails = store.rows(), store.failures()
    # refs: 3 images x (4 corrupted conditions x 3 metrics + clean x 1 NR metric)
    assert (rows.dataset == "refs/all").sum() == 3 * (4 * 3 + 1)
    # scenes at 32 px: MS-SSIM is skipped by its minimum size, recorded with the reason
    ms = fails[(fails.dataset == "scenes/test") & (fails.scorer == "pyiqa:ms_ssim")]
    assert len(ms) == 4 * 4 and ms.reason.str.contains("161").all()
    # PSNR falls with noise severity on every reference
    psnr = rows[(rows.scorer == "pyiqa:psnr") & (rows.corruption == "gaussian_noise")
                & (rows.dataset == "refs/all")].pivot(index="item", columns="severity",
                                                       values="value")
    assert (psnr[1] > psnr[5]).all()
    html = report.read_text()
    assert re.search(r"id='summary'>On refs/all \(3 images", html)
    manifest = store.manifests()[0]
    assert manifest["attempts"][-1]["status"] == "finished"
    assert manifest["scorers"]["pyiqa:psnr"]["higher_is_better"] is True
    assert manifest["scorers"]["pyiqa:ms_ssim"]["min_size"] == 161
