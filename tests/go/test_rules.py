"""Rules parsing (``Rules::parseRules``) and ko/superko/pass/game-end behaviour of the history.

The history scenarios and their expected output are KataGo's own (``cpp/tests/testrules.cpp`` v1.17.2):
"Simple/Positional/Situational/Spight ko rules", "Suicide ko testing" and "Eternal life".
"""

from __future__ import annotations

import json

import pytest

from katadeploy.go import board as B
from katadeploy.go import rules as R
from katadeploy.go.history import BoardHistory
from katadeploy.go.rules import Rules, RulesError, parse_rules, parse_rules_without_komi

BLACK, WHITE, PASS = B.C_BLACK, B.C_WHITE, B.PASS_LOC


# ------------------------------------------------------------------------------------------------- parsing
@pytest.mark.parametrize(
    "name, ko, scoring, tax, sui, button, whb, fpok, komi",
    [
        ("tromp-taylor", R.KO_POSITIONAL, R.SCORING_AREA, R.TAX_NONE, True, False, R.WHB_ZERO, False, 7.5),
        ("TrompTaylor", R.KO_POSITIONAL, R.SCORING_AREA, R.TAX_NONE, True, False, R.WHB_ZERO, False, 7.5),
        ("chinese", R.KO_SIMPLE, R.SCORING_AREA, R.TAX_NONE, False, False, R.WHB_N, True, 7.5),
        ("chinese-ogs", R.KO_POSITIONAL, R.SCORING_AREA, R.TAX_NONE, False, False, R.WHB_N, True, 7.5),
        ("chinese_kgs", R.KO_POSITIONAL, R.SCORING_AREA, R.TAX_NONE, False, False, R.WHB_N, True, 7.5),
        ("japanese", R.KO_SIMPLE, R.SCORING_TERRITORY, R.TAX_SEKI, False, False, R.WHB_ZERO, False, 6.5),
        (" Korean ", R.KO_SIMPLE, R.SCORING_TERRITORY, R.TAX_SEKI, False, False, R.WHB_ZERO, False, 6.5),
        ("aga", R.KO_SITUATIONAL, R.SCORING_AREA, R.TAX_NONE, False, False, R.WHB_N_MINUS_ONE, True, 7.5),
        ("bga", R.KO_SITUATIONAL, R.SCORING_AREA, R.TAX_NONE, False, False, R.WHB_N_MINUS_ONE, True, 7.5),
        ("french", R.KO_SITUATIONAL, R.SCORING_AREA, R.TAX_NONE, False, False, R.WHB_N_MINUS_ONE, True, 7.5),
        (
            "aga-button",
            R.KO_SITUATIONAL,
            R.SCORING_AREA,
            R.TAX_NONE,
            False,
            True,
            R.WHB_N_MINUS_ONE,
            True,
            7.0,
        ),
        ("new-zealand", R.KO_SITUATIONAL, R.SCORING_AREA, R.TAX_NONE, True, False, R.WHB_ZERO, True, 7.0),
        ("NZ", R.KO_SITUATIONAL, R.SCORING_AREA, R.TAX_NONE, True, False, R.WHB_ZERO, True, 7.0),
        ("stone-scoring", R.KO_SIMPLE, R.SCORING_AREA, R.TAX_ALL, False, False, R.WHB_ZERO, True, 7.5),
        ("ancient area", R.KO_SIMPLE, R.SCORING_AREA, R.TAX_ALL, False, False, R.WHB_ZERO, True, 7.5),
        (
            "ancient_territory",
            R.KO_SIMPLE,
            R.SCORING_TERRITORY,
            R.TAX_ALL,
            False,
            False,
            R.WHB_ZERO,
            False,
            6.5,
        ),
        ("goe", R.KO_POSITIONAL, R.SCORING_AREA, R.TAX_NONE, True, False, R.WHB_ZERO, True, 7.5),
        ("ing", R.KO_POSITIONAL, R.SCORING_AREA, R.TAX_NONE, True, False, R.WHB_ZERO, True, 7.5),
    ],
)
def test_presets(name, ko, scoring, tax, sui, button, whb, fpok, komi) -> None:
    assert parse_rules(name) == Rules(ko, scoring, tax, sui, button, whb, fpok, komi)


def test_every_preset_alias_parses() -> None:
    for alias in R.PRESETS:
        assert parse_rules(alias) == R.PRESETS[alias]
    assert "chinese ogs" not in R.PRESETS  # KataGo has no space-separated alias for this one


ROUNDTRIP = [  # KataGo's "Test some roundtripping of rules strings"
    Rules(R.KO_SIMPLE, R.SCORING_AREA, R.TAX_NONE, False, False, R.WHB_ZERO, False, 1.0),
    Rules(R.KO_POSITIONAL, R.SCORING_AREA, R.TAX_NONE, False, True, R.WHB_ZERO, True, 3.0),
    Rules(R.KO_SITUATIONAL, R.SCORING_AREA, R.TAX_NONE, True, False, R.WHB_ZERO, False, 5.5),
    Rules(R.KO_SIMPLE, R.SCORING_AREA, R.TAX_SEKI, False, False, R.WHB_ZERO, False, 1.0),
    Rules(R.KO_POSITIONAL, R.SCORING_AREA, R.TAX_SEKI, True, False, R.WHB_N, True, 4.5),
    Rules(R.KO_SITUATIONAL, R.SCORING_TERRITORY, R.TAX_NONE, True, True, R.WHB_N, True, 6.5),
    Rules(R.KO_SIMPLE, R.SCORING_TERRITORY, R.TAX_SEKI, False, True, R.WHB_ZERO, False, 2.0),
    Rules(R.KO_SITUATIONAL, R.SCORING_TERRITORY, R.TAX_SEKI, True, True, R.WHB_ZERO, True, 5.5),
    Rules(R.KO_SIMPLE, R.SCORING_AREA, R.TAX_ALL, True, False, R.WHB_N_MINUS_ONE, False, 2.5),
    Rules(R.KO_POSITIONAL, R.SCORING_AREA, R.TAX_ALL, False, True, R.WHB_ZERO, True, 3.0),
    Rules(R.KO_POSITIONAL, R.SCORING_TERRITORY, R.TAX_ALL, False, True, R.WHB_N_MINUS_ONE, False, 4.0),
    Rules(R.KO_SITUATIONAL, R.SCORING_TERRITORY, R.TAX_ALL, True, False, R.WHB_N, False, 6.5),
]


@pytest.mark.parametrize("rules", ROUNDTRIP, ids=str)
def test_roundtrip(rules: Rules) -> None:
    assert parse_rules(rules.to_short_string()) == rules
    assert parse_rules_without_komi(rules.to_short_string(include_komi=False), rules.komi) == rules
    assert parse_rules(json.dumps(rules.to_json())) == rules
    assert parse_rules(rules.to_json()) == rules
    assert parse_rules_without_komi(json.dumps(rules.to_json(include_komi=False)), rules.komi) == rules


def test_kataGo_rules_parsing_bug_case() -> None:
    # KataGo's "Rules parsing bug" test: expected output koPOSITIONALscoreAREAtaxALLsui1komi23
    assert str(parse_rules("komi23taxALL")) == "koPOSITIONALscoreAREAtaxALLsui1komi23"


def test_short_string_defaults() -> None:
    assert (
        str(parse_rules("koPOSITIONALscoreAREAtaxNONEsui1komi7.5"))
        == "koPOSITIONALscoreAREAtaxNONEsui1komi7.5"
    )
    # Territory without tax -> SEKI and komi 6.5; button -> komi 7.
    r = parse_rules("koSIMPLEscoreTERRITORY")
    assert (r.tax_rule, r.komi) == (R.TAX_SEKI, 6.5)
    assert parse_rules("button1").komi == 7.0
    assert (
        parse_rules("koSITUATIONALscoringAREAsui0whbN-1fpok1").white_handicap_bonus_rule == R.WHB_N_MINUS_ONE
    )
    assert parse_rules("whbN").white_handicap_bonus_rule == R.WHB_N
    assert parse_rules("koSPIGHT").ko_rule == R.KO_SPIGHT
    assert str(parse_rules("koPOSITIONALscoreAREAsui0")) == "koPOSITIONALscoreAREAtaxNONEsui0komi7.5"


def test_json_defaults_and_komi() -> None:
    r = parse_rules({"scoring": "TERRITORY"})
    assert (r.ko_rule, r.tax_rule, r.komi, r.multi_stone_suicide_legal) == (
        R.KO_POSITIONAL,
        R.TAX_SEKI,
        6.5,
        True,
    )
    assert parse_rules('{"hasButton": true}').komi == 7.0
    assert parse_rules({"ko": "SIMPLE", "komi": 5}).komi == 5.0
    assert parse_rules({"score": "AREA", "tax": "ALL"}).tax_rule == R.TAX_ALL


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "   ",
        "chinese-rules",
        "koFOO",
        "koPOSITIONALscoreBOTH",
        "taxSOME",
        "sui2",
        "button",
        "whbN-2x",
        "fpokyes",
        "komiabc",
        "komi1e9",
        "{not json",
        '{"ko": "positional"}',
        '{"ko": 1}',
        '{"suicide": "true"}',
        '{"komi": 7.3}',
        '{"komi": 500}',
        '{"foo": 1}',
        '{"whiteHandicapBonus": "N+1"}',
        {"komi": "7.5"},
        {"tax": None},
        42,
        None,
    ],
)
def test_bad_rules_raise(bad) -> None:
    with pytest.raises(RulesError):
        parse_rules(bad)
    assert issubclass(RulesError, ValueError)


def test_komi_not_allowed_without_komi() -> None:
    with pytest.raises(RulesError):
        parse_rules_without_komi("koSIMPLEkomi7.5", 6.5)
    with pytest.raises(RulesError):
        parse_rules_without_komi('{"komi": 7.5}', 6.5)
    assert parse_rules_without_komi("japanese", 0.5).komi == 0.5


def test_game_result_will_be_integer() -> None:
    assert Rules(komi=7.0).game_result_will_be_integer()
    assert not Rules(komi=7.5).game_result_will_be_integer()
    assert not Rules(komi=7.0, has_button=True).game_result_will_be_integer()
    assert Rules(komi=7.5, has_button=True).game_result_will_be_integer()


def test_rules_validate_fields() -> None:
    with pytest.raises(RulesError):
        Rules(ko_rule=7)
    with pytest.raises(RulesError):
        Rules(tax_rule=-1)


# ------------------------------------------------------------------------------------------------- KataGo ko tests
KO_BASE = ".o.xxo\noxxxo.\no.x.oo\nxx.oo.\noooo.o"


class Script:
    """Runs a KataGo testrules.cpp scenario, printing what the C++ test prints."""

    def __init__(self, board: B.Board, rules: Rules) -> None:
        self.board = board
        self.hist = BoardHistory(board, BLACK, rules)
        self.out: list[str] = []

    def play(self, hist: BoardHistory, loc: int, pla: int) -> None:
        """KataGo's makeMoveAssertLegal: legal and tolerant-legal; passWouldEndPhase predicts the phase change."""
        phase_would_end = hist.pass_would_end_phase(pla)
        old = hist.encore_phase
        assert hist.is_legal(loc, pla), f"illegal {loc}"
        assert hist.is_legal_tolerant(loc, pla)
        hist.make_board_move_assume_legal(loc, pla)
        if loc == PASS:
            assert phase_would_end == (hist.encore_phase != old or hist.is_game_finished)

    def m(self, x: int | None, y: int | None, pla: int, hist: BoardHistory | None = None) -> None:
        h = hist or self.hist
        self.play(h, PASS if x is None else h.board.get_loc(x, y), pla)

    def illegal(self, label: str | None, pla: int, hist: BoardHistory | None = None) -> None:
        h = hist or self.hist
        b = h.board
        if label is not None:
            self.out.append(label)
        for y in range(b.y_size):
            for x in range(b.x_size):
                loc = b.get_loc(x, y)
                if (
                    b.colors[loc] == B.C_EMPTY
                    and not b.is_illegal_suicide(loc, pla, h.rules.multi_stone_suicide_legal)
                    and not h.is_legal(loc, pla)
                ):
                    self.out.append(f"Illegal: ({x},{y}) {'X' if pla == BLACK else 'O'}")
                if h.ko_recap_blocked[loc]:
                    self.out.append(f"Ko-recap-blocked: ({x},{y})")

    def result(self) -> None:
        h = self.hist
        if not h.is_game_finished:
            self.out.append("Game is not over")
            return
        self.out += [
            f"Winner: {({BLACK: 'Black', WHITE: 'White'}).get(h.winner, 'Empty')}",
            f"W-B Score: {h.final_white_minus_black_score:g}",
            f"isNoResult: {int(h.is_no_result)}",
            f"isResignation: {int(h.is_resignation)}",
        ]
        assert int(h.is_no_result) + int(h.is_resignation) + int(h.is_scored) == int(h.is_game_finished)


def _ko_rules(ko: int) -> Rules:
    return Rules(ko, R.SCORING_TERRITORY, R.TAX_SEKI, False, False, R.WHB_ZERO, False, 0.5)


def test_simple_ko_rules() -> None:
    s = Script(B.Board.parse_board(6, 5, KO_BASE), _ko_rules(R.KO_SIMPLE))
    h = s.hist
    s.m(5, 1, BLACK)
    s.illegal("After black ko capture:", WHITE)
    s.m(None, None, WHITE)
    s.illegal("After black ko capture and one pass:", BLACK)
    assert h.pass_would_end_phase(BLACK) and not h.pass_would_end_game(BLACK)
    s.m(2, 3, BLACK)
    assert h.encore_phase == 0 and not h.is_game_finished
    s.illegal("After black ko capture and one pass and black other move:", WHITE)
    s.m(5, 0, WHITE)
    s.illegal("White recapture:", BLACK)
    s.m(3, 2, BLACK)
    s.out.append("Beginning sending two returning one cycle")
    for cycle in range(2):
        s.m(2, 0, WHITE)
        s.illegal(None, BLACK)
        s.m(0, 0, BLACK)
        s.illegal(None, WHITE)
        s.m(1, 0, WHITE)
        s.illegal(None, BLACK)
        if cycle == 0:
            s.m(None, None, BLACK)
            s.illegal(None, WHITE)
    assert h.encore_phase == 0 and not h.is_game_finished
    s.m(None, None, BLACK)  # Spight ending condition cuts the cycle short
    s.illegal(None, WHITE)
    assert h.encore_phase == 1 and not h.is_game_finished
    for pla in (WHITE, BLACK, WHITE, BLACK):
        s.m(None, None, pla)
    assert h.encore_phase == 2
    s.result()
    assert s.out == [
        "After black ko capture:",
        "Illegal: (5,0) O",
        "After black ko capture and one pass:",
        "After black ko capture and one pass and black other move:",
        "White recapture:",
        "Illegal: (5,1) X",
        "Beginning sending two returning one cycle",
        "Winner: Black",
        "W-B Score: -1.5",
        "isNoResult: 0",
        "isResignation: 0",
    ]


def _superko_script(ko: int) -> list[str]:
    s = Script(B.Board.parse_board(6, 5, KO_BASE), _ko_rules(ko))
    s.m(5, 1, BLACK)
    s.illegal("After black ko capture:", WHITE)
    s.m(None, None, WHITE)
    s.illegal("After black ko capture and one pass:", BLACK)
    tmp = s.hist.copy()
    s.m(None, None, BLACK, tmp)
    assert tmp.encore_phase == 1 and not tmp.is_game_finished
    s.m(3, 2, BLACK)
    s.out.append("Beginning sending two returning one cycle")
    s.m(2, 0, WHITE)
    s.illegal("After white sends two?", BLACK)
    s.m(0, 0, BLACK)
    s.illegal("Can white recapture?", WHITE)
    s.m(5, 0, WHITE)
    s.illegal("After white recaptures the other ko instead", BLACK)
    s.m(None, None, BLACK)
    s.illegal("After white recaptures the other ko instead and black passes", WHITE)
    s.m(1, 0, WHITE)
    s.illegal("After white now returns 1", BLACK)
    s.m(None, None, BLACK)
    s.illegal("After white now returns 1 and black passes", WHITE)
    s.m(2, 0, WHITE)
    s.illegal("After white sends 2 again", BLACK)
    assert s.hist.encore_phase == 0 and not s.hist.is_game_finished
    if ko == R.KO_POSITIONAL:
        h = s.hist
        assert h.num_consec_valid_turns_this_game == 10
        loc = h.board.get_loc(0, 0)
        assert not h.is_legal(loc, BLACK) and h.is_legal_tolerant(loc, BLACK)
        h.make_board_move_assume_legal(loc, BLACK)
        assert h.num_consec_valid_turns_this_game == 0
    return s.out


def test_positional_ko_rules() -> None:
    assert _superko_script(R.KO_POSITIONAL) == [
        "After black ko capture:",
        "Illegal: (5,0) O",
        "After black ko capture and one pass:",
        "Beginning sending two returning one cycle",
        "After white sends two?",
        "Can white recapture?",
        "Illegal: (1,0) O",
        "After white recaptures the other ko instead",
        "Illegal: (5,1) X",
        "After white recaptures the other ko instead and black passes",
        "After white now returns 1",
        "Illegal: (5,1) X",
        "After white now returns 1 and black passes",
        "After white sends 2 again",
        "Illegal: (0,0) X",
        "Illegal: (5,1) X",
    ]


def test_situational_ko_rules() -> None:
    assert _superko_script(R.KO_SITUATIONAL) == [
        "After black ko capture:",
        "Illegal: (5,0) O",
        "After black ko capture and one pass:",
        "Beginning sending two returning one cycle",
        "After white sends two?",
        "Can white recapture?",
        "After white recaptures the other ko instead",
        "Illegal: (5,1) X",
        "After white recaptures the other ko instead and black passes",
        "After white now returns 1",
        "Illegal: (5,1) X",
        "After white now returns 1 and black passes",
        "After white sends 2 again",
        "Illegal: (0,0) X",
    ]


def test_spight_ko_rules() -> None:
    board = B.Board.parse_board(6, 5, KO_BASE)
    assert board.set_stone(board.get_loc(2, 3), B.C_BLACK)
    s = Script(board, _ko_rules(R.KO_SPIGHT))
    h = s.hist
    s.m(5, 1, BLACK)
    s.illegal("After black ko capture:", WHITE)
    s.m(None, None, WHITE)
    s.illegal("After black ko capture and one pass:", BLACK)
    tmp = h.copy()
    s.m(None, None, BLACK, tmp)
    assert tmp.encore_phase == 0 and not tmp.is_game_finished
    s.illegal("If black were to pass as well??", WHITE, tmp)
    s.m(3, 2, BLACK)
    s.out.append("Beginning sending two returning one cycle")
    s.m(2, 0, WHITE)
    s.illegal("After white sends two?", BLACK)
    s.m(0, 0, BLACK)
    s.illegal("Can white recapture?", WHITE)
    s.m(5, 0, WHITE)
    s.illegal("After white recaptures the other ko instead", BLACK)
    s.m(None, None, BLACK)
    s.illegal("After white recaptures the other ko instead and black passes", WHITE)
    s.m(1, 0, WHITE)
    s.illegal("After white now returns 1", BLACK)
    s.m(None, None, BLACK)
    s.illegal("After white now returns 1 and black passes", WHITE)
    s.m(2, 0, WHITE)
    s.illegal("After white sends 2 again", BLACK)
    s.m(0, 0, BLACK)
    s.illegal("Can white recapture?", WHITE)
    s.m(None, None, WHITE)
    s.illegal("After pass", BLACK)
    assert h.encore_phase == 0 and not h.is_game_finished
    s.m(None, None, BLACK)  # black's second pass in this position
    s.illegal("After pass", WHITE)
    assert h.encore_phase == 1 and not h.is_game_finished
    for pla in (WHITE, BLACK, WHITE, BLACK):
        s.m(None, None, pla)
    assert h.encore_phase == 2
    s.result()
    assert s.out == [
        "After black ko capture:",
        "Illegal: (5,0) O",
        "After black ko capture and one pass:",
        "If black were to pass as well??",
        "Beginning sending two returning one cycle",
        "After white sends two?",
        "Can white recapture?",
        "Illegal: (1,0) O",
        "After white recaptures the other ko instead",
        "Illegal: (5,1) X",
        "After white recaptures the other ko instead and black passes",
        "After white now returns 1",
        "After white now returns 1 and black passes",
        "After white sends 2 again",
        "Can white recapture?",
        "Illegal: (1,0) O",
        "After pass",
        "After pass",
        "Winner: Black",
        "W-B Score: -2.5",
        "isNoResult: 0",
        "isResignation: 0",
    ]


@pytest.mark.parametrize(
    "ko, expected",
    [
        (
            R.KO_POSITIONAL,
            [
                "Illegal: (5,0) X",
                "Illegal: (0,1) O",
                "Illegal: (0,1) O",
                "Illegal: (0,0) O",
                "Illegal: (0,1) O",
            ],
        ),
        (R.KO_SITUATIONAL, ["Illegal: (0,1) O", "Illegal: (0,1) O"]),
        (R.KO_SPIGHT, ["Illegal: (0,0) O"]),
    ],
)
def test_suicide_ko(ko: int, expected: list[str]) -> None:
    board = B.Board.parse_board(6, 5, ".oxo.x\noxxooo\nxx....\n......\n......")
    s = Script(board, Rules(ko, R.SCORING_AREA, R.TAX_NONE, True, False, R.WHB_ZERO, False, 0.5))
    s.m(4, 0, BLACK)
    s.m(None, None, WHITE)
    s.illegal(None, BLACK)
    for x, pla in ((4, BLACK), (0, WHITE), (5, BLACK), (1, WHITE)):
        s.m(x, 0, pla)
    s.m(None, None, BLACK)
    s.illegal(None, WHITE)
    s.m(0, 0, WHITE)
    s.m(4, 0, BLACK)
    s.illegal(None, WHITE)
    h = s.hist
    for x, y, pla in ((0, 1, WHITE), (5, 0, BLACK), (1, 0, WHITE), (4, 0, BLACK)):
        h.make_board_move_assume_legal(
            h.board.get_loc(x, y), pla
        )  # illegal under superko, handled gracefully
    s.illegal(None, WHITE)
    assert s.out == expected
    assert f"{h.board.pos_hash:032X}" == "B4BA4BDE006CDCB657325F131F4F1278"


def test_eternal_life_is_no_result() -> None:
    board = B.Board.parse_board(8, 5, "........\noooooo..\nxxxxxo..\nxoooxxoo\n.o.x.ox.")
    s = Script(board, Rules(R.KO_SIMPLE, R.SCORING_AREA, R.TAX_NONE, False, False, R.WHB_ZERO, False, 0.5))
    seq = [(2, BLACK), (4, WHITE), (3, BLACK), (5, WHITE), (2, BLACK), (4, WHITE), (3, BLACK)]
    for x, pla in seq:
        s.m(x, 4, pla)
    assert not s.hist.is_game_finished
    s.m(5, 4, WHITE)
    assert s.hist.is_game_finished
    s.result()
    assert s.out == ["Winner: Empty", "W-B Score: 0", "isNoResult: 1", "isResignation: 0"]
