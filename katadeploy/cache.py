"""Where katadeploy caches downloads: ``$KATADEPLOY_CACHE`` or ``~/.cache/katadeploy``."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    root = Path(os.environ.get("KATADEPLOY_CACHE") or Path.home() / ".cache" / "katadeploy")
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
