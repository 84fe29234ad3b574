"""zcnas: zero-cost neural architecture search.

Score, rank and search neural architectures without training them:

>>> import nas
>>> nas.list_spaces()[:3]
['nats-tss', 'nats-sss', 'nb101']
>>> "near" in nas.list_proxies()
True
>>> space = nas.get_space("nats-tss")
>>> space.num_params(space.from_index(9930))
1288506

``nas.score``, ``nas.correlate`` and ``nas.search`` do what the ``nas`` commands do (see
:mod:`nas.api`). Importing ``nas`` does nothing else: every name below is loaded on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0.dev0"

# public name -> "module:attribute", imported on first use (PEP 562), so `import nas` is cheap
_EXPORTS = {
    "score": "nas.api:score",
    "correlate": "nas.api:correlate",
    "search": "nas.api:search",
    "get_space": "nas.searchspaces:get_space",
    "list_spaces": "nas.searchspaces:list_spaces",
    "register_space": "nas.searchspaces:register_space",
    "SearchSpace": "nas.searchspaces:SearchSpace",
    "get_proxy": "nas.proxies:get_proxy",
    "list_proxies": "nas.proxies:list_proxies",
    "register_proxy": "nas.proxies:register_proxy",
    "Proxy": "nas.proxies:Proxy",
    "Needs": "nas.proxies:Needs",
    "open_table": "nas.benchmarks:open_table",
    "import_benchmark": "nas.benchmarks:import_benchmark",
    "register_importer": "nas.benchmarks:register_importer",
    "register_sampler": "nas.strategies.samplers:register_sampler",
    "Score": "nas.records:Score",
    "ScoreTable": "nas.scoring:ScoreTable",
    "Correlation": "nas.correlation:Correlation",
    "SearchRun": "nas.search_report:SearchRun",
    "NasError": "nas.errors:NasError",
}

__all__ = [
    "Correlation",
    "NasError",
    "Needs",
    "Proxy",
    "Score",
    "ScoreTable",
    "SearchRun",
    "SearchSpace",
    "correlate",
    "get_proxy",
    "get_space",
    "import_benchmark",
    "list_proxies",
    "list_spaces",
    "open_table",
    "register_importer",
    "register_proxy",
    "register_sampler",
    "register_space",
    "score",
    "search",
    "__version__",
]

if TYPE_CHECKING:
    from nas.api import correlate, score, search
    from nas.benchmarks import import_benchmark, open_table, register_importer
    from nas.correlation import Correlation
    from nas.errors import NasError
    from nas.proxies import Needs, Proxy, get_proxy, list_proxies, register_proxy
    from nas.records import Score
    from nas.scoring import ScoreTable
    from nas.search_report import SearchRun
    from nas.searchspaces import SearchSpace, get_space, list_spaces, register_space
    from nas.strategies.samplers import register_sampler


def __getattr__(name: str) -> Any:
    target = _EXPORTS.get(name)
    if target is None:
        raise AttributeError(f"module 'nas' has no attribute {name!r}")
    module, _, attr = target.partition(":")
    value = getattr(import_module(module), attr)
    globals()[name] = value  # once loaded, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
