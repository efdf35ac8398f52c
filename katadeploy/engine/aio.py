"""asyncio client for KataGo's analysis engine: :class:`AsyncAnalysisEngine`.

Contract
--------
* Same engine core and semantics as :class:`~katadeploy.engine.AnalysisEngine` (matching, restarts, deadlines,
  errors); only the waiting differs. Replies are handed to the event loop with ``call_soon_threadsafe``, so
  every future, callback and iterator below is resolved *on the loop* that submitted the query.
* ``AsyncAnalysisEngine(command, **options)`` does not start anything; ``await engine.start()`` or
  ``async with AsyncAnalysisEngine(...) as engine`` does (the blocking start-up runs in the default executor).
* :meth:`AsyncAnalysisEngine.submit` never blocks: it returns an :class:`AsyncQueryHandle` that can be awaited
  (one-turn queries), or asked for ``results()`` / ``as_completed()`` / ``stream()``.
* :meth:`AsyncAnalysisEngine.analyze`, :meth:`~AsyncAnalysisEngine.analyze_turns` and
  :meth:`~AsyncAnalysisEngine.stream` are the convenient forms. Cancelling a task awaiting ``analyze`` /
  ``analyze_turns``, or leaving a ``stream`` early, terminates the query in the engine.
* ``on_partial`` callbacks run on the event loop; their exceptions are logged.
* ``await engine.close()`` is idempotent; it runs the blocking shutdown in the default executor while replies
  keep being delivered to the loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
import warnings
import weakref
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
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


class _LoopSink:
    """Base: forwards core outcomes (any thread) to the loop."""

    __slots__ = ("loop",)

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop

    def _call(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            self.loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # loop closed: nobody is waiting any more
            pass


class _AsyncQuerySink(_LoopSink):
    __slots__ = ("futures", "callback", "stream", "warnings", "wants_partials")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        turns: tuple[int, ...],
        callback: PartialCallback | None,
        stream: asyncio.Queue[Any] | None,
    ):
        super().__init__(loop)
        self.futures: dict[int, asyncio.Future[AnalysisResponse]] = {t: loop.create_future() for t in turns}
        self.callback = callback
        self.stream = stream
        self.warnings: list[EngineWarning] = []
        self.wants_partials = callback is not None or stream is not None

    # core side (any thread)
    def on_partial(self, response: AnalysisResponse) -> None:
        self._call(self._partial, response)

    def on_final(self, turn: int, response: AnalysisResponse) -> None:
        self._call(self._final, turn, response)

    def on_error(self, exc: BaseException, turns: tuple[int, ...]) -> None:
        self._call(self._error, exc, turns)

    def on_warning(self, warning: EngineWarning) -> None:
        self._call(self.warnings.append, warning)

    # loop side
    def _partial(self, response: AnalysisResponse) -> None:
        if self.callback is not None:
            try:
                self.callback(response)
            except Exception:
                log.exception("on_partial callback failed")
        if self.stream is not None:
            self.stream.put_nowait(response)

    def _final(self, turn: int, response: AnalysisResponse) -> None:
        future = self.futures.get(turn)
        if future is not None and not future.done():
            future.set_result(response)
        if self.stream is not None:
            self.stream.put_nowait(response)

    def _error(self, exc: BaseException, turns: tuple[int, ...]) -> None:
        for turn in turns:
            future = self.futures.get(turn)
            if future is not None and not future.done():
                future.set_exception(exc)
        if self.stream is not None:
            self.stream.put_nowait(exc)


class _AsyncActionSink(_LoopSink):
    __slots__ = ("future",)
    wants_partials = False

    def __init__(self, loop: asyncio.AbstractEventLoop):
        super().__init__(loop)
        self.future: asyncio.Future[dict[str, Any]] = loop.create_future()

    def on_reply(self, reply: dict[str, Any]) -> None:
        self._call(self._set, reply, None)

    def on_error(self, exc: BaseException, turns: tuple[int, ...]) -> None:
        self._call(self._set, None, exc)

    def on_warning(self, warning: EngineWarning) -> None:
        log.warning("engine warning for an action: %s", warning)

    def _set(self, reply: dict[str, Any] | None, exc: BaseException | None) -> None:
        if self.future.done():
            return
        if exc is not None:
            self.future.set_exception(exc)
        else:
            self.future.set_result(reply)  # type: ignore[arg-type]


async def _wait(future: asyncio.Future[Any], timeout: float | None, query_id: str) -> Any:
    if timeout is None:
        return await asyncio.shield(future)
    try:
        return await asyncio.wait_for(asyncio.shield(future), timeout)
    except asyncio.TimeoutError:
        raise QueryTimeout(query_id, timeout, terminated=False) from None


class AsyncQueryHandle:
    """One submitted query; ``await handle`` gives the final reply of a one-turn query."""

    def __init__(self, engine: AsyncAnalysisEngine, pending: PendingQuery, sink: _AsyncQuerySink):
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
    def futures(self) -> dict[int, asyncio.Future[AnalysisResponse]]:
        """One asyncio future per turn."""
        return self._sink.futures

    @property
    def warnings(self) -> list[EngineWarning]:
        """KataGo warnings received for this query so far."""
        return self._sink.warnings

    def done(self) -> bool:
        """True once every turn has its final reply or failed."""
        return all(f.done() for f in self._sink.futures.values())

    def __await__(self) -> Any:
        return self.result().__await__()

    async def result(self, timeout: float | None = None) -> AnalysisResponse:
        """Final reply of a one-turn query; ``timeout`` bounds only the wait. ``ValueError`` for several turns."""
        if len(self.turns) != 1:
            raise ValueError(f"query {self.id!r} analyses {len(self.turns)} turns; use results()")
        try:
            return await _wait(self._sink.futures[self.turns[0]], timeout, self.id)
        finally:
            self._emit_warnings()

    async def results(self, timeout: float | None = None) -> list[AnalysisResponse]:
        """Final replies of all turns in turn order; ``timeout`` bounds the whole wait."""
        deadline = time.monotonic() + timeout if timeout is not None else None
        out = []
        try:
            for turn in self.turns:
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                out.append(await _wait(self._sink.futures[turn], left, self.id))
        finally:
            self._emit_warnings()
        return out

    async def as_completed(self) -> AsyncIterator[AnalysisResponse]:
        """Final replies in the order the turns finish (raises the first failure)."""
        try:
            for next_done in asyncio.as_completed(list(self._sink.futures.values())):
                yield await next_done
        finally:
            self._emit_warnings()

    async def terminate(self, turn_numbers: Iterable[int] | None = None, wait: bool = True) -> None:
        """Terminate this query (or some of its turns) in the engine."""
        await self._engine.terminate(self, turn_numbers=turn_numbers, wait=wait)

    def _emit_warnings(self) -> None:
        if not self._warned and self._sink.warnings:
            self._warned = True
            for warning in self._sink.warnings:
                warnings.warn(warning, stacklevel=4)

    def __repr__(self) -> str:
        state = "done" if self.done() else "pending"
        return f"<AsyncQueryHandle id={self.id!r} turns={list(self.turns)} {state}>"


class AsyncAnalysisEngine(EngineStatus):
    """asyncio client for one KataGo analysis engine process (see module contract)."""

    def __init__(self, command: Sequence[str | PathLike[str]], **options: Any):
        self._core = EngineCore(EngineOptions(command=command, **options))
        self._finalizer = weakref.finalize(self, _finalize, self._core)

    # ------------------------------------------------------------------------------------------- lifecycle

    async def start(self) -> AsyncAnalysisEngine:
        """Start the engine and wait until it is ready; raises :class:`EngineStartError`."""
        loop = asyncio.get_running_loop()
        task = loop.run_in_executor(None, self._core.start)
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(lambda _: self._core.close(timeout=1.0))
            raise
        return self

    async def close(self, timeout: float | None = None, finish_pending: bool = False) -> None:
        """Stop the engine (idempotent); see :meth:`AnalysisEngine.close`."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._core.close, timeout, finish_pending)

    async def __aenter__(self) -> AsyncAnalysisEngine:
        if self._core.state == "new":
            await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # ------------------------------------------------------------------------------------------- status

    # ------------------------------------------------------------------------------------------- queries

    def submit(
        self,
        query: QueryLike,
        *,
        timeout: float | None | object = _DEFAULT,
        on_partial: PartialCallback | None = None,
        _stream: asyncio.Queue[Any] | None = None,
        _single: bool = False,
    ) -> AsyncQueryHandle:
        """Send a query; must be called from the loop that will wait for it. See :meth:`AnalysisEngine.submit`."""
        loop = asyncio.get_running_loop()
        wire = query_to_dict(query)
        turns = expected_turns(wire)
        if _single and len(turns) != 1:
            raise ValueError(f"the query analyses {len(turns)} turns; use analyze_turns()")
        sink = _AsyncQuerySink(loop, turns, on_partial, _stream)
        pending = self._core.submit_query(wire, sink, timeout)
        return AsyncQueryHandle(self, pending, sink)

    async def analyze(
        self,
        query: QueryLike,
        *,
        timeout: float | None | object = _DEFAULT,
        on_partial: PartialCallback | None = None,
    ) -> AnalysisResponse:
        """Analyse one position and return its final reply. Cancelling terminates the query."""
        handle = self.submit(query, timeout=timeout, on_partial=on_partial, _single=True)
        try:
            return await handle.result()
        except asyncio.CancelledError:
            self._terminate_quietly(handle)
            raise

    async def analyze_turns(
        self,
        query: QueryLike,
        *,
        timeout: float | None | object = _DEFAULT,
        on_partial: PartialCallback | None = None,
    ) -> list[AnalysisResponse]:
        """Analyse every turn of ``analyzeTurns``; one final reply per turn, in turn order."""
        handle = self.submit(query, timeout=timeout, on_partial=on_partial)
        try:
            return await handle.results()
        except asyncio.CancelledError:
            self._terminate_quietly(handle)
            raise

    async def stream(
        self, query: QueryLike, *, timeout: float | None | object = _DEFAULT
    ) -> AsyncIterator[AnalysisResponse]:
        """Async iterator of partial and final replies; ends after the last final reply.

        Leaving the loop early (``break``, cancellation) terminates the query.
        """
        q: asyncio.Queue[Any] = asyncio.Queue()
        handle = self.submit(query, timeout=timeout, _stream=q)
        left = set(handle.turns)
        try:
            while left:
                item = await q.get()
                if isinstance(item, BaseException):
                    raise item
                if not item.is_during_search:
                    left.discard(item.turn_number)
                yield item
        finally:
            if left and not handle.done():
                self._terminate_quietly(handle)
            handle._emit_warnings()

    def _terminate_quietly(self, handle: AsyncQueryHandle) -> None:
        try:
            loop = handle._sink.loop
            self._core.terminate([handle._pending], None, lambda: _AsyncActionSink(loop))
        except Exception:  # engine closed or crashed: nothing left to terminate
            pass

    # ------------------------------------------------------------------------------------------- actions

    async def terminate(
        self,
        target: AsyncQueryHandle | str,
        *,
        turn_numbers: Iterable[int] | None = None,
        wait: bool = True,
    ) -> None:
        """Terminate a query (handle, or every pending query with that caller id); see the sync engine."""
        loop = asyncio.get_running_loop()
        if isinstance(target, AsyncQueryHandle):
            targets = [target._pending]
        else:
            targets = self._core.find_queries(target)
        if targets:
            actions = self._core.terminate(targets, turn_numbers, lambda: _AsyncActionSink(loop))
            if wait:
                await asyncio.gather(*(a.sink.future for a in actions))  # type: ignore[attr-defined]

    async def terminate_all(self, *, turn_numbers: Iterable[int] | None = None, wait: bool = True) -> None:
        """Terminate every query in flight, optionally only ``turn_numbers``."""
        loop = asyncio.get_running_loop()
        actions = self._core.terminate(None, turn_numbers, lambda: _AsyncActionSink(loop))
        if wait:
            await asyncio.gather(*(a.sink.future for a in actions))  # type: ignore[attr-defined]

    async def send_action(
        self, action: str, *, timeout: float | None | object = _DEFAULT, **fields: Any
    ) -> dict[str, Any]:
        """Send ``query_version``, ``query_models`` or ``clear_cache``; the raw echo."""
        sink = _AsyncActionSink(asyncio.get_running_loop())
        self._core.submit_action(action, fields, sink, timeout)
        return await sink.future

    async def query_version(self) -> VersionInfo:
        """KataGo's ``version`` and ``git_hash``."""
        return VersionInfo(await self.send_action("query_version"))

    async def query_models(self) -> list[ModelInfo]:
        """The loaded models."""
        reply = await self.send_action("query_models")
        return [ModelInfo(m) for m in reply.get("models") or ()]

    async def clear_cache(self) -> None:
        """Empty KataGo's neural-net cache."""
        await self.send_action("clear_cache")

    def __repr__(self) -> str:
        return f"<AsyncAnalysisEngine {self.state} pid={self.pid} pending={self.pending_count}>"


def _finalize(core: EngineCore) -> None:
    try:
        core.close(timeout=1.0)
    except Exception:  # pragma: no cover
        pass


__all__ = ["AsyncAnalysisEngine", "AsyncQueryHandle"]
