"""Issue 24, part A: the data and store defects a hostile-input probe found. Each test here
failed before its fix: a hidden folder shifting labels (3), score files accepted as given (4),
stale results on resume (6), silent decode choices (7), paths pasted into SQL (8), one damaged
file locking the user out (9) and tracebacks where one line is promised (10)."""

import csv
import os
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import scipy.io
import torch
from PIL import Image

import qbench.data as data
from qbench.data.imagefile import collect_notes, read_image
from qbench.engine import grid, score
from qbench.errors import DatasetFormatError, QbenchError
from qbench.store import Store
from tests.dataset_fixtures import WRITERS
from tests.reliability.files import rgb, truncated
from tests.toy_metrics import MeanBrightness


def _run(store: Store, ds, job: str = "probe") -> str:
    run = store.begin_run({"job": job})
    score(store, run, ds, grid([]), [MeanBrightness()], batch_size=4, progress=False, workers=1)
    return run


# -- 3: hidden folders ----------------------------------------------------------------------
def test_a_hidden_folder_or_a_stray_file_beside_class_folders_does_not_shift_labels(tmp_path):
    root = WRITERS["imagefolder"](tmp_path / "inet")
    (root / "val" / ".ipynb_checkpoints").mkdir()
    rgb(root / "val" / ".ipynb_checkpoints" / "copy.png", 1)
    (root / "val" / "README.txt").write_text("class folders below\n")
    rgb(root / "val" / "n01440764" / "._ILSVRC2012_val_00.png", 2)  # macOS resource fork
    ds = data.load("imagefolder", root=root, split="val")
    assert ds.classes == ["n01440764", "n01443537"]
    assert list(ds.labels) == [0, 0, 0, 1, 1, 1]
    assert not any(Path(i).name.startswith(".") or i.startswith(".") for i in ds.item_ids)


# -- 4: official score files ----------------------------------------------------------------
def _edit_lines(path: Path, edit) -> None:
    lines = path.read_text().splitlines()
    path.write_text("\n".join(edit(lines)) + "\n")


def _csv_cell(path: Path, row: int, column: str, value: str) -> None:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    rows[row][rows[0].index(column)] = value
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(rows)


def _kadid_dup(root):
    p = root / "kadid10k" / "dmos.csv"
    _edit_lines(p, lambda ls: [*ls, ls[1].replace("4.100", "1.500")])


def _kadid_rename(root, old, new):
    p = root / "kadid10k" / "dmos.csv"
    _edit_lines(p, lambda ls: [ls[0], ls[1].replace(old, new), *ls[2:]])
    img = root / "kadid10k" / "images"
    shutil.copy(img / old, img / new)


def _tid_line(root, i, text):
    _edit_lines(root / "mos_with_names.txt",
                lambda ls: [text if k == i else ln for k, ln in enumerate(ls)])


def _csiq_cell(root, column, value):
    import openpyxl

    wb = openpyxl.load_workbook(root / "csiq.DMOS.xlsx")
    ws = wb.active
    col = [c.value for c in ws[1]].index(column) + 1
    ws.cell(row=3, column=col, value=value)
    wb.save(root / "csiq.DMOS.xlsx")


def _csiq_dup(root):
    import openpyxl

    wb = openpyxl.load_workbook(root / "csiq.DMOS.xlsx")
    ws = wb.active
    ws.append([*[c.value for c in ws[2]][:-1], 0.9])
    wb.save(root / "csiq.DMOS.xlsx")


def _live_dmos(root, value):
    m = scipy.io.loadmat(root / "dmos.mat")
    m["dmos"][0, 0] = value
    scipy.io.savemat(root / "dmos.mat", {"dmos": m["dmos"], "orgs": m["orgs"]})


def _koniq_dup(root):
    p = root / "koniq10k_scores_and_distributions.csv"
    _edit_lines(p, lambda ls: [*ls, ls[1].replace("3.1", "4.9")])


KONIQ = "koniq10k_scores_and_distributions.csv"
BAD_SCORE_FILES = {
    "kadid-duplicate": ("kadid10k", _kadid_dup, ["dmos.csv line 14", "line 2"]),
    "kadid-inf": ("kadid10k", lambda r: _csv_cell(r / "kadid10k/dmos.csv", 3, "dmos", "inf"),
                  ["dmos.csv line 4", "not finite"]),
    "kadid-out-of-range": ("kadid10k", lambda r: _csv_cell(r / "kadid10k/dmos.csv", 2, "dmos",
                                                           "99"), ["dmos.csv line 3", "[1, 5]"]),
    "kadid-unknown-level": ("kadid10k", lambda r: _kadid_rename(r, "I01_01_01.png",
                                                                "I01_01_07.png"),
                            ["dmos.csv line 2", "level 7"]),
    "kadid-reference-mismatch": ("kadid10k", lambda r: _csv_cell(r / "kadid10k/dmos.csv", 1,
                                                                 "ref_img", "I02.png"),
                                 ["dmos.csv line 2", "I02"]),
    "tid-duplicate": ("tid2013", lambda r: _tid_line(r, 3, "1.00000 i01_01_1.bmp"),
                      ["mos_with_names.txt line 4", "line 1"]),
    "tid-inf": ("tid2013", lambda r: _tid_line(r, 1, "-inf i01_01_5.bmp"),
                ["mos_with_names.txt line 2", "not finite"]),
    "tid-out-of-range": ("tid2013", lambda r: _tid_line(r, 1, "12.5 i01_01_5.bmp"),
                         ["mos_with_names.txt line 2", "[0, 9]"]),
    "tid-unknown-level": ("tid2013", lambda r: _tid_line(r, 1, "3.0 i01_01_8.bmp"),
                          ["mos_with_names.txt line 2", "level 8"]),
    "csiq-out-of-range": ("csiq", lambda r: _csiq_cell(r, "dmos", 1.7),
                          ["csiq.DMOS.xlsx row 3", "[0, 1]"]),
    "csiq-inf": ("csiq", lambda r: _csiq_cell(r, "dmos", "inf"),
                 ["csiq.DMOS.xlsx row 3", "not finite"]),
    "csiq-unknown-level": ("csiq", lambda r: _csiq_cell(r, "dst_lev", 9),
                           ["csiq.DMOS.xlsx row 3", "level 9"]),
    "csiq-duplicate": ("csiq", _csiq_dup, ["csiq.DMOS.xlsx row 14", "row 2"]),
    "koniq-duplicate": ("koniq10k", _koniq_dup, [f"{KONIQ} line 6", "line 2"]),
    "koniq-inf": ("koniq10k", lambda r: _csv_cell(r / KONIQ, 2, "MOS", "inf"),
                  [f"{KONIQ} line 3", "not finite"]),
    "koniq-out-of-range": ("koniq10k", lambda r: _csv_cell(r / KONIQ, 2, "MOS", "55"),
                           [f"{KONIQ} line 3", "[1, 5]"]),
    "live-inf": ("live", lambda r: _live_dmos(r, np.inf), ["dmos.mat", "entry 1", "not finite"]),
    "live-out-of-range": ("live", lambda r: _live_dmos(r, 1e6), ["dmos.mat", "entry 1"]),
}


@pytest.mark.parametrize("case", list(BAD_SCORE_FILES))
def test_a_duplicated_non_finite_out_of_range_or_unknown_score_row_is_refused_naming_the_line(
        tmp_path, case):
    name, damage, words = BAD_SCORE_FILES[case]
    root = WRITERS[name](tmp_path / name)
    damage(root)
    with pytest.raises(DatasetFormatError) as err:
        data.load(name, root=root)
    message = str(err.value)
    assert "\n" not in message
    for w in words:
        assert w in message, (w, message)


@pytest.mark.parametrize("name, folder, item", [
    ("kadid10k", "kadid10k/images", "I01_01_01.png"),
    ("kadid10k", "kadid10k/images", "I01.png"),
    ("tid2013", "distorted_images", "i01_01_1.bmp"),
    ("tid2013", "reference_images", "I01.BMP"),
    ("koniq10k", "1024x768", "826373.jpg"),
    ("csiq", "dst_imgs/awgn", "1600.AWGN.1.png"),
    ("csiq", "src_imgs", "1600.png"),
    ("live", "refimgs", "bikes.bmp"),
])
def test_a_stale_copy_in_a_sub_folder_never_replaces_the_official_image(tmp_path, name, folder,
                                                                       item):
    root = WRITERS[name](tmp_path / name)
    official = root / folder / item
    (root / folder / "old").mkdir()
    stale = root / folder / "old" / item
    Image.new("RGB", Image.open(official).size, (255, 0, 0)).save(stale, format="PNG")
    ds = data.load(name, root=root)
    assert not any("old" in i.split("/") for i in ds.item_ids)
    assert not any("old" in p.parts for p in ds.ref_paths.values())
    tail = f"{Path(folder).name}/{item}".lower()
    for k, i in enumerate(ds.item_ids):
        if i.lower().endswith(tail):
            assert torch.equal(ds.image(k), read_image(official))


def test_cifar10_labels_outside_the_class_list_are_refused(tmp_path):
    import pickle

    root = WRITERS["cifar10"](tmp_path)
    batch = root / "cifar-10-batches-py" / "test_batch"
    b = pickle.loads(batch.read_bytes())
    b[b"labels"] = [0, 1, 2, 10]
    batch.write_bytes(pickle.dumps(b))
    with pytest.raises(DatasetFormatError, match="label 10"):
        data.load("cifar10", root=root)


# -- 6: stale results on resume -------------------------------------------------------------
def test_a_replaced_image_is_rescored_and_a_repaired_one_retried_on_resume(tmp_path):
    root = WRITERS["imagefolder"](tmp_path / "inet")
    cls = root / "val" / "n01440764"
    broken, replaced = cls / "ILSVRC2012_val_01.JPEG.png", cls / "ILSVRC2012_val_02.JPEG.png"
    truncated(broken, 3)
    store = Store(tmp_path / "store")
    run = _run(store, data.load("imagefolder", root=root))
    assert len(store.failures(run)) == 1 and len(store.rows(run)) == 5
    Image.new("RGB", (24, 24), (255, 255, 255)).save(replaced)  # now all white: mean 1.0
    rgb(broken, 3, (24, 24))  # repaired
    ds = data.load("imagefolder", root=root)
    assert _run(store, ds) == run
    rows, failures = store.rows(run), store.failures(run)
    assert failures.empty, failures
    assert len(rows) == 6 and rows.set_index("item").value.notna().all()
    values = rows.set_index("item").value
    assert values["n01440764/ILSVRC2012_val_02.JPEG.png"] == pytest.approx(1.0)
    expect = float(read_image(broken).mean())
    assert values["n01440764/ILSVRC2012_val_01.JPEG.png"] == pytest.approx(expect, abs=1e-6)
    assert len(store.done(run)) == 6
    # and an untouched rerun reuses everything
    counting = MeanBrightness()
    n = score(store, run, ds, grid([]), [counting], batch_size=4, progress=False, workers=1)
    assert n.written == 0 and n.reused == 6


# -- 7: decode choices are made out loud ----------------------------------------------------
def test_exif_orientation_is_applied_and_noted(tmp_path):
    p = tmp_path / "phone.jpg"
    im = Image.fromarray(np.random.default_rng(0).integers(0, 256, (48, 80, 3), np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    im.save(p, exif=exif, quality=95)
    with collect_notes() as notes:
        x = read_image(p)
    assert x.shape == (3, 80, 48)
    assert any("EXIF orientation" in n for n in notes), notes


def test_a_gif_is_read_first_frame_with_a_note_and_a_multi_frame_tiff_says_frame_0(tmp_path):
    rng = np.random.default_rng(1)
    frames = [Image.fromarray(rng.integers(0, 256, (48, 48, 3), np.uint8)) for _ in range(3)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    frames[0].save(tmp_path / "pages.tif", save_all=True, append_images=frames[1:2])
    with collect_notes() as notes:
        read_image(tmp_path / "anim.gif")
    assert any("frame 1 of 3" in n for n in notes), notes
    with collect_notes() as notes:
        x = read_image(tmp_path / "pages.tif")
    assert any("frame 1 of 2" in n for n in notes), notes
    assert torch.allclose(x, torch.from_numpy(np.asarray(frames[0], np.float32) / 255)
                          .permute(2, 0, 1))
    root = WRITERS["imagefolder"](tmp_path / "inet")
    shutil.copy(tmp_path / "anim.gif", root / "val" / "n01443537" / "anim.gif")
    ds = data.load("imagefolder", root=root)
    assert "n01443537/anim.gif" in ds.item_ids


# -- 8: paths are never pasted into SQL -----------------------------------------------------
def test_an_apostrophe_in_the_store_folder_is_read_and_resumed(tmp_path):
    root = WRITERS["imagefolder"](tmp_path / "inet")
    store = Store(tmp_path / "results" / "o'brien")
    run = _run(store, data.load("imagefolder", root=root))
    assert len(store.rows(run)) == 6 and store.failures(run).empty
    assert len(store.done(run)) == 6 and len(store.notes(run)) == 0


# -- 9: one damaged file does not lock the user out -----------------------------------------
def test_a_truncated_part_is_quarantined_in_one_line_and_its_keys_recomputed(tmp_path, capfd):
    root = WRITERS["imagefolder"](tmp_path / "inet")
    store = Store(tmp_path / "store")
    ds = data.load("imagefolder", root=root)
    run = _run(store, ds)
    parts = sorted((store.root / "rows").glob("*.parquet"))
    assert len(parts) == 2
    parts[0].write_bytes(parts[0].read_bytes()[:100])
    capfd.readouterr()
    rows = store.rows(run)
    assert len(rows) == 2  # the other part's rows are still there
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and "unreadable" in err and parts[0].name in err, err
    assert not parts[0].exists() and parts[0].with_name(parts[0].name + ".corrupt").exists()
    s = score(store, run, ds, grid([]), [MeanBrightness()], batch_size=4, progress=False,
              workers=1)
    assert s.written == 4 and len(store.rows(run)) == 6


def test_a_part_damaged_inside_is_quarantined_when_a_query_trips_on_it(tmp_path, capfd):
    store = Store(tmp_path / "store")
    key = {"run": "r", "dataset": "d", "corruption": "clean", "severity": 0, "seed": 0,
           "scorer": "s"}
    store.write_rows([{**key, "item": f"i{k}", "value": float(k)} for k in range(3)])
    store.write_rows([{**key, "item": "j", "value": 9.0}])
    bad = sorted((store.root / "rows").glob("*.parquet"))[0]
    blob = bytearray(bad.read_bytes())
    meta = pq.read_metadata(bad)
    start = meta.row_group(0).column(0).data_page_offset  # the first column's data page
    blob[start: start + 40] = b"\xff" * 40
    bad.write_bytes(bytes(blob))
    capfd.readouterr()
    rows = store.rows("r")
    assert list(rows.item) == ["j"]
    assert "unreadable" in capfd.readouterr().err


def test_a_truncated_manifest_gets_one_line_and_the_rerun_goes_on(tmp_path, capfd):
    root = WRITERS["imagefolder"](tmp_path / "inet")
    store = Store(tmp_path / "store")
    ds = data.load("imagefolder", root=root)
    run = _run(store, ds)
    path = store.root / "manifests" / f"{run}.json"
    path.write_bytes(path.read_bytes()[:50])
    capfd.readouterr()
    assert _run(store, ds) == run
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and "manifest" in err and "damaged" in err, err
    assert store.manifest(run)["attempts"][-1]["status"] == "running"
    assert len(store.manifests()) == 1 and len(store.rows(run)) == 6


# -- 10: one line where one line is promised ------------------------------------------------
def test_a_non_utf8_file_name_is_scored_or_failed_and_the_good_images_are_scored(tmp_path):
    root = WRITERS["imagefolder"](tmp_path / "inet")
    folder = os.fsencode(root / "val" / "n01440764")
    odd = os.path.join(folder, b"caf\xe9.png")
    try:
        with open(odd, "wb"):
            pass
        os.remove(odd)
    except OSError:
        pytest.skip("this file system refuses non-UTF-8 names")
    rgb(Path(os.fsdecode(odd)), 9, (24, 24))
    truncated(Path(os.fsdecode(os.path.join(folder, b"bad\xff.png"))), 8)  # reason names it
    store = Store(tmp_path / "store")
    ds = data.load("imagefolder", root=root)
    assert len(ds) == 8
    for _ in range(2):  # the rerun too
        run = _run(store, ds)
        rows, failures = store.rows(run), store.failures(run)
        assert len(rows) == 7 and len(failures) == 1
    assert any("\\xe9" in i for i in rows.item)
    assert "bad\\xff.png" in failures.item.iloc[0] and "cannot decode" in failures.reason.iloc[0]


def _deny(monkeypatch, folders: list[Path]) -> None:
    """Make ``folders`` read-only (as root, where modes do not bind, by refusing writes)."""
    for folder in folders:
        for d in [folder, *[p for p in folder.rglob("*") if p.is_dir()]]:
            d.chmod(0o555)
    if os.geteuid() != 0:
        return
    import qbench.atomic
    import qbench.store

    real_mkdir, real_mkstemp, real_open = Path.mkdir, qbench.atomic.tempfile.mkstemp, open

    def inside(p) -> bool:
        return any(str(f) in str(p) for f in folders)

    def mkdir(self, *a, **k):
        if inside(self) and not self.exists():
            raise PermissionError(13, "Permission denied", str(self))
        return real_mkdir(self, *a, **k)

    def mkstemp(*a, dir=None, **k):
        if inside(dir):
            raise PermissionError(13, "Permission denied", str(dir))
        return real_mkstemp(*a, dir=dir, **k)

    def opener(p, mode="r", *a, **k):
        if inside(p) and any(c in mode for c in "wa+"):
            raise PermissionError(13, "Permission denied", str(p))
        return real_open(p, mode, *a, **k)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    monkeypatch.setattr(qbench.atomic.tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(qbench.store, "open", opener, raising=False)


def test_a_read_only_output_folder_is_one_line(tmp_path, monkeypatch, capsys):
    fresh, used = tmp_path / "fresh", tmp_path / "used"
    fresh.mkdir()
    Store(used)
    _deny(monkeypatch, [fresh, used])
    try:
        with pytest.raises(QbenchError) as err:
            Store(fresh / "store")
        assert "\n" not in str(err.value) and "cannot write" in str(err.value), err.value
        store = Store(used)
        with pytest.raises(QbenchError) as err:
            store.begin_run({"job": "x"})
        assert "\n" not in str(err.value) and "cannot write" in str(err.value), err.value
        with pytest.raises(QbenchError) as err:
            store.write_rows([{"run": "r", "dataset": "d", "item": "i", "corruption": "clean",
                               "severity": 0, "seed": 0, "scorer": "s", "value": 1.0}])
        assert "\n" not in str(err.value) and "cannot write" in str(err.value), err.value
        from qbench.cli import main

        monkeypatch.setattr("sys.argv", ["qbench", "leaderboard", "show", "--dir",
                                         str(fresh / "board")])
        capsys.readouterr()
        with pytest.raises(SystemExit) as exit_:
            main()
        err_text = capsys.readouterr().err
        assert exit_.value.code == 2 and err_text.count("\n") == 1, err_text
        assert "cannot write the results store" in err_text
    finally:
        for d in [fresh, *fresh.rglob("*"), used, *used.rglob("*")]:
            if d.is_dir():
                d.chmod(0o755)
