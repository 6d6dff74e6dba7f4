"""The one study runner: every study is a config dataclass, presets, ``run(cfg, out)`` and a
report, and every study gets the same command line, resume, timing and provenance.

A study is declared once (in ``studies/<name>.py``, a short readable recipe)::

    STUDY = Study(name="rankiqa", question="...", config=StudyConfig,
                  presets={"quick": {...}, "full": {...}}, run=run)

and run by ``python studies/<name>.py --preset quick`` or ``qbench study run NAME --preset
quick``. The runner gives every study the same options:

* ``--preset P``, ``--out DIR`` (default ``results/<name>/<preset>``), ``--seed``,
  ``--device``, ``--threads``;
* ``--set key=value`` for any field of the config (values parsed as Python literals, e.g.
  ``--set n_images=60 --set models="['scenes-vgg-s-s0']"``), and ``--<field> value`` for the
  fields of simple types (``--images 60``, ``--models a b``; a study's ``flags`` rename some);
* errors qbench understands print one line and exit 2, before any work where they can be
  checked early (the config's ``validate()`` if it has one).

``run(cfg, out)`` writes the study's tables under ``out`` and returns extra metadata for
``study.json``; resuming is the study's stores' or parts' job (an interrupted run, rerun with
the same options, recomputes nothing that finished). The runner then writes ``study.json``
(config, seed, seconds, git revision, time) and builds the report registered under the
study's name in :data:`qbench.report.REPORTS`.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import os
import sys
import time
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qbench.errors import QbenchError
from qbench.registry import Registry

STUDIES_DIR = Path(__file__).resolve().parents[1] / "studies"


@dataclass(frozen=True)
class Study:
    """A study: its question, config dataclass, presets and the function that runs it."""

    name: str
    question: str
    config: type  # a dataclass; its fields are the study's options
    presets: Mapping[str, Mapping[str, Any]]  # preset name -> field values
    run: Callable[[Any, Path], Mapping[str, Any] | None]  # (cfg, out) -> extra metadata
    flags: Mapping[str, str] = field(default_factory=dict)  # --flag -> config field
    default_preset: str = "quick"

    def make_config(self, preset: str, **overrides: Any) -> Any:
        """The config of ``preset`` with ``overrides``; one-line errors for unknown names."""
        if preset not in self.presets:
            raise QbenchError(f"study {self.name!r} has no preset {preset!r}; "
                              f"presets: {', '.join(self.presets)}")
        names = {f.name for f in dataclasses.fields(self.config)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise QbenchError(f"study {self.name!r} has no option {unknown[0]!r}; "
                              f"options: {', '.join(sorted(names))}")
        cfg = self.config(**{**self.presets[preset], **overrides})
        check = getattr(cfg, "validate", None)
        if callable(check):
            check()
        return cfg


STUDIES: Registry[Study] = Registry("study", group="qbench.studies")


def _discover() -> None:
    """Register the recipes in the repository's ``studies/`` folder (lazily, by file)."""
    if not STUDIES_DIR.is_dir():
        return
    if str(STUDIES_DIR.parent) not in sys.path:
        sys.path.append(str(STUDIES_DIR.parent))
    for path in sorted(STUDIES_DIR.glob("*.py")):
        if not path.stem.startswith("_") and path.stem not in STUDIES.names():
            STUDIES.register(path.stem, f"studies.{path.stem}:STUDY")


def names() -> list[str]:
    """Every registered study (the repository's recipes and installed plugins)."""
    _discover()
    return STUDIES.names()


def get(name: str) -> Study:
    _discover()
    study = STUDIES.get(name)
    if not isinstance(study, Study):
        raise QbenchError(f"{name!r} is a {type(study).__name__}, not a qbench.study.Study")
    return study


def info(name: str) -> str:
    """A study's question (its recipe is imported, nothing runs)."""
    return get(name).question


# ----------------------------------------------------------------------------- running

def run(study: Study | str, preset: str | None = None, out: str | Path | None = None,
        threads: int | None = 2, **overrides: Any) -> Path:
    """Run ``study`` with ``preset`` and ``overrides``; write study.json and the report."""
    import torch

    from qbench.report import finish_study

    study = get(study) if isinstance(study, str) else study
    preset = preset or study.default_preset
    cfg = study.make_config(preset, **overrides)
    out = Path(out or f"results/{study.name}/{preset}")
    out.mkdir(parents=True, exist_ok=True)
    if threads:
        torch.set_num_threads(threads)
    t0 = time.perf_counter()
    meta = dict(study.run(cfg, out) or {})
    meta.setdefault("config", dataclasses.asdict(cfg))
    meta.setdefault("seed", getattr(cfg, "seed", None))
    meta.setdefault("threads", threads)
    meta.setdefault("seconds", round(time.perf_counter() - t0, 1))
    return finish_study(out, study.name, preset, **meta)


def _field_type(f: dataclasses.Field, hints: dict[str, Any]) -> tuple[Any, bool]:
    """(element type, is a sequence) for a field of a simple type, else (None, False)."""
    tp = hints.get(f.name, Any)
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        tp = args[0] if len(args) == 1 else Any
        origin = typing.get_origin(tp)
    if tp in (int, float, str, bool):
        return tp, False
    if origin in (tuple, list):
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        if len(args) == 1 and args[0] in (int, float, str):
            return args[0], True
    return None, False


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parser(study: Study) -> argparse.ArgumentParser:
    """The command line of ``study``: the common options and one per simple config field."""
    ap = argparse.ArgumentParser(prog=f"studies/{study.name}.py",
                                 description=study.question.split("\n")[0])
    ap.add_argument("--preset", default=study.default_preset, choices=list(study.presets))
    ap.add_argument("--out", default=None, help=f"default results/{study.name}/<preset>")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="any config field, as a Python literal (repeatable)")
    hints = typing.get_type_hints(study.config)
    renamed = {v: k for k, v in study.flags.items()}
    for f in dataclasses.fields(study.config):
        tp, many = _field_type(f, hints)
        flag = "--" + renamed.get(f.name, f.name).replace("_", "-")
        if f.name == "device":
            from qbench.device import add_device_argument

            add_device_argument(ap)
        elif tp is bool:
            ap.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction,
                            default=None)
        elif tp is not None:
            ap.add_argument(flag, dest=f.name, type=tp, nargs="*" if many else None,
                            default=None, help=f"config field {f.name}")
    return ap


def main(study: Study | str, argv: list[str] | None = None) -> Path | None:
    """``python studies/<name>.py [options]``: parse, run, print errors as one line (exit 2)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        study = get(study) if isinstance(study, str) else study
        args = vars(parser(study).parse_args(argv))
        preset, out, threads = args.pop("preset"), args.pop("out"), args.pop("threads")
        overrides = {k: v for k, v in args.items() if k != "set" and v is not None}
        for item in args["set"]:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise QbenchError(f"--set takes KEY=VALUE, not {item!r}")
            overrides[key.strip()] = _literal(value)
        overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
        return run(study, preset, out, threads=threads, **overrides)
    except QbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
