"""Task models as scorers: how a classifier does on each image, one number per image.

For a zoo model ``M`` there are three scorers (MetricInfo kind ``"task"``):

* ``task:M:correct`` -- 1.0 when the top-1 prediction equals the label, else 0.0
  (higher is better);
* ``task:M:loss`` -- cross-entropy of the label (lower is better; never negated);
* ``task:M:confidence`` -- the largest softmax probability, whatever the label
  (higher is better).

They need the labels, so each declares ``MetricInfo.needs_labels`` and the engine passes
``labels=`` (a LongTensor of the batch's labels).

**Targets other than the dataset's labels.** A :class:`TaskModel` built with ``targets`` (one
class index per item of the swept set) reads the engine's labels as *item positions* and
compares with ``targets[position]`` instead. The sweep's ``labels="clean-prediction"`` uses
this with each model's own top-1 predictions on the clean images: ``correct`` then means
"agrees with the model's clean prediction" (1 on every clean image), ``loss`` is the
cross-entropy of the clean prediction, and each model looks up its own targets although the
engine hands every scorer the same labels.

The three scorers of one model share a
:class:`TaskModel`, which remembers the last batch it ran: when the engine calls the three
scorers in turn on the same images, the network runs once (the cache hit is an exact
``torch.equal`` test on the images, so a different batch is never served stale results).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from qbench.errors import QbenchError
from qbench.metrics.base import MetricInfo, check_inputs

OUTPUTS = ("correct", "loss", "confidence")
HIGHER_IS_BETTER = {"correct": True, "loss": False, "confidence": True}
DESCRIPTIONS = {
    "correct": "1 if the model's top-1 prediction is the label, else 0",
    "loss": "cross-entropy of the label under the model's softmax",
    "confidence": "the model's largest softmax probability",
}


def model_label(spec: str, prov=None) -> str:
    """The name of a model in its scorers' names ``task:<label>:<output>``: a zoo name as it
    is, a ``.pt`` checkpoint file its checkpoint's name, any other spec with ``:`` written
    ``.`` (``mymod:make`` -> ``mymod.make``, ``torchvision:resnet18`` ->
    ``torchvision.resnet18``) and a weights path ``=PATH`` written ``@<file stem>``: a scorer
    name holds exactly two ``:`` (see :func:`qbench.causal.frame.task_columns`)."""
    spec = str(spec)
    if spec.endswith(".pt"):
        return getattr(prov, "name", "") or Path(spec).stem
    head, eq, path = spec.partition("=")
    return head.replace(":", ".") + (f"@{Path(path).stem}" if eq else "")


class TaskModel:
    """One classifier and a one-batch cache of its per-image outputs."""

    def __init__(self, name: str, model: nn.Module, device: str = "cpu",
                 trained_on: tuple[str, ...] = (),
                 targets: torch.Tensor | None = None) -> None:
        self.name = name
        self.model = model.eval().to(device)
        self.device = device
        self.trained_on = trained_on
        # per-item class targets: labels then arrive as item positions (see the module doc)
        self.targets = None if targets is None else torch.as_tensor(targets, dtype=torch.long)
        self.forwards = 0  # how many batches the network actually ran (tests check the cache)
        self._last: tuple[torch.Tensor, torch.Tensor] | None = None
        self._lock = threading.Lock()

    @torch.no_grad()
    def outputs(self, images: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """``correct``, ``loss`` and ``confidence`` per image (float64, on the CPU)."""
        labels = torch.as_tensor(labels, dtype=torch.long).cpu()
        if labels.shape != (images.shape[0],):
            raise ValueError(f"{self.name}: {labels.shape[0] if labels.ndim else 0} labels for "
                             f"{images.shape[0]} images")
        if self.targets is not None:
            if int(labels.min()) < 0 or int(labels.max()) >= len(self.targets):
                raise ValueError(f"{self.name}: item positions outside its {len(self.targets)} "
                                 "targets")
            labels = self.targets[labels]
        logits = self.logits(images)
        n_classes = logits.shape[1]
        if int(labels.min()) < 0 or int(labels.max()) >= n_classes:
            raise ValueError(f"{self.name}: labels outside the model's {n_classes} classes")
        return {
            "correct": (logits.argmax(1) == labels).double(),
            "loss": F.cross_entropy(logits, labels, reduction="none").double(),
            "confidence": logits.softmax(1).max(1).values.double(),
        }

    @torch.no_grad()
    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """The model's logits (float32, CPU), reused when the same images come again."""
        with self._lock:  # scorers of one model called from several threads: one forward
            if self._last is not None:
                x, logits = self._last
                if x.shape == images.shape and torch.equal(x, images):
                    return logits
            logits = self.model(images.to(self.device)).float().cpu()
            self.forwards += 1
            self._last = (images.detach().clone(), logits)
            return logits


class TaskScorer:
    """One output of a :class:`TaskModel` seen by the engine as a metric."""

    def __init__(self, task: TaskModel, output: str) -> None:
        if output not in OUTPUTS:
            raise QbenchError(f"task scorer output must be one of {OUTPUTS}, not {output!r}")
        self.task, self.output = task, output
        what = DESCRIPTIONS[output]
        if task.targets is not None:
            what = what.replace("the label", "the model's clean prediction")
        self.info = MetricInfo(f"task:{task.name}:{output}", "1", "task",
                               higher_is_better=HIGHER_IS_BETTER[output],
                               needs_weights=True, trained_on=task.trained_on,
                               description=f"{what} ({task.name})",
                               needs_labels=True)

    def __call__(self, images: torch.Tensor, refs: torch.Tensor | None = None,
                 labels: torch.Tensor | None = None) -> torch.Tensor:
        check_inputs(self.info, images, refs)
        if labels is None:
            raise QbenchError(f"{self.info.name} needs labels= (a classification dataset)")
        return self.task.outputs(images, labels)[self.output]


def scorers_for(name: str, model: nn.Module | None = None, device: str = "cpu",
                outputs: Sequence[str] = OUTPUTS, trained_on: tuple[str, ...] = (),
                targets: torch.Tensor | None = None) -> list[TaskScorer]:
    """The task scorers of zoo model ``name`` (loaded from its checkpoint unless given);
    ``targets``: per-item classes compared with instead of the labels (see the module doc)."""
    if model is None:
        from qbench.models import load

        model, prov = load(name)
        ds = prov.extra.get("dataset")
        trained_on = (f"{ds}/train",) if ds else ()
    task = TaskModel(name, model, device=device, trained_on=trained_on, targets=targets)
    return [TaskScorer(task, o) for o in outputs]


def create(spec: str, device: str = "cpu") -> TaskScorer:
    """One scorer from its name ``task:M:output`` (each call loads its own model)."""
    prefix, _, rest = spec.partition(":")
    model_name, _, output = rest.rpartition(":")
    if prefix != "task" or not model_name or output not in OUTPUTS:
        raise QbenchError(f"task scorer names look like task:MODEL:{{{','.join(OUTPUTS)}}}, "
                          f"not {spec!r}")
    return scorers_for(model_name, device=device, outputs=[output])[0]
