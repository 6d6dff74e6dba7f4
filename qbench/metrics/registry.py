"""Create any metric by name.

Names resolve in this order:

* ``pyiqa:<name>`` -- every pyiqa metric, through the offline-safe adapter;
* ``task:<model>:correct|loss|confidence`` -- a zoo classifier as a task scorer (needs labels);
* a built-in name (``sharpness``, ``colorfulness``, ``rankiqa``, ``rankiqa-ft``,
  ``proxy-confidence``, ``tg-iqa``);
* a name published by an installed package under the entry-point group ``qbench.metrics``;
* ``package.module:attr`` -- any importable object.

The object behind an entry point or ``module:attr`` may be a metric instance, a class or a
factory taking no arguments (or ``device=``); whatever it yields must follow the
:class:`~qbench.metrics.base.Metric` protocol, which is checked here.
"""

from __future__ import annotations

import importlib
import inspect
from importlib.metadata import entry_points
from typing import Any

from qbench.errors import QbenchError, UnknownNameError
from qbench.metrics.base import Metric, MetricInfo
from qbench.metrics.builtin import BUILTIN

ENTRY_POINT_GROUP = "qbench.metrics"


class PluginError(QbenchError):
    """A third-party metric could not be loaded or does not follow the protocol."""


def plugin_names() -> dict[str, Any]:
    """Installed entry points of the ``qbench.metrics`` group, by name."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def _instantiate(obj: Any, spec: str, device: str) -> Metric:
    try:
        if inspect.isclass(obj) or (callable(obj) and not hasattr(obj, "info")):
            params = inspect.signature(obj).parameters
            obj = obj(device=device) if "device" in params else obj()
    except (Exception, SystemExit) as exc:  # a plugin calling sys.exit is an error too
        raise PluginError(f"{spec}: creating the metric raised {type(exc).__name__}: {exc}") \
            from None
    return validate(obj, spec)


def validate(obj: Any, spec: str) -> Metric:
    """``obj`` if it has a complete :class:`MetricInfo` and is callable, else a PluginError."""
    info = getattr(obj, "info", None)
    if not isinstance(info, MetricInfo):
        raise PluginError(f"{spec}: the metric has no `info` of type qbench.metrics.MetricInfo")
    if info.kind not in ("FR", "NR", "task"):
        raise PluginError(f"{spec}: kind must be FR, NR or task, not {info.kind!r}")
    if not isinstance(info.higher_is_better, bool):
        raise PluginError(f"{spec}: higher_is_better must be True or False")
    if not callable(obj):
        raise PluginError(f"{spec}: the metric is not callable as m(images, refs=None)")
    return obj


def load_spec(spec: str, device: str = "cpu") -> Metric:
    """A metric from ``package.module:attr``."""
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except (Exception, SystemExit) as exc:  # a plugin calling sys.exit is an error too
        raise PluginError(f"{spec}: cannot import {module_name!r}: {type(exc).__name__}: {exc}") \
            from None
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise PluginError(f"{spec}: {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return _instantiate(obj, spec, device)


def create(name: str, device: str = "cpu") -> Metric:
    """The metric called ``name`` (see the module docstring for how names resolve)."""
    prefix, sep, rest = name.partition(":")
    if prefix == "pyiqa" and rest:
        from qbench.metrics.pyiqa_adapter import PyiqaMetric

        return PyiqaMetric(rest, device=device)
    if prefix == "task" and rest:  # task:MODEL:correct|loss|confidence (a zoo classifier)
        from qbench.metrics import task

        return task.create(name, device=device)
    if name in BUILTIN:
        return _instantiate(BUILTIN[name], name, device)
    eps = plugin_names()
    if name in eps:
        try:
            obj = eps[name].load()
        except (Exception, SystemExit) as exc:  # a plugin calling sys.exit is an error too
            raise PluginError(f"entry point {name!r} ({eps[name].value}) failed to load: "
                              f"{type(exc).__name__}: {exc}") from None
        return _instantiate(obj, name, device)
    if sep and rest:
        return load_spec(name, device)
    raise UnknownNameError("metric", name, [*BUILTIN, *eps, "pyiqa:<name>",
                                            "task:<model>:correct|loss|confidence",
                                            "package.module:attr"])


def names(include_pyiqa: bool = True) -> list[str]:
    """Every metric name qbench knows: built-ins, entry points and (optionally) pyiqa's."""
    out = [*BUILTIN, *sorted(plugin_names())]
    if include_pyiqa:
        from qbench.metrics.pyiqa_adapter import available

        out += [f"pyiqa:{n}" for n in available()]
    return out
