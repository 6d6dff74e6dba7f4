"""Architectures by name: ``register("name")`` on a builder, ``build("name", **kwargs)``."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from qbench.errors import QbenchError

Builder = Callable[..., nn.Module]
_ARCHS: dict[str, Builder] = {}


def register(name: str) -> Callable[[Builder], Builder]:
    """Decorator registering a model builder ``fn(**kwargs) -> nn.Module`` under ``name``."""

    def deco(fn: Builder) -> Builder:
        if name in _ARCHS and _ARCHS[name] is not fn:
            raise QbenchError(f"architecture {name!r} is registered twice")
        _ARCHS[name] = fn
        return fn

    return deco


def build(name: str, **kwargs) -> nn.Module:
    """A freshly initialised model of architecture ``name``."""
    if name not in _ARCHS:
        raise QbenchError(f"unknown architecture {name!r}; known: {', '.join(sorted(_ARCHS))}")
    return _ARCHS[name](**kwargs)


def archs() -> list[str]:
    return sorted(_ARCHS)
