"""Queries built from SGF records: setup/handicap stones, rules from RU, komi normalisation, turn choice."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import pytest
from sgfmill import sgf

from katadeploy.engine import AnalysisEngine, SgfWarning, normalize_komi, query_from_game, query_from_sgf
from katadeploy.engine.sgf import fixed_handicap_points, rules_from_sgf, select_turns, vertex
from katadeploy.errors import PositionError

FAKE = Path(__file__).with_name("fake_engine.py")


@pytest.fixture(scope="module")
def sgf_dir(shared_dir: Path) -> Path:
    return shared_dir / "sgf"


# ------------------------------------------------------------------------------------------------ helpers


def test_vertex_uses_gtp_letters_without_i():
    assert vertex(0, 0) == "A1"
    assert vertex(18, 18) == "T19"
    assert vertex(3, 8) == "J4"
    assert vertex(15, 15) == "Q16"
    assert vertex(0, 25) == "AA1"  # KataGo's extended columns


@pytest.mark.parametrize(
    ("raw", "komi"),
    [
        ("750", 7.5),
        ("650", 6.5),
        ("375", 7.5),  # Fox stores komi x50
        ("-750", -7.5),
        ("7.5", 7.5),
        ("6.5", 6.5),
        ("7,5", 7.5),
        ("0", 0.0),
        (" 5.5 ", 5.5),
        ("7.25", 7.5),
        ("-0.2", 0.0),
        ("100", 100.0),
        (b"750", 7.5),
        (6, 6.0),
    ],
)
def test_normalize_komi(raw, komi):
    value = normalize_komi(raw)
    assert value == komi
    assert value * 2 == int(value * 2)


def test_normalize_komi_edge_cases():
    assert normalize_komi(None) is None
    assert normalize_komi("", default=6.5) == 6.5
    assert str(normalize_komi("-0.2")) == "0.0"
    with pytest.raises(PositionError, match="not a number"):
        normalize_komi("seven")
    with pytest.raises(PositionError, match="range"):
        normalize_komi("401")
    with pytest.raises(PositionError):
        normalize_komi(float("nan"))


@pytest.mark.parametrize(
    ("ru", "rules"),
    [
        ("Japanese", "japanese"),
        ("japanese", "japanese"),
        ("Chinese", "chinese"),
        ("CN", "chinese"),
        ("Korean", "korean"),
        ("AGA", "aga"),
        ("New Zealand", "new-zealand"),
        ("NZ", "new-zealand"),
        ("Tromp-Taylor", "tromp-taylor"),
        ("GOE", "goe"),
        ("Ing", "goe"),
        ("chinese_ogs", "chinese-ogs"),
        ("Stone Scoring", "stone-scoring"),
        ("koPOSITIONALscoreAREAtaxNONEsui1", "koPOSITIONALscoreAREAtaxNONEsui1"),
        (None, "japanese"),
        ("  ", "japanese"),
    ],
)
def test_rules_from_sgf(ru, rules):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert rules_from_sgf(ru) == rules


def test_unknown_rules_fall_back_with_warning():
    with pytest.warns(SgfWarning, match="Martian"):
        assert rules_from_sgf("Martian", default="chinese") == "chinese"


def test_select_turns():
    assert select_turns("last", 10) is None
    assert select_turns(None, 10) is None
    assert select_turns("all", 3) == [0, 1, 2, 3]
    assert select_turns(-1, 10) == [10]
    assert select_turns(0, 10) == [0]
    assert select_turns([5, 0, -1, 5], 10) == [0, 5, 10]
    assert select_turns(range(0, 11, 5), 10) == [0, 5, 10]
    assert select_turns(slice(-3, None), 10) == [8, 9, 10]
    for bad in (11, [0, 12], -12, "some", [1.5], [True]):
        with pytest.raises(PositionError):
            select_turns(bad, 10)


def test_fixed_handicap_points():
    assert sorted(vertex(*p) for p in fixed_handicap_points(19, 2)) == ["D4", "Q16"]
    assert sorted(vertex(*p) for p in fixed_handicap_points(19, 9)) == sorted(
        ["D4", "Q16", "D16", "Q4", "K10", "D10", "Q10", "K4", "K16"]
    )
    assert sorted(vertex(*p) for p in fixed_handicap_points(9, 4)) == ["C3", "C7", "G3", "G7"]
    with pytest.raises(PositionError):
        fixed_handicap_points(19, 10)


# ------------------------------------------------------------------------------------------------ real records


def test_query_from_real_record(sgf_dir):
    query = query_from_sgf(sgf_dir / "BensonDarr_0000.sgf", max_visits=5, query_id="g0")
    assert query.id == "g0" and query.max_visits == 5
    assert query.board_x_size == query.board_y_size == 19
    assert query.komi == 7.5  # KM[750]
    assert query.rules == "japanese"
    assert query.initial_stones is None and query.initial_player == "B"
    assert query.moves[:4] == [["B", "Q16"], ["W", "D4"], ["B", "R4"], ["W", "D16"]]
    assert query.analyze_turns is None
    wire = query.to_dict()
    assert wire["moves"][0] == ["B", "Q16"] and "initialStones" not in wire


def test_handicap_record_in_second_node(sgf_dir):
    query = query_from_sgf(sgf_dir / "Dancer_0019.sgf", turns=[0, 1])
    assert sorted(map(tuple, query.initial_stones)) == [("B", "D4"), ("B", "Q16")]
    assert query.initial_player == "W" and query.moves[0] == ["W", "C16"]
    assert query.komi == 6.5 and query.analyze_turns == [0, 1]


def test_fox_komi_record(sgf_dir):
    assert query_from_sgf(sgf_dir / "Jin_Mao_Ce_Shi_0057.sgf").komi == 7.5


def test_every_shared_record_gives_a_valid_query(sgf_dir):
    files = sorted(sgf_dir.glob("*.sgf"))
    assert len(files) >= 100
    with warnings.catch_warnings():
        warnings.simplefilter("error", SgfWarning)
        for path in files:
            query = query_from_sgf(path, turns="all")
            assert query.komi is None or (query.komi * 2 == int(query.komi * 2) and abs(query.komi) <= 400)
            assert query.rules in ("japanese", "chinese")
            assert query.analyze_turns == list(range(len(query.moves) + 1))
            assert all(c in ("B", "W") and (v == "pass" or v[0].isalpha()) for c, v in query.moves)


# ------------------------------------------------------------------------------------------------ crafted records


def test_fixed_handicap_without_setup_stones():
    query = query_from_sgf("(;GM[1]FF[4]SZ[19]HA[2]KM[0.5];W[pp];B[dd])")
    assert sorted(map(tuple, query.initial_stones)) == [("B", "D4"), ("B", "Q16")]
    assert query.initial_player == "W" and query.komi == 0.5
    # handicap given as free black moves: kept as moves
    query = query_from_sgf("(;GM[1]FF[4]SZ[19]HA[2];B[dd];B[pp];W[dp])")
    assert query.initial_stones is None and [c for c, _ in query.moves] == ["B", "B", "W"]


def test_initial_player_without_moves():
    assert query_from_sgf("(;SZ[9]AB[cc][gg]HA[2])").initial_player == "W"
    assert query_from_sgf("(;SZ[9]AB[cc]AW[gg]PL[W])").initial_player == "W"
    assert query_from_sgf("(;SZ[9]AB[cc]AW[gg])").initial_player == "B"


def test_setup_and_move_in_root_and_passes():
    query = query_from_sgf(b"(;SZ[9]KM[7]AB[aa]AW[ii]B[ee];W[];B[tt])")
    assert query.initial_stones == [["B", "A9"], ["W", "J1"]]
    assert query.moves == [["B", "E5"], ["W", "pass"], ["B", "pass"]]
    assert query.komi == 7.0 and query.board_x_size == 9


def test_setup_after_moves_restarts_history_with_captures():
    # Black captures the white stone at A9 (aa), then a setup node adds a stone.
    record = "(;SZ[5]KM[0];W[aa];B[ba];W[ee];B[ab];AB[cc];W[dd];B[de])"
    with pytest.warns(SgfWarning, match="history restarted"):
        query = query_from_sgf(record, turns="all")
    stones = sorted(map(tuple, query.initial_stones))
    assert stones == [("B", "A4"), ("B", "B5"), ("B", "C3"), ("W", "E1")]  # A5 was captured
    assert query.moves == [["W", "D2"], ["B", "D1"]]
    assert query.initial_player == "W" and query.analyze_turns == [0, 1, 2]


def test_overrides_and_inputs(tmp_path):
    text = "(;GM[1]FF[4]SZ[13]RU[Chinese]KM[7.5];B[dd];W[jj])"
    path = tmp_path / "g.sgf"
    path.write_text(text)
    from_path = query_from_sgf(path)
    from_str_path = query_from_sgf(str(path))
    from_game = query_from_game(sgf.Sgf_game.from_string(text))
    assert from_path == from_str_path == from_game
    assert from_path.rules == "chinese" and from_path.komi == 7.5 and from_path.board_x_size == 13
    q = query_from_sgf(path, rules="tromp-taylor", komi=6.0, turns=-1, include_policy=True)
    assert q.rules == "tromp-taylor" and q.komi == 6.0 and q.analyze_turns == [2] and q.include_policy
    assert query_from_sgf("(;SZ[19])", default_komi=7.5).komi == 7.5


@pytest.mark.parametrize("bad", ["(;SZ[19:13];B[aa])", "not an sgf", "(;SZ[19]KM[abc])"])
def test_bad_records_raise_position_error(bad):
    with pytest.raises(PositionError):
        query_from_sgf(bad)


def test_unreplayable_history_and_missing_file_raise_position_error(tmp_path):
    # the history is only replayed when a later setup node restarts it; a move onto a stone cannot be replayed
    with pytest.raises(PositionError, match="cannot be replayed"):
        query_from_sgf("(;SZ[5];B[aa];W[aa];AB[cc])")
    with pytest.raises(PositionError, match="cannot read"):
        query_from_sgf(tmp_path / "missing.sgf")


def test_sgf_query_runs_on_fake_engine(sgf_dir):
    query = query_from_sgf(sgf_dir / "DeepZenGo_0000.sgf", turns=[0, 10, 20], max_visits=2)
    with AnalysisEngine([sys.executable, str(FAKE)]) as eng:
        results = eng.analyze_turns(query)
    assert [r.turn_number for r in results] == [0, 10, 20]
    assert results[0]["fakeEcho"]["analyzeTurns"] == [0, 10, 20]
