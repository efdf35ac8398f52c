"""In-flight queries and actions, and the sink interface through which their outcomes are delivered.

Contract
--------
* A :class:`PendingQuery` is one analysis query between submission and its last final reply. ``left`` holds
  the turns still waiting for their final reply; ``terminated`` the turns the caller asked to terminate
  (``None`` = none; :data:`ALL_TURNS` = all). :meth:`PendingQuery.resend_line` is the line to send to a
  *restarted* engine: only the turns that are neither finished nor terminated, with ``priorities`` filtered to
  match (``None`` when nothing is left to send).
* A :class:`PendingAction` is one action query (``query_version``, ``terminate`` ...) awaiting its echo.
* Sinks receive outcomes from the client's threads (never while a client lock is held). The client guarantees
  for a query: partial replies of a turn come before its final reply; each turn ends exactly once, either with
  ``on_final`` or as part of the ``turns`` of one ``on_error``; ``on_warning`` may come at any time before the
  end. Actions end with exactly one ``on_reply`` or ``on_error`` (with ``turns == ()``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from katadeploy.engine.errors import EngineWarning
from katadeploy.engine.protocol import AnalysisResponse, dumps

#: Marker for "every turn of the query was terminated".
ALL_TURNS: frozenset[int] = frozenset({-1})


class QuerySink(Protocol):
    """Receiver of one query's outcome (see module contract)."""

    wants_partials: bool

    def on_partial(self, response: AnalysisResponse) -> None: ...

    def on_final(self, turn: int, response: AnalysisResponse) -> None: ...

    def on_error(self, exc: BaseException, turns: tuple[int, ...]) -> None: ...

    def on_warning(self, warning: EngineWarning) -> None: ...


class ActionSink(Protocol):
    """Receiver of one action's outcome."""

    def on_reply(self, reply: dict[str, Any]) -> None: ...

    def on_error(self, exc: BaseException, turns: tuple[int, ...]) -> None: ...

    def on_warning(self, warning: EngineWarning) -> None: ...


class NullSink:
    """Sink that ignores everything (for fire-and-forget actions such as the terminate sent on a timeout)."""

    wants_partials = False

    def on_partial(self, response: AnalysisResponse) -> None:
        pass

    def on_final(self, turn: int, response: AnalysisResponse) -> None:
        pass

    def on_reply(self, reply: dict[str, Any]) -> None:
        pass

    def on_error(self, exc: BaseException, turns: tuple[int, ...]) -> None:
        pass

    def on_warning(self, warning: EngineWarning) -> None:
        pass


@dataclass(eq=False)
class PendingQuery:
    """One analysis query in flight (mutated only under the client lock)."""

    wire_id: str
    user_id: str
    wire: dict[str, Any]
    line: bytes
    turns: tuple[int, ...]
    sink: QuerySink
    timeout: float | None
    deadline: float | None
    left: set[int] = field(default_factory=set)
    terminated: frozenset[int] | set[int] | None = None
    sends: int = 0
    generation: int = -1
    is_action = False

    def mark_terminated(self, turn_numbers: frozenset[int] | None) -> None:
        """Remember that the caller terminated ``turn_numbers`` (``None`` = all turns)."""
        if turn_numbers is None or self.terminated is ALL_TURNS:
            self.terminated = ALL_TURNS
        else:
            current = set(self.terminated or ())
            current.update(turn_numbers)
            self.terminated = current

    def terminated_left(self) -> set[int]:
        """Unfinished turns that the caller terminated."""
        if self.terminated is None:
            return set()
        if self.terminated is ALL_TURNS:
            return set(self.left)
        return self.left & self.terminated

    def resend_line(self) -> bytes | None:
        """Line for a restarted engine: unfinished, non-terminated turns only; ``None`` if there are none."""
        todo = self.left - self.terminated_left()
        if not todo:
            return None
        if todo == set(self.turns):
            return self.line
        wire = dict(self.wire)
        ordered = sorted(todo)
        prios = wire.get("priorities")
        turns = wire.get("analyzeTurns")
        if isinstance(prios, list) and isinstance(turns, list) and len(prios) == len(turns):
            by_turn = dict(zip(turns, prios, strict=True))
            wire["priorities"] = [by_turn[t] for t in ordered]
        wire["analyzeTurns"] = ordered
        return dumps(wire) + b"\n"


@dataclass(eq=False)
class PendingAction:
    """One action query in flight."""

    wire_id: str
    action: str
    wire: dict[str, Any]
    line: bytes
    sink: ActionSink
    timeout: float | None
    deadline: float | None
    sends: int = 0
    generation: int = -1
    is_action = True

    @property
    def user_id(self) -> str:
        return self.wire_id
