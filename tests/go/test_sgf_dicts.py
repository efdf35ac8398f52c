"""katadeploy.go.sgf gives plain analysis-query dicts (what position_from_query reads); engine.sgf wraps them."""

from __future__ import annotations

import warnings

import pytest

from katadeploy.engine import errors as engine_errors
from katadeploy.engine.sgf import query_from_sgf
from katadeploy.errors import PositionError
from katadeploy.go import sgf as go_sgf
from katadeploy.go.position import position_from_query

GAME = b"(;GM[1]SZ[9]KM[650]RU[Chinese]HA[2]AB[cc][gg];W[ee];B[dc];W[])"


def test_query_dict_is_the_wire_form_of_the_engine_query():
    wire = go_sgf.query_dict_from_sgf(GAME, turns="all", query_id="g1")
    assert wire == {
        "id": "g1",
        "moves": [["W", "E5"], ["B", "D7"], ["W", "pass"]],
        "initialStones": [["B", "C7"], ["B", "G3"]],
        "initialPlayer": "W",
        "rules": "chinese",
        "komi": 6.5,
        "boardXSize": 9,
        "boardYSize": 9,
        "analyzeTurns": [0, 1, 2, 3],
    }
    assert query_from_sgf(GAME, turns="all", query_id="g1").to_dict() == wire
    assert position_from_query(wire, max_board_size=9) is not None
    bare = go_sgf.query_dict_from_sgf(b"(;SZ[9];B[ee])")
    assert set(bare) == {"moves", "initialPlayer", "rules", "boardXSize", "boardYSize"}


def test_errors_and_the_one_warning_class():
    assert engine_errors.SgfWarning is go_sgf.SgfWarning
    with pytest.raises(PositionError, match="cannot be replayed"):
        go_sgf.query_dict_from_sgf(b"(;SZ[9];B[ee];W[ee];AB[aa])")  # replayed at the setup
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        go_sgf.query_dict_from_sgf(b"(;SZ[9]RU[Martian];B[ee])")
    assert [type(w.message) for w in caught] == [go_sgf.SgfWarning]
