"""The ten shape classes of ``scenes``, as polygons in unit coordinates.

A shape is a list of ``(polygon, fill)`` strokes drawn in order: fill 255 adds to the mask,
fill 0 cuts a hole (the ring's inside, the crescent's bite). Coordinates lie in [-1, 1] with
y pointing down, so "up" is negative y.
"""

from __future__ import annotations

import numpy as np

Stroke = tuple[np.ndarray, int]


def _circle(r: float = 1.0, cx: float = 0.0, cy: float = 0.0, n: int = 72) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], axis=1)


def _regular(k: int, r: float = 1.0, start_deg: float = -90.0) -> np.ndarray:
    t = np.deg2rad(start_deg) + np.arange(k) * 2 * np.pi / k
    return np.stack([r * np.cos(t), r * np.sin(t)], axis=1)


def _star(points: int = 5, outer: float = 1.0, inner: float = 0.42) -> np.ndarray:
    t = np.deg2rad(-90.0) + np.arange(2 * points) * np.pi / points
    r = np.where(np.arange(2 * points) % 2 == 0, outer, inner)
    return np.stack([r * np.cos(t), r * np.sin(t)], axis=1)


def _heart(n: int = 80) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    x = 16 * np.sin(t) ** 3
    y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
    pts = np.stack([x, y + 2.5], axis=1)
    return pts / np.abs(pts).max()


def _poly(*xy: float) -> np.ndarray:
    return np.asarray(xy, dtype=np.float64).reshape(-1, 2)


SHAPES: dict[str, list[Stroke]] = {
    "circle": [(_circle(0.95), 255)],
    "square": [(_poly(-0.8, -0.8, 0.8, -0.8, 0.8, 0.8, -0.8, 0.8), 255)],
    "triangle": [(_regular(3, 1.0) + np.array([0.0, 0.2]), 255)],
    "star": [(_star(), 255)],
    "cross": [(_poly(-0.3, -1, 0.3, -1, 0.3, -0.3, 1, -0.3, 1, 0.3, 0.3, 0.3,
                     0.3, 1, -0.3, 1, -0.3, 0.3, -1, 0.3, -1, -0.3, -0.3, -0.3), 255)],
    "ring": [(_circle(1.0), 255), (_circle(0.55), 0)],
    "crescent": [(_circle(1.0), 255), (_circle(0.85, 0.5, -0.15), 0)],
    "heart": [(_heart(), 255)],
    "arrow": [(_poly(-1, -0.28, 0.15, -0.28, 0.15, -0.75, 1, 0,
                     0.15, 0.75, 0.15, 0.28, -1, 0.28), 255)],
    "hourglass": [(_poly(-0.8, -1, 0.8, -1, 0.12, 0, 0.8, 1, -0.8, 1, -0.12, 0), 255)],
}

CLASSES: list[str] = list(SHAPES)
