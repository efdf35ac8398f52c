"""Games read from SGF and the sampling plan, checked against the oracle positions and KataGo's net outputs.

The 60 SGF-derived oracle positions (``shared/oracle/positions.jsonl``, ids ``<file>@<turn>``) were set up in
KataGo from the games in ``shared/sgf``: our reading of those games must give the same setup, moves and komi,
the same stones after replay, and features that make the net output what KataGo's net output was (golden).
"""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from katadeploy.data.calibration import encode_positions
from katadeploy.data.sampling import (
    RULES_MIX,
    GameSkipped,
    SampledPosition,
    game_identity,
    plan_samples,
    position_of,
    read_game,
)
from katadeploy.go.board import C_BLACK, C_WHITE
from katadeploy.go.features import encode_batch, legal_policy_mask
from katadeploy.go.position import position_from_query
from katadeploy.go.rules import KO_SIMPLE, SCORING_TERRITORY
from katadeploy.go.symmetry import apply_to_inputs, apply_to_outputs
from tests.conftest import SHARED, load_golden, small_net_path

SGF_DIR = SHARED / "sgf"
SMALL_NET = "g170-b6c96-s175395328-d26788732"
# Same gates as tests/model/test_oracle.py (goldens printed to 6 decimals).
GATES = {"winloss": 1e-4, "policy": 1e-4, "ownership": 1e-3}


def _oracle_sgf_positions() -> list[dict]:
    with open(SHARED / "oracle" / "positions.jsonl", encoding="utf-8") as f:
        return [q for q in map(json.loads, f) if "@" in q["id"]]


def _sgf(body: str, root: str = "GM[1]FF[4]SZ[19]") -> bytes:
    return f"(;{root}{body})".encode()


# ------------------------------------------------------------------------------------------ oracle games
def test_replay_matches_oracle_positions(oracle_games):
    """Every SGF-derived oracle position: same setup, moves, komi and final stones as KataGo was given."""
    assert len(oracle_games) == 60
    for q, game, turn in oracle_games:
        ours = game.query(turn, q["rules"])
        assert ours["initialStones"] == q["initialStones"], q["id"]
        assert ours["moves"] == q["moves"], q["id"]
        assert ours["komi"] == q["komi"], q["id"]
        state = position_of(game, turn, q["rules"])
        ref = position_from_query(q)
        assert state.board.colors == ref.board.colors, q["id"]
        assert state.next_player == ref.next_player, q["id"]


@pytest.fixture(scope="module")
def oracle_games():
    """(query, game, turn) for the 60 SGF-derived oracle positions."""
    out = []
    for q in _oracle_sgf_positions():
        name, turn = q["id"].split("@")
        out.append((q, read_game(SGF_DIR / name), int(turn)))
    return out


def test_sampled_features_reproduce_katago_net_outputs(oracle_games):
    """Our replay + features + legal mask (symmetry 0, as the goldens), run through the small net, give KataGo's
    golden raw outputs: the same illegal-move set, policy, value and ownership."""
    from katadeploy.model.format import load_model
    from katadeploy.model.postprocess import PostProcessParams, postprocess
    from katadeploy.runtime.torch_runtime import TorchEvaluator

    games = [g for _, g, _ in oracle_games]
    samples = [SampledPosition(i, t, 0, 0, q["rules"], 0) for i, (q, _, t) in enumerate(oracle_games)]
    spatial, glob, legal = encode_positions(games, samples, 19)

    model = load_model(small_net_path(SMALL_NET))
    golden = load_golden(SMALL_NET)
    out = TorchEvaluator(model).evaluate(spatial, glob)
    pp = PostProcessParams.of(model)
    worst = Counter()
    for i, (q, game, turn) in enumerate(oracle_games):
        s = position_of(game, turn, q["rules"])
        raw = postprocess(
            out.policy[i],
            out.policy_pass[i],
            out.value[i],
            out.score[i],
            out.ownership[i],
            params=pp,
            white_to_move=s.next_player == C_WHITE,
            legal=legal[i],
            board_x=19,
            board_y=19,
            no_result_allowed=s.rules.ko_rule == KO_SIMPLE or s.rules.scoring_rule == SCORING_TERRITORY,
        )
        g = golden[q["id"]]
        ours, theirs = raw["policy"] + [raw["policyPass"]], g["policy"] + [g["policyPass"]]
        assert [v is None for v in ours] == [v is None for v in theirs], (
            f"{q['id']}: illegal-move sets differ"
        )
        worst["policy"] = max(worst["policy"], max(abs(a - b) for a, b in zip(ours, theirs) if a is not None))
        worst["winloss"] = max(worst["winloss"], abs(raw["whiteWin"] - g["whiteWin"]))
        worst["ownership"] = max(
            worst["ownership"], max(abs(a - b) for a, b in zip(raw["whiteOwnership"], g["whiteOwnership"]))
        )
    assert all(worst[k] <= GATES[k] for k in GATES), dict(worst)


def test_symmetries_move_features_and_legal_mask_together(oracle_games):
    """With symmetry s, spatial planes and the legal mask's board part are the symmetry-0 ones transformed alike:
    every legal board point is an empty on-board point in the same frame, and mapping back gives KataGo's
    illegal-move set (golden ``null`` entries); pass and globals are unchanged."""
    golden = load_golden(SMALL_NET)
    games = [g for _, g, _ in oracle_games]
    base = [SampledPosition(i, t, 0, 0, q["rules"], 0) for i, (q, _, t) in enumerate(oracle_games)]
    sym = [SampledPosition(i, t, 0, 0, q["rules"], 1 + i % 7) for i, (q, _, t) in enumerate(oracle_games)]
    sp0, gl0, lg0 = encode_positions(games, base, 19)
    sp, gl, lg = encode_positions(games, sym, 19)
    np.testing.assert_array_equal(gl, gl0)
    np.testing.assert_array_equal(lg[:, 361], lg0[:, 361])
    for i, (p, (q, _, _)) in enumerate(zip(sym, oracle_games)):
        np.testing.assert_array_equal(sp[i], apply_to_inputs(sp0[i : i + 1], p.symmetry)[0])
        board = lg[i, :361].reshape(19, 19)
        empty_on_board = (sp[i, 0] == 1) & (sp[i, 1] == 0) & (sp[i, 2] == 0)
        assert not (board & ~empty_on_board).any(), q["id"]
        back = apply_to_outputs(board[None], p.symmetry).reshape(361)
        assert back.tolist() == [v is not None for v in golden[q["id"]]["policy"]], q["id"]


def test_sampled_position_equals_query_encoding():
    """A sampled position's features are those of its analysis query through position_from_query (sym 0)."""
    game = read_game(SGF_DIR / "Jin_Mao_Ce_Shi_0057.sgf")
    samples = [
        SampledPosition(0, t, game.phase_of(t), 0, r, 0)
        for t, r in [(1, "aga"), (40, "chinese"), (72, "japanese")]
    ]
    spatial, glob, legal = encode_positions([game], samples, 19)
    for i, p in enumerate(samples):
        s = position_from_query(game.query(p.turn, p.rules))
        sp, gl = encode_batch([(s.history, s.next_player)])
        np.testing.assert_array_equal(spatial[i], sp[0])
        np.testing.assert_array_equal(glob[i], gl[0])
        np.testing.assert_array_equal(legal[i], legal_policy_mask(s.history, s.next_player))


# ------------------------------------------------------------------------------------------ komi, handicap
@pytest.mark.parametrize(
    ("root", "komi", "note"),
    [
        ("KM[750]RU[Japanese]", 7.5, None),
        ("KM[650]", 6.5, None),
        ("KM[375]RU[Chinese]", 7.5, None),
        ("KM[6.5]", 6.5, None),
        ("KM[0]RU[Japanese]", 0.0, None),
        ("KM[-3.5]", -3.5, None),
        ("RU[Japanese]", 6.5, "komi-missing"),
        ("RU[Chinese]", 7.5, "komi-missing"),
        ("KM[]", 6.5, "komi-missing"),
        ("KM[99999]", 400.0, "komi-clamped"),
    ],
)
def test_komi_normalisation(root, komi, note):
    game = read_game(_sgf(";B[pd];W[dp];B[pp]", "GM[1]FF[4]SZ[19]" + root))
    assert game.komi == komi
    if note:
        assert note in game.notes
    g = position_of(game, 2, "chinese")
    assert g.rules.komi == komi


def test_komi_from_real_games():
    assert read_game(SGF_DIR / "BensonDarr_0000.sgf").komi == 7.5  # KM[750]
    assert read_game(SGF_DIR / "BensonDarr_0041.sgf").komi == 0.0  # KM[0], HA[1]
    assert read_game(SGF_DIR / "Jin_Mao_Ce_Shi_0057.sgf").komi == 7.5  # KM[375]
    missing = read_game(SGF_DIR / "FineArt_0115.sgf")  # mangled header: KM lost, RU[Japanese]
    assert missing.komi == 6.5 and "komi-missing" in missing.notes


def test_bad_komi_is_skipped():
    with pytest.raises(GameSkipped) as exc:
        read_game(_sgf(";B[pd]", "GM[1]SZ[19]KM[seven]"))
    assert exc.value.reason == "bad-komi"


def test_handicap_game_keeps_setup_and_white_moves_first():
    """Dancer_0019: HA[2] with AB in the second node; White moves first (twice in a row)."""
    game = read_game(SGF_DIR / "Dancer_0019.sgf")
    assert sorted(game.initial_stones) == [("B", "D4"), ("B", "Q16")]
    assert game.first_turn == 0 and game.moves[:2] == (("W", "C16"), ("W", "R4"))
    for rules in ("chinese", "japanese"):
        state = position_of(game, 0, rules)
        assert state.next_player == C_WHITE
        stones = [i for i, c in enumerate(state.board.colors) if c in (C_BLACK, C_WHITE)]
        assert len(stones) == 2 and all(state.board.colors[i] == C_BLACK for i in stones)
        spatial, _ = encode_batch([(state.history, state.next_player)])
        assert spatial[0, 1].sum() == 0 and spatial[0, 2].sum() == 2  # own (White) 0, opponent 2
        assert spatial[0, 2, 3, 15] == 1 and spatial[0, 2, 15, 3] == 1  # Q16 (row 3 from the top), D4
    # Chinese rules give White a bonus of one point per handicap stone: self-komi 6.5 + 2 for White.
    _, glob = encode_batch([(position_of(game, 0, "chinese").history, C_WHITE)])
    assert glob[0, 5] == pytest.approx((6.5 + 2) / 20)


def test_game_identity_ignores_metadata():
    a = read_game(_sgf(";B[pd];W[dp]C[nice];B[pp]", "GM[1]FF[4]SZ[19]KM[6.5]PB[x]"))
    b = read_game(b"(;FF[3]CA[latin1]SZ[19]KM[650]PW[y]\n;B[pd]\n;W[dp]\n;B[pp])")
    c = read_game(_sgf(";B[pd];W[dp];B[pq]"))
    assert a.sha256 == b.sha256 != c.sha256
    assert a.sha256 == game_identity(19, [], [("B", "Q16"), ("W", "D4"), ("B", "Q4")])


# ------------------------------------------------------------------------------------------ bad games
@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "unparsable"),
        (b"this is not sgf", "unparsable"),
        (b"(;GM[1]SZ[19];B[pd];W[pd])", "illegal-move"),  # occupied point
        (b"(;GM[1]SZ[19];B[zz])", "unparsable"),  # off-board move
        (b"(;GM[1]SZ[19]KM[6.5])", "no-moves"),
        (b"(;GM[1]SZ[9];B[ee])", "board-size"),
        (b"(;GM[1]SZ[19:13];B[aa])", "board-size"),
        (b"(;GM[1]SZ[30];B[aa])", "board-too-large"),
        (b"(;GM[2]SZ[19];B[aa])", "not-go"),
        (b"(;GM[1]SZ[19]HA[12];W[pp])", "bad-setup"),  # no fixed placement for 12 handicap stones
    ],
)
def test_bad_games_are_skipped_with_a_reason(data, reason):
    with pytest.raises(GameSkipped) as exc:
        read_game(data, name="case.sgf")
    assert exc.value.reason == reason, exc.value.detail


def test_board_size_follows_tensor():
    nine = b"(;GM[1]SZ[9];B[ee];W[cc])"
    assert read_game(nine, nn_size=9).size == 9
    with pytest.raises(GameSkipped) as exc:
        read_game(_sgf(";B[pd]"), nn_size=13)
    assert exc.value.reason == "board-too-large"


# ------------------------------------------------------------------------------------------ the plan
def _games(n: int):
    names = sorted(p.name for p in SGF_DIR.glob("*.sgf"))[:n]
    return [read_game(SGF_DIR / name) for name in names]


def test_plan_is_deterministic_balanced_and_disjoint():
    games = _games(12)
    plan = plan_samples(games, 120, val_fraction=0.25, seed=7)
    again = plan_samples(list(reversed(games)), 120, val_fraction=0.25, seed=7)
    assert plan.positions == again.positions  # file order does not matter
    assert plan.positions != plan_samples(games, 120, val_fraction=0.25, seed=8).positions
    assert len(plan.positions) == 120
    assert plan.games_in(1) == 3 and plan.games_in(0) == 9
    val = [p for p in plan.positions if p.split == 1]
    assert len(val) == 30
    for p in plan.positions:  # positions come from games of their own split, distinct, in range
        assert plan.game_split[p.game] == p.split
        assert plan.games[p.game].first_turn <= p.turn <= plan.games[p.game].n_moves
        assert plan.games[p.game].phase_of(p.turn) == p.phase
    assert len({(p.game, p.turn) for p in plan.positions}) == 120
    calib = [p for p in plan.positions if p.split == 0]
    assert Counter(p.phase for p in calib) == {0: 30, 1: 30, 2: 30}
    assert set(Counter(p.symmetry for p in calib).values()) == {11, 12}  # 90 over 8 symmetries
    assert set(Counter(p.rules for p in calib).values()) <= {90 // 7, 90 // 7 + 1}
    assert {p.rules for p in calib} == set(RULES_MIX)


def test_plan_with_too_few_positions_available():
    game = read_game(_sgf(";B[pd];W[dp];B[pp];W[dd]"))
    plan = plan_samples([game], 50, val_fraction=0.0, seed=0)
    assert sorted(p.turn for p in plan.positions) == [1, 2, 3, 4]
    assert plan.notes == {"calib-positions-short": 46}
