"""Contract checks for plugin authors: run them on your own space or proxy in your tests.

>>> from nas.testing import check_space, check_proxy
>>> from nas.searchspaces import get_space
>>> report = check_space(get_space("nats-sss"), samples=2)
>>> report["checked"]
['index order', 'strings', 'sampling and mutation', 'optuna encoding', 'network and params']
>>> check_proxy("params")["finite"]
True

Each check raises ``AssertionError`` with a message naming the architecture or proxy and what
broke, so it reads well under pytest; on success it returns what it checked.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from nas.errors import NasError


def _fail(what: str) -> AssertionError:
    return AssertionError(what)


def check_space(
    space: Any, samples: int = 5, seed: int = 0, num_classes: int = 10, input_size: int = 32, build: bool = True
) -> dict[str, Any]:
    """Check that ``space`` (a :class:`~nas.searchspaces.SearchSpace`) keeps the interface's
    promises on ``samples`` seeded random architectures:

    - official order: ``from_index(index_of(a)) == a`` (skipped where the space has no indices);
    - strings: ``parse(format(a)) == a``, ``resolve`` accepts the string, ``key`` is a stable str;
    - ``sample`` stays in the space, ``mutate`` returns a neighbour, neighbours differ from ``a``;
    - Optuna: ``decode(encode(a)) == a`` and ``suggest`` on a fixed trial gives ``a`` back;
    - ``build`` returns a module whose logits are ``(batch, num_classes)`` and whose trainable
      parameters number ``num_params(a)`` (skipped with ``build=False``).
    """
    import optuna

    from nas.searchspaces.base import SearchSpace

    if not isinstance(space, SearchSpace):
        raise _fail(f"{space!r} is not a nas.searchspaces.SearchSpace")
    if not space.name:
        raise _fail(f"{type(space).__name__} has no name")
    if not (isinstance(space.size, int) and space.size > 0):
        raise _fail(f"{space.name}: size must be a positive int, got {space.size!r}")
    rng = np.random.default_rng(seed)
    archs = [space.sample(rng) for _ in range(samples)]
    checked = []

    has_index = True
    for arch in archs:
        try:
            index = space.index_of(arch)
        except NasError:
            has_index = False
            break
        if not 0 <= index < space.size or space.from_index(index) != arch:
            raise _fail(f"{space.name}: from_index(index_of({arch})) is not {arch} (index {index})")
    if has_index:
        checked.append("index order")

    for arch in archs:
        text = space.format(arch)
        if space.parse(text) != arch or space.resolve(text) != arch:
            raise _fail(f"{space.name}: parse(format(a)) is not a for {text!r}")
        key = space.key(arch)
        if not isinstance(key, str) or key != space.key(space.parse(text)):
            raise _fail(f"{space.name}: key of {text!r} is not a stable string ({key!r})")
    checked.append("strings")

    for arch in archs:
        neighbours = space.neighbours(arch)
        if not neighbours or arch in neighbours:
            raise _fail(f"{space.name}: neighbours({arch}) is empty or holds the architecture itself")
        if space.mutate(arch, rng) not in neighbours:
            raise _fail(f"{space.name}: mutate({arch}) is not one of its neighbours")
        space.validate(space.sample(rng))
    checked.append("sampling and mutation")

    for arch in archs:
        params = space.encode(arch)
        if space.decode(params) != arch:
            raise _fail(f"{space.name}: decode(encode(a)) is not a for {arch}")
        if space.suggest(optuna.trial.FixedTrial(params)) != arch:
            raise _fail(f"{space.name}: suggest on a trial fixed to encode(a) is not a for {arch}")
    checked.append("optuna encoding")

    if build:
        import torch

        for arch in archs[:2]:
            torch.manual_seed(seed)
            model = space.build(arch, num_classes)
            if not isinstance(model, torch.nn.Module):
                raise _fail(f"{space.name}: build({arch}) returned {type(model).__name__}, not an nn.Module")
            with torch.no_grad():
                out = model(torch.randn(2, 3, input_size, input_size))
            logits = out[-1] if isinstance(out, (tuple, list)) else out
            if tuple(logits.shape) != (2, num_classes):
                raise _fail(
                    f"{space.name}: build({arch}) gives logits of shape {tuple(logits.shape)}, "
                    f"expected (2, {num_classes})"
                )
            counted = sum(p.numel() for p in model.parameters() if p.requires_grad)
            if space.num_params(arch, num_classes) != counted:
                raise _fail(
                    f"{space.name}: num_params({arch}) = {space.num_params(arch, num_classes)}, "
                    f"the built network has {counted}"
                )
        checked.append("network and params")
    return {"space": space.name, "size": space.size, "samples": samples, "checked": checked}


def check_proxy(
    proxy: Any, space: Any = "nats-tss", arch: Any = 0, seed: int = 0, batch_size: int = 8
) -> dict[str, Any]:
    """Check that a proxy (a name, a class or an instance) keeps the interface's promises on one
    architecture of ``space``:

    - it has a name, a bool ``higher_is_better``, a JSON-serialisable protocol, and its label
      parses back to the same proxy (``parse_proxy_spec``);
    - an unknown parameter is an error;
    - its score through :func:`nas.proxies.evaluate` is finite, and equal when scored again from
      the same seed (a score is a function of its protocol).
    """
    import torch

    from nas.data import InputSpec, load_batch
    from nas.proxies import evaluate, get_proxy, parse_proxy_spec
    from nas.proxies.base import Proxy
    from nas.searchspaces import get_space

    if isinstance(proxy, str):
        proxy = get_proxy(proxy)
    elif isinstance(proxy, type):
        proxy = proxy()
    if not isinstance(proxy, Proxy):
        raise _fail(f"{proxy!r} is not a nas.proxies.Proxy")
    if not proxy.name or not isinstance(proxy.higher_is_better, bool):
        raise _fail(f"{type(proxy).__name__}: needs a name and a bool higher_is_better")
    json.dumps(proxy.protocol())
    [(name, params)] = parse_proxy_spec(proxy.label())
    if get_proxy(name, **params).protocol() != proxy.protocol():
        raise _fail(f"{proxy.name}: its label {proxy.label()!r} does not parse back to the same proxy")
    try:
        type(proxy)(no_such_parameter=1)
    except NasError:
        pass
    else:
        raise _fail(f"{proxy.name}: an unknown parameter was accepted")

    space = get_space(space) if isinstance(space, str) else space
    cell = space.resolve(arch)
    batch = load_batch(InputSpec(batch_size=batch_size, seed=seed))
    values = []
    for _ in range(2):
        torch.manual_seed(seed)
        result = evaluate(proxy, space.build(cell, batch.num_classes), batch)
        if not result.ok:
            raise _fail(f"{proxy.label()} on {space.format(cell)}: {result.reason}")
        values.append(result.score)
    if not math.isfinite(values[0]) or values[0] != values[1]:
        raise _fail(
            f"{proxy.label()} on {space.format(cell)}: scores {values[0]!r} and {values[1]!r} from the same seed"
        )
    return {
        "proxy": proxy.label(),
        "space": space.name,
        "arch": space.format(cell),
        "score": values[0],
        "finite": True,
        "repeatable": True,
    }
