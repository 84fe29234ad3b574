"""One extension pattern for every kind of plugin: proxies, search spaces, benchmark importers
and samplers.

Each kind has one :class:`Registry`. Inside the project an object registers with the kind's
decorator (``@register_proxy``, ``@register_space``, ...); outside it, a package declares an
entry point in the kind's group (``zcnas.proxies``, ``zcnas.spaces``, ``zcnas.importers``,
``zcnas.samplers``) naming a module whose import registers its objects, or the object itself
(registered under the entry point's name).

>>> from nas.registry import Registry
>>> colours = Registry("colour", group="example.colours")
>>> @colours.decorator()
... def red():
...     return "#f00"
>>> colours.names(), colours.get("red")()
(['red'], '#f00')
>>> colours.add("red", lambda: "#e00", source="my_package.red")
Traceback (most recent call last):
...
nas.errors.NasError: colour 'red' is registered twice: by nas.registry.red and by my_package.red; rename one of them

Built-ins are listed as ``"module:attr"`` references and imported on first use, so listing names
stays cheap. Registering a name twice from two different sources is an error naming both (a
plugin never silently replaces a built-in); the same source registering again (a module
reloaded) replaces its own entry.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from importlib import import_module
from typing import Any, Generic, TypeVar

from nas.errors import NasError

T = TypeVar("T")


def source_of(obj: Any) -> str:
    """``module.qualname`` of a class or function: where it was defined."""
    module = getattr(obj, "__module__", None) or "?"
    name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None) or type(obj).__name__
    return f"{module}.{name}"


class Registry(Generic[T]):
    """Named objects of one kind, from the project and from installed plugins.

    ``kind`` names the kind in messages ("proxy", "search space"); ``group`` is the entry-point
    group plugins declare; ``builtins`` maps names to ``"module:attr"`` references imported on
    first use; ``aliases`` maps other spellings to names (case and surrounding space never matter).
    ``accept`` tells whether an object loaded from an entry point is one of this kind;
    ``preload`` names a module whose import registers the built-ins (before any plugin).
    """

    def __init__(
        self,
        kind: str,
        group: str,
        builtins: dict[str, str] | None = None,
        aliases: dict[str, str] | None = None,
        accept: Callable[[Any], bool] | None = None,
        preload: str | None = None,
    ) -> None:
        self.kind = kind
        self._preload = preload
        self.group = group
        self._entries: dict[str, Any] = {}  # name -> object, or "module:attr" not yet imported
        self._sources: dict[str, str] = {}
        self._aliases: dict[str, str] = {}
        self._accept = accept
        self._plugins_loaded = False
        self._builtins_loaded = preload is None
        self._lock = threading.RLock()
        for name, ref in (builtins or {}).items():
            self._entries[name] = ref
            self._sources[name] = ref.replace(":", ".")
        for alias, name in (aliases or {}).items():
            self.alias(alias, name)

    # -- registering -------------------------------------------------------------------------
    def add(self, name: str, obj: T, source: str | None = None) -> T:
        """Register ``obj`` under ``name``; a second source for the same name is an error."""
        key = name.strip()
        if not key:
            raise NasError(f"a {self.kind} needs a non-empty name to be registered ({source_of(obj)})")
        source = source or source_of(obj)
        if not source.startswith("nas."):
            self._load_builtins()  # so that a user's name clashing with a built-in is caught now
        with self._lock:
            known = self._sources.get(key) or self._sources.get(self._aliases.get(key.lower(), ""))
            if known is not None and known != source:
                raise NasError(
                    f"{self.kind} {key!r} is registered twice: by {known} and by {source}; rename one of them"
                )
            self._entries[key] = obj
            self._sources[key] = source
        return obj

    def decorator(self, name: str | None = None, source: str | None = None) -> Callable[[T], T]:
        """``@registry.decorator("name")`` registers what it decorates (default: its ``__name__``)."""

        def decorate(obj: T) -> T:
            return self.add(name or getattr(obj, "name", None) or obj.__name__, obj, source)  # type: ignore[attr-defined]

        return decorate

    def alias(self, alias: str, name: str) -> None:
        """Another spelling of a registered name."""
        self._aliases[alias.strip().lower()] = name

    # -- looking up --------------------------------------------------------------------------
    def canonical(self, name: str) -> str:
        """The registered name a spelling means; an unknown one is an error listing the names."""
        self.load_plugins()
        text = name.strip()
        for candidate in (text, text.lower(), self._aliases.get(text.lower())):
            if candidate in self._entries:
                return candidate
        raise NasError(f"unknown {self.kind} {name!r}; expected one of {', '.join(self.names())}")

    def get(self, name: str) -> T:
        """The object registered under ``name`` (or one of its aliases)."""
        key = self.canonical(name)
        with self._lock:
            entry = self._entries[key]
            if isinstance(entry, str):  # a built-in, imported on first use
                module, _, attr = entry.partition(":")
                entry = getattr(import_module(module), attr)
                self._entries[key] = entry
        return entry

    def names(self) -> list[str]:
        """Every registered name, built-ins and plugins, sorted."""
        self.load_plugins()
        return sorted(self._entries)

    def source(self, name: str) -> str:
        """Where the object registered under ``name`` comes from."""
        return self._sources[self.canonical(name)]

    def __contains__(self, name: object) -> bool:
        try:
            self.canonical(str(name))
        except NasError:
            return False
        return True

    # -- built-ins -------------------------------------------------------------------------------
    def _load_builtins(self) -> None:
        with self._lock:
            if not self._builtins_loaded:
                self._builtins_loaded = True
                import_module(self._preload)  # type: ignore[arg-type]

    # -- plugins (entry points) --------------------------------------------------------------
    def load_plugins(self) -> None:
        """Import the built-ins (``preload``) and every installed entry point of this kind's
        group, once.

        A plugin that fails to import is a warning (one broken package must not break the tool);
        a plugin that registers a name already taken is an error naming both sources."""
        with self._lock:
            if self._plugins_loaded:
                return
            self._plugins_loaded = True
            self._load_builtins()
            for ep, origin in _entry_points(self.group):
                try:
                    loaded = ep.load()
                except NasError:
                    raise
                except Exception as err:
                    import warnings

                    warnings.warn(
                        f"zcnas: {self.kind} plugin {ep.name!r} ({ep.value}) failed to load: "
                        f"{type(err).__name__}: {err}",
                        stacklevel=2,
                    )
                    continue
                already = any(entry is loaded for entry in self._entries.values())
                if self._accept is not None and self._accept(loaded) and not already:
                    self.add(ep.name, loaded, f"{source_of(loaded)} (entry point {ep.name!r} of {origin})")


def _entry_points(group: str) -> Iterable[tuple[Any, str]]:
    """``(entry point, "distribution version")`` of one group, in a stable order."""
    from importlib.metadata import entry_points

    found = []
    for ep in entry_points(group=group):
        dist = getattr(ep, "dist", None)
        origin = f"{dist.name} {dist.version}" if dist is not None else "an installed package"
        found.append((ep, origin))
    return sorted(found, key=lambda pair: (pair[0].name, pair[1]))
