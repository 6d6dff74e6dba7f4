"""The corruption registry: every corruption declares its family, severity tables and randomness.

An operation receives a batch that shares one severity and returns the corrupted batch::

    op(images: Nx3xHxW float tensor, param, generators: list[torch.Generator]) -> tensor

``param`` is the severity's entry of the chosen table, already scaled to the image size where
the corruption has spatial parameters; ``generators`` hold one generator per image, seeded from
that image's own content (see :mod:`qbench.corrupt.seeding`), so a random corruption never
depends on the other images of the batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from qbench.errors import UnknownNameError
from qbench.registry import Registry, RegistryError

FAMILIES = ("noise", "blur", "weather", "digital", "color", "compression")
Op = Callable[[torch.Tensor, Any, Sequence[torch.Generator]], torch.Tensor]


@dataclass(frozen=True)
class Corruption:
    name: str
    family: str
    op: Op
    tables: dict[str, tuple]  # table name -> 5 severity parameters
    random: bool
    source: str  # "imagenet-c", "kadid", "rankiqa-live", ...
    reference_size: dict[str, int] = field(default_factory=dict)  # table -> side it was made for
    scale: Callable[[Any, float], Any] | None = None  # (param, size ratio) -> scaled param
    notes: str = ""

    def param(self, severity: int, table: str, height: int, width: int) -> Any:
        if table not in self.tables:
            raise UnknownNameError(f"severity table of {self.name}", table, list(self.tables))
        if not 1 <= severity <= len(self.tables[table]):
            raise ValueError(f"{self.name}: severity must be in 1..{len(self.tables[table])}, "
                             f"got {severity}")
        p = self.tables[table][severity - 1]
        if self.scale is not None and table in self.reference_size:
            p = self.scale(p, min(height, width) / self.reference_size[table])
        return p


# a Corruption is its own metadata; plugins publish them under the group "qbench.corruptions"
REGISTRY: Registry[Corruption] = Registry("corruption", group="qbench.corruptions")


def register(c: Corruption) -> Corruption:
    """Add ``c`` under ``c.name`` (an error for an unknown family or a taken name)."""
    if c.family not in FAMILIES:
        raise ValueError(f"{c.name}: family {c.family!r} not in {FAMILIES}")
    return REGISTRY.register(c.name, c)


def get(name: str) -> Corruption:
    c = REGISTRY.get(name)
    if not isinstance(c, Corruption):
        raise RegistryError(f"corruption {name!r} is a {type(c).__name__}, not a Corruption")
    return c
