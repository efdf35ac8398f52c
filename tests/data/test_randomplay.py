"""Random legal-play games (katadeploy.data.randomplay): legal under KataGo's rules, reproducible, varied komi."""

from __future__ import annotations

import pytest

from katadeploy.data.randomplay import KOMIS, MAX_MOVES_PER_POINT, random_games
from katadeploy.errors import KatadeployError
from katadeploy.go.position import position_from_query


def test_random_games_are_legal_reproducible_and_vary_komi():
    games = random_games([(7, 7), (9, 13)], 6, seed=3, progress=False)
    assert [g.source for g in games[:2]] == ["random/7x7/0", "random/7x7/1"]
    assert {(g.x_size, g.board_y) for g in games} == {(7, 7), (9, 13)}
    for g in games:
        # strict replay: every move legal by katadeploy's (KataGo's) rules, superko included
        position_from_query(g.query(g.n_moves, "tromp-taylor"), max_board_size=19, strict=True)
        assert 0 < g.n_moves <= int(MAX_MOVES_PER_POINT * g.x_size * g.board_y)
        assert g.komi in KOMIS
        assert all(v != "pass" for _, v in g.moves[:10])  # pass only when no board move is legal
    assert len({g.komi for g in games}) > 3
    assert len({g.sha256 for g in games}) == len(games)
    again = random_games([(7, 7), (9, 13)], 6, seed=3, progress=False)
    assert [g.moves for g in again] == [g.moves for g in games]
    assert random_games([(7, 7)], 1, seed=4, progress=False)[0].moves != games[0].moves


def test_random_games_capture():
    """Random play is full of captures: the final boards hold fewer stones than moves were played."""
    for g in random_games([(7, 7)], 3, seed=0, progress=False):
        st = position_from_query(g.query(g.n_moves, "chinese"), max_board_size=19, strict=True)
        board = st.history.board
        assert board.num_black_captures + board.num_white_captures > 0
        assert board.num_stones_on_board() < g.n_moves


def test_random_games_rejects_no_games():
    with pytest.raises(KatadeployError, match="positive number"):
        random_games([(7, 7)], 0)
