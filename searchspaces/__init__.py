"""Search spaces: encodings, official order and indices, networks, parameter counts.

>>> from nas.searchspaces import get_space
>>> space = get_space("nats-tss")
>>> str(space.from_index(0))
'|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|'

A space of your own subclasses :class:`SearchSpace` and registers with ``@register_space("name")``
inside a package whose ``pyproject.toml`` declares it in the ``zcnas.spaces`` entry-point group;
``nas score``, ``nas correlate`` and ``nas search`` then take ``--space name`` unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nas.errors import NasError
from nas.registry import Registry
from nas.searchspaces.base import SearchSpace

SPACES_GROUP = "zcnas.spaces"


def _is_space_class(obj: Any) -> bool:
    return isinstance(obj, type) and issubclass(obj, SearchSpace)


#: Every space: the built-ins (imported on first use, so listing spaces stays cheap) and plugins.
SPACES: Registry[type[SearchSpace]] = Registry(
    "search space",
    SPACES_GROUP,
    builtins={
        "nats-tss": "nas.searchspaces.nats_tss:NatsTSS",
        "nats-sss": "nas.searchspaces.nats_sss:NatsSSS",
        "nb101": "nas.searchspaces.nb101:NB101",
    },
    # names the field also uses
    aliases={
        "nb201": "nats-tss",
        "nasbench201": "nats-tss",
        "tss": "nats-tss",
        "sss": "nats-sss",
        "nasbench101": "nb101",
    },
    accept=_is_space_class,
)


def register_space(name: str | None = None) -> Callable[[type[SearchSpace]], type[SearchSpace]]:
    """Register a :class:`SearchSpace` subclass under ``name`` (default: its ``name`` attribute).
    A name registered twice (by two different sources) is an error naming both."""

    def decorate(cls: type[SearchSpace]) -> type[SearchSpace]:
        if not _is_space_class(cls):
            raise NasError(f"register_space: {cls!r} is not a SearchSpace subclass")
        if name:
            cls.name = name
        if not cls.name:
            raise NasError(f"register_space: {cls.__qualname__} needs a name")
        return SPACES.add(cls.name, cls)

    return decorate


def list_spaces() -> list[str]:
    """The registered space names (built-ins first, then plugins).

    >>> list_spaces()[:3]
    ['nats-tss', 'nats-sss', 'nb101']
    """
    names = SPACES.names()
    builtin = ["nats-tss", "nats-sss", "nb101"]
    return builtin + [n for n in names if n not in builtin]


def canonical_space_name(name: str) -> str:
    """The registered name a spelling means (``NB201`` -> ``nats-tss``)."""
    return SPACES.canonical(name)


def get_space(name: str, **params: Any) -> SearchSpace:
    """Create a space by name (``nats-tss``, ``nats-sss``, ``nb101``, a common alias, or a plugin's).

    >>> space = get_space("NB201")
    >>> space.name, space.size, space.num_params(space.from_index(9930))
    ('nats-tss', 15625, 1288506)
    """
    return SPACES.get(name)(**params)


__all__ = [
    "SearchSpace",
    "SPACES",
    "SPACES_GROUP",
    "get_space",
    "list_spaces",
    "canonical_space_name",
    "register_space",
]
