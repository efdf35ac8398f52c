"""Analysis-query positions: loading the oracle set, GTP-equivalent setup, and every kind of bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from katadeploy.errors import PositionError
from katadeploy.go import board as B
from katadeploy.go.features import encode_v7
from katadeploy.go.position import GameState, load_positions, position_from_query
from katadeploy.go.rules import KO_POSITIONAL, SCORING_TERRITORY
from tests.conftest import SHARED

BLACK, WHITE, PASS = B.C_BLACK, B.C_WHITE, B.PASS_LOC

ORACLE = SHARED / "oracle" / "positions.jsonl"


def q(**kw) -> dict:
    base = {"id": "t1", "moves": [], "rules": "tromp-taylor", "komi": 7.5, "boardXSize": 9, "boardYSize": 9}
    base.update(kw)
    return {k: v for k, v in base.items() if v is not ...}


def bad(query, match: str, *, max_board_size: int = 19, pid: str | None = "t1") -> PositionError:
    with pytest.raises(PositionError, match=match) as ei:
        position_from_query(query, max_board_size)
    assert ei.value.position_id == pid
    if pid is not None:
        assert repr(pid) in str(ei.value)
    return ei.value


# ------------------------------------------------------------------------------------------------- oracle set
@pytest.fixture(scope="module")
def oracle_states() -> list[GameState]:
    return load_positions(ORACLE)


def test_all_oracle_positions_load(oracle_states: list[GameState]) -> None:
    queries = [json.loads(line) for line in ORACLE.read_text().splitlines() if line.strip()]
    assert len(oracle_states) == len(queries) == 80
    for st, query in zip(oracle_states, queries, strict=True):
        assert st.id == query["id"]
        assert (st.x_size, st.y_size) == (query["boardXSize"], query["boardYSize"])
        assert st.rules.komi == query["komi"]
        last = query["moves"][-1][0].upper()
        assert st.next_player == (WHITE if last == "B" else BLACK)
        assert st.history.presumed_next_move_pla == st.next_player
        assert not st.history.is_game_finished or st.history.move_history[-1][0] == PASS


def test_oracle_same_colour_twice_restarts_history(oracle_states: list[GameState]) -> None:
    st = next(s for s in oracle_states if s.id == "rand13_101_10")
    # moves 2 and 3 are both Black (B M13, then B pass): KataGo clears the history before the pass.
    queries = {json.loads(line)["id"]: json.loads(line) for line in ORACLE.read_text().splitlines()}
    n = len(queries["rand13_101_10"]["moves"])
    assert len(st.history.move_history) == n - 3
    assert st.history.move_history[0] == (PASS, BLACK)


def test_oracle_white_first_on_empty_board(oracle_states: list[GameState]) -> None:
    st = next(s for s in oracle_states if s.id.startswith("Dancer_0049"))
    assert st.history.initial_pla == WHITE
    assert st.history.move_history[0][1] == WHITE


# ------------------------------------------------------------------------------------------------- setup semantics
def test_simple_game_and_features() -> None:
    st = position_from_query(q(moves=[["B", "D4"], ["W", "pass"], ["b", "E5"]]))
    assert st.next_player == WHITE
    assert st.board.colors[st.board.loc_of_string("E5")] == BLACK
    spatial, glob = encode_v7(st.history, st.next_player, 19, 19)
    assert glob[1] == 1.0  # the move two turns ago was a pass
    assert spatial[0].sum() == 81


def test_initial_stones_have_no_history_and_handicap_counts() -> None:
    stones = [["B", "C3"], ["B", "G7"]]
    st = position_from_query(q(initialStones=stones, moves=[["W", "E5"]], rules="chinese"))
    assert st.history.move_history == [(st.board.loc_of_string("E5"), WHITE)]
    assert st.history.white_handicap_bonus_score == 2.0  # chinese: +N
    st = position_from_query(q(initialStones=stones, moves=[["W", "E5"]], rules="aga"))
    assert st.history.white_handicap_bonus_score == 1.0  # aga: N-1
    st = position_from_query(q(initialStones=stones, moves=[["W", "E5"]], rules="japanese"))
    assert st.history.white_handicap_bonus_score == 0.0


def test_consecutive_black_moves_count_as_handicap() -> None:
    st = position_from_query(q(moves=[["B", "C3"], ["B", "G7"], ["W", "E5"]], rules="chinese"))
    assert st.history.white_handicap_bonus_score == 2.0
    assert st.next_player == BLACK


def test_initial_player_rules() -> None:
    # No moves: White after a handicap setup, else Black; initialPlayer overrides.
    assert position_from_query(q(initialStones=[["B", "C3"], ["B", "G7"]])).next_player == WHITE
    assert position_from_query(q(initialStones=[["B", "C3"]])).next_player == BLACK
    assert position_from_query(q(initialStones=[["B", "C3"], ["W", "G7"]])).next_player == BLACK
    assert position_from_query(q(initialPlayer="W")).next_player == WHITE
    assert position_from_query(q(initialPlayer="black")).next_player == BLACK
    # With moves, the first move's colour decides (as in KataGo).
    assert position_from_query(q(initialPlayer="B", moves=[["W", "E5"]])).next_player == BLACK


def test_komi_and_rules_object() -> None:
    st = position_from_query(q(rules={"ko": "SIMPLE", "scoring": "TERRITORY"}, komi=0))
    assert st.rules.scoring_rule == SCORING_TERRITORY and st.rules.komi == 0.0
    st = position_from_query(q(rules="koPOSITIONALscoreAREAtaxNONEsui1", komi=-3.5))
    assert st.rules.ko_rule == KO_POSITIONAL and st.rules.komi == -3.5
    # Without komi, the rules' own default komi is used.
    assert position_from_query(q(rules="japanese", komi=...)).rules.komi == 6.5
    assert position_from_query(q(whiteHandicapBonus="N")).rules.white_handicap_bonus_rule == 1


def test_rectangular_board_and_pass_variants() -> None:
    st = position_from_query(q(boardXSize=13, boardYSize=7, moves=[["B", "N7"], ["W", "PASS"], ["B", "a1"]]))
    assert (st.board.x_size, st.board.y_size) == (13, 7)
    assert st.history.move_history[1] == (PASS, WHITE)


def test_game_continues_after_two_passes() -> None:
    st = position_from_query(q(moves=[["B", "E5"], ["W", "pass"], ["B", "pass"], ["W", "D4"]]))
    assert not st.history.is_game_finished
    st = position_from_query(q(moves=[["B", "E5"], ["W", "pass"], ["B", "pass"]]))
    assert st.history.is_game_finished
    # Territory rules never enter the cleanup phase (preventEncore).
    st = position_from_query(q(rules="japanese", moves=[["B", "E5"], ["W", "pass"], ["B", "pass"]]))
    assert st.history.encore_phase == 0 and st.history.is_past_normal_phase_end


def test_load_positions(tmp_path: Path) -> None:
    p = tmp_path / "pos.jsonl"
    p.write_text(json.dumps(q(id="a")) + "\n\n" + json.dumps(q(id="b", moves=[["B", "E5"]])) + "\n")
    states = load_positions(p)
    assert [s.id for s in states] == ["a", "b"]
    p.write_text(json.dumps(q(id="a")) + "\n{oops\n")
    with pytest.raises(PositionError, match="line 2"):
        load_positions(p)
    with pytest.raises(PositionError, match="cannot read"):
        load_positions(tmp_path / "missing.jsonl")
    p.write_text(json.dumps(q(id="c", moves=[["B", "Z9"]])) + "\n")
    with pytest.raises(PositionError) as ei:
        load_positions(p)
    assert ei.value.position_id == "c"


# ------------------------------------------------------------------------------------------------- illegal moves
KO_SETUP = [["B", "D5"], ["B", "C4"], ["B", "D3"], ["W", "E5"], ["W", "F4"], ["W", "E3"], ["W", "D4"]]


def test_occupied_point() -> None:
    bad(q(moves=[["B", "E5"], ["W", "E5"]]), "illegal move 1 .*occupied")
    bad(q(initialStones=[["B", "E5"]], moves=[["W", "E5"]]), "illegal move 0 .*occupied")


def test_single_stone_suicide_is_always_illegal() -> None:
    stones = [["W", "A2"], ["W", "B1"]]
    bad(q(initialStones=stones, moves=[["B", "A1"]]), "single-stone suicide")
    bad(q(initialStones=stones, moves=[["B", "A1"]], rules="new-zealand"), "single-stone suicide")


def test_multi_stone_suicide_depends_on_rules() -> None:
    stones = [["B", "A1"], ["W", "A2"], ["W", "B2"], ["W", "C1"]]
    bad(q(initialStones=stones, moves=[["B", "B1"]], rules="japanese"), "multi-stone suicide")
    st = position_from_query(q(initialStones=stones, moves=[["B", "B1"]], rules="tromp-taylor"))
    assert st.board.colors[st.board.loc_of_string("A1")] == B.C_EMPTY


def test_simple_ko_violation() -> None:
    stones = KO_SETUP[:-1]
    # White D4 is in atari; black captures it at E4, white may not retake at D4 immediately.
    bad(q(initialStones=stones, moves=[["W", "D4"], ["B", "E4"], ["W", "D4"]]), "illegal move 2 .*ko")
    # With a move in between it is legal again.
    st = position_from_query(
        q(initialStones=stones, moves=[["W", "D4"], ["B", "E4"], ["W", "A9"], ["B", "A8"], ["W", "D4"]])
    )
    assert st.board.colors[st.board.loc_of_string("D4")] == WHITE
    # Tolerant mode accepts the immediate recapture, as KataGo's GTP play does.
    st = position_from_query(
        q(initialStones=stones, moves=[["W", "D4"], ["B", "E4"], ["W", "D4"]]), strict=False
    )
    assert st.board.colors[st.board.loc_of_string("D4")] == WHITE


def test_superko_violation() -> None:
    # Two passes lift the simple-ko ban, but retaking would repeat the position after move 0:
    # positional (tromp-taylor) and situational (aga) superko forbid it, simple ko (chinese) allows it.
    stones = KO_SETUP[:-1]
    moves = [["W", "D4"], ["B", "E4"], ["W", "pass"], ["B", "pass"], ["W", "D4"]]
    err = bad(q(initialStones=stones, moves=moves, rules="tromp-taylor"), "illegal move 4 .*superko")
    assert "W D4" in str(err)
    bad(q(initialStones=stones, moves=moves, rules="aga"), "illegal move 4 .*superko")
    st = position_from_query(q(initialStones=stones, moves=moves, rules="chinese"))
    assert st.board.colors[st.board.loc_of_string("D4")] == WHITE
    position_from_query(q(initialStones=stones, moves=moves, rules="tromp-taylor"), strict=False)


# ------------------------------------------------------------------------------------------------- malformed input
@pytest.mark.parametrize(
    "vertex", ["Z9", "", "D", "D0", "I5", "E10", "T19", "(9,9)", "(-1,0)", "44", "E5x", "null"]
)
def test_malformed_or_off_board_vertices(vertex: str) -> None:
    bad(q(moves=[["B", vertex]]), "could not parse board location")


def test_pass_not_allowed_in_initial_stones() -> None:
    bad(q(initialStones=[["B", "pass"]]), "pass is not allowed")


@pytest.mark.parametrize("color", ["X", "", "bl", 1, None, "empty"])
def test_wrong_colours(color) -> None:
    bad(q(moves=[[color, "E5"]]), "moves")


@pytest.mark.parametrize("entry", [["B"], ["B", "E5", "x"], "B E5", {"B": "E5"}, ["B", 5], None])
def test_malformed_move_entries(entry) -> None:
    bad(q(moves=[entry]), "moves")


@pytest.mark.parametrize("field", ["moves", "initialStones"])
def test_move_lists_must_be_arrays(field: str) -> None:
    bad(q(**{field: "B E5"}), field)


@pytest.mark.parametrize("size", [1, 0, -3, 20, 25, "9", 9.0, True, None])
def test_sizes_out_of_range(size) -> None:
    bad(q(boardXSize=size), "boardXSize")
    bad(q(boardYSize=size), "boardYSize")


def test_max_board_size_parameter() -> None:
    bad(q(boardXSize=13, boardYSize=13), "boardXSize", max_board_size=9)
    assert position_from_query(q(boardXSize=25, boardYSize=25), 29).x_size == 25


@pytest.mark.parametrize("komi", ["7.5", None, [7.5], True, math.nan, math.inf, 7.3, 400.5, -401])
def test_bad_komi(komi) -> None:
    bad(q(komi=komi), "komi")


@pytest.mark.parametrize(
    "rules",
    ["chinese-rules", "", 5, None, ["japanese"], {"ko": "positional"}, {"komi": "x"}, "koSIMPLEscoreBOTH"],
)
def test_bad_rules(rules) -> None:
    bad(q(rules=rules), "rules")


@pytest.mark.parametrize("field", ["moves", "rules", "boardXSize", "boardYSize"])
def test_missing_fields(field: str) -> None:
    bad(q(**{field: ...}), field)


def test_missing_or_bad_id() -> None:
    bad(q(id=...), "missing field 'id'", pid=None)
    bad(q(id=5), "'id' must be a string", pid="5")


@pytest.mark.parametrize("query", [None, [], "E5", 3])
def test_query_must_be_object(query) -> None:
    bad(query, "must be a JSON object", pid=None)


def test_bad_initial_player_and_handicap_bonus() -> None:
    bad(q(initialPlayer="X"), "initialPlayer")
    bad(q(initialPlayer=1), "initialPlayer")
    bad(q(whiteHandicapBonus="N+1"), "whiteHandicapBonus")
    bad(q(whiteHandicapBonus=1), "whiteHandicapBonus")


def test_bad_initial_stones() -> None:
    bad(q(initialStones=[["B", "E5"], ["W", "E5"]]), "two stones on E5")
    bad(q(initialStones=[["W", "A2"], ["W", "B1"], ["B", "A1"]]), "no liberties")
    bad(q(initialStones=[["B", "A1"], ["W", "A2"], ["W", "B1"]]), "no liberties")
