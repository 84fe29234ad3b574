"""Where zcnas keeps its files: ``$NAS_HOME``, else the user's cache directory."""

from __future__ import annotations

import os
from pathlib import Path


def nas_home() -> Path:
    """The root folder for imported benchmark tables and score stores.

    ``$NAS_HOME`` wins; otherwise ``$XDG_CACHE_HOME/zcnas`` or ``~/.cache/zcnas``.
    The folder is not created here; writers create what they need.
    """
    env = os.environ.get("NAS_HOME")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "zcnas"
