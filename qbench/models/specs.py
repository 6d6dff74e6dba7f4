"""Model specs: every way of naming a model, resolved by one registry.

``load(spec, map_location="cpu", layer=None) -> (model, Provenance)`` accepts:

* a zoo name (``scenes-vgg-s-s0``): a checkpoint in ``$QBENCH_HOME/zoo`` or the shipped ones;
* a ``.pt`` path whose provenance ``.json`` lies beside it;
* ``torchvision:ARCH`` (the weights torchvision caches in the torch hub cache; never
  downloaded) or ``torchvision:ARCH=PATH`` (the user's state_dict; the class count is read
  from its final layer);
* ``timm:NAME`` (weights from the Hugging Face / torch hub caches only) or ``timm:NAME=PATH``;
* ``module:attr``: a factory (called with no arguments), a class (instantiated with none) or
  an ``nn.Module`` instance in an importable module;
* a named model: ``efficientnet-lite0`` (ImageNet-1k; weights in the ``real`` extra).

Every model comes back in eval mode on ``map_location``; it takes Nx3xHxW images in [0, 1]
(normalisation inside -- for ``module:attr`` that is the user's contract), returns logits,
and has ``cam_layer`` (an ``nn.Module``: declared by the model, detected for common families
by :func:`qbench.models.hub.cam_layer_of`, else the last ``Conv2d``, or given as
``layer="dotted.path"``). Its :class:`Provenance` has ``name`` (the spec; a checkpoint keeps
its recorded name), ``arch``, ``sha256`` (of the weight file; of the state_dict's tensors for
a ``module:attr`` model) and ``extra`` with the keys of :data:`EXTRA_KEYS`: ``spec``,
``source`` (zoo | file | torchvision | timm | module | efficientnet-lite0), ``classes`` (names,
or None), ``num_classes``, ``input_size``, ``cam_layer`` (dotted path), ``weights`` (path or
"") and ``normalization`` (``{"mean": [...], "std": [...]}`` or None). ``info(spec)`` gives
the provenance without loading weights where it can (values only known after loading are
None there).

Adding a model is one registration in :data:`REGISTRY` (a :class:`~qbench.registry.Registry`;
plugins use the entry-point group ``qbench.models``): a named model is a :class:`NamedModel`
(``REGISTRY.register(name, NamedModel(...))``, or a lazy ``"module:attr"`` naming one), a
family is ``REGISTRY.add_prefix(prefix, create)`` where ``create(rest)`` returns an object with
``load(map_location) -> (model, Provenance)`` and ``info() -> Provenance``.

The checks :func:`check_classes` and :func:`check_input_size`, like every failure here,
raise :class:`ModelSpecError` (a :class:`CheckpointError`) with a one-line message.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from qbench.errors import UnknownNameError
from qbench.models.checkpoint import (
    SHIPPED,
    CheckpointError,
    ModelSpecError,
    Provenance,
    load_checkpoint,
    provenance,
    sha256_file,
    user_dir,
)
from qbench.models.checkpoint import names as zoo_names
from qbench.registry import Registry, RegistryError, import_attr

EXTRA_KEYS = ("spec", "source", "classes", "num_classes", "input_size", "cam_layer", "weights",
              "normalization")
MODULE_HINT = "package.module:attr"

# class names of embedded datasets, by a constant (reading the dataset could generate it)
DATASET_CLASSES = {"scenes": "qbench.data.shapes:CLASSES"}


class UnknownModelError(ModelSpecError, UnknownNameError):
    """A spec that names no zoo checkpoint, named model, prefix family or importable object."""

    def __init__(self, name: str, known: list[str], candidates: list[str]) -> None:
        UnknownNameError.__init__(self, "model", name, known, candidates=candidates)
        close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.6)
        hint = f" -- did you mean {' or '.join(map(repr, close))}?" if close else ""
        named = list(REGISTRY.names())
        self.args = (
            f"unknown model {name!r}{hint}; a model spec is a zoo name (`qbench zoo list`), "
            f"a named model ({', '.join(named)}), a .pt checkpoint path, "
            f"{', '.join(p.hint for p in REGISTRY._prefixes.values())} or {MODULE_HINT}",)


class ModelSource(Protocol):
    """What a registry entry (or a prefix's ``create(rest)``) gives for one spec."""

    def load(self, map_location: str | torch.device = "cpu"
             ) -> tuple[nn.Module, Provenance]: ...

    def info(self) -> Provenance: ...


# --------------------------------------------------------------------------------- helpers

def imagenet_classes() -> list[str]:
    """The 1000 ImageNet-1k class names (torchvision's weight metadata; offline)."""
    return list(_imagenet_classes())


@lru_cache(maxsize=1)
def _imagenet_classes() -> tuple[str, ...]:
    from torchvision.models import ResNet18_Weights

    return tuple(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


def _packages(*names: str) -> dict[str, str]:
    out = {}
    for n in ("torch", *names):
        with contextlib.suppress(PackageNotFoundError):
            out[n] = version(n)
    return out


def _norm(mean, std) -> dict[str, list[float]] | None:
    if mean is None or std is None:
        return None
    return {"mean": [float(v) for v in mean], "std": [float(v) for v in std]}


def state_sha256(model: nn.Module) -> str:
    """sha256 of a model's state_dict: each key, dtype, shape and tensor bytes, in key order."""
    h = hashlib.sha256()
    for key, value in model.state_dict().items():
        t = value.detach().cpu().contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _new_provenance(spec: str, arch: str, *, sha256: str = "", arch_kwargs=None,
                    packages: dict[str, str] | None = None, **extra: Any) -> Provenance:
    prov = Provenance(name=spec, arch=arch, arch_kwargs=dict(arch_kwargs or {}), command="",
                      seed=-1, data_fingerprint="", packages=packages or {}, sha256=sha256)
    prov.extra.update({k: None for k in EXTRA_KEYS})
    prov.extra.update({"spec": spec, "weights": "", **extra})
    return prov


def _first_line(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:limit]}"


# -------------------------------------------------------------------------- named models

@dataclass(frozen=True)
class NamedModel:
    """A model known by name: a builder of no arguments that returns it with its weights, and
    the static facts ``info`` reports without building it.

    ``build``, ``weights`` and ``classes`` may be lazy ``"module:attr"`` strings; ``weights``
    (a function returning the weight file, hashed on load) and ``classes`` (a list or a
    function returning it) are optional.
    """

    name: str
    arch: str
    build: Callable[[], nn.Module] | str
    description: str = ""
    weights: Callable[[], str | Path] | str | None = None
    classes: Callable[[], list[str]] | list[str] | str | None = None
    num_classes: int | None = None
    input_size: int | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    cam_layer: str | None = None  # dotted path, if known before building
    source: str = ""
    packages: tuple[str, ...] = ()

    def _call(self, what: Any) -> Any:
        if isinstance(what, str):
            what = import_attr(what)
        return what() if callable(what) else what

    def _weights(self) -> Path | None:
        return Path(self._call(self.weights)) if self.weights is not None else None

    def info(self, sha256: str = "") -> Provenance:
        weights = self._weights()  # a missing package raises its one line here already
        classes = self._call(self.classes) if self.classes is not None else None
        return _new_provenance(
            self.name, self.arch, sha256=sha256, packages=_packages(*self.packages),
            source=self.source or self.name, classes=list(classes) if classes else None,
            num_classes=self.num_classes or (len(classes) if classes else None),
            input_size=self.input_size, weights=str(weights) if weights else "",
            cam_layer=self.cam_layer,
            normalization=_norm(self.mean, self.std), description=self.description)

    def load(self, map_location: str | torch.device = "cpu") -> tuple[nn.Module, Provenance]:
        weights = self._weights()  # a missing package fails before anything is built
        builder = import_attr(self.build) if isinstance(self.build, str) else self.build
        model = builder()
        sha = sha256_file(weights) if weights is not None and weights.is_file() \
            else state_sha256(model)
        return model.to(map_location), self.info(sha256=sha)


REGISTRY: Registry[Any] = Registry("model", group="qbench.models", info_of=lambda obj: obj)

# ----------------------------------------------------------------------- zoo and .pt files


def _checkpoint_classes(prov: Provenance) -> list[str] | None:
    extra = prov.extra or {}
    dataset = extra.get("dataset") or (extra.get("config") or {}).get("task")
    target = DATASET_CLASSES.get(dataset) if isinstance(dataset, str) else None
    return list(import_attr(target)) if target else None


def _checkpoint_input_size(prov: Provenance) -> int | None:
    extra = prov.extra or {}
    for value in ((extra.get("data_options") or {}).get("size"),
                  (extra.get("config") or {}).get("size"), extra.get("crop")):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


@dataclass
class CheckpointSource:
    """A qbench checkpoint: a zoo name or a ``.pt`` path with its provenance ``.json``."""

    spec: str
    path: Path
    source: str  # "zoo" or "file"

    def _fill(self, prov: Provenance) -> Provenance:
        kwargs = prov.arch_kwargs or {}
        classes = _checkpoint_classes(prov)
        n = kwargs.get("num_classes", (kwargs.get("base_kwargs") or {}).get("num_classes"))
        prov.extra.update(spec=self.spec, source=self.source, classes=classes,
                          num_classes=n if n is not None else
                          (len(classes) if classes else None),
                          input_size=_checkpoint_input_size(prov), weights=str(self.path))
        prov.extra.setdefault("cam_layer", None)
        prov.extra.setdefault("normalization", None)
        return prov

    def info(self) -> Provenance:
        return self._fill(provenance(self.path))

    def load(self, map_location: str | torch.device = "cpu") -> tuple[nn.Module, Provenance]:
        if not self.path.exists():
            raise CheckpointError(f"checkpoint file not found: {self.path}")
        model, prov = load_checkpoint(self.path, map_location)
        return model.to(map_location), self._fill(prov)


def _zoo_path(name: str) -> Path | None:
    for folder in (user_dir(), SHIPPED):
        if (folder / f"{name}.pt").exists():
            return folder / f"{name}.pt"
    return None


# ----------------------------------------------------------------------------- torchvision

def _split(rest: str) -> tuple[str, str | None]:
    name, sep, path = rest.partition("=")
    return name.strip(), (path.strip() or None) if sep else None


@dataclass
class TorchvisionSource:
    """``torchvision:ARCH`` (weights from the torch hub cache) or ``torchvision:ARCH=PATH``."""

    rest: str

    @property
    def spec(self) -> str:
        return f"torchvision:{self.rest}"

    def _prov(self, arch: str, facts: dict, weights: str, sha: str = "") -> Provenance:
        return _new_provenance(
            self.spec, f"torchvision:{arch}", sha256=sha,
            arch_kwargs={"num_classes": facts["num_classes"]},
            packages=_packages("torchvision"), source="torchvision", classes=facts["classes"],
            num_classes=facts["num_classes"], input_size=facts["input_size"], weights=weights,
            normalization=_norm(facts["mean"], facts["std"]))

    def info(self) -> Provenance:
        from qbench.models.hub import torchvision_facts

        arch, path = _split(self.rest)
        facts = torchvision_facts(arch)
        if path is not None:  # the class count is known only once the file is read
            facts.update(num_classes=None, classes=None)
            return self._prov(arch, facts, str(Path(path).expanduser()))
        return self._prov(arch, facts, facts["weights"])

    def load(self, map_location: str | torch.device = "cpu") -> tuple[nn.Module, Provenance]:
        from qbench.models.hub import from_state_dict, pretrained, torchvision_facts

        arch, path = _split(self.rest)
        if path is None:
            facts = torchvision_facts(arch)
            model = pretrained(arch)  # a missing cache file: one line with the path and URL
            weights = facts["weights"]
        else:
            model, facts = from_state_dict(arch, path, spec=self.spec)
            weights = str(Path(path).expanduser())
        return model.to(map_location), self._prov(arch, facts, weights, sha256_file(weights))


def _torchvision_names() -> list[str]:
    import torchvision.models as tvm

    return [f"torchvision:{m}" for m in tvm.list_models(module=tvm)]


# ------------------------------------------------------------------------------------ timm

@dataclass
class TimmSource:
    """``timm:NAME`` (weights from the Hugging Face / torch hub caches) or ``timm:NAME=PATH``."""

    rest: str

    @property
    def spec(self) -> str:
        return f"timm:{self.rest}"

    def _prov(self, name: str, facts: dict, weights: str, sha: str = "") -> Provenance:
        n = facts["num_classes"]
        return _new_provenance(
            self.spec, f"timm:{name}", sha256=sha, arch_kwargs={"num_classes": n},
            packages=_packages("timm"), source="timm",
            classes=imagenet_classes() if n == 1000 else None, num_classes=n,
            input_size=facts["input_size"], weights=weights,
            normalization=_norm(facts["mean"], facts["std"]))

    def info(self) -> Provenance:
        from qbench.models.hub import timm_cached_weights, timm_facts

        name, path = _split(self.rest)
        facts = timm_facts(name)
        if path is not None:
            facts["num_classes"] = None  # read from the file on load
            return self._prov(name, facts, str(Path(path).expanduser()))
        found, _ = timm_cached_weights(name, facts["cfg"])
        return self._prov(name, facts, str(found) if found else "")

    def load(self, map_location: str | torch.device = "cpu") -> tuple[nn.Module, Provenance]:
        from qbench.models.hub import timm_model

        name, path = _split(self.rest)
        model, facts, weights = timm_model(name, path, spec=self.spec)
        return model.to(map_location), self._prov(name, facts, str(weights),
                                                  sha256_file(weights))


# ------------------------------------------------------------------------------ module:attr

@dataclass
class ModuleSource:
    """``module:attr``: a factory, a class or an ``nn.Module`` instance in the user's module."""

    spec: str

    def _object(self) -> Any:
        try:
            return import_attr(self.spec)
        except RegistryError as exc:
            raise ModelSpecError(f"model {exc}{_prefix_hint(self.spec)}") from None

    def info(self) -> Provenance:
        self._object()  # the module imports and has the attribute; nothing is built
        return _new_provenance(self.spec, self.spec, source="module")

    def load(self, map_location: str | torch.device = "cpu") -> tuple[nn.Module, Provenance]:
        obj = self._object()
        if not isinstance(obj, nn.Module):
            if not callable(obj):
                raise ModelSpecError(f"{self.spec} is an object of type {type(obj).__name__}, "
                                     "not an nn.Module, a class or a factory")
            try:
                obj = obj()
            except (Exception, SystemExit) as exc:
                kind = "class" if inspect.isclass(obj) else "factory"
                raise ModelSpecError(f"{self.spec}: calling the {kind} with no arguments "
                                     f"raised {_first_line(exc)}") from None
        if not isinstance(obj, nn.Module):
            raise ModelSpecError(f"{self.spec} gave an object of type {type(obj).__name__}, "
                                 "not an nn.Module")
        model = obj.to(map_location)
        classes = getattr(model, "classes", None)
        classes = list(classes) if isinstance(classes, list | tuple) and classes else None
        n = getattr(model, "num_classes", None)
        if not isinstance(n, int):
            n = len(classes) if classes else _last_linear_out(model)
        size = getattr(model, "input_size", None)
        return model, _new_provenance(
            self.spec, self.spec, sha256=state_sha256(model), source="module", classes=classes,
            num_classes=n, input_size=size if isinstance(size, int) else None)


def _last_linear_out(model: nn.Module) -> int | None:
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return int(linears[-1].out_features) if linears else None


def _prefix_hint(spec: str) -> str:
    head, _, rest = spec.partition(":")
    close = difflib.get_close_matches(head, list(REGISTRY._prefixes), n=1, cutoff=0.6)
    return f" -- did you mean {f'{close[0]}:{rest}'!r}?" if close else ""


# -------------------------------------------------------------------- registrations

REGISTRY.add_prefix("torchvision", TorchvisionSource, info=TorchvisionSource,
                    names=_torchvision_names, hint="torchvision:<arch>[=<state_dict file>]")
REGISTRY.add_prefix("timm", TimmSource, info=TimmSource,
                    hint="timm:<name>[=<state_dict file>]")
REGISTRY.register("efficientnet-lite0", "qbench.models.lite:MODEL")

# ------------------------------------------------------------------------------ resolving


def source(spec: str | Path) -> ModelSource:
    """What resolves ``spec`` (an object with ``load(map_location)`` and ``info()``)."""
    if isinstance(spec, Path):
        return CheckpointSource(str(spec), spec, "file")
    spec = str(spec).strip()
    if REGISTRY.prefix_of(spec) is not None:  # before the suffix: torchvision:resnet18=w.pt
        return REGISTRY.get(spec)
    if spec.endswith(".pt"):
        return CheckpointSource(spec, Path(spec), "file")
    path = _zoo_path(spec)
    if path is not None:
        return CheckpointSource(spec, path, "zoo")
    if spec in REGISTRY:
        return REGISTRY.get(spec)
    head, sep, attr = spec.partition(":")
    if sep and head and attr and head not in REGISTRY._prefixes:
        return ModuleSource(spec)
    raise unknown(spec)


def unknown(spec: str) -> UnknownModelError:
    """The one-line error for a spec nothing resolves, with the closest known names."""
    named = [*zoo_names(), *REGISTRY.names()]
    hints = [p.hint for p in REGISTRY._prefixes.values()] + [MODULE_HINT]
    err = UnknownModelError(spec, [*named, *hints], candidates=[*named, *REGISTRY._prefixes])
    from qbench.models.zoo import ZOO

    if spec in ZOO:  # a zoo entry not trained here yet
        err.args = (f"{err.args[0]}; {spec} is a zoo entry without a checkpoint: train it with "
                    f"`qbench zoo train {spec}`",)
    return err


def names() -> list[str]:
    """Every model ``load`` finds by name: zoo checkpoints, then named models."""
    zoo = zoo_names()
    return zoo + [n for n in REGISTRY.names() if n not in zoo]


def info(spec: str | Path) -> Provenance:
    """The provenance of ``spec`` without loading its weights where possible."""
    return source(spec).info()


def load(spec: str | Path, map_location: str | torch.device = "cpu",
         layer: str | nn.Module | None = None) -> tuple[nn.Module, Provenance]:
    """The model (eval mode, on ``map_location``) and provenance that ``spec`` names."""
    model, prov = source(spec).load(map_location)
    model.eval()
    cam = _cam_layer(model, layer, str(spec))
    if cam is not None and (layer is not None or not isinstance(
            getattr(model, "cam_layer", None), nn.Module)):
        set_cam_layer(model, cam)
    extra = prov.extra
    extra["cam_layer"] = _path_of(model, cam) if cam is not None else None
    if extra.get("normalization") is None:
        extra["normalization"] = _normalization_of(model)
    for key in EXTRA_KEYS:
        extra.setdefault(key, None)
    return model, prov


# --------------------------------------------------------------------------- CAM layers

def _cam_layer(model: nn.Module, layer: str | nn.Module | None, spec: str) -> nn.Module | None:
    from qbench.errors import QbenchError

    if layer is not None:
        from qbench.explain.layers import resolve_layer

        try:
            return resolve_layer(model, layer)
        except QbenchError as exc:
            inner = getattr(model, "net", None)  # a hub wrapper: "layer3" means "net.layer3"
            if isinstance(layer, str) and isinstance(inner, nn.Module):
                try:
                    return inner.get_submodule(layer)
                except AttributeError:
                    pass
            raise ModelSpecError(f"{spec}: {exc}") from None
    declared = getattr(model, "cam_layer", None)
    if isinstance(declared, nn.Module):
        return declared
    if isinstance(declared, str):
        try:
            return model.get_submodule(declared)
        except AttributeError:
            raise ModelSpecError(f"{spec}: its cam_layer {declared!r} is not a submodule"
                                 ) from None
    from qbench.models.hub import cam_layer_of

    try:
        return cam_layer_of(model)
    except CheckpointError:
        convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
        return convs[-1] if convs else None


_OVERRIDABLE: dict[type, type] = {}


def _restore_overridable(base: type) -> nn.Module:
    return object.__new__(_overridable(base))


def _reduce_overridable(self: nn.Module, protocol: int):
    return (_restore_overridable, (type(self).__mro__[1],), self.__getstate__())


def _overridable(cls: type) -> type:
    """``cls`` with a ``cam_layer`` read from the instance (pickles as ``cls`` would)."""
    if cls not in _OVERRIDABLE:
        _OVERRIDABLE[cls] = type(cls.__name__, (cls,), {
            "cam_layer": property(lambda self: self.__dict__["_cam_layer"]),
            "__reduce_ex__": _reduce_overridable, "__module__": cls.__module__,
            "__qualname__": cls.__qualname__})
    return _OVERRIDABLE[cls]


def set_cam_layer(model: nn.Module, layer: nn.Module) -> None:
    """Make ``model.cam_layer`` return ``layer`` (a reference: the state_dict is unchanged)."""
    attr = inspect.getattr_static(type(model), "cam_layer", None)
    if isinstance(attr, property):
        if attr.fset is not None:  # called directly: nn.Module.__setattr__ would register
            attr.fset(model, layer)  # the layer as a second submodule instead
            return
        model.__class__ = _overridable(type(model))
        model.__dict__["_cam_layer"] = layer
        return
    object.__setattr__(model, "cam_layer", layer)  # not registered as a submodule


def _path_of(model: nn.Module, layer: nn.Module) -> str | None:
    return next((name for name, m in model.named_modules() if m is layer and name), None)


def _normalization_of(model: nn.Module) -> dict[str, list[float]] | None:
    for m in model.modules():
        mean, std = getattr(m, "mean", None), getattr(m, "std", None)
        if isinstance(mean, torch.Tensor) and isinstance(std, torch.Tensor) and \
                mean.numel() == 3 and std.numel() == 3:
            return _norm(mean.flatten().tolist(), std.flatten().tolist())
    return None


# --------------------------------------------------------------------------------- checks

def check_classes(prov: Provenance, n_classes: int, dataset_name: str) -> None:
    """One-line error when the model's class count is not the dataset's (unknown: no check)."""
    k = (prov.extra or {}).get("num_classes")
    if k is None or int(k) == int(n_classes):
        return
    raise ModelSpecError(
        f"model {prov.name!r} has {int(k)} classes but dataset {dataset_name!r} has "
        f"{int(n_classes)}: its predictions are not the dataset's labels; use "
        f"`--labels clean-prediction` (each image's clean prediction as its label) or a "
        f"model trained on {dataset_name}")


def check_input_size(model: nn.Module, prov: Provenance, size: int) -> None:
    """One-line error when a one-image forward at ``size``x``size`` fails."""
    p = next(model.parameters(), None)
    x = torch.full((1, 3, int(size), int(size)), 0.5,
                   device=p.device if p is not None else "cpu")
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            model(x)
    except (RuntimeError, ValueError) as exc:
        declared = (prov.extra or {}).get("input_size")
        raise ModelSpecError(
            f"model {prov.name!r} does not accept {size}x{size} images (declared input size: "
            f"{f'{declared}x{declared}' if declared else 'unknown'}; resize the images or "
            f"choose another model): {_first_line(exc, 160)}") from None
    finally:
        for m, mode in modes:
            m.training = mode


