"""Zero-cost proxies: score a network at initialisation.

>>> from nas.proxies import get_proxy, list_proxies
>>> "params" in list_proxies()
True

This package never imports ``nas.benchmarks``: a zero-cost score never sees an accuracy.
"""

from nas.proxies.base import (
    ENTRY_POINT_GROUP,
    Needs,
    Proxy,
    ProxyResult,
    evaluate,
    get_proxy,
    list_proxies,
    parse_proxy_spec,
    protocol_digest,
    proxy_class,
    register_proxy,
)

__all__ = [
    "Proxy",
    "Needs",
    "ProxyResult",
    "register_proxy",
    "get_proxy",
    "list_proxies",
    "proxy_class",
    "parse_proxy_spec",
    "protocol_digest",
    "evaluate",
    "ENTRY_POINT_GROUP",
]
