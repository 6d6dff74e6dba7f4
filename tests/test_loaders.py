import numpy as np
import pytest
from click.testing import CliRunner

import qbench.data as data
from qbench.cli import cli, main
from qbench.data.base import ClassificationSet, IQASet
from qbench.errors import DatasetFormatError, DatasetNotFoundError
from tests.dataset_fixtures import WRITERS


@pytest.fixture
def fixture_root(tmp_path, request):
    name = request.param
    return name, WRITERS[name](tmp_path / name)


def test_cifar10_reads_the_python_pickle_batches(tmp_path):
    root = WRITERS["cifar10"](tmp_path)
    test = data.load("cifar10", root=root, split="test")
    train = data.load("cifar10", root=root / "cifar-10-batches-py", split="train")
    assert isinstance(test, ClassificationSet)
    assert len(test) == 4 and len(train) == 20
    assert test.classes[9] == "truck" and list(test.labels) == [0, 1, 2, 9]
    assert test.image(0).shape == (3, 32, 32)


def test_imagefolder_takes_classes_from_sorted_subfolders(tmp_path):
    ds = data.load("imagefolder", root=WRITERS["imagefolder"](tmp_path), split="val")
    assert ds.classes == ["n01440764", "n01443537"]
    assert list(ds.labels) == [0, 0, 0, 1, 1, 1]
    assert ds.batch([0, 5]).shape == (2, 3, 24, 24)


def test_kadid10k_reads_dmos_csv_with_types_levels_and_references(tmp_path):
    ds = data.load("kadid10k", root=WRITERS["kadid10k"](tmp_path))
    assert isinstance(ds, IQASet) and len(ds) == 12
    assert ds.label.higher_is_better and ds.label.kind == "DMOS"
    assert (ds.label.low, ds.label.high) == (1, 5)
    assert set(ds.distortions) == {"gaussian_blur", "white_noise"}
    assert sorted(set(ds.levels.tolist())) == [1, 2, 3]
    assert set(ds.ref_ids) == {"I01", "I02"}
    assert ds.reference(0).shape == ds.image(0).shape


def test_tid2013_reads_mos_with_names_and_mixed_case_references(tmp_path):
    ds = data.load("tid2013", root=WRITERS["tid2013"](tmp_path))
    assert len(ds) == 12 and ds.label.higher_is_better and ds.label.high == 9
    assert "sparse_sampling_and_reconstruction" in ds.distortions
    assert set(ds.ref_ids) == {"I01", "I25"}
    np.testing.assert_allclose(ds.scores[:2], [5.5, 1.5])
    ds.reference(len(ds) - 1)


def test_live_reads_mat_files_and_drops_reference_copies(tmp_path):
    ds = data.load("live", root=WRITERS["live"](tmp_path))
    assert len(ds) == 11 - 5
    assert not ds.label.higher_is_better and ds.label.kind == "DMOS"
    assert ds.distortions.count("jp2k") == 2
    assert set(ds.ref_ids) <= {"bikes", "house"}
    ds.reference(0)


def test_csiq_reads_the_dmos_spreadsheet(tmp_path):
    ds = data.load("csiq", root=WRITERS["csiq"](tmp_path))
    assert len(ds) == 12 and not ds.label.higher_is_better
    assert set(ds.distortions) == {"awgn", "jpeg2000", "blur"}
    assert set(ds.ref_ids) == {"1600", "aerial_city"}
    ds.image(0), ds.reference(0)


def test_koniq10k_reads_the_scores_csv(tmp_path):
    ds = data.load("koniq10k", root=WRITERS["koniq10k"](tmp_path))
    assert len(ds) == 4 and ds.label.higher_is_better
    np.testing.assert_allclose(ds.scores, [3.1, 3.3, 3.5, 3.7])
    with pytest.raises(ValueError, match="no reference"):
        ds.reference(0)


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_missing_dataset_names_the_path_searched_and_where_it_is_published(tmp_path, name):
    with pytest.raises(DatasetNotFoundError) as err:
        data.load(name, root=tmp_path / "nowhere")
    msg = str(err.value)
    assert str(tmp_path / "nowhere") in msg and "published" in msg and "\n" not in msg


@pytest.mark.parametrize("name, break_it", [
    ("kadid10k", lambda r: (r / "kadid10k" / "dmos.csv").write_text("a,b\n1,2\n")),
    ("kadid10k", lambda r: (r / "kadid10k" / "images" / "I01_01_01.png").unlink()),
    ("tid2013", lambda r: (r / "mos_with_names.txt").write_text("not-a-number i01_01_1.bmp\n")),
    ("tid2013", lambda r: (r / "mos_std.txt").write_text("0.1\n")),
    ("live", lambda r: (r / "dmos.mat").write_bytes(b"garbage")),
    ("live", lambda r: (r / "wn" / "img1.bmp").unlink()),
    ("csiq", lambda r: (r / "csiq.DMOS.xlsx").write_bytes(b"PK broken")),
    ("koniq10k", lambda r: (r / "koniq10k_scores_and_distributions.csv").write_text(
        "image_name,MOS\n826373.jpg,nan\n")),
    ("cifar10", lambda r: (r / "cifar-10-batches-py" / "test_batch").write_bytes(b"\x80junk")),
])
def test_malformed_dataset_gives_a_one_line_reason(tmp_path, name, break_it):
    root = WRITERS[name](tmp_path / name)
    break_it(root)
    with pytest.raises(DatasetFormatError) as err:
        data.load(name, root=root)
    assert "\n" not in str(err.value) and name in str(err.value)


def test_cli_reports_a_missing_dataset_in_one_line_without_traceback(tmp_path, capsys,
                                                                       monkeypatch):
    monkeypatch.setattr("sys.argv", ["qbench", "data", "show", "tid2013", "--root",
                                     str(tmp_path / "absent")])
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("qbench: error: dataset 'tid2013' not found")
    assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_cli_data_show_prints_counts_and_writes_a_preview(tmp_path):
    root = WRITERS["kadid10k"](tmp_path / "k")
    out = tmp_path / "k.png"
    res = CliRunner().invoke(cli, ["data", "show", "kadid10k", "--root", str(root), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "12 images" in res.output and "higher is better" in res.output
    assert out.stat().st_size > 0
