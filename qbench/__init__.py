"""qbench: do image-quality metrics predict DNN behaviour, how good is each metric, and can
explanation maps be trusted? See README.md for the tour."""

from __future__ import annotations

from qbench import data

__version__ = "0.1.0"
__all__ = ["__version__", "data"]
