"""Synchronous (thread-based) client for KataGo's analysis engine: :class:`AnalysisEngine`.

Contract
--------
* ``AnalysisEngine(command, **options)`` starts the process and returns once it is ready (``start=False``
  defers that to :meth:`AnalysisEngine.start`); ``options`` are the fields of
  :class:`~katadeploy.engine.options.EngineOptions`. It is a context manager; :meth:`close` is idempotent.
* :meth:`submit` never blocks on the engine: it sends the query and returns a :class:`QueryHandle` whose
  ``futures`` (one :class:`concurrent.futures.Future` per analysed turn) resolve to final
  :class:`~katadeploy.engine.protocol.AnalysisResponse` objects. ``on_partial`` receives partial reports
  (``reportDuringSearchEvery``) on the client's reader thread: keep it short, its exceptions are logged.
* :meth:`analyze` (one turn) and :meth:`analyze_turns` (``analyzeTurns``, one reply per turn, in turn order)
  block until done; :meth:`stream` yields partial and final replies as they come and ends after the last final
  reply (leaving the loop early terminates the query).
* A terminated turn still resolves with a reply: KataGo's partial result, or one with ``no_results`` true if
  the search had not started. Failures resolve futures with exceptions: :class:`QueryError` (KataGo ``error``),
  :class:`QueryTimeout` (per-query ``timeout``), :class:`EngineCrashed`, :class:`EngineClosed`. Warnings
  (KataGo ``warning`` replies) are collected in ``QueryHandle.warnings`` and issued with ``warnings.warn``
  (category :class:`EngineWarning`) by the first ``result()``/``results()`` call on the handle.
* Actions (:meth:`query_version`, :meth:`query_models`, :meth:`clear_cache`, :meth:`terminate`,
  :meth:`terminate_all`) block until KataGo acknowledges them, at most ``action_timeout`` seconds.
* Thread safety: every method may be called from any thread. Waiting methods must not be called from
  ``on_partial`` callbacks (they run on the thread that delivers replies).
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import queue
import time
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from os import PathLike
from types import TracebackType
from typing import Any

from katadeploy.engine.core import _DEFAULT, EngineCore, EngineStatus
from katadeploy.engine.errors import EngineWarning, QueryTimeout
from katadeploy.engine.options import EngineOptions
from katadeploy.engine.pending import PendingQuery
from katadeploy.engine.protocol import (
    AnalysisQuery,
    AnalysisResponse,
    ModelInfo,
    VersionInfo,
    expected_turns,
    query_to_dict,
)

log = logging.getLogger("katadeploy.engine")

QueryLike = AnalysisQuery | Mapping[str, Any]
PartialCallback = Callable[[AnalysisResponse], None]


class _QuerySink:
    """Turns core outcomes into concurrent futures (+ optional callback and stream queue)."""

    __slots__ = ("futures", "callback", "stream", "warnings", "wants_partials")

    def __init__(
        self,
        turns: tuple[int, ...],
        callback: PartialCallback | None,
        stream: queue.SimpleQueue[Any] | None,
    ):
        self.futures: dict[int, cf.Future[AnalysisResponse]] = {t: cf.Future() for t in turns}
        self.callback = callback
        self.stream = stream
        self.warnings: list[EngineWarning] = []
        self.wants_partials = callback is not None or stream is not None

    def on_partial(self, response: AnalysisResponse) -> None:
        if self.callback is not None:
            try:
                self.callback(response)
            except Exception:
                log.exception("on_partial callback failed")
        if self.stream is not None:
            self.stream.put(response)

    def on_final(self, turn: int, response: AnalysisResponse) -> None:
        future = self.futures.get(turn)
        if future is not None and not future.done():
            future.set_result(response)
        if self.stream is not None:
            self.stream.put(response)

    def on_error(self, exc: BaseException, turns: tuple[int, ...]) -> None:
        for turn in turns:
            future = self.futures.get(turn)
            if future is not None and not future.done():
                future.set_exception(exc)
        if self.stream is not None:
            self.stream.put(exc)

    def on_warning(self, warning: EngineWarning) -> None:
        self.warnings.append(warning)


class _ActionSink:
    """Resolves one concurrent future with an action's reply."""

    __slots__ = ("future",)
    wants_partials = False

    def __init__(self) -> None:
        self.future: cf.Future[dict[str, Any]] = cf.Future()

    def on_reply(self, reply: dict[str, Any]) -> None:
        if not self.future.done():
            self.future.set_result(reply)

    def on_error(self, exc: BaseException, turns: tuple[int, ...]) -> None:
        if not self.future.done():
            self.future.set_exception(exc)

    def on_warning(self, warning: EngineWarning) -> None:
        log.warning("engine warning for an action: %s", warning)


def _wait(future: cf.Future[Any], timeout: float | None, query_id: str | None) -> Any:
    try:
        return future.result(timeout)
    except cf.TimeoutError:
        if future.done():  # pragma: no cover - raised by the future itself
            raise
        raise QueryTimeout(query_id, timeout, terminated=False) from None


class QueryHandle:
    """One submitted query. ``id`` is the caller's id, ``turns`` the analysed turn numbers (ascending)."""

    def __init__(self, engine: AnalysisEngine, pending: PendingQuery, sink: _QuerySink):
        self._engine = engine
        self._pending = pending
        self._sink = sink
        self._warned = False

    @property
    def id(self) -> str:
        """The caller's id for the query (the internal wire id if none was given)."""
        return self._pending.user_id

    @property
    def turns(self) -> tuple[int, ...]:
        """Turn numbers this query analyses, ascending."""
        return self._pending.turns

    @property
    def futures(self) -> dict[int, cf.Future[AnalysisResponse]]:
        """One future per turn, resolving to the final reply of that turn."""
        return self._sink.futures

    @property
    def warnings(self) -> list[EngineWarning]:
        """KataGo warnings received for this query so far."""
        return self._sink.warnings

    def done(self) -> bool:
        """True once every turn has its final reply or failed."""
        return all(f.done() for f in self._sink.futures.values())

    def result(self, timeout: float | None = None) -> AnalysisResponse:
        """Final reply of a one-turn query. ``timeout`` limits the wait only (the query keeps running).

        Raises ``ValueError`` if the query analyses several turns (use :meth:`results`).
        """
        if len(self.turns) != 1:
            raise ValueError(f"query {self.id!r} analyses {len(self.turns)} turns; use results()")
        try:
            return _wait(self._sink.futures[self.turns[0]], timeout, self.id)
        finally:
            self._emit_warnings()

    def results(self, timeout: float | None = None) -> list[AnalysisResponse]:
        """Final replies of all turns, in turn order; ``timeout`` bounds the whole wait."""
        deadline = time.monotonic() + timeout if timeout is not None else None
        out = []
        try:
            for turn in self.turns:
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                out.append(_wait(self._sink.futures[turn], left, self.id))
        finally:
            self._emit_warnings()
        return out

    def as_completed(self, timeout: float | None = None) -> Iterator[AnalysisResponse]:
        """Final replies in the order the turns finish (raises the first failure)."""
        try:
            for future in cf.as_completed(self._sink.futures.values(), timeout):
                yield future.result()
        except cf.TimeoutError:
            raise QueryTimeout(self.id, timeout, terminated=False) from None
        finally:
            self._emit_warnings()

    def terminate(self, turn_numbers: Iterable[int] | None = None, wait: bool = True) -> None:
        """Terminate this query (or some of its turns) in the engine; see :meth:`AnalysisEngine.terminate`."""
        self._engine.terminate(self, turn_numbers=turn_numbers, wait=wait)

    def _emit_warnings(self) -> None:
        if not self._warned and self._sink.warnings:
            self._warned = True
            for warning in self._sink.warnings:
                warnings.warn(warning, stacklevel=4)

    def __repr__(self) -> str:
        state = "done" if self.done() else "pending"
        return f"<QueryHandle id={self.id!r} turns={list(self.turns)} {state}>"


class AnalysisEngine(EngineStatus):
    """Synchronous client for one KataGo analysis engine process (see module contract)."""

    def __init__(self, command: Sequence[str | PathLike[str]], *, start: bool = True, **options: Any):
        self._core = EngineCore(EngineOptions(command=command, **options))
        self._finalizer = weakref.finalize(self, _finalize, self._core)
        if start:
            self.start()

    # ------------------------------------------------------------------------------------------- lifecycle

    def start(self) -> AnalysisEngine:
        """Start the engine and wait until it is ready; raises :class:`EngineStartError`."""
        self._core.start()
        return self

    def close(self, timeout: float | None = None, finish_pending: bool = False) -> None:
        """Stop the engine (idempotent). Unless ``finish_pending``, queries in flight are terminated first.

        Queries that still have no reply when the process is gone fail with :class:`EngineClosed`.
        """
        self._core.close(timeout, finish_pending)

    def __enter__(self) -> AnalysisEngine:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------- status

    # ------------------------------------------------------------------------------------------- queries

    def submit(
        self,
        query: QueryLike,
        *,
        timeout: float | None | object = _DEFAULT,
        on_partial: PartialCallback | None = None,
        _stream: queue.SimpleQueue[Any] | None = None,
        _single: bool = False,
    ) -> QueryHandle:
        """Send a query and return its handle at once.

        ``timeout``: per-query deadline in seconds (default ``query_timeout``; ``None`` = none); when it passes
        the query is terminated and its unfinished turns fail with :class:`QueryTimeout`.
        """
        wire = query_to_dict(query)
        turns = expected_turns(wire)
        if _single and len(turns) != 1:
            raise ValueError(f"the query analyses {len(turns)} turns; use analyze_turns()")
        sink = _QuerySink(turns, on_partial, _stream)
        pending = self._core.submit_query(wire, sink, timeout)
        return QueryHandle(self, pending, sink)

    def analyze(
        self,
        query: QueryLike,
        *,
        timeout: float | None | object = _DEFAULT,
        on_partial: PartialCallback | None = None,
    ) -> AnalysisResponse:
        """Analyse one position and return its final reply (for ``analyzeTurns`` use :meth:`analyze_turns`)."""
        return self.submit(query, timeout=timeout, on_partial=on_partial, _single=True).result()

    def analyze_turns(
        self,
        query: QueryLike,
        *,
        timeout: float | None | object = _DEFAULT,
        on_partial: PartialCallback | None = None,
    ) -> list[AnalysisResponse]:
        """Analyse every turn of ``analyzeTurns``; one final reply per turn, in turn order."""
        return self.submit(query, timeout=timeout, on_partial=on_partial).results()

    def stream(
        self, query: QueryLike, *, timeout: float | None | object = _DEFAULT
    ) -> Iterator[AnalysisResponse]:
        """Yield partial and final replies as they arrive; stops after the last turn's final reply.

        Closing the generator early (``break``) terminates the query in the engine.
        """
        q: queue.SimpleQueue[Any] = queue.SimpleQueue()
        handle = self.submit(query, timeout=timeout, _stream=q)
        left = set(handle.turns)
        try:
            while left:
                item = q.get()
                if isinstance(item, BaseException):
                    raise item
                if not item.is_during_search:
                    left.discard(item.turn_number)
                yield item
        finally:
            if left and not handle.done():
                try:
                    self.terminate(handle, wait=False)
                except Exception:  # engine already closed or crashed
                    pass
            handle._emit_warnings()

    # ------------------------------------------------------------------------------------------- actions

    def terminate(
        self,
        target: QueryHandle | str,
        *,
        turn_numbers: Iterable[int] | None = None,
        wait: bool = True,
    ) -> None:
        """Terminate a query (a handle, or every pending query with that caller id), optionally some turns.

        Works whether the query is searching or still queued; its turns then end with partial or ``noResults``
        replies. With ``wait`` the call returns once KataGo acknowledged the action.
        """
        if isinstance(target, QueryHandle):
            targets = [target._pending]
        else:
            targets = self._core.find_queries(target)
        if targets:
            actions = self._core.terminate(targets, turn_numbers, _ActionSink)
            if wait:
                for action in actions:
                    action.sink.future.result()  # type: ignore[attr-defined]

    def terminate_all(self, *, turn_numbers: Iterable[int] | None = None, wait: bool = True) -> None:
        """Terminate every query in flight (queued or searching), optionally only ``turn_numbers``."""
        actions = self._core.terminate(None, turn_numbers, _ActionSink)
        if wait:
            for action in actions:
                action.sink.future.result()  # type: ignore[attr-defined]

    def send_action(
        self, action: str, *, timeout: float | None | object = _DEFAULT, **fields: Any
    ) -> cf.Future[dict[str, Any]]:
        """Send ``query_version``, ``query_models`` or ``clear_cache`` and return a future of the raw echo."""
        sink = _ActionSink()
        self._core.submit_action(action, fields, sink, timeout)
        return sink.future

    def query_version(self) -> VersionInfo:
        """KataGo's ``version`` and ``git_hash``."""
        return VersionInfo(self.send_action("query_version").result())

    def query_models(self) -> list[ModelInfo]:
        """The loaded models (main model first, then the human SL model if any)."""
        reply = self.send_action("query_models").result()
        return [ModelInfo(m) for m in reply.get("models") or ()]

    def clear_cache(self) -> None:
        """Empty KataGo's neural-net cache; returns once KataGo has done it."""
        self.send_action("clear_cache").result()

    def __repr__(self) -> str:
        return f"<AnalysisEngine {self.state} pid={self.pid} pending={self.pending_count}>"


def _finalize(core: EngineCore) -> None:
    """Close an engine that was garbage-collected (or left open at exit) without waiting long."""
    try:
        core.close(timeout=1.0)
    except Exception:  # pragma: no cover
        pass


__all__ = ["AnalysisEngine", "QueryHandle"]
