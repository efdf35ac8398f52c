"""Optional dependencies, imported on demand.

Contract: :func:`require` imports a module that belongs to an optional extra and, when it is missing, raises
:class:`~katadeploy.errors.MissingExtraError` naming the ``pip install 'katadeploy[extra]'`` command that fixes
it. Nothing here imports an optional package at module import time.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from katadeploy.errors import MissingExtraError


def require(module: str, extra: str, package: str | None = None) -> ModuleType:
    """Import ``module``; a missing module becomes a :class:`MissingExtraError` for ``extra``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(package or module.split(".")[0], extra) from exc


def available(module: str) -> bool:
    """True when ``module`` can be imported (without raising)."""
    try:
        importlib.import_module(module)
    except Exception:
        return False
    return True
