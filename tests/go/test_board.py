"""Tests for katadeploy.go.board / coords against KataGo v1.17.2's own expected results.

Data (not code) comes from two files in ``board_cases/``:

* ``katago_board_tests.json``: the board diagrams and printed expected outputs of KataGo's
  ``cpp/tests/testboardbasic.cpp`` and ``cpp/tests/testboardarea.cpp``. Each case is re-rendered here the way
  the C++ test prints it and compared with KataGo's ``TestCommon::expect`` rule (whole text trimmed, then
  line by line trimmed).
* ``katago_harness_golden.json``: outputs of KataGo's C++ ``Board`` (with the ``iterLadders`` loop of
  ``nninputs.cpp``) on real-game and random positions: hash, ko, captures, ladder stones and working
  moves, area and independent-life maps.

The random-sequence tests (undo / stress) replay KataGo's exact pseudo-random move sequences through the
ported ``Rand`` and compare the move counts KataGo prints.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from katadeploy.errors import PositionError
from katadeploy.go import board as kb
from katadeploy.go import coords
from katadeploy.go.board import (
    C_BLACK,
    C_EMPTY,
    C_WHITE,
    NULL_LOC,
    P_BLACK,
    P_WHITE,
    PASS_LOC,
    Board,
    KataGoRand,
    color_to_char,
    get_opp,
    iter_ladders,
)

DATA = Path(__file__).parent / "board_cases"
CASES = json.loads((DATA / "katago_board_tests.json").read_text())["cases"]
GOLDEN = json.loads((DATA / "katago_harness_golden.json").read_text())["games"]


# ---------------------------------------------------------------------------------------------------------
# Helpers


def expect(actual: str, expected: str) -> None:
    """KataGo's TestCommon::expect: trim both, split into lines, compare trimmed lines."""
    ws = " \t\r\n\v\f"
    alines = actual.strip(ws).split("\n")
    elines = expected.strip(ws).split("\n")
    for i in range(max(len(alines), len(elines))):
        a = alines[i].strip(ws) if i < len(alines) else None
        e = elines[i].strip(ws) if i < len(elines) else None
        assert a == e, f"line {i} differs\nexpected: {e!r}\nactual:   {a!r}\n--- actual output ---\n{actual}"


def seem_equal(b1: Board, b2: Board) -> bool:
    """KataGo's boardsSeemEqual."""
    return (
        b1.colors == b2.colors
        and b1.num_black_captures == b2.num_black_captures
        and b1.num_white_captures == b2.num_white_captures
    )


def parse(case_board: dict) -> Board:
    return Board.parse_board(case_board["x_size"], case_board["y_size"], case_board["diagram"])


def grid(board: Board, cell) -> str:
    """One line per row of ``cell(loc)`` strings, each line ending in a newline."""
    rows = []
    for y in range(board.y_size):
        rows.append("".join(cell(board.get_loc(x, y)) for x in range(board.x_size)) + "\n")
    return "".join(rows)


def cases_of(*kinds: str) -> list:
    return [pytest.param(c, id=c["name"]) for c in CASES if c["kind"] in kinds]


# ---------------------------------------------------------------------------------------------------------
# Renderers mirroring the C++ tests' printing code


def render_liberties(board: Board, _params: dict) -> str:
    return (
        "\n"
        + grid(board, lambda l: str(board.get_num_liberties(l)) if board.colors[l] != C_EMPTY else ".")
        + "\n"
    )


def render_libs_after_move(board: Board, params: dict) -> str:
    out = "\n"
    for label, pla in (("After black", P_BLACK), ("After white", P_WHITE)):
        out += label + "\n"
        out += grid(
            board,
            lambda l, p=pla: (
                str(board.get_num_liberties_after_play(l, p, params["max"]))
                if board.colors[l] == C_EMPTY
                else "-"
            ),
        )
        out += "\n"
    return out


def _two_player_grid(board: Board, label: str, fn) -> str:
    out = "\n"
    for suffix, pla in (("black", P_BLACK), ("white", P_WHITE)):
        out += f"{label} {suffix}\n" + grid(board, lambda l, p=pla: str(int(fn(l, p)))) + "\n"
    return out


def render_adj_to_pla(board: Board, _params: dict) -> str:
    return _two_player_grid(board, "Adj", board.is_adjacent_to_pla)


def render_would_be_capture(board: Board, _params: dict) -> str:
    return _two_player_grid(board, "WouldBeCapture", board.would_be_capture)


def render_would_be_ko_capture(board: Board, _params: dict) -> str:
    return _two_player_grid(board, "WouldBeKo", board.would_be_ko_capture)


def render_ladder1(board: Board, _params: dict) -> str:
    start = board.copy()
    out = "\n" + grid(
        board,
        lambda l: str(int(board.search_is_ladder_captured(l, True))) if board.colors[l] != C_EMPTY else ".",
    )
    board.check_consistency()
    assert seem_equal(board, start)
    assert board.pos_hash == start.pos_hash and board.ko_loc == start.ko_loc
    return out + "\n"


def render_ladder2(board: Board, _params: dict) -> str:
    start = board.copy()
    out = grid(
        board,
        lambda l: (
            str(int(board.search_is_ladder_captured_attacker_first_2libs(l)[0]))
            if board.colors[l] != C_EMPTY
            else "."
        ),
    )
    board.check_consistency()
    assert seem_equal(board, start)
    return out + "\n"


def _repetition_bound(board: Board, loc: int) -> int:
    # simple_repetition_bound_gt is monotone in the bound (KataGo's test asserts it): binary search the first
    # bound in [0, 362) where it is False, 362 if none.
    lo, hi = 0, 362
    while lo < hi:
        mid = (lo + hi) // 2
        if board.simple_repetition_bound_gt(loc, mid):
            lo = mid + 1
        else:
            hi = mid
    if lo < 362:
        assert not board.simple_repetition_bound_gt(loc, 361)
    return lo


def render_repetition_bound(board: Board, _params: dict) -> str:
    out = ""
    for pla in (C_EMPTY, P_BLACK, P_WHITE):
        for y in range(board.y_size):
            for x in range(board.x_size):
                loc = board.get_loc(x, y)
                if board.colors[loc] != C_EMPTY:
                    if pla != C_EMPTY:
                        out += "   " + color_to_char(board.colors[loc])
                    else:
                        out += f" {_repetition_bound(board, loc):3d}"
                elif pla == C_EMPTY:
                    out += "   ."
                else:
                    copy = board.copy()
                    copy.clear_simple_ko_loc()
                    if not copy.play_move(loc, pla, True):
                        out += "   ."
                    else:
                        out += f" {_repetition_bound(copy, loc):3d}"
            out += "\n"
        out += "\n"
    return out


def _area_rows(board: Board, result: list[int]) -> str:
    return grid(board, lambda l: color_to_char(result[l]))


def _check_off_board_empty(board: Board, result: list[int]) -> None:
    for i in range(len(result)):
        if not board.is_on_board(i):
            assert result[i] == C_EMPTY


def print_areas(board: Board) -> str:
    safe_buf = (False, True, True, True)
    unsafe_buf = (False, False, True, True)
    nonpass_buf = (False, False, False, True)
    out = ""
    result = [C_EMPTY] * board.arr_size
    for mode in range(8):
        suicide = mode % 2 == 1
        safe, unsafe, nonpass = safe_buf[mode // 2], unsafe_buf[mode // 2], nonpass_buf[mode // 2]
        copy = board.copy()
        copy.calculate_area(result, nonpass, safe, unsafe, suicide)
        out += (
            f"Safe big territories {int(safe)} Unsafe big territories {int(unsafe)} "
            f"Non pass alive stones {int(nonpass)} Suicide {int(suicide)}\n"
        )
        out += _area_rows(copy, result)
        _check_off_board_empty(board, result)
        out += "\n"
        assert seem_equal(copy, board)
        copy.check_consistency()
    return out


def print_independent_life_areas(board: Board) -> str:
    keep_terr_buf = (False, True, False, True)
    keep_stones_buf = (False, False, True, True)
    out = ""
    result = [C_EMPTY] * board.arr_size
    for mode in range(8):
        suicide = mode % 2 == 1
        keep_terr, keep_stones = keep_terr_buf[mode // 2], keep_stones_buf[mode // 2]
        copy = board.copy()
        _, count = copy.calculate_independent_life_area(result, keep_terr, keep_stones, suicide)
        out += f"Keep Territories {int(keep_terr)} Keep Stones {int(keep_stones)} Suicide {int(suicide)}\n"
        out += f"whiteMinusBlackIndependentLifeRegionCount {count}\n"
        out += _area_rows(copy, result)
        _check_off_board_empty(board, result)
        out += "\n"
        assert seem_equal(copy, board)
        copy.check_consistency()
    return out


def fill_scoring(board: Board, area: list[int], group_tax: bool) -> list[np.float32]:
    """Port of NNInputs::fillScoring (float32 arithmetic), only to check area results it is fed."""
    f32 = np.float32
    scoring = [f32(0.0)] * board.arr_size
    if not group_tax:
        for loc in board.onboard_locs:
            a = area[loc]
            scoring[loc] = f32(-1.0) if a == P_BLACK else f32(1.0) if a == P_WHITE else f32(0.0)
        return scoring
    visited = [False] * board.arr_size
    for loc in board.onboard_locs:
        if visited[loc]:
            continue
        a = area[loc]
        if a not in (P_BLACK, P_WHITE):
            scoring[loc] = f32(0.0)
            continue
        full = f32(1.0) if a == P_WHITE else f32(-1.0)
        queue = [loc]
        visited[loc] = True
        territory = 0
        i = 0
        while i < len(queue):
            nxt = queue[i]
            i += 1
            if board.colors[nxt] != a:
                territory += 1
            for off in board.adj_offsets[:4]:
                adj = nxt + off
                if area[adj] == a and not visited[adj]:
                    queue.append(adj)
                    visited[adj] = True
        value = f32(0.0) if territory <= 2 else full * (f32(territory) - f32(2.0)) / f32(territory)
        for nxt in queue:
            scoring[nxt] = value if board.colors[nxt] != a else full
    return scoring


# ---------------------------------------------------------------------------------------------------------
# KataGo test-file cases

SIMPLE_RENDERERS = {
    "liberties": render_liberties,
    "libs_after_move": render_libs_after_move,
    "adj_to_pla": render_adj_to_pla,
    "would_be_capture": render_would_be_capture,
    "would_be_ko_capture": render_would_be_ko_capture,
    "ladder1": render_ladder1,
    "repetition_bound": render_repetition_bound,
}


@pytest.mark.parametrize("case", cases_of(*SIMPLE_RENDERERS))
def test_katago_board_basic(case):
    (board_data,) = case["boards"]
    board = parse(board_data)
    expect(SIMPLE_RENDERERS[case["kind"]](board, case["params"]), case["expected"])


@pytest.mark.parametrize("case", cases_of("ladder2"))
def test_katago_ladders_2libs(case):
    out = "\n"
    for board_data in case["boards"]:
        out += render_ladder2(parse(board_data), case["params"])
    expect(out, case["expected"])


@pytest.mark.parametrize("case", cases_of("print_areas"))
def test_katago_area(case):
    parts = [print_areas(parse(b)) for b in case["boards"]]
    sep = case["params"]["separator"]
    expect((sep + "\n").join(parts) if sep else "".join(parts), case["expected"])


@pytest.mark.parametrize("case", cases_of("independent_life_areas"))
def test_katago_independent_life(case):
    expect("".join(print_independent_life_areas(parse(b)) for b in case["boards"]), case["expected"])


@pytest.mark.parametrize("case", cases_of("non_pass_alive_self_connection"))
def test_katago_non_pass_alive_self_connection(case):
    (board_data,) = case["boards"]
    board = parse(board_data)
    result = board.calculate_area([C_EMPTY] * board.arr_size, False, True, False, False)
    out = "\n"
    for label, pla in (("black", P_BLACK), ("white", P_WHITE)):
        out += f"NonPassAliveSelfConn {label}\n"
        for y in range(board.y_size):
            for x in range(board.x_size):
                loc = board.get_loc(x, y)
                value = board.is_non_pass_alive_self_connection(loc, pla, result)
                if board.colors[loc] == C_EMPTY:
                    out += str(int(value))
                else:
                    assert value is False
                    out += "-"
            out += "\n"
        out += "\n"
    expect(out, case["expected"])


@pytest.mark.parametrize("case", cases_of("group_tax_scoring"))
def test_katago_group_tax_scoring(case):
    (board_data,) = case["boards"]
    board = parse(board_data)
    p = case["params"]
    area = board.calculate_area(
        None,
        p["nonPassAliveStones"],
        p["safeBigTerritories"],
        p["unsafeBigTerritories"],
        p["multiStoneSuicideLegal"],
    )
    out = "\n"
    for label, tax in (("No group tax", False), ("Group tax", True)):
        scoring = fill_scoring(board, area, tax)
        out += label + "\n"
        out += grid(board, lambda l, s=scoring: format(float(s[l] * np.float32(100)), "4.0f") + " ")
        out += "\n"
    expect(out, case["expected"])


@pytest.mark.parametrize("case", cases_of("location_parse"))
def test_katago_location_parse(case):
    sizes = [9, 19, 26, 70]
    vertices = [
        "A1", "A0", "B2", "b2", "A", "B", "1", "pass", "H9", "I9", "J9", "J10", "K8", "k19", "a22", "y1", "z1",
        "aa1", "AA26", "AZ26", "BC50",
    ]  # fmt: skip
    out = ""
    for i in range(4):
        for j in range(4):
            if abs(i - j) > 1:
                continue
            xs, ys = sizes[i], sizes[j]
            out += "----------------------------------\n" + f"{xs} {ys}\n"
            for s in vertices:
                try:
                    loc = coords.loc_of_string(s, xs, ys)
                except PositionError as e:
                    out += str(e) + "\n"
                    continue
                out += f"{s} {coords.loc_to_string(loc, xs, ys)} x {coords.get_x(loc, xs)} y {coords.get_y(loc, xs)}\n"
    expect(out, case["expected"])


@pytest.mark.parametrize("case", cases_of("parse_test"))
def test_katago_parse_and_hash(case):
    b1, b2 = (parse(b) for b in case["boards"])
    b1.play_move(b1.loc_of_string("B2"), P_BLACK, True)
    b2.play_move(b1.loc_of_string("F1"), P_WHITE, True)
    expect(b1.to_printed() + "\n" + b2.to_printed() + "\n", case["expected"])


@pytest.mark.parametrize("case", cases_of("distance"))
def test_katago_distance(case):
    x_size = 17
    targets = [(x, y) for x in (12, 13, 14, 15) for y in (3, 4, 5, 6, 7)] + [
        (0, 0),
        (16, 11),
        (0, 11),
        (16, 0),
    ]
    origin = coords.get_loc(13, 6, x_size)
    out = ""
    for x, y in targets:
        d = coords.distance(origin, coords.get_loc(x, y, x_size), x_size)
        out += f"distance (13,6) ({x},{y}) = {d}\n"
    for x, y in targets:
        d = coords.euclidean_distance_squared(origin, coords.get_loc(x, y, x_size), x_size)
        out += f"euclideanSq (13,6) ({x},{y}) = {d}\n"
    expect(out, case["expected"])


def test_all_katago_cases_are_exercised():
    handled = set(SIMPLE_RENDERERS) | {
        "ladder2",
        "print_areas",
        "independent_life_areas",
        "non_pass_alive_self_connection",
        "group_tax_scoring",
        "location_parse",
        "parse_test",
        "distance",
    }
    assert {c["kind"] for c in CASES} <= handled
    assert len(CASES) == 45


def test_pass_alive_suicide_mode_position():
    """cpp/tests/testpassalivesuicide.cpp: pass-aliveness differs with the suicide flag."""
    board = Board.parse_board(4, 5, "...x\nxx..\noxxx\noox.\n.x.x\n")
    no_suicide = board.calculate_area(None, False, False, False, False)
    suicide = board.calculate_area(None, False, False, False, True)
    white_loc = board.get_loc(0, 2)
    assert board.colors[white_loc] == C_WHITE
    assert no_suicide[white_loc] == C_BLACK
    assert suicide[white_loc] == C_EMPTY


# ---------------------------------------------------------------------------------------------------------
# Golden outputs of KataGo's compiled Board


def _replay(game: dict):
    board = Board(game["x_size"], game["y_size"])
    checks = {c["num_moves"]: c for c in game["checks"]}
    for n, (pla, loc) in enumerate(game["moves"], start=1):
        assert board.play_move(loc, pla, game["multi_stone_suicide_legal"])
        if n in checks:
            yield board, checks[n]


def _ladder_fields(board: Board) -> tuple[str, str]:
    index = {loc: i for i, loc in enumerate(board.onboard_locs)}
    marks = ["."] * len(index)
    seen_heads = set()
    for loc in board.onboard_locs:
        if board.colors[loc] in (C_BLACK, C_WHITE) and board.get_num_liberties(loc) in (1, 2):
            head = board.chain_head[loc]
            if head in seen_heads:
                marks[index[loc]] = "0"
            seen_heads.add(head)
    working = ""
    for loc, moves in iter_ladders(board):
        marks[index[loc]] = "1"
        if moves:
            working += f"{loc}:" + "".join(f"{m}," for m in moves) + ";"
    return "".join(marks), working or "-"


def _area_string(board: Board, result: list[int]) -> str:
    return "".join(color_to_char(result[loc]) for loc in board.onboard_locs)


@pytest.mark.parametrize("game", [pytest.param(g, id=f"game{i}") for i, g in enumerate(GOLDEN)])
def test_against_compiled_katago(game):
    count = 0
    for board, want in _replay(game):
        count += 1
        before = board.copy()
        assert f"{board.pos_hash:032X}" == want["hash"]
        assert (board.ko_loc, board.num_black_captures, board.num_white_captures) == (
            int(want["ko_loc"]),
            int(want["black_caps"]),
            int(want["white_caps"]),
        )
        assert _ladder_fields(board) == (want["ladder"], want["working"])
        assert board.colors == before.colors and board.pos_hash == before.pos_hash
        assert _area_string(board, board.calculate_area(None, True, True, True, False)) == want["area_full"]
        assert (
            _area_string(board, board.calculate_area(None, False, False, False, False))
            == want["area_pass_alive"]
        )
        assert (
            _area_string(board, board.calculate_area(None, False, True, False, False))
            == want["area_safe_big"]
        )
        assert (
            _area_string(board, board.calculate_area(None, True, True, True, True))
            == want["area_full_suicide"]
        )
        assert (
            _area_string(board, board.calculate_area(None, False, False, False, True))
            == want["area_pass_alive_suicide"]
        )
        result, n = board.calculate_independent_life_area(None, False, True, False)
        assert (_area_string(board, result), n) == (want["indep_keep_stones"], want["indep_count"])
        result, n = board.calculate_independent_life_area(None, True, False, True)
        assert (_area_string(board, result), n) == (
            want["indep_keep_territories_suicide"],
            want["indep_count_kt_suicide"],
        )
    assert count == len(game["checks"])


# ---------------------------------------------------------------------------------------------------------
# KataGo's random-sequence tests (exact counts depend on the ported Rand and on legality/capture logic)


RAND_ABC_EXPECTED = {  # KataGo core/rand.cpp "Rand tests", Rand("abc")
    "next_uint": [476808125, 4218845147, 1770424533, 2748129731, 3501022071, 2408095342, 579150456, 3608809805,
                  694088449, 2852964936, 192049595, 1340578043, 649387339, 2025290779, 589057531, 402360262],
    "next_uint_27": [5, 3, 15, 8, 18, 15, 12, 0, 10, 20, 23, 18, 24, 20, 9, 14],
    "next_int": [-334527988, 756912801, 632180158, -1273579939, -1918485732, -1069916434, -2014707267, 1657792760,
                 -1002776568, 1890146240, 1996933002, 1450387446, 1700927140, 129162816, 1321628292, 1374562123],
    "next_int_m8_8": [4, 8, -1, 4, 3, 2, 6, 6, -2, 5, -8, 1, 3, 5, -3, 7],
    "next_uint64": [10638269307294496533, 18411047602699644662, 866485615523685959, 11468038378131977312,
                    16992521898711914992, 8030137482563021028, 255386410622334748, 17040394105744604861,
                    8702305142317123362, 7011499938802287143, 14406966689924300975, 17729451932997526225,
                    6624400776209450803, 14445168003370372628, 12783387423358787378, 15169533704952901762],
    "next_uint64_below": ["0000001F6569C181", "00000031F6FA94F6", "0000007D3140612A", "00000030F0CE30AF",
                          "000000DB09241242", "0000002894F80A15", "0000001F9AF78FCF", "000000AA9EEBFBAF",
                          "000000791CD0B9DA", "0000007B5A365995", "000000C65D52AC90", "0000000129D8C5CF",
                          "0000008A81AD3722", "0000004E7F01EA56", "0000000FE3DD0088", "000000F0656F65E2"],
}  # fmt: skip


def test_katago_rand_sequence():
    """The ported Rand reproduces KataGo's own Rand test printout (the Zobrist tables depend on it)."""
    rand = KataGoRand("abc")
    assert [rand.next_uint() for _ in range(16)] == RAND_ABC_EXPECTED["next_uint"]
    assert [rand.next_uint_below(27) for _ in range(16)] == RAND_ABC_EXPECTED["next_uint_27"]
    signed = [rand.next_uint() for _ in range(16)]
    assert [v - (1 << 32) if v >= 1 << 31 else v for v in signed] == RAND_ABC_EXPECTED["next_int"]
    assert [rand.next_int(-8, 8) for _ in range(16)] == RAND_ABC_EXPECTED["next_int_m8_8"]
    assert [rand.next_uint64() for _ in range(16)] == RAND_ABC_EXPECTED["next_uint64"]
    got = [f"{rand.next_uint64_below(0xFFFFFFFFFF):016X}" for _ in range(16)]
    assert got == RAND_ABC_EXPECTED["next_uint64_below"]


def test_katago_undo_sequence():
    """Port of Tests::runBoardUndoTest: 3x1000 random legal moves then undone, with KataGo's counts."""
    rand = KataGoRand("runBoardUndoTests")
    counts = {"suicide": 0, "ko": 0, "pass": 0, "regular": 0}

    def run(start: Board, suicide_legal: bool) -> None:
        boards = [start.copy()]
        records = []
        for n in range(1, 1001):
            board = boards[n - 1].copy()
            while True:
                pla = P_BLACK if rand.next_uint_below(2) == 0 else P_WHITE
                loc = rand.next_uint_below((19 + 1) * (19 + 2) + 1)
                if board.is_legal(loc, pla, suicide_legal):
                    break
            records.append(board.play_move_recorded(loc, pla))
            boards.append(board)
            if loc == PASS_LOC:
                counts["pass"] += 1
            elif boards[n - 1].is_suicide(loc, pla):
                counts["suicide"] += 1
            else:
                if board.ko_loc != NULL_LOC:
                    counts["ko"] += 1
                counts["regular"] += 1
        board = boards[1000].copy()
        for n in range(999, -1, -1):
            board.undo(records[n])
            assert seem_equal(boards[n], board)
            assert board.pos_hash == boards[n].pos_hash and board.ko_loc == boards[n].ko_loc
            if n % 50 == 0:
                board.check_consistency()

    run(Board(19, 19), True)
    run(Board(4, 4), True)
    run(Board(4, 4), False)
    assert counts == {"regular": 2446, "pass": 475, "ko": 24, "suicide": 79}


def test_katago_stress_sequence():
    """Port of the first block of Tests::runBoardStressTest (20000 random moves on 4 boards), KataGo's counts."""
    rand = KataGoRand("runBoardStressTests")

    boards = [Board(), Board(9, 16), Board(13, 7), Board(4, 4)]
    suicide_legal = [False, False, True, False]
    ranges = [(-10, 500), (-10, 250), (-10, 200), (-10, 50)]
    pla = C_BLACK
    counts = {"regular": 0, "pass": 0, "ko_capture": 0, "ko_ban": 0, "suicide": 0}
    for n in range(20000):
        if n % 2 == 0:
            locs = [rand.next_int(a, b) for a, b in ranges]
        else:
            locs = []
            for b in boards:
                end = b.get_loc(b.x_size - 1, b.y_size - 1)
                empties = [j for j in range(end + 1) if b.colors[j] == C_EMPTY]
                locs.append(empties[rand.next_uint_below(len(empties))])
        for i, board in enumerate(boards):
            loc = locs[i]
            copy = board.copy()
            legal = board.is_legal(loc, pla, suicide_legal[i])
            played = board.play_move(loc, pla, suicide_legal[i])
            assert legal == played
            if n % 2000 == 0:
                board.check_consistency()
                regen = board.copy()
                regen.regen_chains_from_colors()
                regen.check_consistency()
                assert regen.colors == board.colors
            if not played:
                if board.is_on_board(loc) and board.is_ko_banned(loc):
                    assert board.would_be_ko_capture(loc, C_BLACK) or board.would_be_ko_capture(loc, C_WHITE)
                    counts["ko_ban"] += 1
            elif loc == PASS_LOC:
                assert board.ko_loc == NULL_LOC
                counts["pass"] += 1
            elif copy.is_suicide(loc, pla):
                assert suicide_legal[i] and board.colors[loc] == C_EMPTY
                counts["suicide"] += 1
            else:
                assert board.get_num_liberties(loc) == copy.get_num_liberties_after_play(loc, pla, 1000)
                if board.ko_loc != NULL_LOC:
                    counts["ko_capture"] += 1
                    assert copy.would_be_ko_capture(loc, pla)
                counts["regular"] += 1
        pla = get_opp(pla) if rand.next_uint_below(2) == 0 else pla
    assert counts == {"regular": 38017, "pass": 273, "ko_capture": 212, "ko_ban": 45, "suicide": 440}
    caps = [(b.num_black_captures, b.num_white_captures) for b in boards]
    assert caps == [(4753, 5024), (4821, 4733), (4995, 5041), (4420, 4335)]


def test_katago_set_stone_sequences():
    """The three setStone blocks of Tests::runBoardStressTest, on the first repetitions of KataGo's own random
    streams, with KataGo's assertions (full runs take too long in Python; the streams are replayed exactly)."""

    def shuffled(rand: KataGoRand, placements: list) -> list:
        for i in range(1, len(placements)):
            j = rand.next_uint_below(i + 1)
            placements[i], placements[j] = placements[j], placements[i]
        return placements

    def random_loc(rand: KataGoRand, board: Board) -> int:
        x = rand.next_uint_below(board.x_size)
        y = rand.next_uint_below(board.y_size)
        return board.get_loc(x, y)

    rand = KataGoRand("runBoardSetStoneTests")
    for _rep in range(15):
        board0 = Board(5 + rand.next_uint_below(14), 5 + rand.next_uint_below(14))
        board1, board2, board3, board4, board5, board6 = (board0.copy() for _ in range(6))
        num_moves1 = rand.next_uint_below(1000)
        num_moves2 = rand.next_uint_below(1000)
        for _ in range(num_moves1):
            loc = random_loc(rand, board1)
            pla = P_BLACK if rand.next_bool(0.5) else P_WHITE
            if board1.is_legal(loc, pla, True):
                suc4 = board4.set_stone_fail_if_no_libs(loc, pla)
                assert suc4 == (not (board1.would_be_capture(loc, pla) or board1.is_suicide(loc, pla)))
                if not suc4:
                    board4.play_move_assume_legal(loc, pla)
                else:
                    assert board4.colors[loc] == pla
                board1.play_move_assume_legal(loc, pla)
                assert board3.set_stone(loc, pla)
            else:
                old_color = board4.colors[loc]
                if board4.set_stone_fail_if_no_libs(loc, pla):
                    assert board4.colors[loc] == pla
                    assert board4.set_stone_fail_if_no_libs(loc, old_color)
        for b in (board1, board3, board4):
            b.check_consistency()
        assert board1.pos_hash == board3.pos_hash == board4.pos_hash

        empty_prob = rand.next_double() * 0.5
        for i in range(num_moves2):
            loc = random_loc(rand, board2)
            if rand.next_bool(empty_prob):
                color = C_EMPTY
            else:
                color = P_BLACK if rand.next_bool(0.5) else P_WHITE
            assert board2.set_stone(loc, color)
            suc5 = board5.set_stone_fail_if_no_libs(loc, color)
            suc6 = board6.set_stone_fail_if_no_libs(loc, color)
            if color == C_EMPTY:
                assert suc5 and suc6
            if not suc5:
                board5.set_stone(loc, color)
            else:
                assert board5.colors[loc] == color
            assert (board6.colors[loc] == color) == suc6
            if i % 97 == 0:
                for b in (board2, board5, board6):
                    b.check_consistency()
            assert board2.pos_hash == board5.pos_hash

        non_empty = [
            (loc, board1.colors[loc]) for loc in board1.onboard_locs if board1.colors[loc] != C_EMPTY
        ]
        assert board0.set_stones_fail_if_no_libs(shuffled(rand, non_empty))
        board0.check_consistency()
        assert board0.pos_hash == board1.pos_hash
        everything = [(loc, board2.colors[loc]) for loc in board2.onboard_locs]
        assert board3.set_stones_fail_if_no_libs(shuffled(rand, everything))
        board3.check_consistency()
        assert board3.pos_hash == board2.pos_hash

    rand = KataGoRand("runBoardSetStoneTests2")
    for _rep in range(40):
        board = Board(1 + rand.next_uint_below(18), 1 + rand.next_uint_below(18))
        placements = []
        for _ in range(1000):
            loc = random_loc(rand, board)
            pla = P_BLACK if rand.next_bool(0.5) else P_WHITE
            if board.is_legal(loc, pla, True):
                placements.append((loc, pla))
                any_caps = board.would_be_capture(loc, pla) or board.is_suicide(loc, pla)
                board.play_move_assume_legal(loc, pla)
                copy = Board(board.x_size, board.y_size)
                suc = copy.set_stones_fail_if_no_libs(placements)
                assert suc == (not any_caps)
                if not suc:
                    break
                assert board.pos_hash == copy.pos_hash
        board.check_consistency()

    rand = KataGoRand("runBoardSetStoneTests3")
    for _rep in range(40):
        board = Board(1 + rand.next_uint_below(18), 1 + rand.next_uint_below(18))
        for _ in range(300):
            loc = random_loc(rand, board)
            color = C_EMPTY if rand.next_bool(0.25) else (P_BLACK if rand.next_bool(0.5) else P_WHITE)
            board.set_stone(loc, color)
        orig = board.copy()
        placed = set()
        placements = []
        for _ in range(1000):
            loc = random_loc(rand, board)
            color = C_EMPTY if rand.next_bool(0.25) else (P_BLACK if rand.next_bool(0.5) else P_WHITE)
            placements.append((loc, color))
            if loc in placed:
                assert not Board(board.x_size, board.y_size).set_stones_fail_if_no_libs(placements)
                placements.pop()
                continue
            placed.add(loc)
            prev = board.copy()
            board.set_stone(loc, color)
            any_caps = any(
                l != loc and board.colors[l] == C_EMPTY and prev.colors[l] != C_EMPTY
                for l in board.onboard_locs
            )
            copy = orig.copy()
            suc = copy.set_stones_fail_if_no_libs(placements)
            assert suc == (not any_caps and board.colors[loc] == color)
            if not suc:
                break


# ---------------------------------------------------------------------------------------------------------
# Own behavioural tests


def test_location_encoding_and_constants():
    assert (NULL_LOC, PASS_LOC) == (0, 1)
    assert coords.get_loc(0, 0, 19) == 21
    assert coords.get_xy(coords.get_loc(3, 15, 19), 19) == (3, 15)
    b = Board(19)
    assert b.arr_size == 20 * 21 + 1
    assert b.loc_of_string("A19") == b.get_loc(0, 0)
    assert b.loc_of_string("T1") == b.get_loc(18, 18)
    assert b.loc_of_string("Q16") == b.get_loc(15, 3)
    assert b.loc_of_string(" pass ") == PASS_LOC
    assert b.loc_to_string(b.get_loc(15, 3)) == "Q16"
    assert coords.loc_to_string(PASS_LOC, 19, 19) == "pass"
    assert coords.try_loc_of_string("(3,4)", 19, 19) == coords.get_loc(3, 4, 19)
    assert coords.parse_sequence("D4  Q16 pass", 19, 19) == [b.get_loc(3, 15), b.get_loc(15, 3), PASS_LOC]
    for bad in ("I5", "Z1", "A20", "A0", "pas", ""):
        with pytest.raises(PositionError):
            coords.loc_of_string(bad, 19, 19)
    assert coords.loc_of_string("Y25", 25, 25) == coords.get_loc(23, 0, 25)
    assert coords.loc_of_string("Z1", 25, 25) == coords.get_loc(24, 24, 25)
    assert get_opp(P_BLACK) == P_WHITE and get_opp(P_WHITE) == P_BLACK
    assert kb.parse_player("B") == P_BLACK and kb.parse_player("white") == P_WHITE


def test_capture_ko_and_suicide():
    board = Board.parse_board(5, 5, ".xo..\nxo.o.\n.xo..\n.....\n.....\n")
    center = board.get_loc(2, 1)
    # Black captures the white stone at (1,1) by playing (2,1): a ko.
    assert board.would_be_ko_capture(center, P_BLACK)
    assert board.is_legal(center, P_BLACK, False)
    board.play_move_assume_legal(center, P_BLACK)
    assert board.colors[board.get_loc(1, 1)] == C_EMPTY
    assert board.num_white_captures == 1 and board.ko_loc == board.get_loc(1, 1)
    assert not board.is_legal(board.get_loc(1, 1), P_WHITE, False)
    assert board.is_legal_ignoring_ko(board.get_loc(1, 1), P_WHITE, False)
    board.play_move_assume_legal(PASS_LOC, P_WHITE)
    assert board.ko_loc == NULL_LOC

    corner = Board.parse_board(3, 3, ".x.\nxx.\n...\n")
    assert corner.is_suicide(corner.get_loc(0, 0), P_WHITE)
    assert corner.is_illegal_suicide(corner.get_loc(0, 0), P_WHITE, True)  # single stone: always illegal
    two = Board.parse_board(4, 3, "o.x.\nxxx.\n....\n")
    fill = two.get_loc(1, 0)
    assert not two.is_legal(fill, P_WHITE, False)
    assert two.is_legal(fill, P_WHITE, True)
    predicted = two.get_pos_hash_after_move(fill, P_WHITE)
    record = two.play_move_recorded(fill, P_WHITE)
    assert record[3] == 0x10  # recorded as a suicide
    assert two.colors[two.get_loc(0, 0)] == C_EMPTY and two.colors[fill] == C_EMPTY
    assert two.num_white_captures == 2 and two.pos_hash == predicted == Board(4, 3).pos_hash ^ (
        kb.ZOBRIST_BOARD_HASH[two.get_loc(2, 0)][C_BLACK]
        ^ kb.ZOBRIST_BOARD_HASH[two.get_loc(0, 1)][C_BLACK]
        ^ kb.ZOBRIST_BOARD_HASH[two.get_loc(1, 1)][C_BLACK]
        ^ kb.ZOBRIST_BOARD_HASH[two.get_loc(2, 1)][C_BLACK]
    )
    two.check_consistency()
    two.undo(record)
    assert two.colors[two.get_loc(0, 0)] == C_WHITE and two.num_white_captures == 0
    two.check_consistency()


def test_pos_hash_after_move_matches_play():
    board = Board(9)
    rng = KataGoRand("katadeploy pos hash test")
    pla = P_BLACK
    for _ in range(300):
        loc = board.onboard_locs[rng.next_uint_below(81)]
        if board.is_legal(loc, pla, True):
            predicted = board.get_pos_hash_after_move(loc, pla)
            board.play_move_assume_legal(loc, pla)
            assert board.pos_hash == predicted
        pla = get_opp(pla)
    board.check_consistency()


def test_copy_is_independent_and_sizes():
    board = Board(7, 5)
    copy = board.copy()
    copy.play_move_assume_legal(copy.get_loc(1, 1), P_BLACK)
    assert board.is_empty() and not copy.is_empty()
    assert copy.num_stones_on_board() == 1 and copy.num_pla_stones_on_board(P_WHITE) == 0
    big = Board(25, 25)
    big.play_move_assume_legal(big.get_loc(24, 24), P_WHITE)
    big.check_consistency()
    assert Board(kb.MAX_LEN).arr_size == (kb.MAX_LEN + 1) * (kb.MAX_LEN + 2) + 1
    with pytest.raises(PositionError):
        Board(kb.MAX_LEN + 1)


def test_set_stones_tolerant_removes_simultaneously():
    board = Board(3, 3)
    placements = [
        (board.get_loc(0, 0), C_BLACK),
        (board.get_loc(1, 0), C_WHITE),
        (board.get_loc(0, 1), C_WHITE),
    ]
    placements += [(board.get_loc(2, 0), C_BLACK), (board.get_loc(1, 1), C_BLACK)]
    # Black (0,0) and white (1,0) both have no liberties: both are removed at once.
    assert board.set_stones_tolerant(placements) == 2
    assert board.colors[board.get_loc(0, 0)] == C_EMPTY and board.colors[board.get_loc(1, 0)] == C_EMPTY
    assert board.colors[board.get_loc(0, 1)] == C_WHITE
    board.check_consistency()


def test_iter_ladders_does_not_modify_board_and_matches_direct_search():
    case = next(c for c in CASES if c["name"] == "Ladders 2 Libs")
    board = parse(case["boards"][0])
    snapshot = (
        board.colors[:],
        board.chain_head[:],
        board.next_in_chain[:],
        board.chain_libs[:],
        board.pos_hash,
    )
    found = iter_ladders(board)
    assert snapshot == (board.colors, board.chain_head, board.next_in_chain, board.chain_libs, board.pos_hash)
    laddered = {loc for loc, _ in found}
    expected_rows = [row.strip() for row in case["expected"].strip().split("\n")]
    for loc in board.onboard_locs:
        x, y = coords.get_xy(loc, board.x_size)
        mark = expected_rows[y][x]
        if board.colors[loc] != C_EMPTY and board.get_num_liberties(loc) == 2:
            assert (loc in laddered) == (mark == "1")
    for loc, working in found:
        if working:
            assert board.get_num_liberties(loc) == 2
            assert set(working) <= set(board.find_liberties(loc))
