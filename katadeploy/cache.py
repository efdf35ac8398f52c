"""Where katadeploy caches downloads, builds and tuning: ``$KATADEPLOY_CACHE`` (``~`` expanded) or
``~/.cache/katadeploy``.

Contract: :func:`cache_root` is the root (not created); :func:`cache_dir` joins ``parts`` below it and creates
the directory. These are the only definitions of the cache location.
"""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "KATADEPLOY_CACHE"


def cache_root() -> Path:
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "katadeploy"


def cache_dir(*parts: str) -> Path:
    path = cache_root().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
