"""The engine core shared by :class:`~katadeploy.engine.AnalysisEngine` and the asyncio engine.

It supervises one engine process at a time and matches replies to queries. It is thread-based and does no
waiting on behalf of callers: outcomes go to per-query sinks (see :mod:`katadeploy.engine.pending`), which the
sync and async front ends turn into futures, callbacks and iterators.

Contract
--------
* Wire ids. Every query and action gets a fresh wire id (``q<n>``/``a<n>``) on its way out; replies are matched
  on it (and on ``turnNumber``), whatever order they come in, and the caller's own id (any string, duplicates
  allowed; the wire id when none is given) is written back into each reply. A late reply for a query that
  already ended (timed out, failed) can therefore never be mistaken for another query's.
* States: ``new -> starting -> running <-> restarting``, then ``closing -> closed``, or ``failed`` (gave up
  restarting; terminal until closed). :meth:`submit_query` / :meth:`submit_action` raise
  :class:`EngineClosed` once closing and the stored :class:`EngineCrashed` once failed. While starting or
  restarting, submissions are held and sent when the process is ready.
* Start-up: :meth:`start` spawns the process and waits for readiness (``ready_pattern`` on stderr, then the
  optional ``query_version`` probe). Early exit, a start-up timeout, or a command that cannot be executed raise
  :class:`EngineStartError` carrying the stderr tail; the process is killed.
* Crashes: when the process's stdout ends while the core is running (the process exited, or closed stdout and
  is killed), it is restarted — at most ``max_restarts`` times within ``restart_window`` seconds, after an
  exponential backoff. Queries still in flight are re-sent for their unfinished turns only (turns the caller
  terminated end locally with a ``noResults`` reply), at most ``1 + max_restarts`` sends per query. Pending
  ``terminate``/``terminate_all`` actions are acknowledged locally; other actions are re-sent. When restarts are
  exhausted (or a restart cannot start), every pending query and action fails with one :class:`EngineCrashed`
  carrying the stderr tail.
* Errors and warnings: an ``error`` reply with a known id fails that query (all its unfinished turns) with
  :class:`QueryError`; a ``warning`` reply goes to the query's sink. Replies that cannot be tied to a query
  (garbage lines, non-object JSON, unknown ids, unexpected turns) are counted in :attr:`stats`, logged, and
  otherwise ignored; an id-less ``error`` is additionally issued as an :class:`EngineWarning`.
* Deadlines: a query or action whose deadline passes fails with :class:`QueryTimeout`; a query is also
  terminated in the engine (fire-and-forget).
* :meth:`close` is idempotent and thread-safe, and returns within about ``timeout + 10`` seconds whatever the
  engine does: unless ``finish_pending``, it first sends ``terminate_all``; it then closes stdin, waits up to
  ``timeout`` for the process to exit, then SIGTERMs and SIGKILLs it. Replies that arrive before the process is
  gone are delivered; anything still pending then fails with :class:`EngineClosed`.
* Sinks are always called without the core's lock held, from the reader, timer or calling thread.
"""

from __future__ import annotations

import itertools
import logging
import re
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from katadeploy.engine.deadlines import Deadlines
from katadeploy.engine.errors import (
    EngineClosed,
    EngineCrashed,
    EngineError,
    EngineStartError,
    EngineWarning,
    QueryError,
    QueryTimeout,
)
from katadeploy.engine.options import EngineOptions
from katadeploy.engine.pending import ActionSink, NullSink, PendingAction, PendingQuery, QuerySink
from katadeploy.engine.process import EngineProcess
from katadeploy.engine.protocol import (
    ACTIONS,
    AnalysisResponse,
    dumps,
    expected_turns,
    loads,
    no_results_reply,
)

log = logging.getLogger("katadeploy.engine")
stderr_log = logging.getLogger("katadeploy.engine.stderr")

NEW, STARTING, RUNNING, RESTARTING, FAILED, CLOSING, CLOSED = (
    "new",
    "starting",
    "running",
    "restarting",
    "failed",
    "closing",
    "closed",
)

_WIRE_ID_IN_TEXT = re.compile(r'"id"\s*:\s*"([qa][0-9]+)"')
_DEFAULT = object()


@dataclass
class EngineStats:
    """Counters of one engine client (monotonic; read them any time)."""

    submitted: int = 0
    completed: int = 0
    failed: int = 0
    partials: int = 0
    finals: int = 0
    actions: int = 0
    errors: int = 0
    warnings: int = 0
    timeouts: int = 0
    restarts: int = 0
    resent: int = 0
    junk_lines: int = 0
    unmatched: int = 0
    unexpected: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counters as a plain dict."""
        return dict(self.__dict__)


class EngineCore:
    """Process supervisor and reply dispatcher (see module contract)."""

    def __init__(self, options: EngineOptions):
        self.options = options.validated()
        self.stats = EngineStats()
        self._lock = threading.Lock()
        self._state = NEW
        self._proc: EngineProcess | None = None
        self._procs: list[EngineProcess] = []
        self._generations = itertools.count()
        self._ids = itertools.count(1)
        self._pending: dict[str, PendingQuery | PendingAction] = {}
        self._stderr: deque[str] = deque(maxlen=self.options.stderr_lines)
        self.junk_samples: deque[str] = deque(maxlen=20)
        self._restart_times: deque[float] = deque()
        self._crash: EngineCrashed | None = None
        self._closing = threading.Event()
        self._closed = threading.Event()
        self._deadlines = Deadlines(self._on_deadline, self._pending.__contains__)

    # ================================================================================================ status

    @property
    def state(self) -> str:
        """One of ``new, starting, running, restarting, failed, closing, closed``."""
        return self._state

    @property
    def pid(self) -> int | None:
        """Process id of the current engine process (``None`` when there is none)."""
        proc = self._proc
        return proc.pid if proc is not None else None

    @property
    def pending_count(self) -> int:
        """Number of queries and actions in flight."""
        return len(self._pending)

    def stderr_tail(self, n: int | None = None) -> list[str]:
        """The last ``n`` (default: all kept) stderr lines, oldest first."""
        lines = list(self._stderr)
        return lines if n is None else lines[-n:] if n > 0 else []

    def find_queries(self, user_id: str) -> list[PendingQuery]:
        """Pending queries the caller named ``user_id``."""
        with self._lock:
            return [p for p in self._pending.values() if not p.is_action and p.user_id == user_id]  # type: ignore[union-attr]

    # ================================================================================================ start

    def start(self) -> None:
        """Spawn the engine and wait until it is ready (see contract). Not restartable after close."""
        with self._lock:
            if self._state != NEW:
                raise EngineError(f"engine cannot be started in state {self._state!r}")
            self._state = STARTING
        try:
            callbacks = self._spawn_ready(STARTING)
        except BaseException as exc:
            with self._lock:
                if self._state == STARTING:
                    self._state = CLOSED
                items = self._take_all_locked()
            self._fail_items(
                items, exc if isinstance(exc, EngineError) else EngineClosed("engine failed to start")
            )
            self._deadlines.stop()
            self._closed.set()
            raise
        self._run(callbacks)

    def _spawn_ready(self, expected_state: str) -> list[Callable[[], None]]:
        """Spawn a process, wait for readiness and make it the live one (sending everything pending to it).

        Only if the core is still in ``expected_state``: otherwise (closed meanwhile) raise :class:`EngineClosed`.
        On failure the process is killed and :class:`EngineStartError` raised. Returns the sink callbacks to run.
        """
        opts = self.options
        proc = EngineProcess(
            opts.command,
            generation=next(self._generations),
            on_line=self._on_line,
            on_eof=self._on_eof,
            on_stderr=self._on_stderr,
            on_junk=self._on_junk,
            ready_pattern=opts.compiled_ready,
            env=opts.env,
            cwd=opts.cwd,
            max_line_bytes=opts.max_line_bytes,
            max_stderr_line_bytes=opts.max_stderr_line_bytes,
        )
        try:
            proc.spawn()
        except OSError as exc:
            raise EngineStartError(f"cannot execute {opts.command[0]!r}: {exc}") from exc
        with self._lock:
            self._procs.append(proc)
        deadline = time.monotonic() + opts.start_timeout
        try:
            self._wait_until(proc, proc.ready.is_set, deadline, "the ready line")
            if opts.probe:
                box: list[Any] = []
                done = threading.Event()
                sink = _EventSink(box, done)
                action = self._new_action("query_version", {}, sink, None)
                with self._lock:
                    self._pending[action.wire_id] = action
                    action.sends = 1
                    action.generation = proc.generation
                proc.send(action.line)
                try:
                    self._wait_until(proc, done.is_set, deadline, "the reply to the query_version probe")
                finally:
                    with self._lock:
                        self._pending.pop(action.wire_id, None)
                if box and isinstance(box[0], BaseException):
                    raise EngineStartError(f"start-up probe failed: {box[0]}", self.stderr_tail(50))
            failure: BaseException | None = None
            with self._lock:
                if proc.stdout_eof:
                    failure = EngineStartError(
                        "engine closed its stdout during start-up", self.stderr_tail(50)
                    )
                elif self._state is not expected_state:
                    failure = EngineClosed("engine closed during start-up")
                else:
                    self._proc = proc
                    self._state = RUNNING
                    if expected_state is RESTARTING:
                        self.stats.restarts += 1
                    callbacks = self._send_unsent_locked(proc)
            if failure is not None:
                raise failure
        except BaseException:
            proc.kill()
            proc.wait(5.0)
            raise
        log.info("engine %s ready (%s)", proc.pid, " ".join(opts.command))
        return callbacks

    def _wait_until(self, proc: EngineProcess, cond: Callable[[], bool], deadline: float, what: str) -> None:
        while not cond():
            rc = proc.poll()
            if rc is None and proc.stdout_eof:
                rc = proc.wait(0.5)
                if rc is None:
                    raise EngineStartError("engine closed its stdout during start-up", self.stderr_tail(50))
            if rc is not None:
                if cond():
                    return
                proc.join_threads(2.0, stderr_only=True)
                tail = self.stderr_tail(50)
                cause = _likely_cause(tail)
                raise EngineStartError(
                    f"engine exited with code {rc} during start-up (before {what})"
                    + (f": {cause}" if cause else ""),
                    tail,
                    rc,
                )
            if self._closing.is_set():
                raise EngineClosed("engine closed during start-up")
            now = time.monotonic()
            if now >= deadline:
                raise EngineStartError(
                    f"engine not ready after {self.options.start_timeout:g} s (waiting for {what})",
                    self.stderr_tail(50),
                )
            time.sleep(min(0.02, deadline - now))

    # ================================================================================================ submit

    def submit_query(
        self,
        wire: dict[str, Any],
        sink: QuerySink,
        timeout: float | None | object = _DEFAULT,
    ) -> PendingQuery:
        """Register and send one analysis query given as a fresh wire dict (the dict is taken over).

        ``timeout``: seconds until the query fails with :class:`QueryTimeout` (default: the engine's
        ``query_timeout``; ``None``: no deadline). Raises ``ValueError`` for a malformed ``analyzeTurns`` or an
        ``action`` key, ``TypeError`` for a non-string id, :class:`EngineClosed` / :class:`EngineCrashed` when
        the engine cannot take queries. A query with an empty ``analyzeTurns`` ends at once without being sent.
        """
        if "action" in wire:
            raise ValueError("use the action methods (terminate, query_version, ...) to send actions")
        turns = expected_turns(wire)
        wire_id = f"q{next(self._ids)}"
        user_id = wire.get("id")
        if user_id is None:
            user_id = wire_id
        elif not isinstance(user_id, str):
            raise TypeError(f"query id must be a string, not {type(user_id).__name__}")
        wire["id"] = wire_id
        line = dumps(wire) + b"\n"
        if timeout is _DEFAULT:
            timeout = self.options.query_timeout
        deadline = time.monotonic() + timeout if timeout is not None else None  # type: ignore[operator]
        pending = PendingQuery(wire_id, user_id, wire, line, turns, sink, timeout, deadline, set(turns))  # type: ignore[arg-type]
        if not turns:
            self._check_open()
            return pending
        with self._lock:
            state = self._state
            if state is not RUNNING:
                self._check_open_locked()
            self._pending[wire_id] = pending
            self.stats.submitted += 1
            if state is RUNNING:
                proc = self._proc
                assert proc is not None
                pending.sends = 1
                pending.generation = proc.generation
                proc.send(line)
        if deadline is not None:
            self._deadlines.add(deadline, wire_id)
        return pending

    def submit_action(
        self,
        action: str,
        fields: Mapping[str, Any],
        sink: ActionSink,
        timeout: float | None | object = _DEFAULT,
    ) -> PendingAction:
        """Register and send one action (``query_version``, ``query_models``, ``clear_cache``).

        Use :meth:`terminate` / :meth:`terminate_all` for those two. ``timeout`` defaults to ``action_timeout``.
        """
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}; KataGo accepts {sorted(ACTIONS)}")
        if action in ("terminate", "terminate_all"):
            raise ValueError(f"use terminate()/terminate_all() for {action!r}")
        pending = self._new_action(action, fields, sink, timeout)
        with self._lock:
            self._check_open_locked()
            self._register_action_locked(pending)
        if pending.deadline is not None:
            self._deadlines.add(pending.deadline, pending.wire_id)
        return pending

    def terminate(
        self,
        targets: Iterable[PendingQuery] | None,
        turn_numbers: Iterable[int] | None,
        make_sink: Callable[[], ActionSink],
        timeout: float | None | object = _DEFAULT,
    ) -> list[PendingAction]:
        """Terminate ``targets`` (``None``: every query in flight, i.e. ``terminate_all``).

        ``turn_numbers`` restricts it to those turns. Terminated turns end with whatever KataGo reports
        (partial results, or ``noResults`` if the search had not started). While the engine is (re)starting,
        terminated turns end at once with a local ``noResults`` reply and the acknowledgement is local too.
        One ``terminate`` action is sent per target still in flight (a single ``terminate_all`` for ``None``),
        each with its own sink from ``make_sink()``. Returns those actions (``action.sink`` gets the ack).
        """
        turn_set = frozenset(turn_numbers) if turn_numbers is not None else None
        callbacks: list[Callable[[], None]] = []
        actions: list[PendingAction] = []
        with self._lock:
            self._check_open_locked()
            if targets is None:
                chosen = [p for p in self._pending.values() if not p.is_action]
                fields_list: list[tuple[str, dict[str, Any]]] = [("terminate_all", {})]
            else:
                chosen = [p for p in targets if self._pending.get(p.wire_id) is p]
                fields_list = [("terminate", {"terminateId": p.wire_id}) for p in chosen]
            for p in chosen:
                p.mark_terminated(turn_set)  # type: ignore[union-attr]
            running = self._state is RUNNING
            for name, fields in fields_list:
                if turn_set is not None:
                    fields["turnNumbers"] = sorted(turn_set)
                action = self._new_action(name, fields, make_sink(), timeout)
                actions.append(action)
                if running:
                    self._register_action_locked(action)
                else:
                    callbacks.append(_bind(action.sink.on_reply, dict(action.wire)))
            if not running:
                for p in chosen:
                    callbacks.extend(self._end_terminated_locked(p))  # type: ignore[arg-type]
        for action in actions:
            if running and action.deadline is not None:
                self._deadlines.add(action.deadline, action.wire_id)
        self._run(callbacks)
        return actions

    def _new_action(
        self, action: str, fields: Mapping[str, Any], sink: ActionSink, timeout: Any
    ) -> PendingAction:
        wire_id = f"a{next(self._ids)}"
        wire = dict(fields)
        wire["id"] = wire_id
        wire["action"] = action
        if timeout is _DEFAULT:
            timeout = self.options.action_timeout
        deadline = time.monotonic() + timeout if timeout is not None else None
        return PendingAction(wire_id, action, wire, dumps(wire) + b"\n", sink, timeout, deadline)

    def _register_action_locked(self, action: PendingAction) -> None:
        self._pending[action.wire_id] = action
        self.stats.actions += 1
        if self._state is RUNNING:
            proc = self._proc
            assert proc is not None
            action.sends = 1
            action.generation = proc.generation
            proc.send(action.line)

    def _check_open(self) -> None:
        with self._lock:
            self._check_open_locked()

    def _check_open_locked(self) -> None:
        state = self._state
        if state in (CLOSING, CLOSED):
            raise EngineClosed("the engine is closed")
        if state is FAILED:
            assert self._crash is not None
            raise _fresh(self._crash)
        if state is NEW:
            raise EngineError("the engine has not been started")

    # ================================================================================================ replies

    def _on_line(self, proc: EngineProcess, line: bytes) -> None:
        try:
            obj = loads(line)
        except ValueError:
            self._on_junk(proc, "not JSON: " + line[:200].decode("utf-8", "replace").rstrip())
            return
        if type(obj) is not dict:
            self._on_junk(proc, "JSON but not an object: " + line[:200].decode("utf-8", "replace").rstrip())
            return
        if "error" in obj:
            self._on_error_reply(obj)
            return
        if "warning" in obj:
            self._on_warning_reply(obj)
            return
        wire_id = obj.get("id")
        pending = self._pending.get(wire_id)  # type: ignore[arg-type]
        if pending is None:
            self.stats.unmatched += 1
            log.debug("reply for unknown or finished id %r dropped", wire_id)
            return
        if pending.is_action:
            with self._lock:
                if self._pending.get(wire_id) is not pending:  # type: ignore[arg-type]
                    return
                del self._pending[wire_id]  # type: ignore[arg-type]
            obj["id"] = pending.user_id
            pending.sink.on_reply(obj)  # type: ignore[union-attr]
            return
        turn = obj.get("turnNumber")
        if obj.get("isDuringSearch"):
            if pending.sink.wants_partials and (turn in pending.left or turn is None):  # type: ignore[union-attr]
                self.stats.partials += 1
                obj["id"] = pending.user_id
                pending.sink.on_partial(AnalysisResponse(obj))  # type: ignore[union-attr,call-arg]
            return
        with self._lock:
            if self._pending.get(wire_id) is not pending:  # type: ignore[arg-type]
                return
            left = pending.left  # type: ignore[union-attr]
            if turn not in left:
                if turn is None and len(left) == 1:
                    turn = next(iter(left))
                    obj["turnNumber"] = turn
                else:
                    self.stats.unexpected += 1
                    log.warning(
                        "engine reply for query %r has unexpected turnNumber %r; ignored",
                        pending.user_id,
                        turn,
                    )
                    return
            left.discard(turn)
            if not left:
                del self._pending[wire_id]  # type: ignore[arg-type]
                self.stats.completed += 1
            self.stats.finals += 1
        obj["id"] = pending.user_id
        pending.sink.on_final(turn, AnalysisResponse(obj))  # type: ignore[union-attr,arg-type]

    def _on_error_reply(self, obj: dict[str, Any]) -> None:
        self.stats.errors += 1
        message = str(obj.get("error"))
        field = obj.get("field")
        wire_id = obj.get("id")
        if wire_id is None:
            found = _WIRE_ID_IN_TEXT.search(message)
            wire_id = found.group(1) if found else None
        with self._lock:
            pending = self._pending.pop(wire_id, None) if isinstance(wire_id, str) else None
            if pending is not None:
                turns = tuple(sorted(pending.left)) if not pending.is_action else ()  # type: ignore[union-attr]
                if not pending.is_action:
                    pending.left.clear()  # type: ignore[union-attr]
                self.stats.failed += 1
        if pending is None:
            text = f"engine error not tied to a pending query: {message}"
            log.error(text)
            self.junk_samples.append(text)
            warnings.warn(EngineWarning(message, field if isinstance(field, str) else None), stacklevel=2)
            return
        exc = QueryError(message, field if isinstance(field, str) else None, pending.user_id)
        pending.sink.on_error(exc, turns)

    def _on_warning_reply(self, obj: dict[str, Any]) -> None:
        self.stats.warnings += 1
        message = str(obj.get("warning"))
        field = obj.get("field")
        field = field if isinstance(field, str) else None
        pending = self._pending.get(obj.get("id"))  # type: ignore[arg-type]
        if pending is None:
            log.warning("engine warning (no pending query): %s (field %r)", message, field)
            return
        log.debug("engine warning for query %r: %s (field %r)", pending.user_id, message, field)
        pending.sink.on_warning(EngineWarning(message, field, pending.user_id))

    def _on_junk(self, proc: EngineProcess, what: str) -> None:
        self.stats.junk_lines += 1
        self.junk_samples.append(what)
        if self.stats.junk_lines <= 10:
            log.warning("engine %s: ignored stdout line (%s)", proc.pid, what[:200])
        else:
            log.debug("engine %s: ignored stdout line (%s)", proc.pid, what[:200])

    def _on_stderr(self, proc: EngineProcess, text: str) -> None:
        self._stderr.append(text)
        stderr_log.debug("[%s] %s", proc.pid, text)

    # ================================================================================================ deadlines

    def _on_deadline(self, key: object) -> None:
        now = time.monotonic()
        callbacks: list[Callable[[], None]] = []
        with self._lock:
            pending = self._pending.get(key)  # type: ignore[arg-type]
            if pending is None or pending.deadline is None or pending.deadline > now:
                return
            del self._pending[key]  # type: ignore[arg-type]
            self.stats.timeouts += 1
            self.stats.failed += 1
            turns: tuple[int, ...] = ()
            if not pending.is_action:
                turns = tuple(sorted(pending.left))  # type: ignore[union-attr]
                pending.left.clear()  # type: ignore[union-attr]
                proc = self._proc
                if self._state is RUNNING and proc is not None and pending.generation == proc.generation:
                    term = self._new_action(
                        "terminate", {"terminateId": pending.wire_id}, NullSink(), _DEFAULT
                    )
                    self._register_action_locked(term)
                    if term.deadline is not None:
                        callbacks.append(_bind(self._deadlines.add, term.deadline, term.wire_id))
        exc = QueryTimeout(pending.user_id, pending.timeout, terminated=not pending.is_action)
        self._run(callbacks)
        pending.sink.on_error(exc, turns)

    # ================================================================================================ crashes

    def _on_eof(self, proc: EngineProcess) -> None:
        """Reader thread of ``proc`` hit EOF: if it is the live process, recover (restart or give up).

        A process still starting is left to :meth:`_spawn_ready`, which sees ``stdout_eof`` under the same lock.
        """
        with self._lock:
            proc.stdout_eof = True
            mine = proc is self._proc and self._state is RUNNING
        proc.close_stdin()  # lets its writer thread finish
        if not mine:
            return
        rc = proc.wait(0.5)
        if rc is None:
            log.warning("engine %s closed its stdout but is still running; killing it", proc.pid)
            proc.kill()
            rc = proc.wait(5.0)
        proc.join_threads(2.0, stderr_only=True)
        with self._lock:
            if proc is not self._proc or self._state is not RUNNING:
                return
            self._state = RESTARTING
            self._proc = None
        self._stderr.append(f"--- engine process {proc.pid} exited with code {rc} ---")
        log.warning("engine process %s exited unexpectedly with code %s", proc.pid, rc)
        self._recover(rc)

    def _recover(self, rc: int | None) -> None:
        opts = self.options
        tail = self.stderr_tail(50)
        cause: BaseException | None = None
        while True:
            now = time.monotonic()
            with self._lock:
                times = self._restart_times
                while times and now - times[0] > opts.restart_window:
                    times.popleft()
                allowed = len(times) < opts.max_restarts
                if allowed:
                    times.append(now)
                    attempt = len(times)
            if not allowed:
                self._give_up(rc, tail, cause)
                return
            delay = min(opts.backoff_max, opts.backoff_initial * 2 ** (attempt - 1))
            if self._closing.wait(delay):
                return
            try:
                callbacks = self._spawn_ready(RESTARTING)
            except EngineClosed:
                return
            except EngineStartError as exc:
                log.warning("engine restart failed: %s", exc.reason)
                cause, rc, tail = exc, exc.returncode, exc.stderr_tail or tail
                continue
            log.warning("engine restarted as process %s", self.pid)
            self._run(callbacks)
            return

    def _send_unsent_locked(self, proc: EngineProcess) -> list[Callable[[], None]]:
        """Send every pending item not yet sent to ``proc``; returns sink callbacks to run after unlocking."""
        callbacks: list[Callable[[], None]] = []
        limit = 1 + self.options.max_restarts
        for key, pending in list(self._pending.items()):
            if pending.generation == proc.generation:
                continue
            if pending.is_action:
                if pending.action in ("terminate", "terminate_all"):  # type: ignore[union-attr]
                    del self._pending[key]
                    callbacks.append(_bind(pending.sink.on_reply, dict(pending.wire)))  # type: ignore[union-attr]
                    continue
                line: bytes | None = pending.line
            else:
                callbacks.extend(self._end_terminated_locked(pending))  # type: ignore[arg-type]
                if key not in self._pending:
                    continue
                line = pending.resend_line()  # type: ignore[union-attr]
            if line is None:  # pragma: no cover - guarded above
                continue
            if pending.sends >= limit:
                del self._pending[key]
                self.stats.failed += 1
                exc = EngineCrashed(
                    f"query {pending.user_id!r} was sent {pending.sends} times and the engine died each time",
                    self.stderr_tail(50),
                    restarts=len(self._restart_times),
                )
                turns = tuple(sorted(pending.left)) if not pending.is_action else ()  # type: ignore[union-attr]
                callbacks.append(_bind(pending.sink.on_error, exc, turns))
                continue
            if pending.sends:
                self.stats.resent += 1
            pending.sends += 1
            pending.generation = proc.generation
            proc.send(line)
        return callbacks

    def _end_terminated_locked(self, pending: PendingQuery) -> list[Callable[[], None]]:
        """End the caller-terminated, unfinished turns of ``pending`` locally with ``noResults`` replies."""
        callbacks: list[Callable[[], None]] = []
        for turn in sorted(pending.terminated_left()):
            pending.left.discard(turn)
            self.stats.finals += 1
            reply = AnalysisResponse(no_results_reply(pending.user_id, turn))
            callbacks.append(_bind(pending.sink.on_final, turn, reply))
        if not pending.left and self._pending.get(pending.wire_id) is pending:
            del self._pending[pending.wire_id]
            self.stats.completed += 1
        return callbacks

    def _give_up(self, rc: int | None, tail: list[str], cause: BaseException | None) -> None:
        n = len(self._restart_times)
        if self.options.max_restarts == 0:
            msg = f"engine process exited unexpectedly with code {rc} (restarts disabled)"
        else:
            msg = f"engine process exited unexpectedly with code {rc}; gave up after {n} restart(s)"
        if cause is not None:
            msg += f" (last restart failed: {getattr(cause, 'reason', cause)})"
        exc = EngineCrashed(msg, tail, rc, n)
        with self._lock:
            if self._state is not RESTARTING:
                return
            self._state = FAILED
            self._crash = exc
            items = self._take_all_locked()
        log.error("%s", msg)
        self._fail_items(items, exc)

    # ================================================================================================ close

    def close(self, timeout: float | None = None, finish_pending: bool = False) -> None:
        """Shut down (see contract). ``timeout`` defaults to ``close_timeout``."""
        if timeout is None:
            timeout = self.options.close_timeout
        with self._lock:
            state = self._state
            if state is CLOSED:
                return
            if state is CLOSING:
                wait_only = True
            else:
                wait_only = False
                self._state = CLOSING
                proc = self._proc
                has_queries = any(not p.is_action for p in self._pending.values())
                if proc is not None and state is RUNNING and has_queries and not finish_pending:
                    term = self._new_action("terminate_all", {}, NullSink(), None)
                    self._pending[term.wire_id] = term
                    term.generation = proc.generation
                    proc.send(term.line)
        if wait_only:
            self._closed.wait(timeout + 15.0)
            return
        self._closing.set()
        try:
            if proc is not None:
                proc.close_stdin()
                rc = proc.stop(timeout)
                log.info("engine process %s stopped (exit code %s)", proc.pid, rc)
            for other in list(self._procs):
                other.close_stdin()
                if other.poll() is None:
                    other.stop(0.0)
                other.join_threads(5.0)
        finally:
            self._deadlines.stop()
            with self._lock:
                self._state = CLOSED
                self._proc = None
                items = self._take_all_locked()
            self._fail_items(items, EngineClosed("the engine was closed before the query finished"))
            self._closed.set()

    # ================================================================================================ helpers

    def _take_all_locked(self) -> list[PendingQuery | PendingAction]:
        items = list(self._pending.values())
        self._pending.clear()
        return items

    def _fail_items(self, items: list[PendingQuery | PendingAction], exc: BaseException) -> None:
        """Fail every item with its own copy of ``exc`` (so tracebacks of different waiters never mix)."""
        for pending in items:
            if pending.is_action:
                turns: tuple[int, ...] = ()
            else:
                turns = tuple(sorted(pending.left))  # type: ignore[union-attr]
                pending.left.clear()  # type: ignore[union-attr]
            self.stats.failed += 1
            try:
                pending.sink.on_error(_fresh(exc), turns)
            except Exception:  # pragma: no cover
                log.exception("sink failed")

    @staticmethod
    def _run(callbacks: list[Callable[[], None]]) -> None:
        for cb in callbacks:
            try:
                cb()
            except Exception:  # pragma: no cover
                log.exception("engine client callback failed")


_CAUSE = re.compile(
    r"error|what\(\)|exception|could not|cannot|failed|not found|no such|invalid", re.IGNORECASE
)


def _likely_cause(tail: list[str]) -> str | None:
    """The last stderr line that looks like an error message (without KataGo's timestamp), if any."""
    for line in reversed(tail):
        if _CAUSE.search(line):
            text = line.strip()
            if text.startswith("what():"):
                text = text[len("what():") :].strip()
            return re.sub(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[^:]*:\s*", "", text)[:500]
    return None


def _fresh(exc: BaseException) -> BaseException:
    """A new instance equal to ``exc`` for the client's own error types (raising one instance from several
    places would splice their tracebacks together); other exceptions are returned as they are."""
    if isinstance(exc, EngineCrashed):
        return EngineCrashed(exc.reason, exc.stderr_tail, exc.returncode, exc.restarts)
    if isinstance(exc, EngineStartError):
        return EngineStartError(exc.reason, exc.stderr_tail, exc.returncode)
    if type(exc) is EngineClosed:
        return EngineClosed(*exc.args)
    return exc


def _bind(fn: Callable[..., Any], *args: Any) -> Callable[[], None]:
    def call() -> None:
        fn(*args)

    return call


class EngineStatus:
    """Read-only status shared by :class:`AnalysisEngine` and :class:`AsyncAnalysisEngine` (both hold ``_core``)."""

    _core: EngineCore

    @property
    def options(self) -> EngineOptions:
        """The validated options."""
        return self._core.options

    @property
    def state(self) -> str:
        """``new, starting, running, restarting, failed, closing`` or ``closed``."""
        return self._core.state

    @property
    def pid(self) -> int | None:
        """OS pid of the current engine process."""
        return self._core.pid

    @property
    def stats(self) -> EngineStats:
        """Live counters (submitted, completed, restarts, junk_lines, ...)."""
        return self._core.stats

    @property
    def pending_count(self) -> int:
        """Queries and actions in flight."""
        return self._core.pending_count

    def stderr_tail(self, n: int | None = 50) -> list[str]:
        """The engine's last ``n`` stderr lines (``None``: all kept)."""
        return self._core.stderr_tail(n)


class _EventSink:
    """Action sink that stores the reply (or error) in ``box`` and sets ``done``."""

    wants_partials = False

    def __init__(self, box: list[Any], done: threading.Event):
        self.box = box
        self.done = done

    def on_reply(self, reply: dict[str, Any]) -> None:
        self.box.append(reply)
        self.done.set()

    def on_error(self, exc: BaseException, turns: tuple[int, ...]) -> None:
        self.box.append(exc)
        self.done.set()

    def on_warning(self, warning: EngineWarning) -> None:
        pass
