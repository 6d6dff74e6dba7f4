"""Every pyiqa metric as ``pyiqa:<name>``, offline-safe.

pyiqa's code is under a non-commercial licence: it is only imported here. Offline mode is set
before the import so a metric whose weights are missing fails at once instead of hanging in
download retries.
"""

from __future__ import annotations

import os
from functools import cache

import torch

from qbench.errors import QbenchError
from qbench.metrics.base import MetricInfo, check_inputs

# Documented minimum sizes (pyiqa does not declare them): MS-SSIM's five dyadic scales with an
# 11-tap window need at least 161 px; smaller inputs are skipped with a recorded reason.
MIN_SIZE = {"ms_ssim": 161}
# Metrics whose computation needs no downloaded weights (checked offline on this machine).
WEIGHT_FREE = {"psnr", "psnry", "ssim", "ssimc", "ms_ssim", "cw_ssim", "fsim", "vif", "gmsd",
               "nlpd", "vsi", "mad", "piqe", "entropy"}


def _pyiqa():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import pyiqa

    return pyiqa


@cache
def available() -> list[str]:
    """Names of all metrics pyiqa lists."""
    return sorted(_pyiqa().list_models())


class PyiqaMetric:
    """A pyiqa metric behind the qbench :class:`~qbench.metrics.base.Metric` protocol."""

    def __init__(self, name: str, device: str | torch.device = "cpu") -> None:
        pyiqa = _pyiqa()
        if name not in available():
            raise QbenchError(f"pyiqa has no metric {name!r}")
        try:
            self._metric = pyiqa.create_metric(name, device=torch.device(device), as_loss=False)
        except Exception as exc:  # missing weights surface as hub/OS errors of many types
            raise QbenchError(f"pyiqa:{name} could not be created offline ({exc}); its weights "
                              f"go in {os.path.expanduser('~/.cache/torch/hub/pyiqa')}") from None
        self.device = torch.device(device)
        self.info = MetricInfo(
            name=f"pyiqa:{name}",
            version=_pyiqa().__version__,
            kind=str(self._metric.metric_mode).upper(),
            higher_is_better=not bool(self._metric.lower_better),
            min_size=MIN_SIZE.get(name, 1),
            needs_weights=name not in WEIGHT_FREE,
        )

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, refs: torch.Tensor | None = None) -> torch.Tensor:
        check_inputs(self.info, images, refs)
        x = images.to(self.device, torch.float32)
        if self.info.kind == "FR":
            out = self._metric(x, refs.to(self.device, torch.float32))
        else:
            out = self._metric(x)
        return torch.as_tensor(out, dtype=torch.float64).reshape(-1).cpu()
