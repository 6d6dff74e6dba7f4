"""The one registry behind every kind of thing qbench creates by name.

Corruptions, metrics, explainers, architectures, datasets and studies are each a
:class:`Registry`: the same verbs (``names``, ``info``, ``get``), the same errors
(:class:`~qbench.errors.UnknownNameError` with "did you mean"), and the same ways in:

* ``reg.register(name, obj, info=...)`` -- an object, or a lazy ``"package.module:attr"``
  string that is imported only when first used (lm-evaluation-harness style), so a registry
  low in the layers can name an implementation that lives higher up without importing it;
* ``@reg.register(name, info=...)`` -- the same as a decorator;
* an installed package's entry point in the group ``qbench.<kind>`` (e.g.
  ``qbench.metrics``), read the first time a name is missed or all names are listed;
* ``reg.add_prefix("pyiqa", ...)`` -- a family of names resolved by a function
  (``pyiqa:<name>``, ``task:<model>:correct``), for families too large to enumerate.

``info(name)`` returns the entry's metadata without building it (a metric's weights are not
loaded, a dataset is not read); ``names(**filters)`` filters on metadata attributes
(``names(family="blur")``). ``frozen()`` is a read-only view for code that only looks up.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from qbench.errors import QbenchError, UnknownNameError

T = TypeVar("T")


class RegistryError(QbenchError):
    """A registration clashes, or a lazy entry / entry point cannot be imported."""


def import_attr(spec: str) -> Any:
    """The object named by ``"package.module:attr.sub"`` (a clear error when it is missing)."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise RegistryError(f"{spec!r} is not of the form package.module:attr")
    try:
        obj: Any = importlib.import_module(module_name)
    except (Exception, SystemExit) as exc:  # a plugin calling sys.exit is an error too
        raise RegistryError(f"{spec}: cannot import {module_name!r}: "
                            f"{type(exc).__name__}: {exc}") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise RegistryError(f"{spec}: {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


@dataclass
class _Entry:
    target: Any  # the object, or a "module:attr" string until first use
    info: Any  # metadata (or a callable obj -> metadata, resolved on first use)
    origin: str  # "builtin", "entry point <value>", "module:attr"


@dataclass(frozen=True)
class _Prefix:
    create: Callable[[str], Any]  # the rest of the name -> object
    info: Callable[[str], Any] | None
    names: Callable[[], list[str]] | None
    hint: str


class Registry(Generic[T], Mapping[str, T]):
    """Named objects of one kind, created or looked up the same way everywhere.

    ``info_of(obj)`` derives an entry's metadata from its object when registration gave none
    (e.g. a metric class's ``info`` attribute); a lazy entry is then imported -- not built --
    to read it.
    """

    def __init__(self, kind: str, *, group: str | None = None,
                 info_of: Callable[[Any], Any] | None = None) -> None:
        self.kind = kind
        self.group = group
        self._info_of = info_of or (lambda obj: obj)
        self._entries: dict[str, _Entry] = {}
        self._prefixes: dict[str, _Prefix] = {}
        self._plugins: dict[str, _Entry] = {}  # from entry points, refreshed when listed

    # -- adding ---------------------------------------------------------------------------
    def register(self, name: str, obj: Any = None, *, info: Any = None,
                 replace: bool = False) -> Any:
        """Register ``obj`` (an object or a lazy ``"module:attr"``) under ``name``.

        ``info`` is the metadata, or a lazy ``"module:attr"`` naming it (or a function of no
        arguments returning it, called on first use); without it the metadata is
        ``info_of(obj)``.

        Without ``obj`` this is a decorator. Registering a different object under a name that
        is taken is an error unless ``replace=True``.
        """
        if obj is None:
            def deco(target: Any) -> Any:
                self.register(name, target, info=info, replace=replace)
                return target
            return deco
        old = self._entries.get(name)
        if old is not None and isinstance(old.target, str) and old.target == _origin(obj):
            replace = True  # a lazy entry's module registering the object it names
        if old is not None and not replace and old.target is not obj:
            raise RegistryError(f"{self.kind} {name!r} is registered twice "
                                f"({old.origin} and {_origin(obj)})")
        self._entries[name] = _Entry(obj, info if info is not None else
                                     (old.info if old is not None and replace else None),
                                     _origin(obj))
        return obj

    def add_prefix(self, prefix: str, create: Callable[[str], Any], *,
                   info: Callable[[str], Any] | None = None,
                   names: Callable[[], list[str]] | None = None, hint: str = "") -> None:
        """Resolve every ``prefix:rest`` name with ``create(rest)`` (and ``info(rest)``)."""
        self._prefixes[prefix] = _Prefix(create, info, names, hint or f"{prefix}:<name>")

    # -- looking up -----------------------------------------------------------------------
    def _read_entry_points(self) -> None:
        """Refresh the installed plugins (a package installed or removed since is seen)."""
        if self.group is None:
            return
        found = {ep.name: ep for ep in entry_points(group=self.group)}
        old = self._plugins
        self._plugins = {n: old[n] if n in old and old[n].origin == f"entry point {ep.value}"
                         else _Entry(ep, None, f"entry point {ep.value}")
                         for n, ep in found.items() if n not in self._entries}

    def _entry(self, name: str) -> _Entry:
        if name in self._entries:
            return self._entries[name]
        self._read_entry_points()
        if name not in self._plugins:
            raise self.unknown(name)
        return self._plugins[name]

    def _resolve(self, name: str, entry: _Entry) -> Any:
        target = entry.target
        if isinstance(target, str):
            target = import_attr(target)
        elif hasattr(target, "load") and hasattr(target, "group"):  # an EntryPoint
            try:
                target = target.load()
            except (Exception, SystemExit) as exc:
                raise RegistryError(f"entry point {name!r} ({entry.origin}) failed to load: "
                                    f"{type(exc).__name__}: {exc}") from None
        entry.target = target
        return target

    def prefix_of(self, name: str) -> tuple[_Prefix, str] | None:
        """The prefix family that resolves ``name`` and the rest of the name, if any."""
        head, sep, rest = name.partition(":")
        if sep and rest and head in self._prefixes:
            return self._prefixes[head], rest
        return None

    def get(self, name: str) -> T:
        """The registered object (class, factory or instance) called ``name``."""
        pre = self.prefix_of(name)
        if pre is not None:
            return pre[0].create(pre[1])
        if name not in self._entries and ":" in name:
            self._read_entry_points()
            if name not in self._plugins:
                return import_attr(name)  # any importable object, by "module:attr"
        entry = self._entry(name)
        return self._resolve(name, entry)

    def info(self, name: str) -> Any:
        """The metadata of ``name`` without building it."""
        pre = self.prefix_of(name)
        if pre is not None:
            if pre[0].info is None:
                raise RegistryError(f"{self.kind} {name!r}: no metadata without creating it")
            return pre[0].info(pre[1])
        self._read_entry_points()
        entry = (self._entry(name) if name in self._entries or name in self._plugins
                 or ":" not in name else None)
        if entry is None:
            return self._info_of(self.get(name))
        if entry.info is None:
            entry.info = self._info_of(self._resolve(name, entry))
        elif isinstance(entry.info, str):  # lazy metadata: "module:attr", called if callable
            meta = import_attr(entry.info)
            entry.info = meta() if callable(meta) else meta
        return entry.info

    def names(self, *, prefixed: bool = False, **filters: Any) -> list[str]:
        """Registered names in registration order; ``filters`` match metadata attributes.

        ``prefixed=True`` also lists the names of prefix families that can enumerate them.
        """
        self._read_entry_points()
        out = list(self._entries) + list(self._plugins)
        if prefixed:
            for pre in self._prefixes.values():
                out += pre.names() if pre.names is not None else []
        if filters:
            out = [n for n in out
                   if all(getattr(self.info(n), k, None) == v for k, v in filters.items())]
        return out

    def unknown(self, name: str) -> UnknownNameError:
        """The error for a name this registry does not hold, with the closest known names."""
        known = [*self._entries, *self._plugins, *(p.hint for p in self._prefixes.values())]
        candidates = [*self._entries, *self._plugins]
        pre = name.partition(":")[0]
        if pre in self._prefixes and self._prefixes[pre].names is not None:
            candidates += self._prefixes[pre].names()
        return UnknownNameError(self.kind, name, known, candidates=candidates)

    def frozen(self) -> Mapping[str, T]:
        """A read-only name -> object view (lazy entries are imported when read)."""
        return MappingProxyType({n: self.get(n) for n in self.names()})

    # -- Mapping protocol (name -> object) ------------------------------------------------
    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        if name in self._entries or self.prefix_of(name) is not None:
            return True
        self._read_entry_points()
        return name in self._plugins

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def plugins(self) -> list[str]:
        """Names that come from installed packages' entry points."""
        self._read_entry_points()
        return list(self._plugins)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self._entries)} entries)"


def _origin(obj: Any) -> str:
    if isinstance(obj, str):
        return obj
    mod = getattr(obj, "__module__", None) or type(obj).__module__
    return f"{mod}:{getattr(obj, '__qualname__', type(obj).__qualname__)}"
