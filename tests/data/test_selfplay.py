"""Self-play calibration games: every board size, legal KataGo-rules games from the net's policy, positions
shared among the sizes with splits disjoint by game, and each position's board size and mover recorded."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from katadeploy.data import calibration as C
from katadeploy.data.selfplay import parse_board_sizes, selfplay_games
from katadeploy.errors import KatadeployError
from katadeploy.go.position import position_from_query
from katadeploy.model.format import load_model
from tests.conftest import SHARED, small_net_path

NET = "g170-b6c96-s175395328-d26788732"
SIZES = [(5, 5), (7, 7), (5, 7)]


@pytest.fixture(scope="module")
def model():
    return load_model(small_net_path(NET))


@pytest.fixture(scope="module")
def games(model):
    return selfplay_games(model, SIZES, 2, seed=5, progress=False)


def test_parse_board_sizes():
    assert parse_board_sizes("7, 9,13,19,9x13,9") == [(7, 7), (9, 9), (13, 13), (19, 19), (9, 13)]
    for bad in ("", "7,x", "1", "20", "9x40"):
        with pytest.raises(KatadeployError):
            parse_board_sizes(bad)


def test_games_are_legal_deterministic_and_end(model, games):
    assert [g.source for g in games] == [f"selfplay/{x}x{y}/{i}" for x, y in SIZES for i in range(2)]
    assert len({g.sha256 for g in games}) == len(games)
    for g in games:
        assert (g.x_size, g.board_y) in SIZES and g.n_moves > 0
        ended = [m[1] for m in g.moves[-2:]] == ["pass", "pass"]
        assert ended or g.n_moves >= int(1.2 * g.x_size * g.board_y), g.moves[-3:]
        # every move replays under KataGo's rules (strict: an illegal move would raise)
        position_from_query(g.query(g.n_moves, "chinese"), max_board_size=19, strict=True)
        colours = [m[0] for m in g.moves]
        assert all(a != b for a, b in zip(colours, colours[1:]))  # alternating, passes included
    again = selfplay_games(model, SIZES, 2, seed=5, progress=False)
    assert [g.moves for g in again] == [g.moves for g in games]


def test_calibration_shares_positions_among_board_sizes(model, tmp_path):
    sgf = [SHARED / "sgf" / "DeepZenGo_0003.sgf", SHARED / "sgf" / "FineArt_0020.sgf"]
    arrays, report = C.build_calibration(
        sgf,
        positions=60,
        val_fraction=0.25,
        seed=1,
        progress=False,
        selfplay=2,
        board_sizes=SIZES,
        model=model,
    )
    path = C.save_calibration(arrays, tmp_path / "sp.npz")
    cs = C.load_calibration(path)
    sizes = Counter(zip(cs.board_x.tolist(), cs.board_y.tolist()))
    assert sizes == {(19, 19): 15, **{sz: 15 for sz in SIZES}}, sizes  # equal shares
    assert set(cs.to_move) <= {"B", "W"} and len(cs.to_move) == len(cs)
    # the on-board mask holds exactly each position's board area (symmetries move it, never resize it)
    area = cs.spatial[:, 0].reshape(len(cs), -1).sum(axis=1)
    assert np.array_equal(area, (cs.board_x * cs.board_y).astype(np.float32))
    # splits disjoint by game within and across sizes
    assert not set(cs.game[cs.split == 0].tolist()) & set(cs.game[cs.split == 1].tolist())
    val = cs.subset("val")
    assert val.board_x is not None and len(val.board_x) == len(val) and len(val.to_move) == len(val)
    assert arrays and report.positions == 60


def test_selfplay_needs_a_net_and_sizes_that_fit():
    sgf = [SHARED / "sgf" / "DeepZenGo_0003.sgf"]
    with pytest.raises(KatadeployError, match="--model"):
        C.build_calibration(sgf, positions=8, progress=False, selfplay=1)
    with pytest.raises(KatadeployError, match="do not fit"):
        C.build_calibration(
            sgf, positions=8, nn_size=9, progress=False, selfplay=1, board_sizes=[(13, 13)], model=object()
        )


# ------------------------------------------------------------------------------------- the bundled self-play set
def test_bundled_selfplay_games_are_legal_and_cover_the_small_boards():
    from katadeploy.data.selfplay import bundled_selfplay_path, read_games

    games = read_games(bundled_selfplay_path())  # replays every game by katadeploy's rules
    sizes = Counter((g.x_size, g.board_y) for g in games)
    assert sizes == {(7, 7): 16, (9, 9): 16, (13, 13): 16, (9, 13): 16}, sizes
    assert len({g.sha256 for g in games}) == len(games)
    assert {(g.x_size, g.board_y) for g in read_games(bundled_selfplay_path(), nn_size=9)} == {(7, 7), (9, 9)}


def test_read_games_names_the_bad_line(tmp_path, games):
    from katadeploy.data.selfplay import read_games, write_games

    path = tmp_path / "g.jsonl"
    write_games(games, path, {"net": NET})
    assert [(g.sha256, g.moves) for g in read_games(path)] == [(g.sha256, g.moves) for g in games]
    lines = path.read_text().splitlines()
    bad = lines[1].replace('"moves":[[', '"moves":[["B","A1"],["W","A1"],[', 1)  # a move on an occupied point
    for text in (bad, "{not json", '{"source": "x"}'):
        path.write_text("\n".join([lines[0], text]) + "\n")
        with pytest.raises(KatadeployError, match=r"g\.jsonl:2: bad self-play game"):
            read_games(path)


def test_default_calibration_covers_every_board_size(monkeypatch, tmp_path):
    """The bundled default of every board size (onnx-int8's): 19x19 from the real games, the other sizes from the
    bundled self-play games and from random play (7x7, 9x9, 13x13, a stratum per size), equal shares per stratum,
    splits disjoint by game; the plain default stays 19x19 real games."""
    monkeypatch.setenv("KATADEPLOY_CACHE", str(tmp_path / "cache"))
    cs = C.load_calibration(C.default_calibration_path(19, progress=False, positions=80, every_size=True))
    files = [cs.info["game_files"][g] for g in cs.game.tolist()]
    strata = Counter((x, y, f.split("/")[0]) for x, y, f in zip(cs.board_x.tolist(), cs.board_y.tolist(), files))
    want = {(7, 7, "bundled"): 10, (7, 7, "random"): 10, (9, 9, "bundled"): 10, (9, 9, "random"): 10,
            (9, 13, "bundled"): 10, (13, 13, "bundled"): 10, (13, 13, "random"): 10, (19, 19, "bundled"): 10}  # fmt: skip
    assert strata == want, strata
    real = [f for f in cs.info["game_files"] if not f.startswith(("bundled/selfplay/", "random/"))]
    assert real and all(f.endswith(".sgf") for f in real)
    assert cs.info["random_play"] == {"games_per_size": C.DEFAULT_RANDOM_GAMES}
    calib, val = set(cs.game[cs.split == 0].tolist()), set(cs.game[cs.split == 1].tolist())
    assert calib and val and not calib & val
    plain = C.load_calibration(C.default_calibration_path(19, progress=False, positions=40))
    assert set(zip(plain.board_x.tolist(), plain.board_y.tolist())) == {(19, 19)}


def test_size_shares():
    assert C.size_shares([(7, 7), (9, 9), (19, 19)], 100) == [34, 33, 33]
    assert C.size_shares([(7, 7), (9, 9), (13, 13)], 10) == [4, 3, 3]
    assert C.size_shares([(19, 19)], 7) == [7]
    assert sum(C.size_shares([(5, 5), (7, 7), (19, 19), (9, 13)], 61)) == 61
