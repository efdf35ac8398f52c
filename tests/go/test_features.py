"""V7 feature tests against KataGo's own expected output.

KataGo keeps the expected output of ``Tests::runNNInputsV3V4Tests`` (``cpp/tests/testnninputs.cpp``) in
``cpp/tests/results/runOutputTests.txt``. ``_KATAGO_EXPECTED`` below holds the VERSION 7 parts of that file
(v1.17.2), normalized: 32-hex-digit hash tokens, board diagrams and blank lines are dropped, a feature grid row
``0 1 0  . X O`` becomes ``|010``, a few debug-print lines that this port does not model (initial player,
consecutive-valid-turn counter, rules line, ko-recap hash) and the ``fillScoring`` tables are dropped.
Each test replays the same scenario as the C++ test with this package and prints its results in the same format;
the two texts must be identical.
"""

from __future__ import annotations

import base64
import json
import re
import zlib
from dataclasses import replace

import numpy as np
import pytest

from katadeploy.go import board as B
from katadeploy.go import rules as R
from katadeploy.go.features import (
    NNInputParams,
    encode_batch,
    encode_v7,
    legal_policy_mask,
)
from katadeploy.go.history import BoardHistory
from katadeploy.go.rules import Rules, parse_rules
from tests.conftest import SHARED, load_golden

BLACK, WHITE, PASS, NULL = B.C_BLACK, B.C_WHITE, B.PASS_LOC, B.NULL_LOC
TT = parse_rules("tromp-taylor")


# ------------------------------------------------------------------------------------------------- helpers
def _expected(name: str) -> list[str]:
    return _load_expected()[name]


_CACHE: dict[str, list[str]] = {}


def _load_expected() -> dict[str, list[str]]:
    if not _CACHE:
        _CACHE.update(json.loads(zlib.decompress(base64.b85decode("".join(_KATAGO_EXPECTED.split())))))
    return _CACHE


def g(v: float, prec: int = 5) -> str:
    """C++ ``ostream << float`` with ``setprecision(prec)``."""
    return f"{float(v):.{prec}g}"


class Sgf:
    """Just enough SGF for the test records: SZ, KM, RU, AB/AW and B/W moves ([] = pass)."""

    def __init__(self, text: str) -> None:
        root = text.split(";")[1]
        sz = re.search(r"SZ\[(\d+)\]", root)
        self.size = int(sz.group(1)) if sz else 19
        km = re.search(r"KM\[([-0-9.]+)\]", root)
        self.komi = float(km.group(1)) if km else None
        ru = re.search(r"RU\[([^\]]*)\]", root)
        self.rules_text = ru.group(1) if ru else None
        self.placements: list[tuple[int, int]] = []
        for tag, color in (("AB", BLACK), ("AW", WHITE)):
            m = re.search(tag + r"((?:\[[a-z]{2}\])+)", root)
            if m:
                for pt in re.findall(r"\[([a-z]{2})\]", m.group(1)):
                    self.placements.append((self.loc(pt), color))
        self.moves = [
            (self.loc(pt), BLACK if c == "B" else WHITE)
            for c, pt in re.findall(r";([BW])\[([a-z]{0,2})\]", text)
        ]

    def loc(self, pt: str) -> int:
        if pt == "" or (pt == "tt" and self.size <= 19):
            return PASS
        return B.Board(self.size).get_loc(ord(pt[0]) - 97, ord(pt[1]) - 97)

    def rules(self, default: Rules) -> Rules:
        rules = parse_rules(self.rules_text) if self.rules_text is not None else default
        return rules.with_komi(self.komi) if self.komi is not None else rules

    def setup(self, rules: Rules) -> tuple[BoardHistory, int]:
        """KataGo's ``CompactSgf::setupInitialBoardAndHist``."""
        colors = [c for _, c in self.placements]
        pla = WHITE if (colors and all(c == BLACK for c in colors)) else BLACK
        if self.moves:
            pla = self.moves[0][1]
        board = B.Board(self.size)
        assert board.set_stones_fail_if_no_libs(self.placements)
        return BoardHistory(board, pla, rules), pla


def grid(spatial: np.ndarray, c: int) -> list[str]:
    return [f"Channel: {c}"] + ["|" + "".join(g(v) for v in row) for row in spatial[c]]


def globals_lines(glob: np.ndarray, prec: int = 5) -> list[str]:
    return [f"Channel: {c}: {g(v, prec)}" for c, v in enumerate(glob)]


def loc_str(loc: int, board: B.Board) -> str:
    return B.loc_to_string(loc, board.x_size, board.y_size)


def player_str(p: int) -> str:
    return {BLACK: "Black", WHITE: "White"}.get(p, "Empty")


def debug_info(hist: BoardHistory) -> list[str]:
    """The lines of KataGo's ``printDebugInfo`` kept in the expected data."""
    moves = "".join(loc_str(loc, hist.board) + " " for loc, _ in hist.move_history)
    return [
        f"Encore phase {hist.encore_phase}",
        f"Turns this phase {hist.num_turns_this_phase}",
        f"Approx valid turns this phase {hist.num_approx_valid_turns_this_phase}",
        f"White bonus score {g(hist.white_bonus_score, 6)}",
        f"White handicap bonus score {g(hist.white_handicap_bonus_score, 6)}",
        f"Has button {int(hist.has_button)}",
        f"Presumed next pla {player_str(hist.presumed_next_move_pla)}",
        f"Past normal phase end {int(hist.is_past_normal_phase_end)}",
        f"Game result {int(hist.is_game_finished)} {player_str(hist.winner)} "
        f"{g(hist.final_white_minus_black_score, 6)} {int(hist.is_scored)} {int(hist.is_no_result)} "
        f"{int(hist.is_resignation)}",
        ("Last moves " + moves).rstrip(),
    ]


def compare(name: str, actual: list[str]) -> None:
    expected = _expected(name)
    actual = [a.rstrip() for a in actual if a.strip()]
    for i, (a, e) in enumerate(zip(actual, expected, strict=False)):
        assert a == e, (
            f"{name}: line {i} differs:\n  ours:   {a}\n  KataGo: {e}\ncontext: {expected[max(0, i - 5) : i]}"
        )
    assert len(actual) == len(expected), f"{name}: {len(actual)} lines, KataGo has {len(expected)}"


def run_sgf(text: str, default_rules: Rules, until: int | None = None) -> tuple[BoardHistory, int]:
    sgf = Sgf(text)
    hist, pla = sgf.setup(sgf.rules(default_rules))
    for loc, p in sgf.moves[:until]:
        hist.make_board_move_assume_legal(loc, p)
        pla = WHITE if p == BLACK else BLACK
    return hist, pla


def full_dump(hist: BoardHistory, pla: int, nn: int, draw: float) -> list[str]:
    spatial, glob = encode_v7(hist, pla, nn, nn, NNInputParams(draw_equivalent_wins_for_white=draw))
    out: list[str] = []
    for c in range(22):
        out += grid(spatial, c)
    return out + globals_lines(glob)


# ------------------------------------------------------------------------------------------------- KataGo tests
BASIC_SGF = "(;FF[4]KM[7.5];B[pd];W[pq];B[dq];W[dd];B[qo];W[pl];B[qq];W[qr];B[pp];W[rq];B[oq];W[qp];B[pr];W[qq];B[oo];W[ro];B[qn];W[do];B[dl];W[gp];B[eo];W[en];B[fo];W[dp];B[eq];W[cq];B[cr];W[br];B[dn];W[bp];B[cn];W[ep];B[fp];W[fq];B[gq];W[fr];B[gr];W[er];B[hp];W[go];B[fn];W[ho];B[ip];W[io];B[jp];W[jo];B[lp];W[kp];B[kq];W[ko];B[lq];W[ir];B[hq];W[jq];B[jr];W[em];B[gm];W[el];B[hl];W[kl];B[ek];W[fk];B[ej];W[fl];B[fj];W[gk];B[ik];W[gj];B[jj];W[dm];B[lk];W[mm];B[nl];W[nm];B[om];W[ol];B[nk];W[ll];B[kk];W[jl];B[im];W[jk];B[ij];W[kj];B[mk];W[ki];B[ih];W[jh];B[ig];W[jg];B[if];W[oi];B[mi];W[mh];B[lh];W[li];B[nh];W[mj];B[ni];W[nj];B[oj];W[lj];B[ok];W[oh];B[ng];W[pj];B[ji];W[kh];B[jf];W[lg];B[cm];W[cl];B[dk];W[bl];B[bk];W[bn];B[ck];W[bm];B[cc];W[cd];B[dc];W[ec];B[eb];W[fb];B[fc];W[ed];B[gb];W[bc];B[cb];W[cg];B[be];W[bd];B[bg];W[bh];B[cf];W[df];B[ch];W[dg];B[bi];W[qd];B[qc];W[rc];B[rd];W[qe];B[re];W[rb];B[pc];W[qb];B[qf];W[ff];B[sc];W[pb];B[bo];W[ob];B[nc];W[nb];B[mb];W[mc];B[lb])"  # noqa: E501
KO_SGF = "(;FF[4]KM[0.5];B[rj];W[ri];B[si];W[rh];B[sh];W[sg];B[rk];W[sk];B[sl];W[sj];B[eg];W[fg];B[ff];W[gf];B[fh];W[gh];B[gg];W[hg];B[si];W[fg];B[sh];W[sk];B[gg])"  # noqa: E501
SEVEN_SGF = "(;GM[1]FF[4]CA[UTF-8]ST[2]RU[Tromp-Taylor]SZ[7]HA[3]KM[-4.50]PW[White]PB[Black]AB[fb][bf][ff];W[ed];B[ee];W[de];B[dd];W[ef];B[df];W[fe];B[ce];W[dc];B[ee];W[eg];B[fd];W[de])"  # noqa: E501


def test_basic_19x19_all_channels() -> None:
    hist, pla = run_sgf(BASIC_SGF, TT)
    compare("basic", full_dump(hist, pla, 19, 0.2))


def test_ko_channel() -> None:
    hist, pla = run_sgf(KO_SGF, TT)
    spatial, glob = encode_v7(hist, pla, 19, 19, NNInputParams(draw_equivalent_wins_for_white=0.3))
    compare("ko", grid(spatial, 6) + globals_lines(glob))


def test_7x7_handicap_all_channels() -> None:
    hist, pla = run_sgf(SEVEN_SGF, TT)
    compare("7x7", full_dump(hist, pla, 7, 0.5))


def test_7x7_embedded_in_9x9() -> None:
    hist, pla = run_sgf(SEVEN_SGF, TT)
    compare("7x7in9x9", full_dump(hist, pla, 9, 0.8))


def test_area_komi() -> None:
    board = B.Board.parse_board(7, 7, ".xo.oo.\nxxo.xox\nooooooo\nxxx..xx\n..xoox.\n..xxxxx\n..xo.ox")
    rules = TT.with_komi(2)
    params = NNInputParams(draw_equivalent_wins_for_white=0.3)
    hist = BoardHistory(board, BLACK, rules)
    spatial, glob = encode_v7(hist, BLACK, 7, 7, params)
    out = grid(spatial, 18) + grid(spatial, 19) + globals_lines(glob)
    hist.clear(board, WHITE, rules)
    out += globals_lines(encode_v7(hist, WHITE, 7, 7, params)[1])
    rules = rules.with_komi(1)
    hist.clear(board, BLACK, rules)
    out += globals_lines(encode_v7(hist, BLACK, 7, 7, params)[1])
    compare("areakomi", out)


def _all_rules_variants() -> list[Rules]:
    out = []
    for scoring, tax in (
        (R.SCORING_AREA, R.TAX_NONE),
        (R.SCORING_AREA, R.TAX_SEKI),
        (R.SCORING_TERRITORY, R.TAX_NONE),
        (R.SCORING_TERRITORY, R.TAX_SEKI),
        (R.SCORING_AREA, R.TAX_ALL),
        (R.SCORING_TERRITORY, R.TAX_ALL),
    ):
        komi = 1.0
        for ko in (R.KO_SIMPLE, R.KO_POSITIONAL, R.KO_SITUATIONAL):
            for button in (False, True):
                for sui in (False, True):
                    out.append(Rules(ko, scoring, tax, sui, button, R.WHB_ZERO, False, komi))
                    komi += 0.5
    return out


@pytest.mark.parametrize("size", [7, 6])
def test_rules_globals(size: int) -> None:
    rules = _all_rules_variants()
    board = B.Board(size, size)
    params = NNInputParams(draw_equivalent_wins_for_white=0.47)
    globs = [encode_v7(BoardHistory(board, BLACK, r), BLACK, size, size, params)[1] for r in rules]
    out = []
    for i in range(0, len(rules), 24):
        for c in range(19):
            out.append(" ".join(g(globs[i + j][c]) for j in range(24)))
    compare(f"rules{size}", out)


def test_ko_prohibition_encore_and_pass_history() -> None:
    text = "(;GM[1]FF[4]SZ[6]KM[0.00];B[];W[];B[ab];W[bb];B[ba];W[ca];B[ec];W[ed];B[fd];W[fe];B[fb];W[dc];B[db];W[ae];B[ea];W[bf];B[be];W[ad];B[cf];W[dd];B[af];W[aa];B[];W[fc];B[bd];W[eb];B[];W[];B[ec];W[bf];B[ac];W[eb];B[af];W[eb])"  # noqa: E501
    sgf = Sgf(text)
    default = Rules(R.KO_SIMPLE, R.SCORING_TERRITORY, R.TAX_SEKI, False, False, R.WHB_ZERO, False, 0.0)
    hist, pla = sgf.setup(sgf.rules(default))
    board = hist.board
    params = NNInputParams(draw_equivalent_wins_for_white=0.0)
    out = []
    for i, (loc, p) in enumerate(sgf.moves):
        assert hist.is_legal(loc, p)
        hist.make_board_move_assume_legal(loc, p)
        pla = WHITE if p == BLACK else BLACK
        if i in (24, 25, 26, 30, 31, 32, 33, 34):
            out.append(f"Move {i}")
            out.append(
                " ".join(
                    "".join(str(int(hist.is_legal(board.get_loc(x, y), pla))) for x in range(6))
                    for y in range(6)
                )
            )
            spatial, glob = encode_v7(hist, pla, 6, 6, params)
            out.append("Pass Hist Channels: " + " ".join(g(v) for v in glob[:5]))
            out.append("Selfkomi channel times 15: " + g(glob[5] * np.float32(15)))
            out.append(f"EncorePhase channel 12,13: {g(glob[12])} {g(glob[13])}")
            out.append(f"PassWouldEndPhase channel 14: {g(glob[14])}")
            for c in (7, 8, 20, 21):
                out += grid(spatial, c)
    compare("koprohib", out)


def test_13x13_area_channels_after_many_passes() -> None:
    text = "(;FF[4]GM[1]SZ[13]PB[s75411712-d5152283-b8c128]PW[s78621440-d5365731-b8c128]HA[0]KM[7.5]RU[koPOSITIONALscoreAREAsui0]RE[B+11.5];B[ck];W[lb];B[ke];W[ld];B[jd];W[kc];B[jc];W[jb];B[ib];W[kk];B[ki];W[kh];B[ja];W[le];B[ic];W[kf];B[lj];W[li];B[kj];W[lk];B[jk];W[jl];B[ik];W[mj];B[kb];W[jj];B[ji];W[ij];B[ii];W[hj];B[lh];W[mi];B[kg];W[jg];B[jh];W[lg];B[hk];W[hi];B[mh];W[gk];B[mk];W[il];B[jf];W[lf];B[ig];W[cc];B[dc];W[cd];B[ed];W[kd];B[dj];W[el];B[eg];W[de];B[ee];W[ec];B[je];W[db];B[fc];W[eb];B[bj];W[fd];B[gc];W[cl];B[df];W[dd];B[cf];W[dl];B[gh];W[fk];B[la];W[hh];B[hg];W[fi];B[gg];W[mc];B[bk];W[fb];B[gb];W[ei];B[gi];W[fe];B[ef];W[ej];B[gj];W[hl];B[bh];W[mg];B[be];W[bd];B[ad];W[bb];B[ae];W[di];B[me];W[ci];B[bi];W[bl];B[ab];W[ba];B[ac];W[ml];B[ga];W[fa];B[al];W[bc];B[bf];W[mj];B[mi];W[mb];B[ge];W[mk];B[dk];W[md];B[ek];W[fj];B[jb];W[fh];B[ff];W[bm];B[ka];W[ce];B[ak];W[cj];B[ch];W[];B[id];W[fl];B[hc];W[am];B[ik];W[jk];B[ma];W[];B[mm];W[gl];B[aa];W[ca];B[dh];W[fg];B[];W[lm];B[bg];W[];B[hd];W[];B[ag];W[];B[hf];W[];B[gd];W[];B[ih];W[];B[li];W[];B[hb];W[];B[af];W[];B[ia];W[];B[kl];W[];B[])"  # noqa: E501
    sgf = Sgf(text)
    hist, pla = sgf.setup(sgf.rules(Rules()))
    out = []
    for i, (loc, p) in enumerate(sgf.moves):
        assert hist.is_legal(loc, p)
        hist.make_board_move_assume_legal(loc, p)
        pla = WHITE if p == BLACK else BLACK
        if i == 163:
            out.append(f"Move {i}")
            spatial, _ = encode_v7(hist, pla, 13, 13, NNInputParams(draw_equivalent_wins_for_white=0.0))
            out += grid(spatial, 18) + grid(spatial, 19)
    compare("other13", out)


def test_area_feature_and_komi_by_rules_and_encore() -> None:
    diagram = "...oxx.\noooox.x\nxxxxoxx\no.xoooo\n.oxox.o\noxxo.x.\no.xoo.x"
    params = NNInputParams(draw_equivalent_wins_for_white=0.5)
    out: list[str] = []
    for go_to_encore2 in (0, 1):
        for scoring, tax in (
            (R.SCORING_AREA, R.TAX_NONE),
            (R.SCORING_AREA, R.TAX_SEKI),
            (R.SCORING_TERRITORY, R.TAX_NONE),
            (R.SCORING_TERRITORY, R.TAX_SEKI),
        ):
            board = B.Board.parse_board(7, 7, diagram)
            rules = Rules(R.KO_POSITIONAL, scoring, tax, False, False, R.WHB_ZERO, False, 6.5)
            hist = BoardHistory(board, WHITE, rules)

            def run_both(hist: BoardHistory = hist) -> None:
                mh = hist.move_history
                pla = (WHITE if mh[-1][1] == BLACK else BLACK) if mh else hist.initial_pla
                spatial, glob = encode_v7(hist, pla, 7, 7, params)
                out.append(f"Rules: {hist.rules}")
                out.append(f"Komi and Bonus: {g(hist.rules.komi, 6)} {g(hist.white_bonus_score, 6)}")
                out.append(f"Encore phase: {hist.encore_phase}")
                out.append(" ".join(loc_str(loc, hist.board) for loc, _ in mh))
                out.append(f"Channel: 5: {g(glob[5])}")
                out.extend(grid(spatial, 18) + grid(spatial, 19))

            out.append("===========================================")
            out.append(f"goToEncore2 = {go_to_encore2}")
            run_both()
            if go_to_encore2:
                for _ in range(2):
                    hist.make_board_move_assume_legal(PASS, WHITE)
                    hist.make_board_move_assume_legal(PASS, BLACK)
                    run_both()
            for x, y, p in (
                (6, 5, WHITE),
                (5, 6, BLACK),
                (0, 4, WHITE),
                (6, 0, BLACK),
                (1, 0, WHITE),
                (4, 5, BLACK),
                (5, 4, WHITE),
            ):
                hist.make_board_move_assume_legal(hist.board.get_loc(x, y), p)
                run_both()
    compare("areafeature", out)


def test_pass_history_channels() -> None:
    board = B.Board(9, 1)
    rules = Rules(R.KO_SIMPLE, R.SCORING_TERRITORY, R.TAX_SEKI, False, False, R.WHB_ZERO, False, 7.5)
    hist = BoardHistory(board, BLACK, rules)
    pla = BLACK
    out: list[str] = []
    seq = "pass A1 D1 F1 H1 E1 G1 B1 J1 F1 J1 G1 C1 E1 B1 pass pass H1 J1 E1 G1 pass pass A1 pass D1 C1 B1"
    for vertex in seq.split():
        spatial, glob = encode_v7(hist, pla, 9, 1)
        out.append(" ".join(loc_str(loc, board) for loc, _ in hist.move_history))
        for c in (9, 10, 11):
            out += grid(spatial, c)
        out += [f"Channel: {c}: {g(glob[c])}" for c in (0, 1, 2)]
        out.append("-----")
        hist.make_board_move_assume_legal(B.loc_of_string(vertex, 9, 1), pla)
        pla = WHITE if pla == BLACK else BLACK
    compare("passhist", out)


def _final_score_if_game_ended_now(hist: BoardHistory) -> float:
    h = hist.copy()
    pla = (WHITE if h.move_history[-1][1] == BLACK else BLACK) if h.move_history else BLACK
    while not h.is_game_finished:
        h.make_board_move_assume_legal(PASS, pla)
        pla = WHITE if pla == BLACK else BLACK
    score = h.final_white_minus_black_score
    h.end_and_score_game_now()
    assert h.final_white_minus_black_score == score
    return score


def test_self_komi_handicap_white_bonus() -> None:
    variants = [
        Rules(R.KO_POSITIONAL, R.SCORING_AREA, R.TAX_NONE, False, False, R.WHB_ZERO, False, 3.0),
        Rules(R.KO_POSITIONAL, R.SCORING_AREA, R.TAX_NONE, True, False, R.WHB_N_MINUS_ONE, False, 3.0),
        Rules(R.KO_POSITIONAL, R.SCORING_AREA, R.TAX_NONE, False, True, R.WHB_N, False, 3.0),
        Rules(R.KO_POSITIONAL, R.SCORING_TERRITORY, R.TAX_NONE, True, False, R.WHB_N_MINUS_ONE, False, 3.0),
        Rules(R.KO_POSITIONAL, R.SCORING_TERRITORY, R.TAX_NONE, False, True, R.WHB_N, False, 3.0),
    ]
    out: list[str] = []
    for i, rules in enumerate(variants):
        board = B.Board(7, 7)
        hist = BoardHistory(board, BLACK, rules)

        def show(hist: BoardHistory = hist, out: list[str] = out) -> None:
            out.extend(debug_info(hist))
            glob = encode_v7(hist, BLACK, 7, 7)[1]
            out.append(" ".join(g(v, 6) for v in glob))
            out.append(f"Final score: {g(_final_score_if_game_ended_now(hist), 6)}")

        def play(x: int, y: int, p: int, hist: BoardHistory = hist) -> None:
            hist.make_board_move_assume_legal(hist.board.get_loc(x, y), p)

        out += ["----------------------------------------", "Black makes 3 moves in a row"]
        if i >= 3:
            out.append("Set assumeMultipleStartingBlackMovesAreHandicap")
            hist.set_assume_multiple_starting_black_moves_are_handicap(True)
        for y in (3, 2, 1):
            play(3, y, BLACK)
            show()
        out.append("Set assumeMultipleStartingBlackMovesAreHandicap")
        hist.set_assume_multiple_starting_black_moves_are_handicap(True)
        show()
        out.append("One more move")
        play(5, 1, BLACK)
        show()
        out.append("Reclear history")
        hist.clear(hist.board, BLACK, rules)
        show()
        out.append("One more move")
        play(2, 1, BLACK)
        show()
        out.append("Set assumeMultipleStartingBlackMovesAreHandicap")
        hist.set_assume_multiple_starting_black_moves_are_handicap(True)
        show()
        out.append("Unset assumeMultipleStartingBlackMovesAreHandicap")
        hist.set_assume_multiple_starting_black_moves_are_handicap(False)
        show()
        out.append("Play white move")
        play(4, 1, WHITE)
        show()
        out.append("Reclear history")
        hist.clear(hist.board, BLACK, rules)
        show()
    compare("selfkomi", out)


def test_passing_hack_conditions() -> None:
    diagram = ".x.o.o.\nx.xoooo\nxxxxxxx\nooxxooo\n.oxo.o.\nooxooxo\n.oxo.x."
    out = [
        "Passing hack condition based on as-is scoring " + "=" * 74,
    ]

    def test_scoring(hist: BoardHistory, expected_friendly_pass_suppress: bool) -> None:
        nxt = hist.presumed_next_move_pla
        out.extend(debug_info(hist))
        out.append(
            f"Finished or past normal end: {int(hist.is_game_finished or hist.is_past_normal_phase_end)}"
        )
        out.append(f"Pass would end phase: {int(hist.pass_would_end_phase(nxt))}")
        out.append(f"Pass would end game: {int(hist.pass_would_end_game(nxt))}")
        out.append(f"Pass should suppress: {int(hist.should_suppress_end_game_from_friendly_pass(nxt))}")
        territory_pre_encore2 = hist.rules.scoring_rule == R.SCORING_TERRITORY and hist.encore_phase < 2

        def run(friendly: bool, hacks: bool, komi: float | None) -> tuple[BoardHistory, float]:
            h = hist.copy()
            h.rules = replace(h.rules, friendly_pass_ok=friendly)
            if komi is not None:
                h.rules = h.rules.with_komi(komi)
            spatial, glob = encode_v7(h, nxt, 7, 7, NNInputParams(enable_passing_hacks=hacks))
            area = h.end_and_score_game_now()
            for y in range(7):
                for x in range(7):
                    loc = h.board.get_loc(x, y)
                    if territory_pre_encore2:
                        assert spatial[18, y, x] == 0 and spatial[19, y, x] == 0
                    else:
                        assert (spatial[18, y, x] == 1) == (area[loc] == nxt)
                        assert (spatial[19, y, x] == 1) == (area[loc] == (WHITE if nxt == BLACK else BLACK))
            return h, float(spatial[9].sum() + glob[0])

        has_hist = len(hist.move_history) > 0 and hist.num_approx_valid_turns_this_phase > 0
        h, history_input = run(False, False, None)
        out.append(f"SCORE NOW {g(h.final_white_minus_black_score, 6)}")
        assert has_hist == (history_input > 0)
        _, history_input = run(True, False, None)
        assert (has_hist and not expected_friendly_pass_suppress) == (history_input > 0)
        # KataGo sweeps komi -100..100; the outcome only changes near the komi that makes the game a draw,
        # so sweep a window around it (the printed lines are those with |score| <= 1).
        h0, _ = run(False, False, 0.0)
        komi = float(np.floor(-h0.final_white_minus_black_score)) - 4.0
        while komi <= -h0.final_white_minus_black_score + 4.0:
            h, history_input = run(False, True, komi)
            if abs(h.final_white_minus_black_score) <= 1.0:
                out.append(f"Komi {g(komi, 6)} hasHistory {int(history_input > 0)}")
            if territory_pre_encore2:
                assert has_hist == (history_input > 0)
            else:
                assert (has_hist and (not hist.pass_would_end_game(nxt) or h.winner == nxt)) == (
                    history_input > 0
                )
            komi += 0.5

    cases = [
        (parse_rules("tromp-taylor"), "C7 pass pass pass", (False, False, True, False, False)),
        (parse_rules("chinese"), "C7 pass pass pass", (False, False, True, False, False)),
        (
            replace(parse_rules("chinese"), tax_rule=R.TAX_SEKI),
            "C7 pass pass pass",
            (False, False, True, False, False),
        ),
        (parse_rules("stonescoring"), "C7 pass pass pass", (False, False, True, False, False)),
        (
            replace(parse_rules("japanese"), tax_rule=R.TAX_NONE),
            "C7 pass pass pass pass pass E3 pass G1 G3 G2 pass",
            (False,) * 13,
        ),
        (parse_rules("japanese"), "C7 pass pass pass pass pass E3 pass G1 G3 G2 pass", (False,) * 13),
        (
            replace(parse_rules("japanese"), tax_rule=R.TAX_ALL),
            "C7 pass pass pass pass pass E3 pass G1 G3 G2 pass",
            (False,) * 13,
        ),
    ]
    for rules, seq, suppress in cases:
        out.append("-" * 51)
        out.append(str(rules))
        board = B.Board.parse_board(7, 7, diagram)
        hist = BoardHistory(board, WHITE, rules)
        test_scoring(hist, suppress[0])
        pla = WHITE
        for vertex, sup in zip(seq.split(), suppress[1:], strict=True):
            hist.make_board_move_assume_legal(B.loc_of_string(vertex, 7, 7), pla)
            pla = WHITE if pla == BLACK else BLACK
            test_scoring(hist, sup)
    out.append("Ok")
    compare("passinghack", out)


def test_history_seen_past_end_of_game_or_phase() -> None:
    sgfs = [
        "(;GM[1]FF[4]SZ[9]KM[7];B[ff];W[ee];B[dd];W[];B[];W[];B[cc];W[bb];B[];W[])",
        "(;GM[1]FF[4]SZ[9]KM[-7];B[ff];W[ee];B[dd];W[];B[];W[];B[cc];W[bb];B[];W[])",
    ]
    rule_sets = [
        parse_rules("tromp-taylor"),
        replace(parse_rules("japanese"), friendly_pass_ok=False),
        replace(parse_rules("tromp-taylor"), has_button=True),
        replace(parse_rules("tromp-taylor"), friendly_pass_ok=True),
    ]
    out: list[str] = []
    for rules_to_use in rule_sets:
        for text in sgfs:
            out.append(text)
            sgf = Sgf(text)
            for hacks, conservative in ((False, False), (True, False), (True, True)):
                rules = sgf.rules(rules_to_use)
                out.append(f"rules {rules_to_use}")
                out.append(f"enablePassingHacks {int(hacks)} conservativePassAndIsRoot {int(conservative)}")
                hist, pla = sgf.setup(rules)
                params = NNInputParams(enable_passing_hacks=hacks, conservative_pass_and_is_root=conservative)
                for i in range(len(sgf.moves) + 1):
                    spatial, glob = encode_v7(hist, pla, 9, 9, params)
                    seen = []
                    for lookback in range(1, 6):
                        hits = [
                            loc_str(hist.board.get_loc(int(x), int(y)), hist.board)
                            for y, x in zip(*np.nonzero(spatial[8 + lookback]), strict=True)
                        ]
                        if glob[lookback - 1] > 0:
                            hits.append("pass")
                        assert len(hits) <= 1
                        seen.append(hits[0] if hits else "null")
                    out.append(
                        f"encorephase {hist.encore_phase} finished {int(hist.is_game_finished)} "
                        f"numTurnsThisPhase {hist.num_turns_this_phase} "
                        f"numApproxValidTurnsThisPhase {hist.num_approx_valid_turns_this_phase}"
                    )
                    out.append("History that net sees " + " ".join(seen))
                    if i == len(sgf.moves):
                        break
                    loc, p = sgf.moves[i]
                    out.append(f"Move {i} {loc_str(loc, hist.board)}")
                    assert hist.is_legal(loc, p)
                    hist.make_board_move_assume_legal(loc, p, prevent_encore=True)
                    pla = WHITE if p == BLACK else BLACK
    compare("histscoring", out)


# ------------------------------------------------------------------------------------------------- API tests
def test_shapes_dtype_and_masking_in_larger_tensor() -> None:
    hist, pla = run_sgf(SEVEN_SGF, TT)
    spatial, glob = encode_v7(hist, pla, 19, 19)
    assert spatial.shape == (22, 19, 19) and glob.shape == (19,)
    assert spatial.dtype == np.float32 and glob.dtype == np.float32
    assert spatial[0].sum() == 49 and spatial[0, :7, :7].all()
    off = np.ones((19, 19), dtype=bool)
    off[:7, :7] = False
    assert not spatial[:, off].any()
    small, small_glob = encode_v7(hist, pla, 7, 7)
    np.testing.assert_array_equal(spatial[:, :7, :7], small)
    np.testing.assert_array_equal(glob, small_glob)


def test_encode_batch_matches_single() -> None:
    h1, p1 = run_sgf(SEVEN_SGF, TT)
    h2, p2 = run_sgf(KO_SGF, TT)
    spatial, glob = encode_batch([(h1, p1), (h2, p2)], 19, 19)
    assert spatial.shape == (2, 22, 19, 19) and glob.shape == (2, 19)
    for i, (h, p) in enumerate(((h1, p1), (h2, p2))):
        s, gl = encode_v7(h, p, 19, 19)
        np.testing.assert_array_equal(spatial[i], s)
        np.testing.assert_array_equal(glob[i], gl)


def test_legal_policy_mask_matches_is_legal() -> None:
    hist, pla = run_sgf(KO_SGF, TT)
    mask = legal_policy_mask(hist, pla, 19, 19)
    assert mask.shape == (362,) and mask.dtype == bool
    board = hist.board
    for y in range(19):
        for x in range(19):
            assert mask[y * 19 + x] == hist.is_legal(board.get_loc(x, y), pla)
    assert mask[-1]
    # The simple-ko point is illegal, occupied points are illegal.
    assert not mask[
        [i for i in range(361) if board.colors[board.get_loc(i % 19, i // 19)] != B.C_EMPTY]
    ].any()
    small = legal_policy_mask(*run_sgf(SEVEN_SGF, TT), 9, 9)
    assert small.shape == (82,)
    assert not small[[y * 9 + x for y in range(9) for x in range(9) if x >= 7 or y >= 7]].any()


def test_pass_alive_suicide_override_changes_area_only_when_it_matters() -> None:
    board = B.Board(7, 7)
    rules = parse_rules("japanese").with_komi(6.5)
    hist = BoardHistory(board, BLACK, replace(rules, scoring_rule=R.SCORING_AREA, tax_rule=R.TAX_NONE))
    a = encode_v7(hist, BLACK, 7, 7)
    b = encode_v7(hist, BLACK, 7, 7, prefer_pass_alive_under_suicide=True)
    c = encode_v7(
        hist,
        BLACK,
        7,
        7,
        NNInputParams(pass_alive_suicide_rules_override=0),
        prefer_pass_alive_under_suicide=True,
    )
    for x, y in zip(a, c, strict=True):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(a[1], b[1])


def test_playout_doubling_advantage_globals() -> None:
    hist = BoardHistory(B.Board(9, 9), BLACK, TT)
    glob = encode_v7(hist, BLACK, 9, 9, NNInputParams(playout_doubling_advantage=1.5))[1]
    assert glob[15] == 1.0 and glob[16] == pytest.approx(0.75)


def test_oracle_positions_encode_consistently() -> None:
    from katadeploy.go.position import load_positions

    for st in load_positions(SHARED / "oracle" / "positions.jsonl"):
        spatial, glob = encode_v7(st.history, st.next_player, 19, 19)
        assert spatial[0].sum() == st.x_size * st.y_size
        stones = sum(1 for loc in st.board.onboard_locs if st.board.colors[loc] != B.C_EMPTY)
        assert spatial[1].sum() + spatial[2].sum() == stones


def test_legal_mask_matches_katago_golden_illegal_entries() -> None:
    """KataGo prints ``null`` (NAN) for every policy entry nneval masked as illegal: superko included."""
    from katadeploy.go.position import load_positions

    golden = load_golden("g170-b6c96-s175395328-d26788732")
    states = load_positions(SHARED / "oracle" / "positions.jsonl")
    assert {st.id for st in states} == set(golden)
    for st in states:
        raw = golden[st.id]
        mask = legal_policy_mask(st.history, st.next_player, st.x_size, st.y_size)
        assert mask[:-1].tolist() == [p is not None for p in raw["policy"]], st.id
        assert bool(mask[-1]) == (raw["policyPass"] is not None), st.id


# The VERSION 7 parts of KataGo v1.17.2 cpp/tests/results/runOutputTests.txt (see the module docstring),
# as zlib-compressed, base85-encoded JSON {section: [normalized lines]}. Dump it with
# ``python -c "import tests.go.test_features as t, json; print(json.dumps(t._load_expected(), indent=1))"``.
_KATAGO_EXPECTED = """
c-rk<TW{Mq7XB+lpLT(9!K0h)4(1_kowhq|QzY3fW`jI9i8?Xj*n#b|9qjIZU)?Rqq(n-TL|G?A6PuE#!|&XADC$2iZsyy??Tc4eFW%hGS1W
h<iqIFoy!bC1{$R7_%?SsCbLinu(hN~UaAnvGsn+mU*zBLM|AAB|%x0j#xMkGG{$PB|h>G|~wr_}O+BZW)bnsz6oD}hK-w@t3ARl0VOGw={O
$jief*2#3#)L)$Kz8s^FAzh!?>h@FpF0T$jY1A4c*TSzDDUs$e_?b2`$6OnB!ftG3|UseUU)KR=bBSvO`{xhYJYlK#9)u~9{ltTQn!S3`@!I
|bnoRCGT;aIOYRZh5)u+2f6LT81vqGm>R_&!mNtV_b4lMIb+(#j;537ZTc)I|S|<qyt&&Tjn6VKd>Hx}^=fku23UFvenax>cD{ju|;6ZzlRE
LVjWEEt3DVB~j6@ofwm!b?MVhC)lDz&2Js>y*f1wLfB!VwxM)9?If3e{fF8e|5a=3>etLtZ*USDL<s00*7str0di(VTE_i~#kVgA)X(=Nz1h
T?&Yst{jA#T>|3SIST=K)pr&eqSpcfrzs1~nq4AiJ7=L)Z)y#o^{F*klU{jZMrvwJcJ7ZowFctT5qlQef-D4SEkqW!#6qWc6Wqwc919zoo9T
gz1eI|&@E9)3S*GYgAqyvcEA;}FdUGtCVy(C5wO#{b_P!?-1|UK`XCV!juI&wL?z@ruZsxvQx$n03{iQj!Gxf-Dan-)M<)4!|W0E^#ny2c3%
sictClvCOLY`Ex^9@eEVVrN6grr~p^5S8gS^uYF%@vgQ4X6onnm~;s)`U@{3ge$+?pjzSADL@3Q(}JD3fXWi4oeTtWv(4$b(dMeba0bQ*b4k
LZK5}UqH~#Rt%^SaFyJac!xly(8|ap!;Rw^r?v9VfxJu7LI8Peud0L?lG1&kKnm~?d0CjjkL9Ixwcz{_Q)v~Uwx>$1+5$wif51hLF@u_Z37h
%$v3xH`A9{?ggz@Uu*VnAbEHxdyU1Br+htLe`vH!PwJd|?N>{6}0ec>?PQ94;_UX;H~d*%TP1*FfI1Gs!uOH$*8g#i>3Z2gI%^p}>;t0D!}+
%3QD|xo}uAsmleYB8Y<b5ujjPhXN&XFzK9vX^r00=mJRh0IER%Xa;QwZ2+TlbpW$jj*F0Bsgs3@h7s(}brKwPeOE=Hd)o+;&O;TL)`?X>MXX
}b&KY4q=OkbnQZ)^kZ`}FA`f-s-LqKdgD_R(E__1hub}BTnd$=^GlU&q8iB6AN2#n_I8`EPh^cgKkpmp2;dRA!jymYrgg@_WVe_nsbaz()Di
5+l!9Q=XcmtlrqqGJ#qGlE~yF(W!=gvZR_S9DBupQ*7y?jNT;jmAqm^MAznC2?-hGZ2aYN_h$Fe@7&fZCw#dkHBC5ikH+(WaXtbCQUR9nkQ(
B+Ob7Ir2e5T($5wlx@c8;65;S|guES6XSvX-sEKemw~w<c2eT`*J(yjg?J2W8qrkL;vN8%xOJgk<4WUKC91ATH=2&P|Fvr3is|RsTL7Mfje%
h?>7dL*Q^=bXxC5B(P3s;wraQz7h7k!ZMQD_n_0wKWz(>_UG=G!fKzu4|bR3zKJiU<w|dEqX<`Nev28y+UR#iP3oYHy?Xk;>WXcD-@G+|Rde
avB)F_!T?|I`MDvb^W}&o2~A0r{#-!<8T*-Y|VYY(1y`QGgq+IF;@D-T<%h{C#cy|$YLMzaG(7&iy>k$jaf{~SWF}C6tEaPi`xQ+0XdxEuoE
jW#5_%NSWJmyuLdPbtcb;cES6!hNe}EaWwAJ1v{$Ia<#t+##ZW<udE*2=3eYf%Qwu90`&4NpVbPOOa43lk7ANPzfz-m`r{vxtiy^DU5sT$ru
>gx(=P>P#!!`Jl<8TdG2{~*qmDo4eA%~&QN-V>f<5gmlsl*Vmm?kXlj}n6p9M(XIz4U3lyLUHWCfO4>=HYUG*zdUpkZVZAE%7c`aRX!;AnAe
T-pNK&4K#N~vb$E?N4_E6y9`o&&@^U6JHRm>D@g5{Msp3(BI(rkq=9A{(tEWX?6{cQ1t!yw*)44UevxGFwCLqCkljEoMMn&13a<Dr(X#Vz?t
J&WaeapWCjR4f_viX@9qOe)ehXCW+^=xHA`j~?XBQtXKb(C&`MC9upPbK5cJrT~&pyw#&kO47x)V(J{O)W0e04`&uUF6Bm5!g{C+bd~d_`t%
Ta<k!AQH-~<QzT(o`NQllSJ84C-9yvNpUK*P(EQ7WcRe&zn&)jY&$dy(mUgD*)kI<mE&PNQ&5=;kmW+7P?1w;L9U<;xdLbbEOKJDD_ziY>GA
+0@5U%&(vXqYW0bT?u#uV3XL*Cp<jn()oHk|OXy#>g+18p;w-3J$KQ<iAUCe&}ph+}GwT<TLfYi5Wj@Gk+^`L4bnxoo!+S*_ZEt*pSn2ymL)
mz4DMRRn>lBQ`iN1Kc0lmb^hnxn&t<}PRF=N~T5&i@dOr$-<V(-~vCd^1Qj`%F$%cdZaALpZWC3<QiTTkQA_Wvo!fcu^ioTA8GAVm*{M0eRy
^d?<BdQpbt=Q1*mnj~D&*SpwUL{>0*MjQ+%-!st(lYz;H|t0`kcjsEIO+CZZ}CGs}Z=uef@4K(^wD0>+FWurg9b$Oky%X{({K>NQCFiF4&LR
TL;g6l$S!iQ@`>jQ}EN7aCcYf4qYi0e#MLWyfn)q;uZQRT82T#wo?NDYSKM-CW4=mwa@bhsY6#VqDH*GOX)(=dp*mb&{ahN49FB8$;<&2__B
3>{V$gX^%{U3LeB84be5fz1%iYnTA`ygJh)fXwWMD}_4NXsDPMZx}@3m0~E1B`~sAkBxhjZ)+owGAqg&pZlTxmrL#{Grn|El+H@I56Wm=NZG
5=R7h$=84%SV1Hxw!nqPW4><p+fY^`NLRPU%$HGsX#fK+(&20&~i0~($z4mAU63`!j{Alg^Ctd#*#l+GSyKs}eyS{V@4F$1~|hkd`;?)*)&l
lx3FJ9}p+p!`F?Jw$Wa4CKBW;rEgM6R{$FxB+rNk{ogZ2NXf006{rL<SnpZ0uE82o@>A)Di^m+Guy&5!2%9lph%h$y2yLrNfz+<2t3F@HECq
VrVa|F40sF$<<yaPJotb|AQVa*s3(xTX3z*FstP<Bfi?l6M<e+MR}ypK3FVIfxFb+Vro1{c1_9hbsHIdE)<Ok8yh=H-6*P(mZeuE+qnEs4kq
i|TtQCkolBI1cbf|A>sw>ztuFZuO)Gtjqkq+gG%^au+<z%QQEkvWVg&|ale6$=z6$@VwBy~EFY5^bD`ZpC%iH=2ic-WR_;0~vv_JeK)>|jhs
WY!o1Yd>9Yb!^higH~op6c12xdZU1epmfef@fhX9X=rQ~=lYiy+vpXR{)FI2@W;FU^>TjuKpy80?v|M3asA!<yI7Gq*{px$=39gNUp{YETe7
=fY@<e>h?A$M&H5+#K3^{G$c}Z!*ZalJB{%+TE(zv;gU-TMZ$x*C+xgSM;rH_`xq060)~oPU*Bf{H{OI11mHTr?o|bbGTpzxAb4OO|&EtF--
P2v&g*!9NA6?>Kx7-m*W{*$1zf!OL{ODg7j`^+Szfv@LDd>p41lxbbw*Tw_>z{Y_>0;&GFCh078Ci}HTt+EeMnB*pZ|!yvGfNROdxIEx>!<+
j!rc+i2zj)A^6tBMTDljz`DV9R{TZmU|JKy)$;N#jjT>RE2J_j<^?Kd7LDxbcTBRUbeFBl3D#7vGy<NKV4e{$$>&;(6NYYXyX=6wRN~8qIZl
v%?T=E-jZ6yMn0{EY+EkfKZ#9x;4zsQeZRKiA}%Rp0|0rdbRv$_}p`k;E?VLqucp9IV&CG$zZd{REqfuqbP4NYJ+Bw@C6$|p^I@<~$;MpG|W
Zg%U+D}bj>HfeSqiB~|cN6DnsJ-(7A(&$?<*-H`DD3>&K$R(v9G%%B_9%>$ECJ9<qCV{2)cJNG%F1aM=R-3GaSv%PzXjnEYfUQUQq^SwerX0
>jfU`CUrPUFNtb|fhVj)0MBd0EeWrI1T-Hs%-llDM|X^)fu_9(NoJBQekLzo5#_bRpQs~BsPUAAmTIoYKYiiU2!h<59XB%{wz1l6UOI@x5<y
}W58a{(YS71eA;Y80adI#f4JIl#<Dvm~=0RX0lxGtev-JzkXC%S5f-ls0WC7|m(RuHVwSv{?bX_Hs~L_qvcR3ExDsXvfyQw&}>>JJv4$JW3I
6GyAl9P}`J((9z5PbX?msrLZ$G@9e4=Y9vzxATmv5z3epeG<2wirY5C8d}^<=v`Ci{oh1jGIn}NfdelH`lY(kg47DYZ9Jf9JZE0N$mBnw;ax
v7_y^7?>;pb>q3$=Bxg*uWVYHL^wJx(#!C>zzH7Aj{<9o<|J)n;7|h*grKUBW$$zW0fGb>&m#e<l8Ra=Z2hxm$Qcx$)?`Bi@JkcC-kG>!0<T
vLA`;IGZT*UK$*|GYk9;kH&)8NtbJ|)fuOd(TnZ9&#{fa7gf@s*HySjl+R}JWBt6m3%XCemnwJUPw%Fw1Ka!H$oAPo$=z<lBNuPZ&S&KF*;f
MgesBKK)I($YKGe$Kys+5|fH()(&12sA<9xH;PY$cJo#QTfoO=Jl2xyuKu;+c2X}}f=;0Xn=g#w23yz`rJycb|aP6LnAP@mJ3$7w35{<S#W<
#XC{>I|V|1dxW#naOM+jzcFLm(}em24BT|j4rw@!*Pw--iD%A4g4-XeERZn#t8c8kNca?-=5YF82w@NhtVHKe;ECVI0eAy52HVf{xJIMY4jJ
rBod>)P9g&{B}QYmR5&~-a@fr_?|d7hzfO2;rFcAHEBKhF`D1po!#m%>;IF&jkIU#PshN64_b~Re^p5?MX?7KBf0Uu0)q~KlQ#Dr?`JH_H=m
&ln^tB!kKuUl(a$@lW$YM8}yz@;A`a0pUk>at#)@_@o^qgjkcfN%|Uw1(tm(f)+GWCq^VbEvj9rP*F>?+p&D1$zu2SHz_YOWyYyPTb$f4Dq5
|07lL^`kzg;izw9Vb~Xm5IxSYZ)9WKC&1(?aU7G$z-Dr@ai0<<_agA?A*Vs9!PZWl#RGt0SZ~nIdaGA#6+AyC6*q>W;;8Hbj6YgsZ&d9;AMV
#u`%YuH#??OjH8VR@|7nW<was|gZ1B!E<oRE9O0P%S@A1EDE5H?kDkfdM5LDe{qhCfK{QC~j81Ur4E|mlOSd4)u2jpFsej)X!2793|<uDf5t
(>zfNP$x-1<ny!15XObJ3~j`AZru2zJaoBf>?SmE|rF{E;b>q0Zj!<Kn3#9b&06cfI)GEC|(tg6{0r%%OoX1warBIXaetizygt8JgyQRGI<P
a9%Fr|-N|Ep7>(tjA(?Kh4h>Ghu{bnLRma*;>zRM^%&(>NSQ;8k_>QF^Gy+%}>a;YZxiP@fP<x^<PKiQo)`rczViLvjkmltfWp<&N455eRp-
KPCL!AZ<ipxXMqvKc|YSYDJcAR1h1my@2dw(k4*;pFVjKLLR0=eZVSQlz<+E^1VV^L@@78@%<!%}T52Mtiku@=;Nn%^|%>!>>xf`$>SV-*P1
A4@=J2C)8vj|O4wM}yjrDud8OI?%(ykJJCcPj_*`*@OSGTK^rt(Yt5;m(~95*LR<;;QI9R%DTSz_to_J_fJ>j>tA1AefxI(>(?vS^*`U;`Je
qy@!#89|I^J)()M@n2Ak)l#|-he$-1lg&C-otm;2r`4O?%Bx9io`-F%<#7T<$IC#$;;+w=8$7mU~qq&k|RAm3shQnGq}3<Uhr8{e1cu-6vK_
rHAc&L8%rG(u;0Klk|W?#R~l2C#ZwE?K|43;g$WdmW!za-={pDZnM=)G8tb$jp`_#3&}j;1V*k4{3?XFvwd+jtsMy43kU7TPIIROhgj@OORm
|lVNem2n<SwmY58ygbZMiVHcBO7n4ySA9e*|oT?I1MvN0y(<In4u1ZSm4%mc@$?J(6A(N`&`g(FmOH9V3g1}B|32cs<n2>1&DFNDm%qnmnfb
Ij`hxYEHOhSh1M9PpsCxT9-SWFsrB7jZ=od`M+Sz^$Mpc4^ejy8^jH8D2AnKATA=#_A03}?nLslk~sbRXzGj?#T-mCm61z;s4?7lQL*=t6K_
4ClqrkqmKOtnRd!@V3)9FNR)eV2KTt_eap!ycm`DM}UdV(B{Qx1z!YplA1dH11HANf1v+B|AGDk{fBD*fwN-hKhS@m|3Lq7oc^PcHDWj!hRz
6`5jrDuM(B)iG7S9(`VaIU=s(bZ;A9y35A+}CKhS@m|LDtPShLSdh8xV`W0UBS&?BjPY%)VjgA0`%^hNl<WT#KNi1-hj5kvoh{-a<110Qrj|
Ix-SVs-ro&WNG^K>yM0<C5q_@Nvl_+eQqh#n3IGTf%8EbVxWYhSOr`KhS?*T7zB$)0+Ny5}Y7IPlBEVC&<u~;C^E2=EuH0tsii941E&rbcs9
eqi4b#r(TXz?oDv647~|@6MQKpdXpjNIc<0ooG(Lfg5Cso;YV+R%gS)t3|$ktCQNj2+6-M2PMe`OL2rVI4tf*xCg@FY+6=u3dJ~*BLvJ#$X|
wD9{U4;y1RV
"""
