"""Errors of the real-KataGo helpers.

Contract: every error raised on purpose by :mod:`katadeploy.engine.katago` derives from :class:`KataGoError`, a
:class:`~katadeploy.errors.KatadeployError`, so the CLI prints it as one line with the fix.
"""

from __future__ import annotations

from katadeploy.errors import KatadeployError


class KataGoError(KatadeployError):
    """The KataGo binary could not be installed, found or run."""


class KataGoNotFoundError(KataGoError):
    """No usable KataGo binary; the message says how to get one."""


class OpenCLMissingError(KataGoError):
    """No OpenCL runtime/driver; the message names the apt packages to install."""
