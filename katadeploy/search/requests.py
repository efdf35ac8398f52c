"""Parsing analysis queries into search requests, with KataGo's error and warning replies (``cpp/command/analysis.cpp``).

Contract: :func:`parse_query` takes one decoded query object (already known to have a string ``id`` and no
``action``) and returns ``(requests, replies)``: one :class:`AnalyzeRequest` per turn to analyze (in turn order)
and the error/warning objects to write. A query with an error yields no requests and exactly one
``{"id", "field", "error"}`` reply carrying KataGo's message for that field; warnings (unknown fields, unknown or
not-ported ``overrideSettings``, query features this search does not implement) leave the query running. Checks
run in KataGo's order. The position is built as KataGo's analysis engine builds it: initial stones placed as
given, the history restarted when a move's colour is not the one to play, moves played tolerantly
(``makeBoardMoveTolerant`` with ``preventCleanupPhase``).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field, replace
from typing import Any

from katadeploy.go import board as B
from katadeploy.go import coords
from katadeploy.go.history import BoardHistory, get_opp, num_handicap_stones_on_board
from katadeploy.go.rules import (
    MAX_USER_KOMI,
    MIN_USER_KOMI,
    RulesError,
    komi_is_int_or_half_int,
    parse_rules,
    parse_white_handicap_bonus_rule,
    to_float32,
)
from katadeploy.search.config import Config, ConfigError
from katadeploy.search.params import SearchParams, load_search_params

MAX_BOARD_LEN = 19
BIG = 1 << 50
PRIORITY_BOUND = 0x3FFFFFFFFFFFFFFF

EXPECTED_KEYS = frozenset(
    """id action terminateId turnNumbers boardXSize boardYSize initialStones moves initialPlayer analyzeTurns
    priorities rules komi whiteHandicapBonus overrideSettings maxVisits analysisPVLen rootFpuReductionMax
    rootPolicyTemperature includeMovesOwnership includeMovesOwnershipStdev includeOwnership includeOwnershipStdev
    includePolicy includePVVisits includeNoResultValue reportDuringSearchEvery firstReportDuringSearchAfter priority
    allowMoves avoidMoves""".split()
)
#: Query fields KataGo accepts that this search does not implement: answered with a warning, query still runs.
NOT_SUPPORTED_FIELDS = ("allowMoves", "avoidMoves")

STATUS_IN_QUEUE, STATUS_POPPED, STATUS_RUNNING, STATUS_TERMINATED = range(4)


@dataclass
class AnalyzeRequest:
    id: str
    turn_number: int
    hist: BoardHistory
    pla: int
    params: SearchParams
    perspective: int
    pv_len: int
    include_ownership: bool = False
    include_moves_ownership: bool = False
    include_ownership_stdev: bool = False
    include_moves_ownership_stdev: bool = False
    include_policy: bool = False
    include_pv_visits: bool = False
    include_no_result_value: bool = False
    report_every: float | None = None
    first_report_after: float | None = None
    priority: int = 0
    internal_id: int = 0
    status: int = STATUS_IN_QUEUE
    stop: threading.Event = field(default_factory=threading.Event)


class QueryRejected(Exception):
    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass
class QueryDefaults:
    """Engine-level settings a query starts from."""

    cfg: Config
    params: SearchParams
    perspective: int
    pv_len: int = 15
    warn_unused_fields: bool = True
    prevent_encore: bool = True
    assume_multiple_black_handicap: bool = True


def parse_perspective(cfg: Config, default: int) -> int:
    if "reportAnalysisWinratesAs" not in cfg:
        return default
    s = cfg.get_string("reportAnalysisWinratesAs")
    t = s.strip().lower()
    if t in ("b", "black"):
        return 1
    if t in ("w", "white"):
        return 2
    if t == "sidetomove":
        return 0
    raise ConfigError(f"Could not parse config value for reportAnalysisWinratesAs: {s}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _int(q: dict, key: str, lo: int, hi: int, msg: str) -> int:
    v = q[key]
    if not _is_int(v) or not lo <= v <= hi:
        raise QueryRejected(key, msg)
    return v


def _float(q: dict, key: str, lo: float, hi: float, msg: str) -> float:
    v = q[key]
    if not _is_num(v) or not math.isfinite(v) or not lo <= float(v) <= hi:
        raise QueryRejected(key, msg)
    return float(v)


def _bool(q: dict, key: str) -> bool:
    v = q[key]
    if not isinstance(v, bool):
        raise QueryRejected(key, "Must be a boolean")
    return v


def _player(q: dict, key: str) -> int:
    v = q[key]
    t = v.lower() if isinstance(v, str) else None
    if t in ("b", "black"):
        return 1
    if t in ("w", "white"):
        return 2
    raise QueryRejected(key, 'Must be "b" or "w"')


def _loc(text: str, xs: int, ys: int) -> int | None:
    loc = coords.try_loc_of_string(text, xs, ys)
    if loc is None or loc == coords.NULL_LOC:
        return None
    if loc != coords.PASS_LOC:
        x, y = loc % (xs + 1) - 1, loc // (xs + 1) - 1
        if not (0 <= x < xs and 0 <= y < ys):
            return None
    return loc


def _moves(q: dict, key: str, xs: int, ys: int, allow_pass: bool) -> list[tuple[int, int]]:
    shape = 'Must be an array of pairs of the form: ["b" or "w", GTP board vertex]'
    items = q[key]
    if not isinstance(items, list):
        raise QueryRejected(key, shape)
    out = []
    for item in items:
        if not isinstance(item, list) or len(item) != 2 or not all(isinstance(t, str) for t in item):
            raise QueryRejected(key, shape)
        p = item[0].lower()
        pla = 1 if p in ("b", "black") else 2 if p in ("w", "white") else None
        if pla is None:
            raise QueryRejected(key, f"Could not parse player: {item[0]}")
        loc = _loc(item[1], xs, ys)
        if loc is None or (loc == coords.PASS_LOC and not allow_pass):
            raise QueryRejected(key, f"Could not parse board location: {item[1]}")
        out.append((loc, pla))
    return out


def _int_list(q: dict, key: str, msg: str) -> list[int]:
    v = q[key]
    if not isinstance(v, list) or not all(_is_int(t) for t in v):
        raise QueryRejected(key, msg)
    return list(v)


def _settings_string(v: Any) -> str:
    import json

    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    return json.dumps(v)


def parse_query(
    q: dict, d: QueryDefaults, next_internal_id: list[int]
) -> tuple[list[AnalyzeRequest], list[dict]]:
    qid: str = q["id"]
    replies: list[dict] = []

    def warn(fld: str, msg: str) -> None:
        replies.append({"id": qid, "field": fld, "warning": msg})

    try:
        reqs = _parse(q, qid, d, warn, next_internal_id)
    except QueryRejected as exc:
        return [], [*replies, {"id": qid, "field": exc.field, "error": exc.message}]
    return reqs, replies


def _parse(
    q: dict, qid: str, d: QueryDefaults, warn: Any, next_internal_id: list[int]
) -> list[AnalyzeRequest]:
    size_msg = f"Must provide an integer from 2 to {MAX_BOARD_LEN}"
    for key in ("boardXSize", "boardYSize"):
        if key not in q:
            raise QueryRejected(key, size_msg)
    xs = _int(q, "boardXSize", 2, MAX_BOARD_LEN, size_msg)
    ys = _int(q, "boardYSize", 2, MAX_BOARD_LEN, size_msg)
    stones = _moves(q, "initialStones", xs, ys, False) if "initialStones" in q else []
    if "moves" not in q:
        raise QueryRejected("moves", "Must specify an array of [player,location] pairs")
    moves = _moves(q, "moves", xs, ys, True)
    initial_player = _player(q, "initialPlayer") if "initialPlayer" in q else 0

    should = [False] * (len(moves) + 1)
    if "analyzeTurns" in q:
        turns = _int_list(q, "analyzeTurns", "Must specify an array of integers indicating turns to analyze")
        for t in turns:
            if t < 0 or t >= len(should):
                raise QueryRejected("analyzeTurns", f"Invalid turn number: {t}")
            should[t] = True
    else:
        should[-1] = True
    priorities: dict[int, int] = {}
    if "priorities" in q:
        pri = _int_list(q, "priorities", "Must specify an array of integers indicating priorities")
        if "analyzeTurns" not in q:
            raise QueryRejected("priorities", "Can only specify when also specifying analyzeTurns")
        turns = q["analyzeTurns"]
        if len(pri) != len(turns):
            raise QueryRejected("priorities", "Must be of matching length to analyzeTurns")
        for t, p in zip(turns, pri):
            if not -PRIORITY_BOUND <= p <= PRIORITY_BOUND:
                raise QueryRejected("priorities", f"Invalid priority: {p}")
            priorities[t] = p

    rules_msg = (
        'Must specify rules string, such as "chinese" or "tromp-taylor", or a JSON object with detailed rules '
        "parameters."
    )
    if "rules" not in q or not isinstance(q["rules"], (str, dict)):
        raise QueryRejected("rules", rules_msg)
    try:
        rules = parse_rules(q["rules"])
    except RulesError:
        import json

        text = q["rules"] if isinstance(q["rules"], str) else json.dumps(q["rules"], separators=(",", ":"))
        raise QueryRejected("rules", f"Could not parse rules: {text}") from None
    if "komi" in q:
        msg = "Must be a integer or half-integer from -400.0 to 400.0"
        komi = to_float32(_float(q, "komi", MIN_USER_KOMI, MAX_USER_KOMI, msg))
        if not komi_is_int_or_half_int(komi):
            raise QueryRejected("komi", msg)
        rules = rules.with_komi(komi)
    if "whiteHandicapBonus" in q:
        if not isinstance(q["whiteHandicapBonus"], str):
            raise QueryRejected("whiteHandicapBonus", "Must be a string")
        try:
            whb = parse_white_handicap_bonus_rule(q["whiteHandicapBonus"])
        except RulesError as exc:
            raise QueryRejected("whiteHandicapBonus", str(exc)) from None
        rules = replace(rules, white_handicap_bonus_rule=whb)

    params = d.params
    perspective = d.perspective
    if "overrideSettings" in q:
        settings = q["overrideSettings"]
        if not isinstance(settings, dict):
            raise QueryRejected("overrideSettings", "Must be an object")
        if settings:
            local = d.cfg.override({k: _settings_string(v) for k, v in settings.items()})
            try:
                params, notes = load_search_params(local)
                perspective = parse_perspective(local, d.perspective)
            except ConfigError as exc:
                raise QueryRejected("overrideSettings", f"Could not set settings: {exc}") from None
            unused = [k for k in local.unused_keys() if k in settings]
            if unused:
                warn("overrideSettings", "Unknown config params: " + ",".join(unused))
            for note in notes:
                if any(note.startswith(k + " ") for k in settings):
                    warn("overrideSettings", note)
    if "maxVisits" in q:
        params = replace(params, max_visits=_int(q, "maxVisits", 1, BIG, "Must be an integer from 1 to 2^50"))
    pv_len = d.pv_len
    if "analysisPVLen" in q:
        pv_len = _int(q, "analysisPVLen", 1, 1000, "Must be an integer from 1 to 1000")
    if "rootFpuReductionMax" in q:
        v = _float(q, "rootFpuReductionMax", 0.0, 2.0, "Must be a number from 0.0 to 2.0")
        params = replace(params, root_fpu_reduction_max=v)
    if "rootPolicyTemperature" in q:
        v = _float(q, "rootPolicyTemperature", 0.01, 100.0, "Must be a number from 0.01 to 100.0")
        params = replace(params, root_policy_temperature=v, root_policy_temperature_early=v)
    flags = {}
    for key in ("includeMovesOwnership", "includeMovesOwnershipStdev", "includeOwnership", "includeOwnershipStdev",
                "includePolicy", "includePVVisits", "includeNoResultValue"):  # fmt: skip
        flags[key] = _bool(q, key) if key in q else False
    every = first = None
    report_msg = "Must be number of seconds from 0.001 to 1000000.0"
    if "reportDuringSearchEvery" in q:
        every = _float(q, "reportDuringSearchEvery", 0.001, 1000000.0, report_msg)
        first = every
    if "firstReportDuringSearchAfter" in q:
        first = _float(q, "firstReportDuringSearchAfter", 0.001, 1000000.0, report_msg)
        if every is None:
            every = 1e30
    priority = 0
    if "priority" in q:
        if "priorities" in q:
            raise QueryRejected("priority", "Cannot specify both priority and priorities")
        priority = _int(
            q, "priority", -PRIORITY_BOUND, PRIORITY_BOUND, "Must be a number between -2^62 and 2^62"
        )
    if "allowMoves" in q and "avoidMoves" in q:
        raise QueryRejected("allowMoves", "Cannot specify both allowMoves and avoidMoves")

    board = B.Board(xs, ys)
    for loc, pla in stones:
        board.set_stone(loc, pla)
    if not initial_player:
        if moves:
            initial_player = moves[0][1]
        else:
            initial_player = 2 if num_handicap_stones_on_board(board) > 0 else 1

    if d.warn_unused_fields:
        for key in q:
            if key not in EXPECTED_KEYS:
                warn(key, "Unexpected or unused field, do you have a typo? (set warnUnusedFields=false in the config "
                     "to disable this warning)")  # fmt: skip
    for key in NOT_SUPPORTED_FIELDS:
        if key in q and q[key] not in (False, None, []):
            warn(key, f"{key} is not supported by katadeploy's search and is ignored")

    hist = BoardHistory(board, initial_player, rules, 0)
    hist.set_assume_multiple_starting_black_moves_are_handicap(d.assume_multiple_black_handicap)
    next_pla = initial_player
    out: list[AnalyzeRequest] = []
    for turn in range(len(moves) + 1):
        if should[turn]:
            out.append(
                AnalyzeRequest(
                    qid,
                    turn,
                    hist.copy(),
                    next_pla,
                    params,
                    perspective,
                    pv_len,
                    include_ownership=flags["includeOwnership"],
                    include_moves_ownership=flags["includeMovesOwnership"],
                    include_ownership_stdev=flags["includeOwnershipStdev"],
                    include_moves_ownership_stdev=flags["includeMovesOwnershipStdev"],
                    include_policy=flags["includePolicy"],
                    include_pv_visits=flags["includePVVisits"],
                    include_no_result_value=flags["includeNoResultValue"],
                    report_every=every,
                    first_report_after=first,
                    priority=priorities.get(turn, priority),
                )  # fmt: skip
            )
        if turn >= len(moves):
            break
        loc, pla = moves[turn]
        if pla != next_pla:
            cur = hist.board
            cur.clear_simple_ko_loc()
            hist.clear(cur, pla, rules, hist.encore_phase)
            hist.set_assume_multiple_starting_black_moves_are_handicap(d.assume_multiple_black_handicap)
        if not hist.make_board_move_tolerant(loc, pla, d.prevent_encore):
            raise QueryRejected("moves", f"Illegal move {turn}: {coords.loc_to_string(loc, xs, ys)}")
        next_pla = get_opp(pla)
    for r in out:
        r.internal_id = next_internal_id[0]
        next_internal_id[0] += 1
    return out
