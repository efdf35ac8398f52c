"""One match game between two players, refereed with katadeploy's own board and rules.

Contract: :func:`play_game` plays ``spec`` (an opening, who is Black, the :class:`GameSettings`) between two
:class:`Player` objects and returns the game's ledger record (a JSON-able dict, see :func:`play_game`). Each
turn the side to move gets an analysis query of the whole game so far (initial player Black, the match's rules,
komi and board size); its answer is an :class:`EngineMove`. The referee
(:class:`katadeploy.go.history.BoardHistory`, KataGo's rules port) checks every move: a move it cannot parse or
that is illegal under the rules (occupied, suicide where forbidden, ko, superko) loses the game by forfeit
(``B+F``/``W+F``). A game ends

* by two passes in a row, scored by area (:func:`area_score`);
* by resignation: a side resigns when, for its last ``resign_moves`` moves, its own engine's root winrate was
  below ``resign_threshold`` and, for the opponent's last ``resign_moves`` moves, the opponent's engine's root
  winrate was above ``1 - resign_threshold`` (both engines agree); ``resign_threshold`` 0 disables it;
* at ``max_moves`` moves (the opening's included), scored by area.

Area scoring (whatever the rules say): every stone on the board counts for its colour and every empty region
that touches only one colour counts for that colour (Tromp-Taylor; pass-alive areas from
:meth:`katadeploy.go.board.Board.calculate_area`), plus komi for White. Dead stones are not removed, which is
exact under the default ``tromp-taylor`` rules (engines capture dead stones before they pass) and an
approximation under others. ``RE`` follows SGF: ``B+R``, ``W+3.5``, ``0`` for a draw (integer komi).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from katadeploy.go.board import C_BLACK, C_WHITE, PASS_LOC, Board
from katadeploy.go.coords import loc_to_string, try_loc_of_string
from katadeploy.go.position import position_from_query
from katadeploy.match.openings import Opening


@dataclass(frozen=True)
class EngineMove:
    """A player's answer: a GTP vertex or ``pass``, its root winrate from Black's view, and its visits."""

    move: str
    winrate: float | None = None
    visits: int | None = None


class Player(Protocol):
    def genmove(self, query: dict[str, Any]) -> EngineMove: ...


@dataclass(frozen=True)
class GameSettings:
    board: int = 19
    komi: float = 7.5
    rules: str = "tromp-taylor"
    max_moves: int = 3 * 19 * 19
    resign_threshold: float = 0.05
    resign_moves: int = 3

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GameSpec:
    """Game ``index`` of a match: its opening, whether player A is Black, the settings."""

    index: int
    opening: Opening
    a_black: bool
    settings: GameSettings


def area_score(board: Board, komi: float, multi_stone_suicide_legal: bool) -> float:
    """White's area minus Black's plus komi (see the module contract)."""
    area = board.calculate_area(None, True, True, True, multi_stone_suicide_legal)
    locs = board.onboard_locs
    return sum(area[x] == C_WHITE for x in locs) - sum(area[x] == C_BLACK for x in locs) + komi


def result_string(white_minus_black: float) -> str:
    if white_minus_black > 0:
        return f"W+{white_minus_black:g}"
    if white_minus_black < 0:
        return f"B+{-white_minus_black:g}"
    return "0"


def _resigns(own: list[float | None], other: list[float | None], threshold: float, moves: int) -> bool:
    if threshold <= 0 or moves <= 0 or len(own) < moves or len(other) < moves:
        return False
    mine, theirs = own[-moves:], other[-moves:]
    return all(w is not None and w < threshold for w in mine) and all(
        w is not None and w > 1.0 - threshold for w in theirs
    )


def play_game(
    spec: GameSpec, black: Player, white: Player, clock: Callable[[], float] = time.monotonic
) -> dict[str, Any]:
    """Play one game; the record has ``game``, ``opening``, ``black``/``white`` (``"A"``/``"B"``), ``winner``
    (``"A"``, ``"B"`` or None for a draw), ``result`` (SGF ``RE``), ``end`` (``passes``, ``resign``, ``move
    cap``, ``forfeit``), ``score`` (White minus Black when scored), ``moves`` (all, opening included),
    ``opening_moves``, ``winrates`` (each engine move's root winrate, Black's view), ``visits``, ``seconds``
    and ``note`` (why a forfeit)."""
    s = spec.settings
    t0 = clock()
    moves: list[list[str]] = [list(m) for m in spec.opening.moves]
    base = {"moves": moves, "rules": s.rules, "komi": s.komi, "boardXSize": s.board, "boardYSize": s.board,
            "initialPlayer": "B"}  # fmt: skip
    state = position_from_query({**base, "id": f"game-{spec.index}"}, max_board_size=max(19, s.board))
    hist = state.history
    players = {C_BLACK: black, C_WHITE: white}
    own: dict[int, list[float | None]] = {C_BLACK: [], C_WHITE: []}
    winrates: list[float | None] = []
    visits: list[int | None] = []
    passes = 0
    end, score, winner_colour, note = "move cap", None, None, None
    while True:
        if len(moves) >= s.max_moves:
            end = "move cap"
            break
        pla = hist.presumed_next_move_pla
        colour = "B" if pla == C_BLACK else "W"
        reply = players[pla].genmove(
            {**base, "id": f"g{spec.index}-{len(moves)}", "moves": [list(m) for m in moves]}
        )
        loc = try_loc_of_string(str(reply.move), s.board, s.board)
        if loc is None or not hist.is_legal(loc, pla):
            end, winner_colour = "forfeit", (C_WHITE if pla == C_BLACK else C_BLACK)
            note = f"{colour} played {'an unreadable' if loc is None else 'an illegal'} move {reply.move!r}"
            break
        hist.make_board_move_assume_legal(loc, pla, prevent_encore=True)
        moves.append([colour, loc_to_string(loc, s.board, s.board)])
        winrates.append(reply.winrate)
        visits.append(reply.visits)
        own[pla].append(
            None if reply.winrate is None else (reply.winrate if pla == C_BLACK else 1 - reply.winrate)
        )
        passes = passes + 1 if loc == PASS_LOC else 0
        if passes >= 2:
            end = "passes"
            break
        opp = C_WHITE if pla == C_BLACK else C_BLACK
        for loser in (pla, opp):
            other = C_WHITE if loser == C_BLACK else C_BLACK
            if _resigns(own[loser], own[other], s.resign_threshold, s.resign_moves):
                end, winner_colour = "resign", other
                break
        if end == "resign":
            break
    if end in ("passes", "move cap"):
        score = area_score(hist.board, s.komi, state.rules.multi_stone_suicide_legal)
        result = result_string(score)
        winner_colour = C_WHITE if score > 0 else (C_BLACK if score < 0 else None)
    else:
        result = ("B" if winner_colour == C_BLACK else "W") + ("+R" if end == "resign" else "+F")
    a, b = ("A", "B") if spec.a_black else ("B", "A")
    winner = None if winner_colour is None else (a if winner_colour == C_BLACK else b)
    return {
        "game": spec.index, "opening": spec.opening.id, "black": a, "white": b, "winner": winner,
        "result": result, "end": end, "score": score, "moves": moves, "opening_moves": len(spec.opening.moves),
        "winrates": winrates, "visits": visits, "seconds": round(clock() - t0, 3), "note": note,
    }  # fmt: skip
