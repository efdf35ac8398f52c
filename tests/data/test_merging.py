"""Merging calibration files: concatenation, one game one split, duplicates dropped, mismatches refused, the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from katadeploy.cli import main
from katadeploy.data import calibration as C
from katadeploy.data.merging import merge_calibrations
from katadeploy.errors import KatadeployError
from tests.conftest import SHARED

SGF_DIR = SHARED / "sgf"
FIRST = ["BensonDarr_0000.sgf", "DeepZenGo_0003.sgf", "FineArt_0020.sgf"]
SECOND = ["Jin_Mao_Ce_Shi_0057.sgf", "Dancer_0019.sgf", "DeepZenGo_0013.sgf"]


def _build(tmp: Path, names: list[str], seed: int, nn_size: int = 19, positions: int = 24) -> Path:
    arrays, _ = C.build_calibration(
        [SGF_DIR / n for n in names],
        positions=positions,
        val_fraction=0.34,
        seed=seed,
        nn_size=nn_size,
        progress=False,
    )
    return C.save_calibration(arrays, tmp / f"{'-'.join(n[:6] for n in names)}-{seed}-{nn_size}.npz")


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("merge")
    return {
        "a": _build(tmp, FIRST, 1),
        "b": _build(tmp, SECOND, 2),
        "overlap": _build(tmp, FIRST[1:] + SECOND[:1], 7),  # two games of a, one of b, other splits
    }


def _file_of(cs: C.CalibrationSet) -> list[str]:
    return [cs.info["game_files"][g] for g in cs.game.tolist()]


def test_disjoint_files_concatenate(files, tmp_path):
    arrays, report = merge_calibrations([files["a"], files["b"]])
    out = C.load_calibration(C.save_calibration(arrays, tmp_path / "m.npz"))
    a, b = C.load_calibration(files["a"]), C.load_calibration(files["b"])
    assert len(out) == len(a) + len(b) and report.duplicate == report.resplit == 0
    np.testing.assert_array_equal(out.spatial, np.concatenate([a.spatial, b.spatial]))
    np.testing.assert_array_equal(out.legal, np.concatenate([a.legal, b.legal]))
    np.testing.assert_array_equal(out.split, np.concatenate([a.split, b.split]))
    assert out.rules == a.rules + b.rules and out.to_move == a.to_move + b.to_move
    assert _file_of(out) == _file_of(a) + _file_of(b)  # every position still names its own game
    assert [m["sha256"] for m in out.info["merged_from"]] == [a.sha256, b.sha256]
    assert report.positions_per_split == {
        "calib": int((out.split == 0).sum()),
        "val": int((out.split == 1).sum()),
    }


def test_a_game_keeps_one_split_and_repeats_are_dropped(files):
    a, o = C.load_calibration(files["a"]), C.load_calibration(files["overlap"])
    arrays, report = merge_calibrations([files["a"], files["overlap"], files["a"]])
    out = C.calibration_set(arrays, "merged")
    assert report.duplicate >= len(a)  # the second copy of a, whole
    assert len(out) == len(a) + len(o) - (report.duplicate - len(a))
    calib, val = set(out.game[out.split == 0].tolist()), set(out.game[out.split == 1].tolist())
    assert not calib & val  # disjoint by game, whatever the inputs said
    first_split = {a.games[g]: int(s) for g, s in zip(a.game.tolist(), a.split.tolist())}
    for g, s in zip(out.game.tolist(), out.split.tolist()):
        if out.games[g] in first_split:
            assert s == first_split[out.games[g]]
    moved = sum(first_split.get(o.games[g], s) != s for g, s in zip(o.game.tolist(), o.split.tolist()))
    assert report.resplit == moved


def test_files_of_other_tensors_are_refused(files, tmp_path):
    nine = tmp_path / "nine.npz"
    assert main(["calibrate", "--nn-size", "9", "--random-play", "2", "--positions", "8", "-q", "-o", str(nine),
                 str(SGF_DIR / FIRST[0])]) == 0  # fmt: skip
    with pytest.raises(KatadeployError, match="hold different tensors"):
        merge_calibrations([files["a"], nine])
    with pytest.raises(KatadeployError, match="no calibration files"):
        merge_calibrations([])


def test_cli_builds_and_merges_or_only_merges(files, tmp_path, capsys):
    out = tmp_path / "both.npz"
    rc = main(["calibrate", str(SGF_DIR / SECOND[0]), str(files["a"]), "--positions", "8", "--val-fraction", "0",
               "-q", "-o", str(out)])  # fmt: skip
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert (
        "8 positions (8 calib from 1 games" in captured.out and "merged 2 calibration files" in captured.out
    )
    cs = C.load_calibration(out)
    assert len(cs) == 8 + len(C.load_calibration(files["a"]))
    assert cs.info["merged_from"][0]["path"] == "new calibration data"

    only = tmp_path / "only.npz"
    assert main(["calibrate", str(files["a"]), str(files["b"]), "-o", str(only)]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith(f"wrote {only}") and captured.out.splitlines()[1].startswith(
        "merged 2 calibration"
    )
    assert "reading games" not in captured.err  # nothing was built

    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    assert main(["calibrate", str(files["a"]), str(bad), "-o", str(tmp_path / "x.npz")]) == 2
    err = capsys.readouterr().err
    assert "bad.npz: not an .npz file" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.npz").exists()
