"""The proxy interface, the registry, and plugin discovery.

A proxy scores a network at initialisation: ``score(model, batch) -> float``. It declares its
name, its direction, and what it needs (labels, gradients, train or eval mode), so callers can
prepare the network the same way every time. Two ways to write one:

>>> from nas.proxies import register_proxy, Needs
>>> @register_proxy("weight_count", needs=Needs(inputs=False))
... def weight_count(model, batch):
...     return float(sum(p.numel() for p in model.parameters()))

or subclass :class:`Proxy` (for parameters with defaults) and decorate the class. Third-party
packages register theirs through the ``zcnas.proxies`` entry-point group; the entry point
names a module or object whose import registers the proxy.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from nas.errors import NasError
from nas.records import Score
from nas.registry import Registry, source_of

if TYPE_CHECKING:
    from torch import nn

    from nas.data import Batch, InputSpec
    from nas.searchspaces.base import SearchSpace

ENTRY_POINT_GROUP = "zcnas.proxies"


@dataclass(frozen=True)
class Needs:
    """What a proxy needs from its caller."""

    inputs: bool = True  # a batch of inputs (False: it looks at the weights only)
    labels: bool = False  # the batch's labels (loss-based proxies)
    gradients: bool = False  # it calls backward; gradients are zeroed before it runs
    mode: str = "train"  # network mode while scoring: "train" (BatchNorm uses batch
    # statistics, as the benchmarks' proxies do) or "eval"
    network: bool = True  # False: an evaluator with weights of its own (a trained supernet) that
    # scores the architecture itself: ``score_architecture`` is called, no network is built


class Proxy:
    """Base class of proxies. Class attributes describe it; ``defaults`` are its parameters."""

    name: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    higher_is_better: ClassVar[bool] = True
    needs: ClassVar[Needs] = Needs()
    defaults: ClassVar[dict[str, Any]] = {}
    description: ClassVar[str] = ""
    positional: ClassVar[str | None] = None  # the parameter that bare arguments fill, if any
    population: ClassVar[bool] = False  # True: scores are defined over a set of networks
    #: The relative difference its score may show on another machine (other CPU kernels, other
    #: summation orders), measured across CPU settings (docs/proxies.md, scripts/score_variation.py);
    #: archived scores are verified against it (``--verify tolerant``).
    tolerance: ClassVar[float] = 1e-6

    def __init__(self, **params: Any) -> None:
        unknown = set(params) - set(self.defaults)
        if unknown:
            expected = ", ".join(self.defaults) or "none"
            raise NasError(
                f"proxy {self.name}: unknown parameter(s) {', '.join(sorted(unknown))}; it takes: {expected}"
            )
        self.params = {**self.defaults, **params}

    def score(self, model: nn.Module, batch: Batch) -> float:
        raise NotImplementedError

    def score_architecture(self, space: SearchSpace, arch: Any, inputs: InputSpec, device: str) -> float:
        """The score of ``arch`` itself, for a proxy whose ``needs.network`` is False (it brings
        its own weights; ``inputs`` says where its images are)."""
        raise NotImplementedError

    def inputs_protocol(self, inputs: InputSpec) -> dict[str, Any]:
        """What of ``inputs`` its scores depend on (all of it, unless the proxy says less)."""
        return inputs.protocol()

    def shared_pass(self) -> Callable | None:
        """``run`` when this proxy's score can come out of a pass shared with other proxies:
        proxies with the same ``run``, mode, version and parameters are scored on one network by
        one call ``run(proxies, model, batch)``, which returns their scores in order and must
        equal what each ``score`` returns alone. None (the default): scored alone."""
        return None

    def label(self) -> str:
        """``near`` for default parameters, ``near(repetitions=8)`` otherwise."""
        changed = {k: v for k, v in self.params.items() if self.defaults.get(k) != v}
        if not changed:
            return self.name
        return f"{self.name}(" + ",".join(f"{k}={v}" for k, v in sorted(changed.items())) + ")"

    def protocol(self) -> dict[str, Any]:
        """What identifies this proxy's scores (name, version, parameters)."""
        return {"name": self.name, "version": self.version, "params": dict(sorted(self.params.items()))}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{self.name}({args})"


def _is_proxy_class(obj: Any) -> bool:
    return isinstance(obj, type) and issubclass(obj, Proxy) and bool(obj.name)


#: Every proxy: built-ins (registered by importing ``nas.proxies.builtin``) and plugins.
PROXIES: Registry[type[Proxy]] = Registry(
    "proxy", ENTRY_POINT_GROUP, accept=_is_proxy_class, preload="nas.proxies.builtin"
)


def register_proxy(
    name: str | None = None,
    *,
    higher_is_better: bool = True,
    needs: Needs = Needs(),
    version: str = "1",
    defaults: dict[str, Any] | None = None,
    description: str = "",
    tolerance: float = 1e-6,
) -> Callable:
    """Register a :class:`Proxy` subclass or a function ``f(model, batch, **params) -> float``.
    A name registered twice (by two different sources) is an error naming both."""

    def decorate(obj):
        if isinstance(obj, type) and issubclass(obj, Proxy):
            cls = obj
            if name:
                cls.name = name
        else:
            fn = obj
            cls = type(
                f"{fn.__name__}_proxy",
                (Proxy,),
                {
                    "name": name or fn.__name__,
                    "higher_is_better": higher_is_better,
                    "needs": needs,
                    "version": version,
                    "defaults": dict(defaults or {}),
                    "tolerance": tolerance,
                    "description": description or (fn.__doc__ or "").strip().split("\n")[0],
                    "score": lambda self, model, batch: fn(model, batch, **self.params),
                    "__module__": fn.__module__,
                },
            )
        if not cls.name:
            raise ValueError(f"{obj!r} needs a name to be registered")
        PROXIES.add(cls.name, cls, source_of(obj))
        return obj

    return decorate


def list_proxies() -> list[str]:
    """Names of all registered proxies, built-in and plugins.

    >>> {"near", "nlc", "synflow", "zico"} <= set(list_proxies())
    True
    """
    return PROXIES.names()


def proxy_class(name: str) -> type[Proxy]:
    """The class registered under a proxy name."""
    return PROXIES.get(name)


def proxy_tolerance(label: str) -> float:
    """The documented cross-machine tolerance of the proxy a label names (``zico(...)`` ->
    zico's); labels of no registered proxy get the default."""
    name = label.split("(", 1)[0].strip()
    return PROXIES.get(name).tolerance if name in PROXIES else Proxy.tolerance


def get_proxy(name: str, **params: Any) -> Proxy:
    """Create a proxy by name, with parameters other than its defaults.

    >>> proxy = get_proxy("near", repetitions=8)
    >>> proxy.label(), proxy.higher_is_better
    ('near(repetitions=8)', True)
    """
    return proxy_class(name)(**params)


_CALL = re.compile(r"^\s*([A-Za-z_][\w\-]*)\s*(?:\((.*)\))?\s*$", re.S)


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside parentheses: ``"a,b(c=1,d=2)"`` -> ``["a", "b(c=1,d=2)"]``."""
    parts, depth, current = [], 0, ""
    for ch in text:
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        depth += ch == "("
        depth -= ch == ")"
        current += ch
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def parse_proxy_spec(text: str) -> list[tuple[str, dict[str, Any]]]:
    """``"near,nlc(samples=500),synflow"`` -> [(name, params), ...]. Values are JSON literals
    (numbers, true/false, quoted strings) or bare words. A proxy that declares a ``positional``
    parameter also takes bare arguments: ``"ensemble(near,zico)"`` -> ``("ensemble",
    {"proxies": ["near", "zico"]})``."""
    out = []
    for part in _split_top_level(text):
        match = _CALL.match(part)
        if not match:
            raise NasError(f"cannot parse proxy {part!r}; expected NAME or NAME(key=value, ...)")
        name, args = match.group(1), match.group(2)
        params: dict[str, Any] = {}
        bare: list[str] = []
        for item in _split_top_level(args or ""):
            key, sep, value = item.partition("=")
            if not sep or "(" in key:
                bare.append(item)
                continue
            try:
                params[key.strip()] = json.loads(value.strip())
            except json.JSONDecodeError:
                params[key.strip()] = value.strip()
        if bare:
            positional = getattr(proxy_class(name), "positional", None)
            if not positional:
                raise NasError(f"proxy {name}: argument {bare[0]!r} is not key=value")
            params[positional] = bare
        out.append((name, params))
    if not out:
        raise NasError("no proxy given")
    return out


def protocol_digest(protocol: dict[str, Any]) -> str:
    """A short stable hash of a protocol dict (the score store's key)."""
    text = json.dumps(protocol, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


#: A proxy's result is the project's one score record (kept under this name for callers).
ProxyResult = Score


def evaluate(proxy: Proxy, model: nn.Module, batch: Batch) -> ProxyResult:
    """Run a proxy the way it declared, timing it; NaN, infinite scores and errors become
    failed results with their reason (never a silently ranked number)."""
    return evaluate_together([proxy], model, batch)[0]


def evaluate_architecture(proxy: Proxy, space: SearchSpace, arch: Any, inputs: InputSpec, device: str) -> ProxyResult:
    """:func:`evaluate` for a proxy that scores the architecture itself (``needs.network`` False)."""
    start = time.perf_counter()
    try:
        value = float(proxy.score_architecture(space, arch, inputs, device))
    except NasError:
        raise
    except Exception as err:  # one architecture failing must not stop a run
        return ProxyResult(math.nan, time.perf_counter() - start, "failed", f"{type(err).__name__}: {err}")
    seconds = time.perf_counter() - start
    if not math.isfinite(value):
        return ProxyResult(value, seconds, "failed", f"non-finite score {value}")
    return ProxyResult(value, seconds)


def shared_groups(proxies: Sequence[Proxy]) -> list[list[Proxy]]:
    """The proxies in groups that one pass scores (see :meth:`Proxy.shared_pass`), in the order
    of their first member; a proxy without a shared pass is a group of its own."""
    groups: dict[Hashable, list[Proxy]] = {}
    for i, proxy in enumerate(proxies):
        run = proxy.shared_pass()
        # equal parameters: the same inputs, initialisation and draws, so one pass serves all
        key = (run, proxy.needs.mode, proxy.version, protocol_digest(proxy.params)) if run else i
        groups.setdefault(key, []).append(proxy)
    return list(groups.values())


def evaluate_together(proxies: Sequence[Proxy], model: nn.Module, batch: Batch) -> list[ProxyResult]:
    """Score one group of :func:`shared_groups` on ``model`` as :func:`evaluate` scores one
    proxy. The pass's time is split evenly among its proxies (their sum is what it cost); an
    error fails every proxy of the group, a non-finite score only its own."""
    first = proxies[0]
    model.train(first.needs.mode == "train")
    if any(p.needs.gradients for p in proxies):
        model.zero_grad(set_to_none=True)
    start = time.perf_counter()
    try:
        if len(proxies) == 1:
            values = [float(first.score(model, batch))]
        else:
            run = first.shared_pass()
            values = [float(v) for v in run(list(proxies), model, batch)]
    except NasError:
        raise
    except Exception as err:  # a proxy failing on one network must not stop a run
        seconds = (time.perf_counter() - start) / len(proxies)
        return [ProxyResult(math.nan, seconds, "failed", f"{type(err).__name__}: {err}") for _ in proxies]
    seconds = (time.perf_counter() - start) / len(proxies)
    return [
        ProxyResult(v, seconds) if math.isfinite(v) else ProxyResult(v, seconds, "failed", f"non-finite score {v}")
        for v in values
    ]
