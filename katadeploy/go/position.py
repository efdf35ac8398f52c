"""Positions shaped like KataGo analysis queries, set up exactly as the golden data was produced.

Contract
--------
A query is a dict ``{"id", "initialStones": [["B","D4"],...], "moves": [["B","Q16"],...], "rules", "komi",
"boardXSize", "boardYSize"}`` with optional ``"initialPlayer"`` and ``"whiteHandicapBonus"`` (other keys are
ignored). :func:`position_from_query` builds a :class:`GameState` the way KataGo's GTP engine builds its root for
``boardsize``, ``clear_board``, ``kata-set-rules R``, ``komi K``, ``set_position <initialStones>``, ``play ...``
(which for these commands is also what the analysis engine does):

* the initial stones are placed without history; overlapping stones or stones left without liberties are errors
  (GTP ``set_position``);
* the history starts with the first move's colour to play (else ``initialPlayer``, else White when the setup is a
  handicap, i.e. two or more black stones and no white ones, else Black), with
  ``assumeMultipleStartingBlackMovesAreHandicap`` on (the GTP/analysis default);
* a move by the player who is not next to move restarts the history from the current board with that player to
  move (KataGo's ``setPlayerAndClearHistory``), so e.g. two passes by the same colour never end the game;
* moves are played with ``preventEncore`` (KataGo's default ``preventCleanupPhase = true``);
* the side to move is the opposite of the last mover.

Legality: with ``strict=True`` (default) every move must be legal under the rules (empty on-board point, no
suicide where the rules forbid it, no simple-ko or superko violation). With ``strict=False`` moves are checked as
KataGo's GTP ``play`` and the analysis engine do (occupied points and single-stone suicide refused, ko and
multi-stone suicide tolerated).

Every problem with the input raises :class:`~katadeploy.errors.PositionError` naming the position id.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from katadeploy.errors import PositionError
from katadeploy.go import board as B
from katadeploy.go import coords
from katadeploy.go.history import BoardHistory, num_handicap_stones_on_board
from katadeploy.go.rules import (
    MAX_USER_KOMI,
    MIN_USER_KOMI,
    Rules,
    RulesError,
    komi_is_int_or_half_int,
    parse_rules,
    parse_white_handicap_bonus_rule,
    to_float32,
)

C_BLACK: int = B.C_BLACK
C_WHITE: int = B.C_WHITE
C_EMPTY: int = B.C_EMPTY
PASS_LOC: int = B.PASS_LOC

MIN_BOARD_SIZE = 2


@dataclass
class GameState:
    """A position ready for featurization: the history (with its board), who moves next, and the query facts."""

    id: str
    history: BoardHistory
    next_player: int
    rules: Rules
    x_size: int
    y_size: int

    @property
    def board(self) -> B.Board:
        return self.history.board


def parse_player(s: Any) -> int | None:
    """KataGo's ``PlayerIO::tryParsePlayer``: ``b``/``black``/``w``/``white`` in any case; None otherwise."""
    if not isinstance(s, str):
        return None
    t = s.lower()
    if t in ("b", "black"):
        return C_BLACK
    if t in ("w", "white"):
        return C_WHITE
    return None


def _player_name(pla: int) -> str:
    return "B" if pla == C_BLACK else "W"


def _parse_moves(
    query: dict, field: str, x_size: int, y_size: int, allow_pass: bool, pid: str | None
) -> list[tuple[int, int]]:
    items = query[field]
    shape = f'{field} must be an array of ["B" or "W", vertex] pairs'
    if not isinstance(items, list):
        raise PositionError(shape, pid)
    out: list[tuple[int, int]] = []
    for i, item in enumerate(items):
        if not isinstance(item, (list, tuple)) or len(item) != 2:
            raise PositionError(f"{shape}; entry {i} is {item!r}", pid)
        color, vertex = item
        if not isinstance(color, str) or not isinstance(vertex, str):
            raise PositionError(f"{shape}; entry {i} is {item!r}", pid)
        pla = parse_player(color)
        if pla is None:
            raise PositionError(f"{field} entry {i}: could not parse player {color!r} (expected B or W)", pid)
        loc = coords.try_loc_of_string(vertex, x_size, y_size)
        if loc is not None and loc != PASS_LOC and not _on_board(loc, x_size, y_size):
            loc = None
        if loc is None or loc == coords.NULL_LOC:
            raise PositionError(
                f"{field} entry {i}: could not parse board location {vertex!r} on a {x_size}x{y_size} board",
                pid,
            )
        if loc == PASS_LOC and not allow_pass:
            raise PositionError(f"{field} entry {i}: a pass is not allowed here", pid)
        out.append((loc, pla))
    return out


def _on_board(loc: int, x_size: int, y_size: int) -> bool:
    x = loc % (x_size + 1) - 1
    y = loc // (x_size + 1) - 1
    return 0 <= x < x_size and 0 <= y < y_size


def _parse_size(query: dict, field: str, max_board_size: int, pid: str | None) -> int:
    msg = f"{field} must be an integer from {MIN_BOARD_SIZE} to {max_board_size}"
    if field not in query:
        raise PositionError(f"missing field {field!r}; {msg}", pid)
    v = query[field]
    if isinstance(v, bool) or not isinstance(v, int):
        raise PositionError(f"{msg}, got {v!r}", pid)
    if not MIN_BOARD_SIZE <= v <= max_board_size:
        raise PositionError(f"{msg}, got {v}", pid)
    return v


def _parse_rules(query: dict, pid: str | None) -> Rules:
    if "rules" not in query:
        raise PositionError(
            'missing field \'rules\': specify a rules string such as "chinese" or "tromp-taylor", '
            "or a JSON object with detailed rules",
            pid,
        )
    r = query["rules"]
    if not isinstance(r, (str, dict)):
        raise PositionError(f"rules must be a string or a JSON object, got {r!r}", pid)
    try:
        rules = parse_rules(r)
    except RulesError as e:
        raise PositionError(f"bad rules: {e}", pid) from None
    if "komi" in query:
        k = query["komi"]
        msg = "komi must be an integer or half-integer from -400 to 400"
        if isinstance(k, bool) or not isinstance(k, (int, float)):
            raise PositionError(f"{msg}, got {k!r}", pid)
        kf = float(k)
        if not math.isfinite(kf) or kf < MIN_USER_KOMI or kf > MAX_USER_KOMI:
            raise PositionError(f"{msg}, got {k!r}", pid)
        kf = to_float32(kf)
        if not komi_is_int_or_half_int(kf):
            raise PositionError(f"{msg}, got {k!r}", pid)
        rules = rules.with_komi(kf)
    if "whiteHandicapBonus" in query:
        w = query["whiteHandicapBonus"]
        if not isinstance(w, str):
            raise PositionError(f'whiteHandicapBonus must be a string ("0", "N" or "N-1"), got {w!r}', pid)
        try:
            whb = parse_white_handicap_bonus_rule(w)
        except RulesError as e:
            raise PositionError(str(e), pid) from None
        rules = Rules(
            rules.ko_rule,
            rules.scoring_rule,
            rules.tax_rule,
            rules.multi_stone_suicide_legal,
            rules.has_button,
            whb,
            rules.friendly_pass_ok,
            rules.komi,
        )
    return rules


def _place_initial_stones(board: B.Board, stones: list[tuple[int, int]], pid: str | None) -> None:
    """GTP ``set_position``: distinct points, and every stone must keep a liberty without capturing anything."""
    seen: set[int] = set()
    for loc, _ in stones:
        if loc in seen:
            raise PositionError(
                f"initialStones: two stones on {coords.loc_to_string(loc, board.x_size, board.y_size)}", pid
            )
        seen.add(loc)
    for loc, pla in stones:
        if not board.set_stone_fail_if_no_libs(loc, pla):
            name = coords.loc_to_string(loc, board.x_size, board.y_size)
            raise PositionError(
                f"initialStones: stone {_player_name(pla)} {name} would capture or leave a group with no liberties",
                pid,
            )
    board.clear_simple_ko_loc()


def _illegal_reason(hist: BoardHistory, loc: int, pla: int) -> str:
    board = hist.board
    if loc == PASS_LOC:
        return "illegal pass"
    if board.colors[loc] != C_EMPTY:
        return "the point is occupied"
    if hist.encore_phase == 0 and loc == board.ko_loc:
        return "it retakes a ko immediately (ko rule)"
    if board.is_illegal_suicide(loc, pla, hist.rules.multi_stone_suicide_legal):
        if board.is_illegal_suicide(loc, pla, True):
            return "it is a single-stone suicide"
        return "it is a multi-stone suicide, which these rules forbid"
    if hist.super_ko_banned[loc]:
        if hist.encore_phase > 0 and board.get_ko_capture_loc(loc, pla) != coords.NULL_LOC:
            return "the ko was already captured in this position (encore rule)"
        return "it repeats an earlier position (superko)"
    return "it is illegal"


def position_from_query(query: Any, max_board_size: int = 19, *, strict: bool = True) -> GameState:
    """Build a :class:`GameState` from an analysis-query dict (see the module docstring)."""
    if not isinstance(query, dict):
        raise PositionError(f"a position must be a JSON object, got {type(query).__name__}")
    pid_raw = query.get("id")
    if "id" not in query:
        raise PositionError("missing field 'id'")
    if not isinstance(pid_raw, str):
        raise PositionError(f"field 'id' must be a string, got {pid_raw!r}", str(pid_raw))
    pid: str = pid_raw

    x_size = _parse_size(query, "boardXSize", max_board_size, pid)
    y_size = _parse_size(query, "boardYSize", max_board_size, pid)

    stones: list[tuple[int, int]] = []
    if "initialStones" in query:
        stones = _parse_moves(query, "initialStones", x_size, y_size, False, pid)
    if "moves" not in query:
        raise PositionError("missing field 'moves': specify an array of [player, vertex] pairs", pid)
    moves = _parse_moves(query, "moves", x_size, y_size, True, pid)

    initial_player: int | None = None
    if "initialPlayer" in query:
        initial_player = parse_player(query["initialPlayer"])
        if initial_player is None:
            raise PositionError(f'initialPlayer must be "b" or "w", got {query["initialPlayer"]!r}', pid)

    rules = _parse_rules(query, pid)

    board = B.Board(x_size, y_size)
    _place_initial_stones(board, stones, pid)

    if initial_player is None:
        if moves:
            initial_player = moves[0][1]
        else:
            initial_player = C_WHITE if num_handicap_stones_on_board(board) > 0 else C_BLACK

    hist = BoardHistory(board, initial_player, rules, 0)
    hist.set_assume_multiple_starting_black_moves_are_handicap(True)
    next_pla = initial_player
    for i, (loc, pla) in enumerate(moves):
        if pla != next_pla:
            # Same as GTP setPlayerAndClearHistory / the analysis engine's hist.clear on a colour switch.
            cur = hist.board
            cur.clear_simple_ko_loc()
            hist.clear(cur, pla, rules, hist.encore_phase)
            hist.set_assume_multiple_starting_black_moves_are_handicap(True)
        ok = hist.is_legal(loc, pla) if strict else hist.is_legal_tolerant(loc, pla)
        if not ok:
            where = coords.loc_to_string(loc, x_size, y_size)
            raise PositionError(
                f"illegal move {i} ({_player_name(pla)} {where}): {_illegal_reason(hist, loc, pla)}", pid
            )
        hist.make_board_move_assume_legal(loc, pla, prevent_encore=True)
        next_pla = C_WHITE if pla == C_BLACK else C_BLACK

    return GameState(pid, hist, hist.presumed_next_move_pla, rules, x_size, y_size)


def load_positions(path: str | Path, max_board_size: int = 19, *, strict: bool = True) -> list[GameState]:
    """Read a JSONL file of queries (blank lines skipped); a bad line raises :class:`PositionError`."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise PositionError(f"cannot read positions file {str(p)!r}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise PositionError(f"positions file {str(p)!r} is not UTF-8 text") from None
    return parse_positions(text, p.name, max_board_size, strict=strict)


def parse_positions(
    text: str, source: str, max_board_size: int = 19, *, strict: bool = True
) -> list[GameState]:
    """Parse JSONL query text (blank lines skipped); a bad line raises :class:`PositionError` naming ``source``
    and the line."""
    out: list[GameState] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            query = json.loads(line)
        except json.JSONDecodeError as e:
            raise PositionError(f"{source} line {lineno}: invalid JSON ({e.msg})") from None
        out.append(position_from_query(query, max_board_size, strict=strict))
    return out
