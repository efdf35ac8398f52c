"""The referee (katadeploy.match.game) with scripted players, and its SGF (katadeploy.match.record) via sgfmill."""

from __future__ import annotations

from typing import Any

import pytest
from sgfmill import sgf

from katadeploy.match.game import EngineMove, GameSettings, GameSpec, area_score, play_game, result_string
from katadeploy.match.openings import Opening
from katadeploy.match.record import game_sgf, sgf_name


class Scripted:
    """Plays the given moves in turn (``winrates`` from Black's view, one per move); records the queries."""

    def __init__(self, moves: list[str], winrates: list[float] | None = None):
        self.moves = list(moves)
        self.winrates = list(winrates) if winrates is not None else [0.5] * len(moves)
        self.queries: list[dict[str, Any]] = []

    def genmove(self, query: dict[str, Any]) -> EngineMove:
        self.queries.append(query)
        return EngineMove(self.moves.pop(0), self.winrates.pop(0), 7)


def spec(settings: GameSettings, opening: tuple[tuple[str, str], ...] = (), a_black: bool = True) -> GameSpec:
    return GameSpec(3, Opening("test-opening", opening), a_black, settings)


FIVE = GameSettings(
    board=5, komi=7.5, rules="tromp-taylor", max_moves=100, resign_threshold=0.05, resign_moves=2
)


def test_two_passes_end_the_game_scored_by_area():
    # Black builds column B, White column D; column A is Black's area, E White's, C touches both (neutral)
    black = Scripted(["B1", "B2", "B3", "B4", "B5", "pass"])
    white = Scripted(["D1", "D2", "D3", "D4", "D5", "pass"])
    rec = play_game(spec(FIVE), black, white)
    assert rec["end"] == "passes" and rec["score"] == 7.5 and rec["result"] == "W+7.5"
    assert rec["winner"] == "B" and rec["black"] == "A" and rec["white"] == "B"
    assert len(rec["moves"]) == 12 and rec["moves"][-2:] == [["B", "pass"], ["W", "pass"]]
    # every query is the whole game so far, from the empty board, Black first, with the match's settings
    q = white.queries[-1]
    assert q["moves"] == rec["moves"][:11] and q["initialPlayer"] == "B" and q["komi"] == 7.5
    assert q["rules"] == "tromp-taylor" and q["boardXSize"] == q["boardYSize"] == 5


def test_one_pass_does_not_end_the_game_and_colours_follow_the_spec():
    black = Scripted(["C3", "C2", "pass", "pass"])
    white = Scripted(["pass", "D2", "pass"])
    rec = play_game(spec(FIVE, a_black=False), black, white)
    assert [m[1] for m in rec["moves"]] == ["C3", "pass", "C2", "D2", "pass", "pass"]
    assert rec["black"] == "B" and rec["white"] == "A"
    assert rec["end"] == "passes" and rec["result"] == result_string(rec["score"])


def test_resignation_needs_both_engines_to_agree():
    # White's engine sees Black lost from its first move, Black's own engine only from its second: Black
    # resigns after its third move, once its last two estimates (and White's last two) agree
    black = Scripted(["C3", "C2", "C4"], [0.5, 0.02, 0.01])
    white = Scripted(["D3", "D2", "D4"], [0.03, 0.01, 0.5])
    rec = play_game(spec(FIVE), black, white)
    assert rec["end"] == "resign" and rec["result"] == "W+R" and rec["winner"] == "B"
    assert len(rec["moves"]) == 5 and rec["score"] is None
    # White's engine disagrees (it thinks it is losing): no resignation, the game runs to the move cap
    capped = GameSettings(board=5, komi=7.5, max_moves=6, resign_threshold=0.05, resign_moves=2)
    black = Scripted(["C3", "C2", "C4"], [0.5, 0.02, 0.01])
    white = Scripted(["D3", "D2", "D4"], [0.6, 0.7, 0.8])
    rec = play_game(spec(capped), black, white)
    assert rec["end"] == "move cap" and len(rec["moves"]) == 6 and rec["score"] is not None


def test_resignation_off_and_move_cap_scoring():
    settings = GameSettings(board=5, komi=0.5, max_moves=4, resign_threshold=0.0, resign_moves=1)
    black = Scripted(["C3", "C2"], [0.0, 0.0])
    white = Scripted(["D3", "D2"], [0.0, 0.0])
    rec = play_game(spec(settings), black, white)
    assert rec["end"] == "move cap" and len(rec["moves"]) == 4
    assert rec["score"] == 0.5 and rec["result"] == "W+0.5"  # no region touches one colour only: 2 - 2 + komi


def test_integer_komi_draw():
    settings = GameSettings(board=5, komi=0.0, max_moves=2, resign_threshold=0.0)
    rec = play_game(spec(settings), Scripted(["C3"]), Scripted(["D3"]))
    assert rec["result"] == "0" and rec["winner"] is None


@pytest.mark.parametrize(
    "bad, why",
    [("C3", "an illegal"), ("Z99", "an unreadable"), ("(no move)", "an unreadable")],
)
def test_an_illegal_or_unreadable_move_forfeits(bad, why):
    black = Scripted(["C3"])
    white = Scripted([bad])
    rec = play_game(spec(FIVE), black, white)
    assert rec["end"] == "forfeit" and rec["result"] == "B+F" and rec["winner"] == "A"
    assert why in rec["note"] and len(rec["moves"]) == 1


def test_opening_moves_are_played_first():
    opening = (("B", "C3"), ("W", "D3"))
    black = Scripted(["pass"])
    white = Scripted(["pass"])
    rec = play_game(spec(FIVE, opening), black, white)
    assert rec["moves"][:2] == [["B", "C3"], ["W", "D3"]] and rec["opening_moves"] == 2
    assert black.queries[0]["moves"] == [["B", "C3"], ["W", "D3"]]
    assert rec["winrates"] == [0.5, 0.5]  # engine moves only


def test_area_score_counts_stones_and_single_colour_regions():
    from katadeploy.go.board import Board

    board = Board.parse_board(5, 5, ".x.o.\n.x.o.\n.x.o.\n.x.o.\n.x.o.\n")
    assert area_score(board, 7.5, False) == 7.5  # 10 - 10 + komi
    board = Board.parse_board(5, 5, ".x...\nxx...\n.....\n.....\n.....\n")
    assert area_score(board, 7.5, False) == -25 + 7.5  # every empty point touches Black only


def test_sgf_is_readable_by_sgfmill():
    black = Scripted(["B1", "B2", "B3", "B4", "B5", "pass"])
    white = Scripted(["D1", "D2", "D3", "D4", "D5", "pass"])
    rec = play_game(spec(FIVE, a_black=False), black, white)
    data = game_sgf(rec, {"A": "A: net (7v)", "B": "B: other (7v)"}, 5, 7.5, "tromp-taylor")
    game = sgf.Sgf_game.from_bytes(data)
    root = game.get_root()
    assert game.get_size() == 5 and game.get_komi() == 7.5
    assert root.get("RE") == "W+7.5" and root.get("RU") == "tromp-taylor"
    assert root.get("PB") == "B: other (7v)" and root.get("PW") == "A: net (7v)"
    moves = [node.get_move() for node in game.get_main_sequence()[1:]]
    assert (
        moves[0] == ("b", (0, 1)) and moves[1] == ("w", (0, 3)) and moves[-2:] == [("b", None), ("w", None)]
    )
    assert len(moves) == len(rec["moves"])
    assert sgf_name(7) == "game-0007.sgf"
