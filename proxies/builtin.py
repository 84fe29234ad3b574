"""Import every module of this package once, so each registers its proxies.

A new built-in proxy is a new module here with a ``@register_proxy``; nothing else to edit.
"""

import pkgutil
from importlib import import_module

import nas.proxies as _package

_SKIP = {"base", "builtin"}
for _module in pkgutil.iter_modules(_package.__path__):
    if _module.name not in _SKIP and not _module.name.startswith("_"):
        import_module(f"nas.proxies.{_module.name}")
