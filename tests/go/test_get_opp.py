"""``get_opp`` has one definition (go.board) with KataGo's semantics: ``getOpp(c) == 3 - c`` for every colour."""

from __future__ import annotations

from katadeploy.go import board, features, history
from katadeploy.go.board import C_BLACK, C_EMPTY, C_WALL, C_WHITE, P_BLACK, P_WHITE, get_opp


def test_get_opp_is_kataGos_three_minus_c_for_players_and_non_players():
    assert get_opp(P_BLACK) == P_WHITE and get_opp(P_WHITE) == P_BLACK
    assert get_opp(C_BLACK) == C_WHITE and get_opp(C_WHITE) == C_BLACK
    assert get_opp(C_EMPTY) == C_WALL and get_opp(C_WALL) == C_EMPTY
    for c in (C_EMPTY, C_BLACK, C_WHITE, C_WALL):
        assert get_opp(c) == 3 - c
        assert get_opp(get_opp(c)) == c


def test_get_opp_has_one_definition():
    assert history.get_opp is board.get_opp
    assert features.get_opp is board.get_opp
