"""One check for every ``--device`` option: a clear one-line error instead of a torch traceback.

Every command and study that runs models or tensors takes ``--device`` (default ``cpu``) and
validates it here before any work starts, so ``--device cuda`` on a machine without a GPU fails
at once with the reason and the fix.
"""

from __future__ import annotations

import argparse

import torch

from qbench.errors import QbenchError

DEVICE_HELP = "Where models and tensors run: cpu, cuda, cuda:1 ..."


class DeviceError(QbenchError):
    """A ``--device`` value that is not a torch device or is not available here."""


def resolve_device(device: str | torch.device) -> torch.device:
    """``device`` as a ``torch.device`` after checking it can be used on this machine."""
    try:
        d = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise DeviceError(f"--device {device!r} is not a torch device; use cpu, cuda or cuda:N "
                          "(or mps, meta)") from None
    if d.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"--device {device} asked but torch.cuda.is_available() is False "
                              "(no usable CUDA GPU or a CPU-only torch); use --device cpu")
        if d.index is not None and d.index >= torch.cuda.device_count():
            raise DeviceError(f"--device {device} asked but only {torch.cuda.device_count()} "
                              "CUDA device(s) are visible")
    elif d.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceError(f"--device {device} asked but torch.backends.mps.is_available() is "
                          "False; use --device cpu")
    return d


def check_device(device: str | torch.device) -> str:
    """The validated device as the string the rest of qbench passes around."""
    return str(resolve_device(device))


def _click_callback(ctx, param, value: str) -> str:
    import click

    try:
        return check_device(value)
    except DeviceError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


def device_option(fn):
    """The ``--device`` click option (default cpu), validated before the command runs."""
    import click

    return click.option("--device", default="cpu", show_default=True, help=DEVICE_HELP,
                        callback=_click_callback)(fn)


def argparse_device(value: str) -> str:
    """``type=`` for a study's ``--device`` argument (argparse prints the message and exits 2)."""
    try:
        return check_device(value)
    except DeviceError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    """Add the validated ``--device`` argument (default cpu) to a study's parser."""
    parser.add_argument("--device", default="cpu", type=argparse_device, help=DEVICE_HELP)


def model_device(model: torch.nn.Module, default: str | torch.device = "cpu") -> torch.device:
    """Where ``model``'s parameters live (``default`` for a model without parameters)."""
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device(default)
