"""Property-based fuzzing of qbench's input boundaries (issue 24, "Deliver"): ``corrupt``,
image decoding, the six score-file parsers and plugin metric outputs through the engine guard.

Each property: the input is either handled correctly or refused with a one-line qbench error;
never another exception type, never a silent coercion. Profiles: tests/fuzz/conftest.py.
"""

from __future__ import annotations

import csv
import io
import math
import os
import pickle
import random
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from hypothesis import assume, given
from hypothesis import strategies as st
from PIL import Image

import qbench.corrupt as corrupt
import qbench.data as data
from qbench.data.imagefile import read_image
from qbench.engine import guard
from qbench.errors import DatasetFormatError, ImageReadError, QbenchError
from tests.dataset_fixtures import WRITERS

NAMES = corrupt.names()
_TMP = Path(tempfile.mkdtemp(prefix="qbench-fuzz-"))


def _one_line(exc: BaseException) -> None:
    text = str(exc)
    assert text.strip(), f"{type(exc).__name__} with an empty message"
    assert "\n" not in text.strip(), f"{type(exc).__name__} message is not one line: {text!r}"


# -- 1. corrupt -------------------------------------------------------------------------------
DTYPES = [torch.float32, torch.float64, torch.float16, torch.uint8, torch.int64, torch.bool]
SPECIALS = [float("nan"), float("inf"), -float("inf"), 1.5, -0.25, 255.0, 1.0005, -0.0005]


@st.composite
def images(draw):
    n, h, w = draw(st.integers(1, 3)), draw(st.integers(8, 40)), draw(st.integers(8, 40))
    c = draw(st.sampled_from([3, 3, 3, 3, 1, 4]))
    dtype = draw(st.sampled_from(DTYPES))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    x = torch.rand(n, c, h, w, generator=g, dtype=torch.float64)
    if draw(st.booleans()):  # sprinkle out-of-range / non-finite values
        for v in draw(st.lists(st.sampled_from(SPECIALS), min_size=1, max_size=3)):
            x.view(-1)[draw(st.integers(0, x.numel() - 1))] = v
    if draw(st.booleans()):
        x = x * draw(st.sampled_from([255.0, 2.0, 1.0, 0.5]))
    if dtype.is_floating_point:
        return x.to(dtype)
    if dtype == torch.bool:
        return torch.nan_to_num(x) > 0.5
    return torch.nan_to_num(x, posinf=255, neginf=0).clamp(0, 255).to(dtype)


SEVERITIES = st.one_of(st.integers(-3, 8), st.floats(allow_nan=True, allow_infinity=True),
                       st.booleans(), st.none(), st.sampled_from([2.5, 3.0, "3", [1], (2,)]),
                       st.lists(st.integers(0, 6), min_size=1, max_size=4))
CORRUPT_NAMES = st.one_of(st.sampled_from(NAMES), st.text(max_size=12),
                          st.sampled_from(NAMES).map(lambda s: s.upper()))


@given(x=images(), name=CORRUPT_NAMES, severity=SEVERITIES, seed=st.integers(0, 2**31 - 1))
def test_corrupt_returns_a_valid_image_or_one_line_error(x, name, severity, seed):
    try:
        out = corrupt(x, name, severity, seed)
    except (QbenchError, ValueError, TypeError) as exc:
        _one_line(exc)
        return
    # accepted: then every input was legitimate, nothing was coerced
    assert x.is_floating_point() and x.ndim == 4 and x.shape[1] == 3
    assert bool(torch.isfinite(x).all())
    assert float(x.min()) >= -1e-3 and float(x.max()) <= 1 + 1e-3
    assert not isinstance(severity, bool | float) and severity is not None
    if isinstance(severity, list):
        assert len(severity) in (1, x.shape[0])
    assert name in NAMES
    assert out.shape == x.shape and out.dtype == x.dtype
    assert bool(torch.isfinite(out).all())
    assert float(out.min()) >= 0 and float(out.max()) <= 1
    again = corrupt(x, name, severity, seed)
    assert torch.equal(out, again), "not deterministic for a fixed seed"


# -- 2. image decoding ------------------------------------------------------------------------
MODES = ["RGB", "L", "LA", "P", "RGBA", "I;16", "CMYK", "1"]


def _pil(mode: str, w: int, h: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    if mode == "I;16":
        return Image.fromarray(rng.integers(0, 65536, (h, w), dtype=np.uint16)).convert("I;16")
    rgb = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")
    return rgb.convert(mode)


def _encoded(mode: str, fmt: str, w: int, h: int, seed: int, orientation: int | None) -> bytes:
    im = _pil(mode, w, h, seed)
    if fmt == "JPEG" and mode not in ("RGB", "L", "CMYK"):
        im = im.convert("RGB")
    if fmt == "PNG" and mode == "CMYK":
        fmt = "TIFF"
    buf = io.BytesIO()
    kwargs = {}
    if orientation is not None and fmt in ("JPEG", "PNG", "TIFF"):
        exif = Image.Exif()
        exif[0x0112] = orientation
        kwargs["exif"] = exif.tobytes()
    im.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def _check_read(raw: bytes, suffix: str, size: tuple[int, int] | None,
                orientation: int | None = None) -> None:
    path = _TMP / f"img{suffix}"
    path.write_bytes(raw)
    try:
        t = read_image(path)
    except ImageReadError as exc:
        _one_line(exc)
        return
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float32
    assert t.ndim == 3 and t.shape[0] == 3
    assert bool(torch.isfinite(t).all())
    assert float(t.min()) >= 0 and float(t.max()) <= 1
    # Pillow's TIFF loader applies an EXIF orientation itself and drops the tag (CMYK files
    # here are TIFF): the turned size is Pillow's business there, not checked
    tiff = raw[:4] in (b"II*\x00", b"MM\x00*")
    if size is not None and not (tiff and orientation not in (None, 1)):
        w, h = size
        turned = orientation in (5, 6, 7, 8)
        assert tuple(t.shape[1:]) == ((w, h) if turned else (h, w))


@given(mode=st.sampled_from(MODES), fmt=st.sampled_from(["PNG", "JPEG"]),
       w=st.integers(8, 16), h=st.integers(8, 16), seed=st.integers(0, 1000),
       orientation=st.one_of(st.none(), st.integers(0, 9), st.integers(10, 65535)))
def test_decoding_modes_and_exif_orientations(mode, fmt, w, h, seed, orientation):
    raw = _encoded(mode, fmt, w, h, seed, orientation)
    _check_read(raw, "." + fmt.lower(), (w, h), orientation)


@given(fmt=st.sampled_from(["PNG", "JPEG"]), mode=st.sampled_from(["RGB", "L", "P", "I;16"]),
       cut=st.floats(0, 1, exclude_max=True), flip=st.one_of(st.none(), st.integers(0, 10**6)))
def test_decoding_truncated_or_flipped_files(fmt, mode, cut, flip):
    raw = bytearray(_encoded(mode, fmt, 12, 10, 7, None))
    raw = raw[: max(1, int(len(raw) * cut))]
    if flip is not None:
        raw[flip % len(raw)] ^= 0xFF
    _check_read(bytes(raw), "." + fmt.lower(), None)


@given(prefix=st.sampled_from([b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a", b"BM",
                               b"II*\x00"]),
       body=st.binary(max_size=200), suffix=st.sampled_from([".png", ".jpg", ".bmp", ""]))
def test_decoding_random_bytes(prefix, body, suffix):
    _check_read(prefix + body, suffix, None)


# -- 3. score-file parsers --------------------------------------------------------------------
_ROOTS: dict[str, tuple[Path, dict[str, bytes], int]] = {}
SCORE_FILES = {"kadid10k": ["kadid10k/dmos.csv"], "tid2013": ["mos_with_names.txt"],
               "koniq10k": ["koniq10k_scores_and_distributions.csv"],
               "live": ["dmos.mat", "refnames_all.mat"], "csiq": ["csiq.DMOS.xlsx"],
               "cifar10": ["cifar-10-batches-py/test_batch", "cifar-10-batches-py/batches.meta"]}
BAD_VALUES = st.one_of(st.sampled_from(["inf", "-inf", "nan", "NaN", "1e308", "1e400", "-1",
                                        "", " ", "x", "3,5", "0x3"]),
                       st.text(max_size=6), st.floats().map(repr))


def _pristine(name: str) -> tuple[Path, dict[str, bytes], int]:
    """A valid tiny copy of ``name`` (written once), its score files' bytes and item count."""
    if name not in _ROOTS:
        root = WRITERS[name](_TMP / "sets" / name)
        saved = {f: (root / f).read_bytes() for f in SCORE_FILES[name]}
        _ROOTS[name] = (root, saved, len(data.load(name, root=root)))
    root, saved, n = _ROOTS[name]
    for f, raw in saved.items():  # undo the previous example's edit
        (root / f).write_bytes(raw)
    return root, saved, n


def _text_edit(raw: bytes, kind: str, row: int, value: str, cut: float, sep: str) -> tuple[
        bytes, int | None]:
    """``raw`` (a text score file with a header line when sep == ',') edited; returns the new
    bytes and the change in item count when the edit has a known one (None: any)."""
    lines = raw.decode().splitlines()
    first = 1 if sep == "," else 0
    k = first + row % (len(lines) - first)
    if kind == "delete":
        del lines[k]
        return ("\n".join(lines) + "\n").encode(), -1
    if kind == "duplicate":
        lines.append(lines[k])
        return ("\n".join(lines) + "\n").encode(), None  # must be refused
    if kind == "truncate":
        return raw[: int(len(raw) * cut)], None
    # replace the score cell with ``value``
    if sep == ",":
        rows = list(csv.reader(io.StringIO(raw.decode())))
        col = rows[0].index("MOS" if "MOS" in rows[0] else "dmos")
        rows[k][col] = value
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(rows)
        return out.getvalue().encode(), 0
    parts = lines[k].split(" ", 1)
    lines[k] = f"{value} {parts[1]}"
    return ("\n".join(lines) + "\n").encode(), 0


def _check_load(name: str, root: Path, expected: int | None, upto: int) -> None:
    try:
        ds = data.load(name, root=root)
    except QbenchError as exc:
        _one_line(exc)
        return
    if expected is not None:
        assert len(ds) == expected, (len(ds), expected)
    else:
        assert 0 <= len(ds) <= upto


EDITS = st.sampled_from(["delete", "duplicate", "truncate", "value"])


@given(name=st.sampled_from(["kadid10k", "tid2013", "koniq10k"]), kind=EDITS,
       row=st.integers(0, 100), value=BAD_VALUES, cut=st.floats(0, 1))
def test_text_score_files_load_or_refuse(name, kind, row, value, cut):
    root, saved, n = _pristine(name)
    rel = SCORE_FILES[name][0]
    raw, delta = _text_edit(saved[rel], kind, row, value, cut, "," if rel.endswith("csv") else " ")
    (root / rel).write_bytes(raw)
    if kind == "duplicate":
        with pytest.raises(DatasetFormatError) as err:
            data.load(name, root=root)
        _one_line(err.value)
        return
    expected = None if delta is None else n + delta
    if kind == "value":
        try:
            v = float(value)
        except ValueError:
            v = float("nan")
        lo, hi = {"kadid10k": (1, 5), "tid2013": (0, 9), "koniq10k": (1, 5)}[name]
        if not (math.isfinite(v) and lo <= v <= hi):
            with pytest.raises(DatasetFormatError) as err:
                data.load(name, root=root)
            _one_line(err.value)
            return
    _check_load(name, root, expected, n)


@given(kind=st.sampled_from(["value", "orgs", "delete", "truncate", "names"]),
       idx=st.integers(0, 100),
       value=st.one_of(st.floats(), st.sampled_from([np.inf, -np.inf, np.nan, 1e300, -5.0])),
       cut=st.floats(0, 1))
def test_live_mat_files_load_or_refuse(kind, idx, value, cut):
    root, saved, n = _pristine("live")
    m = scipy.io.loadmat(root / "dmos.mat")
    dmos, orgs = m["dmos"].astype(float), m["orgs"]
    k = idx % dmos.shape[1]
    expected: int | None = n
    if kind == "value":
        dmos[0, k] = value
        if orgs[0, k] == 0 and not (math.isfinite(value) and -20 <= value <= 130):
            expected = -1  # must be refused
    elif kind == "orgs":
        orgs[0, k] = 1 - orgs[0, k]
        expected = None
    elif kind == "delete":
        dmos, orgs = np.delete(dmos, k, axis=1), np.delete(orgs, k, axis=1)
        expected = None
    if kind in ("value", "orgs", "delete"):
        scipy.io.savemat(root / "dmos.mat", {"dmos": dmos, "orgs": orgs})
    else:
        rel = "dmos.mat" if kind == "truncate" else "refnames_all.mat"
        (root / rel).write_bytes(saved[rel][: int(len(saved[rel]) * cut)])
        expected = None
    if expected == -1:
        with pytest.raises(DatasetFormatError) as err:
            data.load("live", root=root)
        _one_line(err.value)
        return
    _check_load("live", root, expected, len(dmos[0]))


@given(kind=st.sampled_from(["value", "level", "delete", "duplicate", "truncate"]),
       row=st.integers(0, 100), value=st.one_of(BAD_VALUES, st.floats()), cut=st.floats(0, 1))
def test_csiq_workbook_loads_or_refuses(kind, row, value, cut):
    import openpyxl

    root, saved, n = _pristine("csiq")
    path = root / "csiq.DMOS.xlsx"
    if kind == "truncate":
        path.write_bytes(saved["csiq.DMOS.xlsx"][: int(len(saved["csiq.DMOS.xlsx"]) * cut)])
        _check_load("csiq", root, None, n)
        return
    wb = openpyxl.load_workbook(path)
    ws = wb.active
    header = [c.value for c in ws[1]]
    r = 2 + row % (ws.max_row - 1)
    expected: int | None = n
    if kind in ("value", "level"):
        from openpyxl.utils.exceptions import IllegalCharacterError

        try:  # control characters cannot be written to a workbook at all: no such file exists
            ws.cell(row=r, column=header.index("dmos" if kind == "value" else "dst_lev") + 1,
                    value=value)
        except IllegalCharacterError:
            assume(False)
        expected = None
    elif kind == "delete":
        ws.delete_rows(r)
        expected = n - 1
    else:
        ws.append([c.value for c in ws[r]])
        expected = -1
    wb.save(path)
    if expected == -1:
        with pytest.raises(DatasetFormatError) as err:
            data.load("csiq", root=root)
        _one_line(err.value)
        return
    _check_load("csiq", root, expected, n)


@given(kind=st.sampled_from(["label", "labels-type", "delete", "truncate", "meta", "data"]),
       idx=st.integers(0, 3), label=st.one_of(st.integers(-5, 15), st.floats(), st.text(max_size=3), st.booleans(),
                                              st.none()), cut=st.floats(0, 1))
def test_cifar10_batches_load_or_refuse(kind, idx, label, cut):
    root, saved, n = _pristine("cifar10")
    rel = "cifar-10-batches-py/test_batch"
    b = pickle.loads(saved[rel])
    expected: int | None = n
    if kind == "label":
        b[b"labels"][idx] = label
        ok = isinstance(label, int) and not isinstance(label, bool) and 0 <= label <= 9
        expected = n if ok else -1
    elif kind == "labels-type":
        b[b"labels"] = label
        expected = -1
    elif kind == "delete":
        del b[b"labels"][idx]
        expected = -1  # 4 images, 3 labels
    elif kind == "data":
        b[b"data"] = b[b"data"][:, : 3072 - 1 - idx]
        expected = -1
    if kind == "truncate":
        (root / rel).write_bytes(saved[rel][: int(len(saved[rel]) * cut)])
        expected = None
    elif kind == "meta":
        meta = "cifar-10-batches-py/batches.meta"
        (root / meta).write_bytes(saved[meta][: int(len(saved[meta]) * cut)])
        expected = None
    else:
        (root / rel).write_bytes(pickle.dumps(b))
    if expected == -1:
        with pytest.raises(DatasetFormatError) as err:
            data.load("cifar10", root=root)
        _one_line(err.value)
        return
    _check_load("cifar10", root, expected, n)


# -- 4. plugin outputs through the engine guard -----------------------------------------------
def _global_state():
    return (torch.get_default_dtype(), torch.is_grad_enabled(), torch.get_num_threads(),
            torch.are_deterministic_algorithms_enabled(), torch.get_rng_state(),
            np.random.get_state()[1].copy(), random.getstate())


def _same(a, b) -> bool:
    return (a[:4] == b[:4] and torch.equal(a[4], b[4]) and np.array_equal(a[5], b[5])
            and a[6] == b[6])


OUTPUTS = st.sampled_from(["ok", "0d", "short", "long", "int", "nan", "inf", "list", "none",
                           "bool", "complex", "str", "2d", "object", "raise", "exit"])
MUTATIONS = st.lists(st.sampled_from(["dtype64", "nograd", "threads", "seed", "numpy",
                                      "random", "det"]), max_size=4)


class Plugin:
    from qbench.metrics.base import MetricInfo

    info = MetricInfo("fuzz:plugin", "1", "NR", higher_is_better=True)

    def __init__(self, kind: str, mutations: list[str]) -> None:
        self.kind, self.mutations = kind, mutations

    def __call__(self, images, refs=None):
        for m in self.mutations:
            {"dtype64": lambda: torch.set_default_dtype(torch.float64),
             "nograd": lambda: torch.set_grad_enabled(False),
             "threads": lambda: torch.set_num_threads(1 + torch.get_num_threads() % 3),
             "seed": lambda: torch.manual_seed(123),
             "numpy": lambda: np.random.seed(5),
             "random": lambda: random.seed(9),
             "det": lambda: torch.use_deterministic_algorithms(True, warn_only=True)}[m]()
        n = images.shape[0]
        v = images.mean(dim=(1, 2, 3)).double()
        return {"ok": lambda: v, "0d": lambda: v.mean(), "short": lambda: v[:-1],
                "long": lambda: torch.cat([v, v]), "int": lambda: (v * 100).long(),
                "nan": lambda: torch.full((n,), float("nan")),
                "inf": lambda: torch.full((n,), float("inf")),
                "list": lambda: v.tolist(), "none": lambda: None,
                "bool": lambda: v > 0.5, "complex": lambda: v.to(torch.complex64),
                "str": lambda: "0.5", "2d": lambda: v[:, None],
                "object": lambda: object(), "raise": lambda: 1 / 0,
                "exit": lambda: exec("raise SystemExit(3)")}[self.kind]()


GOOD = {"ok", "int", "list"}


@given(kind=OUTPUTS, mutations=MUTATIONS, n=st.integers(1, 3),
       timeout=st.sampled_from(["0", "30"]))
def test_plugin_outputs_are_recorded_and_global_state_is_kept(kind, mutations, n, timeout):
    old = os.environ.get(guard.TIMEOUT_ENV)
    os.environ[guard.TIMEOUT_ENV] = timeout
    x = torch.rand(n, 3, 8, 8, generator=torch.Generator().manual_seed(n))
    before = _global_state()
    try:
        outs = guard.score(Plugin(kind, mutations), x, None)
    finally:
        after = _global_state()
        if old is None:
            os.environ.pop(guard.TIMEOUT_ENV, None)
        else:
            os.environ[guard.TIMEOUT_ENV] = old
    assert _same(before, after), f"global state changed by {mutations}"
    assert len(outs) == n
    if kind in GOOD:
        assert all(isinstance(o, float) and math.isfinite(o) for o in outs), outs
        return
    for o in outs:
        assert isinstance(o, guard.Failure), (kind, outs)
        assert o.strip() and "\n" not in o


def teardown_module(module):
    shutil.rmtree(_TMP, ignore_errors=True)
