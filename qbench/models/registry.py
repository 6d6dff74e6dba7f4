"""Architectures by name: ``register("name")`` on a builder, ``build("name", **kwargs)``.

Builders defined outside this package are lazy ``module:attr`` entries, so a checkpoint of
any shipped architecture loads in a fresh interpreter with nothing else imported.
Plugins publish builders under the entry-point group ``qbench.architectures``.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from qbench.registry import Registry

Builder = Callable[..., nn.Module]
REGISTRY: Registry[Builder] = Registry("architecture", group="qbench.architectures",
                                       info_of=lambda fn: (fn.__doc__ or "").strip())
for _name, _target in {"iqa-cnn": "qbench.marking.nets:iqa_cnn",
                       "mark-branch": "qbench.marking.nets:mark_branch",
                       "tgiqa-cnn": "qbench.metrics.aligned:tgiqa_cnn",
                       "rankiqa-cnn": "qbench.rankiqa.net:build_rank_cnn",
                       "efficientnet-lite0": "qbench.models.lite:efficientnet_lite0"}.items():
    REGISTRY.register(_name, _target)


def register(name: str) -> Callable[[Builder], Builder]:
    """Decorator registering a model builder ``fn(**kwargs) -> nn.Module`` under ``name``."""
    return REGISTRY.register(name)


def build(name: str, **kwargs) -> nn.Module:
    """A freshly initialised model of architecture ``name``."""
    return REGISTRY.get(name)(**kwargs)


def names() -> list[str]:
    """Every registered architecture (shipped ones listed even before their module loads)."""
    return sorted(REGISTRY.names())


def info(name: str) -> str:
    """What architecture ``name`` is (its builder's docstring), without building it."""
    return REGISTRY.info(name)
