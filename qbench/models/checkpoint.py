"""Checkpoints with provenance: what was trained, how, on what, and a hash to check it.

A checkpoint is a pair ``NAME.pt`` (the ``state_dict``) and ``NAME.json`` (the provenance):
architecture and its kwargs, the command that produced it, seed, git revision, data
fingerprint, measured metrics, package versions, creation time and the sha256 of ``NAME.pt``.
Small checkpoints that the demo and the quick presets use are committed under
``qbench/models/checkpoints/``; others live under ``$QBENCH_HOME/zoo/``.
"""

from __future__ import annotations

import difflib
import hashlib
import io
import json
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from torch import nn

from qbench.atomic import atomic_write
from qbench.errors import QbenchError
from qbench.home import qbench_home
from qbench.models.registry import build

SHIPPED = Path(__file__).resolve().parent / "checkpoints"


class CheckpointError(QbenchError):
    """A checkpoint is missing, or its bytes do not match its recorded sha256."""


class ModelSpecError(CheckpointError):
    """A model spec cannot be resolved (unknown name, missing weight file, unusable file), or
    the model does not fit what it is used for (class count, input size)."""


@dataclass
class Provenance:
    name: str
    arch: str
    arch_kwargs: dict[str, Any]
    command: str
    seed: int
    data_fingerprint: str
    metrics: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    git_revision: str = ""
    packages: dict[str, str] = field(default_factory=dict)
    created: str = ""
    sha256: str = ""


def user_dir() -> Path:
    """Where checkpoints trained by the user go: ``$QBENCH_HOME/zoo``."""
    return qbench_home() / "zoo"


def sha256_file(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def save(model: nn.Module, provenance: Provenance, folder: str | Path | None = None) -> Path:
    """Write ``<folder>/<name>.pt`` and its provenance ``.json``; returns the ``.pt`` path."""
    from qbench.store import git_revision, package_versions

    folder = Path(folder) if folder is not None else user_dir()
    folder.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    torch.save(state, buf)
    blob = buf.getvalue()
    pt = folder / f"{provenance.name}.pt"
    atomic_write(pt, blob)
    provenance.sha256 = hashlib.sha256(blob).hexdigest()
    provenance.git_revision = provenance.git_revision or git_revision()
    provenance.packages = provenance.packages or package_versions()
    provenance.created = provenance.created or datetime.now(UTC).isoformat(timespec="seconds")
    if not provenance.command:
        provenance.command = " ".join(sys.argv)
    meta = json.dumps(asdict(provenance), indent=2, sort_keys=True).encode()
    atomic_write(folder / f"{provenance.name}.json", meta)
    return pt


def find(name: str) -> Path:
    """The ``.pt`` path of checkpoint ``name``: the user's zoo first, then the shipped ones."""
    for folder in (user_dir(), SHIPPED):
        if (folder / f"{name}.pt").exists():
            return folder / f"{name}.pt"
    close = difflib.get_close_matches(name, names(), n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(map(repr, close))}? " if close else ""
    raise CheckpointError(
        f"no checkpoint {name!r}: {hint}looked for {name}.pt in {user_dir()} and {SHIPPED}; "
        f"train it with `qbench zoo train {name}`")


def names() -> list[str]:
    """Every checkpoint that ``load`` finds by name: the user's zoo, then the shipped ones."""
    found = {p.stem for folder in (user_dir(), SHIPPED) if folder.is_dir()
             for p in folder.glob("*.pt") if p.with_suffix(".json").is_file()}
    return sorted(found)


def info(name: str) -> Provenance:
    """The provenance of checkpoint ``name`` (the weights are not read)."""
    p = Path(name)
    return provenance(p if p.suffix == ".pt" else find(name))


def provenance(path: str | Path) -> Provenance:
    meta = Path(path).with_suffix(".json")
    if not meta.exists():
        raise CheckpointError(f"checkpoint {path} has no provenance file {meta}")
    return Provenance(**json.loads(meta.read_text()))


def verify_hash(path: str | Path) -> Provenance:
    """The provenance of ``path`` after checking the file's sha256 against it."""
    prov = provenance(path)
    actual = sha256_file(Path(path))
    if actual != prov.sha256:
        raise CheckpointError(f"{path}: sha256 {actual[:12]}… does not match the recorded "
                              f"{prov.sha256[:12]}…; the file was changed or truncated")
    return prov


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu"
                    ) -> tuple[nn.Module, Provenance]:
    """The model (eval mode) and provenance of the checkpoint file ``path`` (hash checked)."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint file not found: {path}")
    prov = verify_hash(path)
    model = build(prov.arch, **prov.arch_kwargs)
    model.load_state_dict(torch.load(path, map_location=map_location, weights_only=True))
    return model.eval(), prov


def load(name_or_path: str | Path, map_location: str | torch.device = "cpu",
         layer: str | nn.Module | None = None) -> tuple[nn.Module, Provenance]:
    """The model (eval mode) and provenance of any model spec: a zoo name, a ``.pt`` path,
    ``torchvision:``/``timm:`` names, ``module:attr`` or a named model
    (:func:`qbench.models.specs.load`)."""
    from qbench.models.specs import load as load_spec

    return load_spec(name_or_path, map_location=map_location, layer=layer)
