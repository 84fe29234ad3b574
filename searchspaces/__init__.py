"""Search spaces: encodings, official order and indices, networks, parameter counts.

>>> from nas.searchspaces import get_space
>>> space = get_space("nats-tss")
>>> str(space.from_index(0))
'|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|'
"""
from __future__ import annotations

from importlib import import_module

from nas.errors import NasError
from nas.searchspaces.base import SearchSpace

# name -> "module:Class"; imported on first use so listing spaces stays cheap.
_SPACES = {
    "nats-tss": "nas.searchspaces.nats_tss:NatsTSS",
    "nats-sss": "nas.searchspaces.nats_sss:NatsSSS",
    "nb101": "nas.searchspaces.nb101:NB101",
}
# Names the field also uses.
_ALIASES = {"nb201": "nats-tss", "nasbench201": "nats-tss", "tss": "nats-tss", "sss": "nats-sss",
            "nasbench101": "nb101"}


def list_spaces() -> list[str]:
    """The registered space names."""
    return list(_SPACES)


def canonical_space_name(name: str) -> str:
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in _SPACES:
        raise NasError(f"unknown search space {name!r}; expected one of {', '.join(_SPACES)}")
    return key


def get_space(name: str, **params) -> SearchSpace:
    """Create a space by name (``nats-tss``, ``nats-sss``, ``nb101`` or a common alias)."""
    module, cls = _SPACES[canonical_space_name(name)].split(":")
    return getattr(import_module(module), cls)(**params)


__all__ = ["SearchSpace", "get_space", "list_spaces", "canonical_space_name"]
