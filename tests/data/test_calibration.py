"""Calibration files: build, save/load round trip, every bad-file case, compatibility, the default cache, the CLI."""

from __future__ import annotations

import json
import shutil
import zipfile
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from katadeploy.cli import main
from katadeploy.data import calibration as C
from katadeploy.data.sampling import bundled_games_dir, read_game
from katadeploy.errors import KatadeployError
from katadeploy.go.features import encode_batch, legal_policy_mask
from katadeploy.go.position import position_from_query
from katadeploy.go.symmetry import apply_to_inputs
from tests.conftest import SHARED, small_net_path

SGF_DIR = SHARED / "sgf"
GAMES = [
    "BensonDarr_0000.sgf",  # KM[750]
    "BensonDarr_0041.sgf",  # HA[1] KM[0]
    "Dancer_0019.sgf",  # HA[2], AB in the second node, White moves first
    "DeepZenGo_0003.sgf",  # KM[750]
    "DeepZenGo_0013.sgf",  # KM[650]
    "FineArt_0115.sgf",  # mangled header, no KM
    "FineArt_0020.sgf",
    "Jin_Mao_Ce_Shi_0057.sgf",  # KM[375] RU[Chinese]
    "Jin_Mao_Ce_Shi_0003.sgf",
]
BAD = {
    "garbage.sgf": b"not an sgf file at all",
    "nine.sgf": b"(;GM[1]SZ[9];B[ee];W[cc])",
    "chess.sgf": b"(;GM[3]SZ[8];B[aa])",
    "illegal.sgf": b"(;GM[1]SZ[19];B[pd];W[pd])",
    "empty.sgf": b"(;GM[1]SZ[19]KM[6.5])",
}
EXPECTED_SKIPS = {
    "unparsable": 1,
    "board-size": 1,
    "not-go": 1,
    "illegal-move": 1,
    "no-moves": 1,
    "duplicate": 1,
}


@pytest.fixture(scope="module")
def game_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("games")
    for name in GAMES:
        shutil.copy(SGF_DIR / name, d / name)
    sub = d / "more"
    sub.mkdir()
    for name, data in BAD.items():
        (sub / name).write_bytes(data)
    # The same game again, re-annotated: one game, not two.
    text = (SGF_DIR / "FineArt_0020.sgf").read_text("utf-8").replace("GN[]", "GN[copy]C[a comment]", 1)
    (sub / "copy_of_FineArt_0020.sgf").write_text(text, "utf-8")
    (sub / "notes.txt").write_text("not an sgf")
    return d


@pytest.fixture(scope="module")
def built(game_dir):
    return C.build_calibration([game_dir], positions=64, val_fraction=0.25, seed=3, progress=False)


@pytest.fixture(scope="module")
def calib_file(built, tmp_path_factory) -> Path:
    return C.save_calibration(built[0], tmp_path_factory.mktemp("calib") / "calib.npz")


# ------------------------------------------------------------------------------------------------ building
def test_report_counts_games_positions_and_skips(built):
    arrays, report = built
    assert report.files == len(GAMES) + len(BAD) + 1
    assert report.games == len(GAMES)
    assert report.skipped == EXPECTED_SKIPS
    assert report.positions == 64 and report.positions_per_split == {"calib": 48, "val": 16}
    assert sum(report.games_per_split.values()) == len(arrays["games"]) <= len(GAMES)
    info = json.loads(str(arrays["info"]))
    assert info["skipped"] == EXPECTED_SKIPS and info["format_version"] == C.FORMAT_VERSION
    assert info["seed"] == 3 and info["nn_size"] == 19
    text = "\n".join(report.lines())
    assert "64 positions (48 calib from" in text and "not-go" in text and "duplicate" in text


def test_every_position_is_its_query_encoded(built):
    """Each row equals its analysis query run through position_from_query + encode_batch + legal_policy_mask,
    transformed by the row's symmetry (directly equal for symmetry 0)."""
    arrays, _ = built
    info = json.loads(str(arrays["info"]))
    games = [read_game(Path(f)) for f in info["game_files"]]
    assert [g.sha256 for g in games] == arrays["games"].tolist()
    assert set(arrays["symmetry"].tolist()) == set(range(8))
    for i in range(len(arrays["spatial"])):
        game = games[arrays["game"][i]]
        rules, sym = str(arrays["rules"][i]), int(arrays["symmetry"][i])
        s = position_from_query(game.query(int(arrays["move_number"][i]), rules))
        sp, gl = encode_batch([(s.history, s.next_player)])
        legal = legal_policy_mask(s.history, s.next_player)
        if sym == 0:
            np.testing.assert_array_equal(arrays["spatial"][i], sp[0])
            np.testing.assert_array_equal(arrays["legal"][i], legal)
        np.testing.assert_array_equal(arrays["spatial"][i], apply_to_inputs(sp, sym)[0])
        np.testing.assert_array_equal(arrays["global"][i], gl[0])
        board = apply_to_inputs(legal[:361].reshape(1, 19, 19), sym).reshape(361)
        np.testing.assert_array_equal(arrays["legal"][i], np.append(board, legal[361]))
        assert arrays["komi"][i] == game.komi and s.rules.komi == game.komi


def test_splits_are_disjoint_by_game(built):
    arrays, _ = built
    calib = set(arrays["game"][arrays["split"] == 0].tolist())
    val = set(arrays["game"][arrays["split"] == 1].tolist())
    assert calib and val and not calib & val
    assert len(set(arrays["games"].tolist())) == len(arrays["games"])


def test_deterministic_and_independent_of_argument_order(built, game_dir):
    arrays, _ = built
    files = sorted(game_dir.rglob("*.sgf"), reverse=True)
    again, _ = C.build_calibration(files, positions=64, val_fraction=0.25, seed=3, progress=False)
    for key in C._SCHEMA:
        if key != "info":
            assert again[key].dtype == arrays[key].dtype, key
            assert again[key].tobytes() == arrays[key].tobytes(), key
    other, _ = C.build_calibration([game_dir], positions=64, val_fraction=0.25, seed=4, progress=False)
    assert other["spatial"].tobytes() != arrays["spatial"].tobytes()


def test_no_usable_games_is_an_error(tmp_path):
    (tmp_path / "bad.sgf").write_bytes(b"(;GM[1]SZ[9];B[ee])")
    with pytest.raises(KatadeployError, match="usable 19x19 game.*board-size: 1"):
        C.build_calibration([tmp_path], positions=8, progress=False)
    with pytest.raises(KatadeployError, match="no such SGF"):
        C.build_calibration([tmp_path / "missing.sgf"], positions=8, progress=False)
    # games of its own (random play here) make a set without any usable SGF game: a 9x9 tensor, 19x19 records
    (tmp_path / "big.sgf").write_bytes(b"(;GM[1]SZ[19];B[dd];W[pp])")
    arrays, _ = C.build_calibration(
        [tmp_path / "big.sgf"], positions=16, nn_size=9, random_play=2, progress=False
    )
    assert len(arrays["spatial"]) == 16 and arrays["spatial"].shape[-2:] == (9, 9)
    with pytest.raises(KatadeployError, match="no usable 5x5 games"):  # no random-play size fits a 5x5 tensor
        C.build_calibration([tmp_path / "big.sgf"], positions=8, nn_size=5, random_play=2, progress=False)


# ------------------------------------------------------------------------------------------------ files
def test_round_trip_and_subsets(built, calib_file):
    arrays, _ = built
    cs = C.load_calibration(calib_file)
    assert len(cs) == 64 and (cs.nn_x, cs.nn_y) == (19, 19)
    np.testing.assert_array_equal(cs.spatial, arrays["spatial"])
    np.testing.assert_array_equal(cs.global_, arrays["global"])
    np.testing.assert_array_equal(cs.legal, arrays["legal"])
    assert cs.games == arrays["games"].tolist() and cs.info["format"] == C.FORMAT_NAME
    import hashlib

    assert cs.sha256 == hashlib.sha256(calib_file.read_bytes()).hexdigest() and cs.path == calib_file
    cal, val = cs.subset("calib"), cs.subset("val")
    assert (len(cal), len(val)) == (48, 16) and (cal.split == 0).all() and (val.split == 1).all()
    assert val.rules == [r for r, s in zip(cs.rules, cs.split) if s == 1]
    assert not set(cal.game.tolist()) & set(val.game.tolist())
    with pytest.raises(KatadeployError, match="unknown calibration split"):
        cs.subset("test")
    assert [p.name for p in calib_file.parent.iterdir()] == ["calib.npz"]  # no temporary files left


def _write(path: Path, arrays: dict) -> Path:
    np.savez_compressed(path, **arrays)
    return path


def _mutate(built, **changes) -> dict:
    arrays = dict(built[0])
    for k, v in changes.items():
        if v is None:
            del arrays[k]
        else:
            arrays[k] = v
    return arrays


def _info(built, **changes) -> np.ndarray:
    info = json.loads(str(built[0]["info"]))
    info.update(changes)
    return np.array(json.dumps(info))


def _bad_cases(built):
    a = built[0]
    nan = a["spatial"].copy()
    nan[3, 5, 2, 2] = np.nan
    inf = a["global"].copy()
    inf[0, 5] = np.inf
    mask = a["spatial"].copy()
    mask[1, 0, 0, 0] = 0.5
    overlap = a["game"].copy()
    g_val = int(a["game"][a["split"] == 1][0])
    overlap[np.flatnonzero(a["split"] == 0)[0]] = g_val
    dup_games = a["games"].copy()
    dup_games[1] = dup_games[0]
    return {
        "missing key": (_mutate(built, legal=None), "missing key 'legal'"),
        "missing info": (_mutate(built, info=None), "missing key 'info'"),
        "wrong dtype": (
            _mutate(built, spatial=a["spatial"].astype(np.float64)),
            "'spatial' has dtype float64",
        ),
        "wrong shape": (_mutate(built, split=a["split"][:-1]), "'split' has 63 rows"),
        "wrong ndim": (_mutate(built, **{"global": a["global"][..., None]}), "'global' has shape"),
        "nan": (_mutate(built, spatial=nan), "'spatial' contains NaN or Inf"),
        "inf": (_mutate(built, **{"global": inf}), "'global' contains NaN or Inf"),
        "mask": (_mutate(built, spatial=mask), "on-board mask .* other than 0 and 1"),
        "legal shape": (_mutate(built, legal=a["legal"][:, :-1]), r"'legal' has shape \(64, 361\)"),
        "overlap": (_mutate(built, game=overlap), "both splits"),
        "duplicate games": (_mutate(built, games=dup_games), "same game twice"),
        "game index": (_mutate(built, game=a["game"] + 100), "'game' has indices outside"),
        "split value": (_mutate(built, split=a["split"] * 2), "'split' has values other than"),
        "version": (_mutate(built, info=_info(built, format_version=99)), "unknown format version 99"),
        "not ours": (_mutate(built, info=_info(built, format="something-else")), "does not describe"),
        "info json": (_mutate(built, info=np.array("{not json")), "not valid JSON"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "missing key",
        "missing info",
        "wrong dtype",
        "wrong shape",
        "wrong ndim",
        "nan",
        "inf",
        "mask",
        "legal shape",
        "overlap",
        "duplicate games",
        "game index",
        "split value",
        "version",
        "not ours",
        "info json",
    ],
)
def test_load_rejects_bad_files(built, tmp_path, case):
    arrays, message = _bad_cases(built)[case]
    path = _write(tmp_path / "bad.npz", arrays)
    with pytest.raises(KatadeployError, match=message) as exc:
        C.load_calibration(path)
    assert "katadeploy calibrate" in str(exc.value) and str(path) in str(exc.value)
    with pytest.raises(KatadeployError):  # nothing this bad is ever written
        C.save_calibration(arrays, tmp_path / "out.npz")
    assert not (tmp_path / "out.npz").exists()


def test_load_rejects_files_that_are_not_calibration_npz(built, tmp_path):
    with pytest.raises(KatadeployError, match="not found.*katadeploy calibrate"):
        C.load_calibration(tmp_path / "absent.npz")
    text = tmp_path / "text.npz"
    text.write_text("hello")
    with pytest.raises(KatadeployError, match="not an .npz file"):
        C.load_calibration(text)
    npy = tmp_path / "array.npz"
    with open(npy, "wb") as f:
        np.save(f, built[0]["spatial"][:2])
    with pytest.raises(KatadeployError, match="not an .npz file"):
        C.load_calibration(npy)
    other_zip = tmp_path / "other.npz"
    with zipfile.ZipFile(other_zip, "w") as z:
        z.writestr("readme.txt", "hi")
    with pytest.raises(KatadeployError, match="missing key 'info'"):
        C.load_calibration(other_zip)
    pickled = _write(
        tmp_path / "pickled.npz", _mutate(built, rules=np.array(list(built[0]["rules"]), dtype=object))
    )
    with pytest.raises(KatadeployError, match="cannot be read.*pickle"):
        C.load_calibration(pickled)
    truncated = tmp_path / "truncated.npz"
    C.save_calibration(built[0], truncated)
    data = truncated.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(KatadeployError, match="katadeploy calibrate"):
        C.load_calibration(truncated)


def test_check_compatible(calib_file):
    from katadeploy.model.format import load_model

    cs = C.load_calibration(calib_file)
    model = load_model(small_net_path("g170-b6c96-s175395328-d26788732"))
    C.check_compatible(cs, model, 19, 19)
    with pytest.raises(KatadeployError, match="13x13 tensor.*--nn-size 13"):
        C.check_compatible(cs, model, 13, 13)
    other = SimpleNamespace(name="future-net", num_input_channels=24, num_input_global_channels=19)
    with pytest.raises(KatadeployError, match="22 spatial / 19 global.*future-net takes 24 / 19"):
        C.check_compatible(cs, other, 19, 19)


# ------------------------------------------------------------------------------------------------ defaults
def test_bundled_games_are_a_balanced_real_mix():
    files = sorted(bundled_games_dir().glob("*.sgf"))
    assert 280 <= len(files) <= 320 and sum(f.stat().st_size for f in files) < 2_000_000
    programs = {}
    for f in files:
        programs.setdefault(f.name.rsplit("_", 1)[0], []).append(f)
    assert sorted(programs) == ["BensonDarr", "Dancer", "DeepZenGo", "FineArt", "Jin_Mao_Ce_Shi"]
    assert all(55 <= len(v) <= 65 for v in programs.values())
    for f in files:  # each is a byte-for-byte copy of a shared real game
        assert f.read_bytes() == (SGF_DIR / f.name).read_bytes(), f.name
    assert (bundled_games_dir() / "Dancer_0019.sgf").exists()  # the handicap game


def test_bundled_calibration_holds_out_the_test_positions_games(monkeypatch, tmp_path):
    """The 60 19x19 bundled (oracle) positions come from shared games, 33 of them bundled: the default calibration
    must never sample those games, or validating on the oracle would test on calibration data."""
    from katadeploy.data.bundled import bundled_queries, position_games

    held = position_games()
    ids = [q["id"] for q in bundled_queries() if not q["id"].startswith("rand")]
    assert len(ids) == 60 and held == {i.rsplit("@", 1)[0] for i in ids}
    bundled = {f.name for f in bundled_games_dir().glob("*.sgf")}
    overlap = held & bundled
    assert len(overlap) >= 20  # the case this guards against is real
    games = tmp_path / "games"
    games.mkdir()
    picked = sorted(overlap)[:3] + sorted(bundled - held)[:3]
    for name in picked:
        shutil.copy(bundled_games_dir() / name, games / name)
    monkeypatch.setattr(C, "bundled_games_dir", lambda: games)
    arrays, report = C.build_calibration(None, positions=24, val_fraction=0.25, seed=0, progress=False)
    assert report.skipped == {"held-out": 3} and report.games == 3
    assert not any(str(g).split("/")[-1] in held for g in arrays["games"])
    arrays, report = C.build_calibration([games], positions=24, val_fraction=0.25, seed=0, progress=False)
    assert report.games == 6 and not report.skipped  # a user's own directory is taken whole


def test_default_calibration_is_built_once_and_cached(monkeypatch, tmp_path):
    """Uses a 4-game stand-in for the bundled directory to stay fast; the cache key covers its content."""
    games = tmp_path / "games"
    games.mkdir()
    for name in GAMES[:4]:
        shutil.copy(SGF_DIR / name, games / name)
    monkeypatch.setenv("KATADEPLOY_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(C, "bundled_games_dir", lambda: games)
    path = C.default_calibration_path(19, progress=False, positions=24)
    assert path.parent == tmp_path / "cache" / "calibration" and path.suffix == ".npz"
    cs = C.load_calibration(path)
    assert len(cs) == 24 and cs.info["sources"] == [C.BUNDLED_LABEL]
    mtime = path.stat().st_mtime_ns
    assert C.default_calibration_path(19, progress=False, positions=24) == path
    assert path.stat().st_mtime_ns == mtime
    assert C.default_calibration_path(19, progress=False, positions=24, seed=1) != path
    shutil.copy(SGF_DIR / GAMES[4], games / GAMES[4])  # other bundled games: another cache entry
    assert C.default_calibration_path(19, progress=False, positions=24) != path


# ------------------------------------------------------------------------------------------------ CLI
def test_cli_end_to_end(game_dir, built, tmp_path, capsys):
    out = tmp_path / "c.npz"
    rc = main(["calibrate", str(game_dir), "-o", str(out), "--positions", "64", "--seed", "3", "-q"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert captured.err == ""  # -q: no progress
    assert f"wrote {out}" in captured.out and "64 positions (48 calib from" in captured.out
    assert "skipped 6 files" in captured.out and "illegal-move" in captured.out
    cs = C.load_calibration(out)
    np.testing.assert_array_equal(cs.spatial, built[0]["spatial"])
    assert cs.sha256 in captured.out


def test_cli_random_play_adds_a_stratum_per_small_board(game_dir, tmp_path, capsys):
    out = tmp_path / "r.npz"
    rc = main(["calibrate", str(game_dir), "-o", str(out), "--positions", "40", "--random-play", "3", "-q"])
    assert rc == 0, capsys.readouterr().err
    cs = C.load_calibration(out)
    files = [cs.info["game_files"][g] for g in cs.game.tolist()]
    by_size = Counter((x, f.startswith("random/")) for x, f in zip(cs.board_x.tolist(), files))
    assert by_size == {(19, False): 10, (7, True): 10, (9, True): 10, (13, True): 10}, by_size
    assert cs.info["random_play"] == {"games_per_size": 3}
    calib, val = set(cs.game[cs.split == 0].tolist()), set(cs.game[cs.split == 1].tolist())
    assert not calib & val


def test_cli_progress_and_errors(game_dir, tmp_path, capsys):
    out = tmp_path / "p.npz"
    one = game_dir / GAMES[0]
    two = game_dir / GAMES[1]
    rc = main(["calibrate", str(one), str(two), "-o", str(out), "--positions", "6", "--val-fraction", "0.5"])
    captured = capsys.readouterr()
    assert rc == 0 and "encoding positions" in captured.err and "reading games" in captured.err
    assert "6 positions (3 calib from 1 games, 3 val from 1 games)" in captured.out
    assert main(["calibrate", str(tmp_path / "nope.sgf"), "-o", str(out)]) == 2
    assert "no such SGF file" in capsys.readouterr().err
    assert main(["calibrate", str(one), "-o", str(out), "--val-fraction", "0.5", "-q"]) == 2
    assert "needs at least 2 games" in capsys.readouterr().err
    assert main(["calibrate", str(one), "-o", str(out), "--positions", "0", "-q"]) == 2
    assert "--positions must be at least 1" in capsys.readouterr().err
