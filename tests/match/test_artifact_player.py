"""An exported artifact as a match player: its source net is found (or asked for) and it plays through its runtime."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from katadeploy.errors import KatadeployError
from katadeploy.match.players import resolve_player
from katadeploy.match.runner import MatchOptions, run_match

pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def onnx_fp32(g170_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from katadeploy.export.request import export_artifact

    return Path(export_artifact(str(g170_path), "onnx-fp32", tmp_path_factory.mktemp("art"), progress=False))


def test_the_source_net_is_found_or_asked_for(onnx_fp32: Path, g170_path: Path, tmp_path: Path):
    lone = tmp_path / "lone"
    lone.mkdir()
    for f in (onnx_fp32, onnx_fp32.with_name(onnx_fp32.name + ".json")):
        shutil.copy(f, lone / f.name)
    with pytest.raises(KatadeployError, match="pass --net"):
        resolve_player(str(lone / onnx_fp32.name), 4)
    assert resolve_player(str(lone / onnx_fp32.name), 4, net=str(g170_path)).net == str(g170_path.resolve())
    shutil.copy(g170_path, lone / g170_path.name)  # the manifest's source.file, next to the artifact
    p = resolve_player(str(lone / onnx_fp32.name), 4)
    assert p.net == str((lone / g170_path.name).resolve()) and p.kind == "katadeploy"
    (lone / g170_path.name).write_bytes(
        b"not the same net"
    )  # a file of that name but another sha256: skipped
    with pytest.raises(KatadeployError, match="pass --net"):
        resolve_player(str(lone / onnx_fp32.name), 4)


@pytest.mark.ray
def test_an_artifact_plays_the_net(ray_local, onnx_fp32: Path, g170_path: Path, tmp_path: Path):
    out = tmp_path / "m"
    s = run_match(MatchOptions(a=str(onnx_fp32), b=str(g170_path), visits_a=2, visits_b=2, games=2, board=9,
                               max_moves=20, workers=1, out_dir=out, net=str(g170_path), progress=False))  # fmt: skip
    assert s["games"] == 2 and s["players"]["A"]["label"] == onnx_fp32.name
    header = json.loads((out / "games.jsonl").read_text().splitlines()[0])
    assert header["config"]["players"][0]["sha256"] != header["config"]["players"][1]["sha256"]


def test_the_player_fingerprint_is_the_artifact_content_not_its_build(onnx_fp32: Path, g170_path: Path,
                                                                       tmp_path: Path):  # fmt: skip
    """A long match resumes across sessions: the same artifact re-exported (new date, timings) is the same player,
    a changed payload or target is not."""
    copy = tmp_path / onnx_fp32.name
    shutil.copy(onnx_fp32, copy)
    manifest = json.loads(onnx_fp32.with_name(onnx_fp32.name + ".json").read_text())
    side = copy.with_name(copy.name + ".json")
    base = resolve_player(str(onnx_fp32), 4, net=str(g170_path)).sha256
    manifest["created"] = "1999-01-01T00:00:00Z"
    manifest["details"]["seconds"] = 123.0
    side.write_text(json.dumps(manifest))
    assert resolve_player(str(copy), 4, net=str(g170_path)).sha256 == base
    side.write_text(json.dumps({**manifest, "output_scale": 2.0}))
    assert resolve_player(str(copy), 4, net=str(g170_path)).sha256 != base
    side.write_text(json.dumps(manifest))
    copy.write_bytes(copy.read_bytes() + b"\0")
    assert resolve_player(str(copy), 4, net=str(g170_path)).sha256 != base


def test_a_renamed_artifact_is_refused_in_one_line(onnx_fp32: Path, g170_path: Path, tmp_path: Path):
    """An artifact copied under a new name with its sidecar, but the manifest still naming the old payload: a clear
    error, not a bare ``[Errno 2]``."""
    renamed = tmp_path / "renamed.onnx"
    shutil.copy(onnx_fp32, renamed)
    shutil.copy(onnx_fp32.with_name(onnx_fp32.name + ".json"), tmp_path / "renamed.onnx.json")
    with pytest.raises(KatadeployError, match=r"names the payload .* not beside it"):
        resolve_player(str(renamed), 4, net=str(g170_path))
