"""Errors and warnings of the analysis-engine client.

Contract
--------
* Every exception the client raises on purpose derives from :class:`EngineError`, itself a
  :class:`katadeploy.errors.KatadeployError`, so the CLI prints one line for it.
* :class:`EngineStartError` — the engine could not be started or did not become ready (bad command, bad
  config, model missing, start-up timeout). ``stderr_tail`` holds the engine's last stderr lines.
* :class:`EngineCrashed` — the engine process exited unexpectedly and the client gave up restarting it (or was
  configured not to). Every query that was still pending fails with it. ``stderr_tail`` holds the last stderr
  lines, ``returncode`` the exit status of the last process and ``restarts`` how many restarts were tried.
* :class:`QueryError` — KataGo answered a query with an ``error`` reply. ``field`` is the query field KataGo
  blames (``None`` for a general error) and ``query_id`` the id the caller gave the query.
* :class:`QueryTimeout` — a query's own deadline passed (the query is then terminated in the engine), or a
  caller-side wait ran out (the query keeps running). Also a builtin :class:`TimeoutError`.
* :class:`EngineClosed` — the engine was closed before the query finished, or it is used after ``close()``.
* :class:`EngineWarning` — a ``warnings`` category. KataGo's ``warning`` replies are turned into instances of it
  (with ``field`` and ``query_id``); the query they belong to still runs.
* :class:`SgfWarning` — re-exported from :mod:`katadeploy.go.sgf`, where it is defined.
"""

from __future__ import annotations

from collections.abc import Sequence

from katadeploy.errors import KatadeployError
from katadeploy.go.sgf import SgfWarning as SgfWarning  # one definition, in go


def _format_tail(tail: Sequence[str], limit: int = 15) -> str:
    lines = [line for line in tail if line.strip()][-limit:]
    if not lines:
        return ""
    return "\nlast engine stderr lines:\n  " + "\n  ".join(lines)


def _located(message: str, field: str | None, query_id: str | None) -> str:
    """``"query 'q1', field 'komi': <message>"`` — KataGo's text prefixed with what it refers to."""
    parts = []
    if query_id is not None:
        parts.append(f"query {query_id!r}")
    if field is not None:
        parts.append(f"field {field!r}")
    return f"{', '.join(parts)}: {message}" if parts else message


class EngineError(KatadeployError):
    """Base class of every error raised by the analysis-engine client."""


class EngineStartError(EngineError):
    """The engine process could not be started or did not become ready.

    ``stderr_tail`` is the list of the engine's last stderr lines (possibly empty) and ``returncode`` the exit
    status if the process exited during start-up (``None`` if it was still running, e.g. after a timeout).
    """

    def __init__(self, message: str, stderr_tail: Sequence[str] = (), returncode: int | None = None):
        self.stderr_tail: list[str] = list(stderr_tail)
        self.returncode = returncode
        self.reason = message
        super().__init__(message + _format_tail(self.stderr_tail))


class EngineCrashed(EngineError):
    """The engine process exited unexpectedly and will not be restarted (any more).

    ``stderr_tail``: the last stderr lines of the engine; ``returncode``: the exit status of the last process
    (negative for a signal, ``None`` if unknown); ``restarts``: how many restarts were attempted before giving up.
    """

    def __init__(
        self,
        message: str,
        stderr_tail: Sequence[str] = (),
        returncode: int | None = None,
        restarts: int = 0,
    ):
        self.stderr_tail: list[str] = list(stderr_tail)
        self.returncode = returncode
        self.restarts = restarts
        self.reason = message
        super().__init__(message + _format_tail(self.stderr_tail))


class EngineClosed(EngineError):
    """The engine was closed (``close()``) before the operation could complete, or is used after closing."""


class QueryError(EngineError):
    """KataGo rejected a query (or action) with an ``error`` reply.

    ``message`` is KataGo's text, ``field`` the query field it names (``None`` for general errors) and
    ``query_id`` the id the caller gave the query (``None`` if the error could not be tied to a query).
    """

    def __init__(self, message: str, field: str | None = None, query_id: str | None = None):
        self.message = message
        self.field = field
        self.query_id = query_id
        super().__init__(_located(message, field, query_id))


class QueryTimeout(EngineError, TimeoutError):
    """A query did not finish in time.

    ``query_id`` is the caller's id of the query, ``timeout`` the limit in seconds, and ``terminated`` tells
    whether the client terminated the query in the engine (per-query deadline) or merely stopped waiting
    (caller-side wait; the query is still running).
    """

    def __init__(self, query_id: str | None, timeout: float | None, terminated: bool):
        self.query_id = query_id
        self.timeout = timeout
        self.terminated = terminated
        what = "timed out" if terminated else "still running after waiting"
        limit = f" {timeout:g} s" if timeout is not None else ""
        tail = " (terminated in the engine)" if terminated else ""
        super().__init__(f"query {query_id!r} {what}{limit}{tail}")


class EngineWarning(UserWarning):
    """Warning category for KataGo ``warning`` replies and for recoverable protocol problems.

    Instances carry ``message`` (KataGo's text), ``field`` (the query field it names, if any) and ``query_id``
    (the caller's id of the query, if any).
    """

    def __init__(self, message: str, field: str | None = None, query_id: str | None = None):
        self.message = message
        self.field = field
        self.query_id = query_id
        super().__init__(_located(message, field, query_id))
