"""Guards between the engine and what it cannot trust: image files, corruptions and metrics.

Every problem becomes a :class:`Failure` -- a reason string with a ``kind`` that says whether
the item itself is the proven cause (``item``: final, not retried) or not (``config``: the
scorer or the setup; ``transient``: a timeout, out of memory), so that a rerun of the same run
retries what might succeed next time and never recomputes what cannot.

The rule for the kind: a failure is an ``item`` failure when the item is the proven cause --
an error type that is about the item (unreadable or invalid image, too small for the metric,
a reference of another size) or the same call succeeded for other items of the batch.
Otherwise (every item of a call failed, a wrong output shape, a nondeterministic metric) it is
``config``.

Metric calls run in a worker thread and are abandoned after ``$QBENCH_METRIC_TIMEOUT`` seconds
(default 300; 0 disables the thread). Why a thread and not a subprocess: metrics hold models
and large tensors (possibly on a GPU) that cannot be shipped to another process cheaply. The
limits: Python cannot kill a thread, so a hung call keeps running in the background (daemon
thread, ended with the process) and holds its memory and CPU; a metric that timed out is
therefore not called again in this process (its remaining items fail as ``transient`` and a
rerun retries them); and a call stuck in C code that never releases the GIL cannot be
interrupted at all.

The first successful call of each metric is checked for determinism: the first image of the
batch is scored again on its own and must give the same value (relative tolerance 1e-4, which
allows batch-size rounding). A metric that fails the check has its values discarded and its
items recorded as ``config`` failures. A re-check that could not be completed is recorded with
its real reason, never as "nondeterministic": a timeout is ``transient`` (a rerun retries), a
wrong output for one image (a 0-d tensor) or an error is ``config``.

Every metric call runs inside :func:`global_state_kept`: whatever the metric does to torch's
process-wide state (default dtype, grad mode, intra-op threads, deterministic algorithms, the
global random generators of torch, NumPy and Python) is undone when the call returns, so one
plugin cannot change another scorer's numbers or the caller's autograd. The limit: the state is
process-wide, so a metric running in another thread at the same moment (or one abandoned after
a timeout that is still running) can still see it.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import random
import threading
import weakref
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import torch

from qbench.data.base import ImageSet
from qbench.data.imagefile import ImageMissingError, collect_notes
from qbench.errors import ImageReadError
from qbench.faults import kill_point
from qbench.metrics.base import InputTooSmallError, Metric

T = TypeVar("T")
TIMEOUT_ENV = "QBENCH_METRIC_TIMEOUT"
DEFAULT_TIMEOUT = 300.0
DETERMINISM_RTOL = 1e-4
ITEM_ERRORS: tuple[type[BaseException], ...] = (ImageReadError, InputTooSmallError)
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (MemoryError, torch.OutOfMemoryError,
                                                     TimeoutError)


class Failure(str):
    """A failure reason (a plain ``str`` for code that only needs the text) with its kind."""

    kind: str

    def __new__(cls, reason: str, kind: str = "item") -> Failure:
        obj = super().__new__(cls, reason[:500])
        obj.kind = kind
        return obj


class MetricTimeout(TimeoutError):
    """A metric call ran longer than the per-call timeout."""


def reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:500]


def kind_of(exc: BaseException) -> str:
    if isinstance(exc, ITEM_ERRORS):
        return "item"
    if isinstance(exc, TRANSIENT_ERRORS):
        return "transient"
    return "config"


def failure(exc: BaseException, prefix: str = "") -> Failure:
    return Failure(prefix + reason(exc), kind_of(exc))


def metric_timeout() -> float:
    """Seconds a metric call may take (``$QBENCH_METRIC_TIMEOUT``; 0 or less: no limit)."""
    raw = os.environ.get(TIMEOUT_ENV, "")
    try:
        return float(raw) if raw.strip() else DEFAULT_TIMEOUT
    except ValueError:
        raise ValueError(f"{TIMEOUT_ENV}={raw!r} is not a number of seconds") from None


# -- images ---------------------------------------------------------------------------------
def invalid_image(t: Any) -> str | None:
    """Why ``t`` is not a 3xHxW float image in [0, 1], or None when it is one."""
    if not isinstance(t, torch.Tensor):
        return f"InvalidImage: the reader returned {type(t).__name__}, not a tensor"
    if t.ndim != 3 or t.shape[0] != 3 or t.shape[1] < 1 or t.shape[2] < 1:
        return f"InvalidImage: shape {tuple(t.shape)}, expected 3xHxW"
    if not t.is_floating_point():
        return f"InvalidImage: dtype {t.dtype}, expected a float tensor in [0, 1]"
    finite = torch.isfinite(t)
    if not bool(finite.all()):
        bad = t[~finite]
        kinds = sorted({"NaN" if math.isnan(v) else "inf" for v in bad[:1000].tolist()})
        return f"InvalidImage: {int(bad.numel())} values are {' or '.join(kinds)}"
    lo, hi = float(t.min()), float(t.max())
    if lo < 0 or hi > 1:
        return f"InvalidImage: values in [{lo:.4g}, {hi:.4g}], outside [0, 1]"
    return None


@dataclass
class Loaded:
    """One batch read from a dataset: the images of one size and what became of the others."""

    images: torch.Tensor | None  # the ``items`` stacked (all of one size)
    items: list[int]
    failed: dict[int, Failure] = field(default_factory=dict)
    later: list[int] = field(default_factory=list)  # readable, but of another size: next group
    notes: dict[int, list[str]] = field(default_factory=dict)


def load(dataset: ImageSet, idx: Sequence[int]) -> Loaded:
    """Read ``idx``: validate each image, note conversions, group by size (largest group now)."""
    idx = list(idx)
    if dataset.array is not None:  # in-memory uint8: valid by construction, one size
        return Loaded(dataset.batch(idx), idx)
    images: dict[int, torch.Tensor] = {}
    failed: dict[int, Failure] = {}
    notes: dict[int, list[str]] = {}
    missing: dict[int, str] = {}
    for i in idx:
        with collect_notes() as found:
            try:
                t = dataset.image(i)
            except ImageMissingError as exc:
                missing[i] = reason(exc)
                continue
            except Exception as exc:
                failed[i] = Failure(reason(exc), "transient" if isinstance(exc, MemoryError)
                                    else "item")
                continue
        if found:
            notes[i] = list(found)
        why = invalid_image(t)
        if why:
            failed[i] = Failure(why, "item")
        else:
            images[i] = t
    # a missing file is the item's fault only if its neighbours are there (else: storage)
    for i, why in missing.items():
        failed[i] = Failure(why, "item" if images or failed else "config")
    good = [i for i in idx if i in images]
    if not good:
        return Loaded(None, [], failed, [], notes)
    sizes = Counter(tuple(images[i].shape) for i in good)
    first = {s: next(k for k, i in enumerate(good) if tuple(images[i].shape) == s) for s in sizes}
    common = max(sizes, key=lambda s: (sizes[s], -first[s]))
    now = [i for i in good if tuple(images[i].shape) == common]
    later = [i for i in good if tuple(images[i].shape) != common]
    return Loaded(torch.stack([images[i] for i in now]), now, failed, later, notes)


def corrupt(clean: torch.Tensor, corruption: str, severity: int, seed: int,
            table: str | None) -> tuple[torch.Tensor, dict[int, Failure]]:
    """``clean`` corrupted, and the positions whose corruption failed (with why).

    A corruption is a pure function of (image, corruption, severity, seed) on any batch size,
    so when the batch call fails the images are corrupted one by one to isolate the culprits.
    """
    import qbench.corrupt as corruptions

    try:
        return corruptions.apply(clean, corruption, severity, seed=seed, table=table), {}
    except Exception as exc:
        if clean.shape[0] == 1:
            return clean.clone(), {0: failure(exc, "corruption failed: ")}
    out, failed = clean.clone(), {}
    for p in range(clean.shape[0]):
        try:
            out[p : p + 1] = corruptions.apply(clean[p : p + 1], corruption, severity, seed=seed,
                                               table=table)
        except Exception as exc:
            failed[p] = failure(exc, "corruption failed: ")
    if len(failed) < clean.shape[0]:  # others succeeded: these images are the cause
        failed = {p: Failure(f, "item" if f.kind == "config" else f.kind)
                  for p, f in failed.items()}
    return out, failed


# -- metrics --------------------------------------------------------------------------------
@dataclass
class _MetricState:
    checked: bool = False  # determinism verified
    broken: Failure | None = None  # set once the metric timed out or proved nondeterministic


_states: dict[int, tuple[Callable[[], Any], _MetricState]] = {}
_states_lock = threading.Lock()


def _state(metric: Metric) -> _MetricState:
    """The guard's memory of ``metric`` (by identity: metrics need not be hashable)."""
    key = id(metric)
    with _states_lock:
        entry = _states.get(key)
        if entry is not None and entry[0]() is metric:
            return entry[1]
        try:
            ref: Callable[[], Any] = weakref.ref(metric, lambda _, k=key: _states.pop(k, None))
        except TypeError:  # not weak-referenceable: remembered for the life of the process

            def ref(m: Any = metric) -> Any:
                return m

        state = _MetricState()
        _states[key] = (ref, state)
        return state


@contextlib.contextmanager
def global_state_kept() -> Iterator[None]:
    """Undo on exit whatever the body did to torch's (and NumPy's and Python's) global state:
    default dtype, grad mode, intra-op threads, deterministic-algorithms flags and the global
    random generators (torch CPU and initialised CUDA devices, ``numpy.random``, ``random``)."""
    dtype, grad, threads = torch.get_default_dtype(), torch.is_grad_enabled(), \
        torch.get_num_threads()
    det = (torch.are_deterministic_algorithms_enabled(),
           torch.is_deterministic_algorithms_warn_only_enabled())
    rng = torch.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    np_rng, py_rng = np.random.get_state(), random.getstate()
    try:
        yield
    finally:
        if torch.get_default_dtype() != dtype:
            torch.set_default_dtype(dtype)
        torch.set_grad_enabled(grad)
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        if (torch.are_deterministic_algorithms_enabled(),
                torch.is_deterministic_algorithms_warn_only_enabled()) != det:
            torch.use_deterministic_algorithms(det[0], warn_only=det[1])
        torch.set_rng_state(rng)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)
        np.random.set_state(np_rng)
        random.setstate(py_rng)


class MetricExit(RuntimeError):
    """A metric raised SystemExit (e.g. called sys.exit): recorded, the run goes on."""


def call(metric: Metric, x: torch.Tensor, ref: torch.Tensor | None,
         labels: torch.Tensor | None = None, timeout: float | None = None) -> Any:
    """``metric(x, ref[, labels=])`` in a worker thread, abandoned after ``timeout`` seconds;
    the global state it changes is restored (:func:`global_state_kept`)."""
    with global_state_kept():
        return _call(metric, x, ref, labels, timeout)


def _call(metric: Metric, x: torch.Tensor, ref: torch.Tensor | None,
          labels: torch.Tensor | None, timeout: float | None) -> Any:
    timeout = metric_timeout() if timeout is None else timeout
    kwargs = {} if labels is None else {"labels": labels}
    if timeout <= 0:
        try:
            return metric(x, ref, **kwargs)
        except SystemExit as exc:
            raise MetricExit(f"the metric raised SystemExit({exc.code!r})") from None
    grad, inference = torch.is_grad_enabled(), torch.is_inference_mode_enabled()
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            with torch.inference_mode(inference), torch.set_grad_enabled(grad):
                result["value"] = metric(x, ref, **kwargs)
        except BaseException as exc:  # handed to the calling thread
            result["error"] = exc

    name = getattr(getattr(metric, "info", None), "name", "metric")
    worker = threading.Thread(target=target, name=f"qbench-metric-{name}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise MetricTimeout(f"{name} did not return within {timeout:g} s "
                            f"(per-call limit, set {TIMEOUT_ENV})")
    if isinstance(result.get("error"), SystemExit):
        raise MetricExit(f"the metric raised SystemExit({result['error'].code!r})")
    if "error" in result:
        raise result["error"]
    return result["value"]


class OutputError(ValueError):
    """A metric returned something other than one finite-or-not number per image."""


def as_scores(values: Any, n: int) -> list[float]:
    """``values`` as ``n`` Python floats (NaN kept), or an OutputError saying what is wrong."""
    if not isinstance(values, torch.Tensor):
        try:
            values = torch.as_tensor(values)
        except Exception:
            raise OutputError(f"returned {type(values).__name__}, not a tensor of {n} scores") \
                from None
    if values.is_complex() or values.dtype == torch.bool:
        raise OutputError(f"returned dtype {values.dtype}, not real scores")
    if tuple(values.shape) != (n,):
        raise OutputError(f"returned shape {tuple(values.shape)} for {n} images; expected ({n},)")
    return values.detach().to("cpu", torch.float64).tolist()


def _rows(t: torch.Tensor | None, k: int) -> torch.Tensor | None:
    return None if t is None else t[k : k + 1]


def score(metric: Metric, x: torch.Tensor, ref: torch.Tensor | None,
          labels: torch.Tensor | None = None) -> list[float | Failure]:
    """One outcome per row of ``x``: a finite float, or a :class:`Failure` saying why not."""
    state = _state(metric)
    n = x.shape[0]
    if state.broken is not None:
        return [state.broken] * n
    try:
        values = as_scores(call(metric, x, ref, labels), n)
    except MetricTimeout as exc:
        state.broken = Failure(f"{reason(exc)}; not called again in this process", "transient")
        return [Failure(reason(exc), "transient")] + [state.broken] * (n - 1)
    except OutputError as exc:
        return [Failure(reason(exc), "config")] * n
    except Exception as exc:
        if n == 1:
            return [failure(exc)]
        outs = [score(metric, x[k : k + 1], _rows(ref, k), _rows(labels, k))[0]
                for k in range(n)]
        return _blame_items(outs)
    kill_point("metric-call")
    outs: list[float | Failure] = [
        v if math.isfinite(v) else Failure(f"non-finite score {v}", "config") for v in values]
    if not state.checked and any(isinstance(o, float) for o in outs):
        state.checked = True
        k = next(k for k, o in enumerate(outs) if isinstance(o, float))
        why = _nondeterminism(metric, x[k : k + 1], _rows(ref, k), _rows(labels, k),
                              float(outs[k]))
        if why is not None:
            failed, final = why
            if final:
                state.broken = failed
            else:  # e.g. out of memory: check again on the next batch
                state.checked = False
            return [failed] * n
    return _blame_items(outs)


def _blame_items(outs: list[float | Failure]) -> list[float | Failure]:
    """Config failures become item failures when the same metric scored other items."""
    if not any(isinstance(o, float) for o in outs):
        return outs
    return [Failure(o, "item") if isinstance(o, Failure) and o.kind == "config" else o
            for o in outs]


def _nondeterminism(metric: Metric, x: torch.Tensor, ref: torch.Tensor | None,
                    labels: torch.Tensor | None, first: float) -> tuple[Failure, bool] | None:
    """Why ``metric``'s values cannot be kept (scored ``first`` in a batch), or None: it is not
    a function of its input, or the re-check itself could not be done (the real reason); with
    whether that is final for this process (False: check again on the next batch)."""
    recheck = "determinism re-check (one image scored again alone): "
    try:
        again = as_scores(call(metric, x, ref, labels), 1)[0]
    except MetricTimeout as exc:
        return Failure(f"{recheck}{reason(exc)}; values not kept, not called again in this "
                       "process", "transient"), True
    except OutputError as exc:
        return Failure(f"{recheck}{reason(exc)}; values not kept", "config"), True
    except Exception as exc:
        transient = kind_of(exc) == "transient"
        return Failure(f"{recheck}raised {reason(exc)}; values not kept",
                       "transient" if transient else "config"), not transient
    if not math.isfinite(again):
        return Failure(f"{recheck}non-finite score {again}; values not kept", "config"), True
    if math.isclose(again, first, rel_tol=DETERMINISM_RTOL, abs_tol=1e-9):
        return None
    return Failure(f"nondeterministic: the same image scored {first!r} in its batch and "
                   f"{again!r} alone; values discarded", "config"), True


# -- the engine's run -------------------------------------------------------------------------
def holding_run_lock(fn: Callable[..., T]) -> Callable[..., T]:
    """Decorate ``fn(store, run, ...)`` to run while holding the store's lock on ``run``, so two
    processes scoring the same run never compute (and write) the same keys twice."""

    @functools.wraps(fn)
    def locked(store: Any, run: str, *args: Any, **kwargs: Any) -> T:
        with store.run_lock(run):
            return fn(store, run, *args, **kwargs)

    return locked


def item_failure(text: str) -> Failure:
    """A failure the item itself causes (final)."""
    return Failure(text, "item")
