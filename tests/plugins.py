"""Metric plugins for the registry and leaderboard tests: one good, several broken."""

from __future__ import annotations

import itertools

import torch

from qbench.metrics import MetricInfo


class GoodMeanAbsError:
    info = MetricInfo("plugin:good-mae", "1", "FR", higher_is_better=False,
                      trained_on=("kadid10k",))

    def __call__(self, images, refs=None):
        return (images - refs).abs().mean(dim=(1, 2, 3)).double()


class Raises:
    info = MetricInfo("plugin:raises", "1", "NR", higher_is_better=True)

    def __call__(self, images, refs=None):
        raise RuntimeError("this metric always fails")


class ReturnsNaN:
    info = MetricInfo("plugin:nan", "1", "NR", higher_is_better=True)

    def __call__(self, images, refs=None):
        return torch.full((images.shape[0],), float("nan"), dtype=torch.float64)


class WrongShape:
    info = MetricInfo("plugin:shape", "1", "NR", higher_is_better=True)

    def __call__(self, images, refs=None):
        return images.mean(dim=(2, 3)).double()  # N x 3


class Nondeterministic:
    info = MetricInfo("plugin:random", "1", "NR", higher_is_better=True)
    _calls = itertools.count()

    def __call__(self, images, refs=None):
        return images.mean(dim=(1, 2, 3)).double() + next(self._calls)


class WrongDirection:
    """Mean absolute error declared higher-is-better: the sign error pyiqa's abs() hides."""

    info = MetricInfo("plugin:wrong-direction", "1", "FR", higher_is_better=True)

    def __call__(self, images, refs=None):
        return (images - refs).abs().mean(dim=(1, 2, 3)).double()


class NoInfo:
    def __call__(self, images, refs=None):
        return images.mean(dim=(1, 2, 3))


def factory(device: str = "cpu") -> GoodMeanAbsError:
    return GoodMeanAbsError()
