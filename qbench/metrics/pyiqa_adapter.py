"""Every pyiqa metric as ``pyiqa:<name>``, offline-safe.

pyiqa's code is under a non-commercial licence: it is only imported here. Creation runs with
downloads refused (:func:`qbench.metrics.offline.no_downloads`), so a metric whose weights are
not cached fails at once with the file and the path expected.

Minimum input size policy: a metric that cannot work below some size declares it in
``MIN_SIZE``; smaller inputs are not upscaled (that would change what is measured) -- they are
skipped and the reason is recorded by the scoring engine.
"""

from __future__ import annotations

import os
import re
from functools import cache

import torch

from qbench.errors import QbenchError
from qbench.metrics.base import MetricInfo, check_inputs
from qbench.metrics.offline import MissingWeightsError, no_downloads, set_offline_env

# MS-SSIM: five dyadic scales with an 11-tap window need at least 161 px.
MIN_SIZE = {"ms_ssim": 161}
# Computed from the image alone; checked offline on this project's machines.
WEIGHT_FREE = frozenset({"psnr", "psnry", "ssim", "ssimc", "ms_ssim", "cw_ssim", "fsim", "vif",
                         "gmsd", "nlpd", "vsi", "mad", "piqe", "entropy"})
# What a learned metric's default weights were fitted on (from pyiqa's model cards and the
# metrics' papers). Used to mark leaderboard cells where test data was seen in training.
TRAINED_ON = {
    "brisque": ("live",), "brisque_matlab": ("live",), "niqe": (), "ilniqe": (), "nrqm": (),
    "pi": (), "cnniqa": ("koniq10k",), "dbcnn": ("koniq10k",), "hyperiqa": ("koniq10k",),
    "musiq": ("koniq10k",), "maniqa": ("koniq10k",), "topiq_nr": ("koniq10k",),
    "topiq_fr": ("kadid10k",), "topiq_fr-pipal": ("pipal",), "lpips": ("bapps",),
    "lpips-vgg": ("bapps",), "dists": ("kadid10k",), "ckdn": ("kadid10k",),
    "pieapp": ("pipal",), "wadiqam_fr": ("kadid10k",), "wadiqam_nr": ("koniq10k",),
    "paq2piq": ("paq2piq",), "nima": ("ava",), "clipiqa+": ("koniq10k",),
    "liqe": ("live", "csiq", "kadid10k", "bid", "clive", "koniq10k"),
    "liqe_mix": ("live", "csiq", "kadid10k", "bid", "clive", "koniq10k"),
    "ahiq": ("pipal",), "tres": ("koniq10k",), "unique": ("live", "csiq", "kadid10k", "bid",
                                                          "clive", "koniq10k"),
}
# Images per call on CPU (one intra-op thread per call, see qbench.engine.local). From a
# per-metric profile at 192 px with 1 thread: SSIM, SSIM-C, MS-SSIM and entropy are
# 1.5-6x slower per image in batches (their intermediates leave the cache), the others gain
# from batching. A fixed table, not a timing-based choice, so the values are reproducible.
CPU_BATCH = {"psnr": 1, "ssim": 1, "ssimc": 1, "ms_ssim": 1, "entropy": 1, "mad": 1,
             "gmsd": 16, "psnry": 16, "nlpd": 16}
CPU_BATCH_DEFAULT = 4
# Relative cost per image (ms at 192 px, one thread, same profile): only the ORDER in which
# the engine starts metrics side by side depends on it (longest first balances the workers).
CPU_COST = {"vif": 275, "vsi": 190, "ssimc": 165, "cw_ssim": 40, "fsim": 38, "ms_ssim": 43,
            "ssim": 34, "entropy": 13, "piqe": 10, "nlpd": 6, "gmsd": 2, "psnry": 2,
            "psnr": 0.5, "mad": 3000}

SUFFIX_DATASETS = {"kadid": "kadid10k", "koniq": "koniq10k", "live": "live", "csiq": "csiq",
                   "tid": "tid2013", "spaq": "spaq", "flive": "flive", "pipal": "pipal",
                   "ava": "ava", "clive": "clive", "paq2piq": "paq2piq"}


def trained_on(name: str) -> tuple[str, ...]:
    """Datasets the default weights of pyiqa metric ``name`` were trained on ("-kadid" etc.)."""
    if name in TRAINED_ON:
        return TRAINED_ON[name]
    m = re.search(r"-([a-z0-9]+)$", name)
    if m and m.group(1) in SUFFIX_DATASETS:
        return (SUFFIX_DATASETS[m.group(1)],)
    return ()


def _pyiqa():
    set_offline_env()
    import pyiqa

    return pyiqa


@cache
def available() -> list[str]:
    """Names of all metrics pyiqa lists."""
    return sorted(_pyiqa().list_models())


def hf_cache() -> str:
    return os.environ.get("HF_HUB_CACHE", os.path.expanduser("~/.cache/huggingface/hub"))


def info(name: str, device: str | torch.device = "cpu", mode: str | None = None,
         lower_better: bool | None = None) -> MetricInfo:
    """The :class:`MetricInfo` of ``pyiqa:<name>``, from pyiqa's configuration table when the
    metric is not built (no weights are read)."""
    if mode is None or lower_better is None:
        from pyiqa.default_model_configs import DEFAULT_CONFIGS

        if name not in available():
            raise QbenchError(f"pyiqa has no metric {name!r} (see `qbench metrics list`)")
        cfg = DEFAULT_CONFIGS.get(name, {})
        mode = str(cfg.get("metric_mode", "?")).upper()
        lower_better = bool(cfg.get("lower_better", False))
    cpu = torch.device(device).type == "cpu"
    return MetricInfo(
        name=f"pyiqa:{name}",
        version=_pyiqa().__version__,
        kind=mode,
        higher_is_better=not lower_better,
        min_size=MIN_SIZE.get(name, 1),
        needs_weights=name not in WEIGHT_FREE,
        trained_on=trained_on(name),
        description=f"pyiqa {name}",
        # how many images one call should carry; None = the whole batch (GPU)
        batch_size=CPU_BATCH.get(name, CPU_BATCH_DEFAULT) if cpu else None,
        thread_safe=True,
        cost=CPU_COST.get(name, 20.0),  # scheduling hint, see CPU_COST
    )


class PyiqaMetric:
    """A pyiqa metric behind the qbench :class:`~qbench.metrics.base.Metric` protocol.

    Its info declares ``thread_safe`` (calls keep no state, so the engine may run it beside
    other metrics in worker threads) and ``batch_size`` (the images per call that is fastest on
    this device).
    """

    def __init__(self, name: str, device: str | torch.device = "cpu") -> None:
        pyiqa = _pyiqa()
        if name not in available():
            raise QbenchError(f"pyiqa has no metric {name!r} (see `qbench metrics list`)")
        label = f"pyiqa:{name}"
        try:
            with no_downloads(label):
                self._metric = pyiqa.create_metric(name, device=torch.device(device),
                                                   as_loss=False)
        except MissingWeightsError:
            raise
        except Exception as exc:  # the hub's offline errors, a missing optional package...
            text = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            raise QbenchError(f"{label} cannot be created offline: {type(exc).__name__}: {text} "
                              f"(Hugging Face weights are looked for in {hf_cache()}, others in "
                              f"{os.path.join(torch.hub.get_dir(), 'pyiqa')})") from None
        self.device = torch.device(device)
        self.info = info(name, self.device, mode=str(self._metric.metric_mode).upper(),
                         lower_better=bool(self._metric.lower_better))

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, refs: torch.Tensor | None = None) -> torch.Tensor:
        check_inputs(self.info, images, refs)
        x = images.to(self.device, torch.float32)
        if self.info.kind == "FR":
            out = self._metric(x, refs.to(self.device, torch.float32))
        else:
            out = self._metric(x)
        return torch.as_tensor(out, dtype=torch.float64).reshape(-1).cpu()
