"""Create any metric by name: one :class:`~qbench.registry.Registry` of metrics.

Names resolve in this order:

* ``pyiqa:<name>`` -- every pyiqa metric, through the offline-safe adapter;
* ``task:<model>:correct|loss|confidence`` -- a zoo classifier as a task scorer (needs labels);
* a registered name: the built-ins (:mod:`qbench.metrics.builtin`) and names published by
  installed packages under the entry-point group ``qbench.metrics``;
* ``package.module:attr`` -- any importable object.

The object behind a name may be a metric instance, a class or a factory taking no arguments
(or ``device=``); whatever it yields must follow the :class:`~qbench.metrics.base.Metric`
protocol, which is checked here. ``info(name)`` gives a metric's :class:`MetricInfo` without
building it (no weights are read).
"""

from __future__ import annotations

import inspect
from typing import Any

from qbench.errors import QbenchError
from qbench.metrics.base import Metric, MetricInfo
from qbench.metrics.builtin import register_builtins
from qbench.registry import Registry, RegistryError, import_attr

ENTRY_POINT_GROUP = "qbench.metrics"


class PluginError(QbenchError):
    """A third-party metric could not be loaded or does not follow the protocol."""


REGISTRY: Registry[Any] = Registry("metric", group=ENTRY_POINT_GROUP,
                                   info_of=lambda obj: getattr(obj, "info", None))


def _pyiqa_known(rest: str) -> None:
    from qbench.metrics.pyiqa_adapter import available

    if rest not in available():
        raise REGISTRY.unknown(f"pyiqa:{rest}")


def _pyiqa_factory(rest: str):
    from qbench.metrics.pyiqa_adapter import PyiqaMetric

    _pyiqa_known(rest)
    return lambda device="cpu": PyiqaMetric(rest, device=device)


def _pyiqa_info(rest: str) -> MetricInfo:
    from qbench.metrics.pyiqa_adapter import info

    _pyiqa_known(rest)
    return info(rest)


def _pyiqa_names() -> list[str]:
    from qbench.metrics.pyiqa_adapter import available

    return [f"pyiqa:{n}" for n in available()]


def _task_factory(rest: str):
    from qbench.metrics import task

    return lambda device="cpu": task.create(f"task:{rest}", device=device)


REGISTRY.add_prefix("pyiqa", _pyiqa_factory, info=_pyiqa_info, names=_pyiqa_names)
REGISTRY.add_prefix("task", _task_factory, hint="task:<model>:correct|loss|confidence")
register_builtins(REGISTRY)
register = REGISTRY.register


def _instantiate(obj: Any, spec: str, device: str) -> Metric:
    try:
        if inspect.isclass(obj) or (callable(obj) and not hasattr(obj, "info")):
            params = inspect.signature(obj).parameters
            obj = obj(device=device) if "device" in params else obj()
    except (Exception, SystemExit) as exc:  # a plugin calling sys.exit is an error too
        if isinstance(exc, QbenchError) and REGISTRY.prefix_of(spec) is not None:
            raise  # qbench's own families (pyiqa:, task:) already explain themselves
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


def _target(name: str) -> Any:
    try:
        return REGISTRY.get(name)
    except RegistryError as exc:
        raise PluginError(str(exc)) from None


def load_spec(spec: str, device: str = "cpu") -> Metric:
    """A metric from ``package.module:attr``."""
    try:
        obj = import_attr(spec)
    except RegistryError as exc:
        raise PluginError(str(exc)) from None
    return _instantiate(obj, spec, device)


def create(name: str, device: str = "cpu") -> Metric:
    """The metric called ``name`` (see the module docstring for how names resolve)."""
    return _instantiate(_target(name), name, device)


def info(name: str) -> MetricInfo:
    """The :class:`MetricInfo` of ``name`` without building the metric (no weights read)."""
    meta = REGISTRY.info(name)
    if not isinstance(meta, MetricInfo):  # a factory without declared metadata: build it
        meta = create(name).info
    return meta


def plugin_names() -> list[str]:
    """Names published by installed packages (entry-point group ``qbench.metrics``)."""
    return REGISTRY.plugins()


def names(include_pyiqa: bool = True) -> list[str]:
    """Every metric name qbench knows: built-ins, entry points and (optionally) pyiqa's."""
    return REGISTRY.names(prefixed=include_pyiqa)
