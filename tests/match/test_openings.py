"""Openings (katadeploy.match.openings): real games on 19x19, seeded random ones on 9x9/13x13, SGF sets."""

from __future__ import annotations

from pathlib import Path

import pytest

from katadeploy.errors import KatadeployError
from katadeploy.go.coords import loc_of_string
from katadeploy.go.position import position_from_query
from katadeploy.match.openings import choose_openings


def test_bundled_openings_on_19x19_are_distinct_real_game_prefixes():
    s = choose_openings(19, 40)
    assert len(s.openings) == 40 and "bundled real games" in s.source
    assert len({o.moves for o in s.openings}) == 40
    for o in s.openings:
        assert len(o.moves) == 10 and [c for c, _ in o.moves] == ["B", "W"] * 5
        assert "@10" in o.id
    # each opening is played by a colour-swapped pair of games
    assert s.for_game(0) == s.for_game(1) != s.for_game(2) == s.for_game(3)
    assert s.for_game(80) == s.for_game(0)  # cycles past the end


@pytest.mark.parametrize("board, moves", [(9, 2), (13, 4)])
def test_small_boards_get_seeded_random_openings_on_the_third_line_or_above(board, moves):
    s = choose_openings(board, 30, seed=5)
    assert len(s.openings) == 30 and "random" in s.source
    assert len({o.moves for o in s.openings}) == 30
    for o in s.openings:
        assert len(o.moves) == moves
        position_from_query(
            {
                "id": o.id,
                "moves": [list(m) for m in o.moves],
                "rules": "tromp-taylor",
                "boardXSize": board,
                "boardYSize": board,
            }
        )  # fmt: skip  (legal, or it raises)
        for _, v in o.moves:
            col = "ABCDEFGHJKLMNOPQRST".index(v[0])
            row = int(v[1:]) - 1
            assert 2 <= col <= board - 3 and 2 <= row <= board - 3
            loc_of_string(v, board, board)
    assert choose_openings(board, 30, seed=5) == s
    assert choose_openings(board, 30, seed=6).openings != s.openings


def test_openings_are_prefix_stable_so_a_longer_match_can_resume():
    for board in (9, 19):
        short, long = choose_openings(board, 3), choose_openings(board, 12)
        assert long.openings[:3] == short.openings


def _sgf(size: int, moves: str) -> str:
    return f"(;GM[1]FF[4]SZ[{size}]KM[7]{moves})"


def test_sgf_set_is_filtered_to_the_board_size(tmp_path: Path):
    (tmp_path / "a.sgf").write_text(_sgf(9, ";B[ee];W[cc];B[gg];W[cg]"))
    (tmp_path / "b.sgf").write_text(_sgf(9, ";B[cc];W[ee];B[gc]"))
    (tmp_path / "short.sgf").write_text(_sgf(9, ";B[cc]"))
    (tmp_path / "dup.sgf").write_text(_sgf(9, ";B[ee];W[cc];B[aa]"))
    (tmp_path / "big.sgf").write_text(_sgf(19, ";B[pd];W[dd];B[pp]"))
    (tmp_path / "handicap.sgf").write_text("(;GM[1]FF[4]SZ[9]HA[2]AB[cc][gg];W[ee];B[cg])")
    s = choose_openings(9, 5, sources=[tmp_path], moves=2)
    assert sorted(o.id for o in s.openings) == [
        "a@2",
        "b@2",
    ]  # dup shares a's prefix; short, 19x19, handicap out
    assert sorted(o.moves for o in s.openings) == [(("B", "C7"), ("W", "E5")), (("B", "E5"), ("W", "C7"))]
    assert "reused" in s.source
    with pytest.raises(KatadeployError, match="no usable 13x13 game"):
        choose_openings(13, 5, sources=[tmp_path], moves=2)
    with pytest.raises(KatadeployError, match="no such SGF"):
        choose_openings(9, 5, sources=[tmp_path / "missing"])


def test_zero_opening_moves_means_the_empty_board():
    s = choose_openings(9, 10, moves=0)
    assert [o.moves for o in s.openings] == [()]
