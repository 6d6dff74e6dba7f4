"""The admission test of a metric: run it on a small probe set before it may join the board.

Checks, in order: it runs; it returns one finite float per image; two calls agree (determinism);
and its declared direction is right -- a heavily degraded image (blur, JPEG or noise at
ImageNet-C severity 5) must score worse than the same image lightly degraded (severity 1 of the
same kind; FR metrics) or clean (NR metrics) in most (over half) of the comparisons. A
metric blind to one kind of degradation still passes; one whose direction is declared wrong
fails every comparison.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch

import qbench.corrupt as corrupt
import qbench.data as data
from qbench.metrics.base import Metric

KINDS = ("gaussian_blur", "jpeg_compression", "gaussian_noise")


@dataclass
class Check:
    name: str
    passed: bool
    detail: str


@dataclass
class ProbeReport:
    metric: str
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    @property
    def reason(self) -> str:
        failed = [c for c in self.checks if not c.passed]
        return "; ".join(f"{c.name}: {c.detail}" for c in failed)

    def as_dict(self) -> dict:
        return {"metric": self.metric, "passed": self.passed,
                "checks": [asdict(c) for c in self.checks]}


def probe_images(n: int = 6, size: int = 64) -> torch.Tensor:
    refs = data.load("refs", size=size)
    colourful = [i for i in range(len(refs)) if refs.image(i).std(dim=0).mean() > 0.02]
    return refs.batch(colourful[:n])


def probe(metric: Metric, spec: str, n: int = 6, size: int = 64) -> ProbeReport:
    """Run the admission checks on ``metric``; never raises for the metric's own failures."""
    report = ProbeReport(spec)
    size = max(size, int(getattr(metric.info, "min_size", 1)))
    x = probe_images(n, size)
    fr = metric.info.kind == "FR"
    ref = torch.cat([x] * len(KINDS)) if fr else None
    base = torch.cat([corrupt.apply(x, k, 1) for k in KINDS]) if fr else torch.cat([x] * 3)
    heavy = torch.cat([corrupt.apply(x, k, 5) for k in KINDS])
    n = base.shape[0]
    try:
        first = metric(base, ref)
        second = metric(base, ref)
        worse = metric(heavy, ref)
    except Exception as exc:
        report.checks.append(Check("runs", False, f"raised {type(exc).__name__}: {exc}"[:300]))
        return report
    report.checks.append(Check("runs", True, f"{n} probe images of {size} px"))
    outputs = [torch.as_tensor(v) for v in (first, second, worse)]
    shapes_ok = all(v.shape == (n,) and v.is_floating_point() for v in outputs)
    report.checks.append(Check("shape", shapes_ok, "one float per image" if shapes_ok else
                               f"returned shape {tuple(outputs[0].shape)} and dtype "
                               f"{outputs[0].dtype} for {n} images (want ({n},) floats)"))
    if not shapes_ok:
        return report
    finite = all(torch.isfinite(v).all() for v in outputs)
    report.checks.append(Check("finite", bool(finite), "all finite" if finite else
                               "returned NaN or infinite scores"))
    if not finite:
        return report
    same = torch.allclose(outputs[0].double(), outputs[1].double(), rtol=1e-6, atol=1e-9)
    report.checks.append(Check("deterministic", bool(same), "two calls agree" if same else
                               "two calls on the same images gave different scores "
                               f"(max difference {float((outputs[0] - outputs[1]).abs().max()):.3g})"))
    sign = 1.0 if metric.info.higher_is_better else -1.0
    better = (sign * outputs[0].double() > sign * outputs[2].double()).float().mean().item()
    direction_ok = better > 0.5
    what = "lightly degraded" if fr else "clean"
    report.checks.append(Check(
        "direction", direction_ok,
        f"heavily degraded scored worse than {what} in {better:.0%} of comparisons "
        f"(declared {'higher' if sign > 0 else 'lower'} is better; need over 50%)"))
    return report
