"""Keep learned metrics from reaching the network: downloads fail at once with the file's name,
where it was expected and where to get it, instead of hanging in retries."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from qbench.errors import QbenchError


class MissingWeightsError(QbenchError):
    """A metric needs a weight file that is not in the local cache (nothing is downloaded)."""

    def __init__(self, metric: str, url: str, destination: str) -> None:
        dest = Path(str(destination))
        name = dest.name if dest.suffix else Path(url).name
        super().__init__(
            f"{metric} needs the weight file {name!r}, expected at {destination}; qbench never "
            f"downloads at run time: fetch {url} on a machine with network and copy it there")
        self.metric, self.url, self.destination = metric, url, str(destination)


def set_offline_env() -> None:
    """Hugging Face hub and transformers read these before any download."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@contextlib.contextmanager
def no_downloads(metric: str) -> Iterator[None]:
    """Within the block, every download path used by torch, torchvision, pyiqa and CLIP raises
    :class:`MissingWeightsError` instead of touching the network."""
    import urllib.request

    import torch.hub

    set_offline_env()
    patched: list[tuple[object, str, object]] = []

    def refuse(url, dst=None, *args, **kwargs):
        raise MissingWeightsError(metric, str(url), str(dst or "the torch hub cache"))

    def refuse_urlopen(url, *args, **kwargs):
        target = getattr(url, "full_url", url)
        raise MissingWeightsError(metric, str(target), os.path.expanduser("~/.cache/clip"))

    targets = [(torch.hub, "download_url_to_file", refuse),
               (urllib.request, "urlopen", refuse_urlopen)]
    try:
        import pyiqa.utils.download_util as du

        targets += [(du, "download_url_to_file", refuse),
                    (du, "download_file_from_google_drive",
                     lambda file_id, save_path, *a, **k: refuse(f"gdrive:{file_id}", save_path))]
    except ImportError:
        pass
    for module, attr, replacement in targets:
        patched.append((module, attr, getattr(module, attr)))
        setattr(module, attr, replacement)
    try:
        yield
    finally:
        for module, attr, original in reversed(patched):
            setattr(module, attr, original)
