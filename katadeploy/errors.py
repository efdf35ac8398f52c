"""Error types shared across katadeploy.

Contract: every error that bad *user input* can trigger derives from :class:`KatadeployError`, so the CLI
can print one clear line and exit non-zero without a traceback. Programming errors stay ordinary exceptions.
"""

from __future__ import annotations


class KatadeployError(Exception):
    """Base class for errors caused by bad input or a missing dependency; the CLI prints them cleanly."""


class ModelFormatError(KatadeployError):
    """A KataGo model file is corrupt, truncated or unsupported.

    ``field`` names what was being read and ``offset`` is the byte offset in the (decompressed) stream.
    """

    def __init__(self, message: str, field: str | None = None, offset: int | None = None):
        self.message = message
        self.field = field
        self.offset = offset
        where = []
        if field is not None:
            where.append(f"field {field!r}")
        if offset is not None:
            where.append(f"byte offset {offset}")
        super().__init__(f"{message} ({', '.join(where)})" if where else message)


class PositionError(KatadeployError):
    """A position (analysis-query shaped) is invalid: bad vertex, illegal move, size out of range..."""

    def __init__(self, message: str, position_id: str | None = None):
        self.position_id = position_id
        super().__init__(f"position {position_id!r}: {message}" if position_id is not None else message)


class MissingExtraError(KatadeployError):
    """An optional dependency is missing; the message names the extra to install."""

    def __init__(self, package: str, extra: str):
        super().__init__(f"{package} is not installed; install it with: pip install 'katadeploy[{extra}]'")
