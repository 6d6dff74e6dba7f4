"""``qbench doctor``: what it checks, what it prints, and its exit code."""

import json
import shutil

import pytest
from click.testing import CliRunner

import qbench.doctor as doctor
from qbench.cli import cli
from qbench.models.checkpoint import SHIPPED
from tests.dataset_fixtures import WRITERS


def _doctor(*args):
    result = CliRunner().invoke(cli, ["doctor", *args])
    return result.exit_code, result.output


def _find(findings, section, name):
    return next(f for f in findings if f["section"] == section and f["name"] == name)


def test_a_healthy_machine_exits_0_and_reports_every_section_as_json(tmp_path, monkeypatch):
    monkeypatch.setenv("QBENCH_HOME", str(tmp_path / "home"))
    code, out = _doctor("--json")
    assert code == 0, out
    report = json.loads(out)
    assert report["ok"] is True
    found = report["findings"]
    assert {f["section"] for f in found} == {"versions", "caches", "weights", "datasets",
                                            "checkpoints", "device", "browser"}
    for dist in ("python", "torch", "torchvision", "pyiqa", "dowhy", "duckdb", "plotly", "ray"):
        assert _find(found, "versions", dist)["status"] == "ok"
    assert _find(found, "caches", "QBENCH_HOME")["status"] == "ok"
    assert _find(found, "datasets", "scenes")["status"] == "ok"
    kadid = _find(found, "datasets", "kadid10k")
    assert kadid["status"] == "warn" and str(tmp_path / "home" / "datasets") in kadid["detail"]
    shipped = [f for f in found if f["section"] == "checkpoints"]
    assert {f["name"] for f in shipped} >= {p.stem for p in SHIPPED.glob("*.pt")}
    assert all(f["status"] == "ok" for f in shipped)
    device = _find(found, "device", "cuda")
    assert device["required"] is False and device["status"] in ("ok", "warn")


def test_a_corrupted_checkpoint_fails_with_exit_code_1_and_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("QBENCH_HOME", str(tmp_path / "home"))
    zoo = tmp_path / "home" / "zoo"
    zoo.mkdir(parents=True)
    shipped = next(SHIPPED.glob("*.pt"))
    shutil.copy(shipped.with_suffix(".json"), zoo / f"{shipped.stem}.json")
    blob = bytearray(shipped.read_bytes())
    blob[-10] ^= 0xFF
    (zoo / shipped.name).write_bytes(bytes(blob))
    code, out = _doctor()
    assert code == 1
    assert "[FAIL] " + shipped.stem in out and "does not match the recorded" in out
    assert "fix: restore it" in out and "1 required check(s) failed" in out


def test_an_unwritable_qbench_home_fails(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("QBENCH_HOME", str(blocker / "home"))  # under a file: cannot exist
    findings = doctor.run_checks()
    home = next(f for f in findings if f.name == "QBENCH_HOME")
    assert home.status == "fail" and home.blocking and "not writable" in home.detail
    assert "set QBENCH_HOME" in home.fix
    assert not any("crashed" in f.detail for f in findings)  # dependent checks say "skipped"


def test_a_missing_required_package_fails_and_an_optional_one_warns(monkeypatch):
    monkeypatch.setattr(doctor, "PACKAGES", {"no-such-dist-qbench": (True, "testing"),
                                             "no-such-optional-qbench": (False, "testing")})
    found = {f.name: f for f in doctor.check_versions()}
    assert found["no-such-dist-qbench"].blocking
    assert "pip install" in found["no-such-dist-qbench"].fix
    assert found["no-such-optional-qbench"].status == "warn"
    assert not found["no-such-optional-qbench"].blocking


def test_datasets_found_are_counted_and_broken_ones_explained(tmp_path, monkeypatch):
    monkeypatch.setenv("QBENCH_DATA", str(tmp_path))
    WRITERS["kadid10k"](tmp_path / "kadid10k")
    WRITERS["tid2013"](tmp_path / "tid2013")
    (tmp_path / "tid2013" / "mos_with_names.txt").write_text("not-a-number i01_01_1.bmp\n")
    found = {f.name: f for f in doctor.check_datasets()}
    assert found["kadid10k"].status == "ok" and found["kadid10k"].detail.startswith("12 images")
    assert found["tid2013"].status == "warn" and "is malformed" in found["tid2013"].detail
    assert found["live"].status == "warn" and str(tmp_path / "live") in found["live"].detail


def test_metric_weights_come_from_the_catalogue_cache_when_it_is_fresh(tmp_path, monkeypatch):
    from qbench.metrics import catalog

    monkeypatch.setenv("QBENCH_HOME", str(tmp_path))
    stale = list(doctor.check_weights())
    assert len(stale) == 1 and "not checked" in stale[0].detail and "--check-weights" in \
        stale[0].fix
    monkeypatch.setattr(catalog, "pyiqa_rows", lambda check=True: [
        catalog.CatalogRow("pyiqa:psnr", "FR", True, 1, False, (), True),
        catalog.CatalogRow("pyiqa:lpips", "FR", False, 1, True, (), False,
                           "pyiqa:lpips needs the weight file 'alexnet.pth', expected at /x"),
        catalog.CatalogRow("pyiqa:lpips+", "FR", False, 1, True, (), False,
                           "pyiqa:lpips+ needs the weight file 'alexnet.pth', expected at /x")])
    (tmp_path / "metrics-offline.json").write_text(json.dumps(
        {"key": catalog._cache_fingerprint(), "results": {}}))
    fresh = list(doctor.check_weights())
    assert "1 of 3 usable offline: pyiqa:psnr" in fresh[0].detail
    assert len(fresh) == 2 and "lpips, lpips+" in fresh[1].detail
    assert fresh[1].fix == "needs the weight file 'alexnet.pth', expected at /x"


def test_a_crashing_check_is_a_failed_finding_not_a_traceback(monkeypatch):
    def boom():
        raise RuntimeError("kaput")
        yield

    monkeypatch.setattr(doctor, "check_device", boom)
    findings = doctor.run_checks()
    crashed = [f for f in findings if f.section == "device"]
    assert len(crashed) == 1 and crashed[0].blocking and "kaput" in crashed[0].detail


@pytest.mark.parametrize("present", [True, False])
def test_the_browser_check_says_how_to_install_chromium(monkeypatch, present):
    monkeypatch.setattr(doctor.shutil, "which", lambda name: f"/usr/bin/{name}" if present
                        else None)
    (f,) = doctor.check_browser()
    assert f.status == ("ok" if present else "warn") and not f.blocking
    assert present or "apt-get install chromium" in f.fix
