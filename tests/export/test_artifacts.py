"""The export core: target registry, sidecar manifests, the evaluator loader and the export CLI's bad-input paths."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from katadeploy.artifact import (
    ArtifactManifest,
    TensorSpec,
    check_source,
    read_manifest,
    write_manifest,
)
from katadeploy.cli import main
from katadeploy.errors import KatadeployError, MissingExtraError
from katadeploy.export.targets import TARGETS, get_target
from katadeploy.extras import require
from katadeploy.runtime.base import RawBatch, evaluate_in_chunks
from katadeploy.runtime.loader import open_evaluator
from tests.conftest import small_net_path

NET = "g170-b6c96-s175395328-d26788732"


def _manifest(**kw) -> ArtifactManifest:
    base = dict(
        target="onnx-fp32", format="onnx", precision="fp32", artifact="a.onnx",
        source={"name": "n", "file": "n.bin.gz", "sha256": "ab" * 32, "model_version": 8},
        board={"nn_x": 19, "nn_y": 19, "exact": False}, batch={"dynamic": True},
        inputs=[TensorSpec("spatial", ["N", 22, 19, 19])], outputs=[TensorSpec("value", ["N", 3])],
    )  # fmt: skip
    base.update(kw)
    return ArtifactManifest(**base)


def test_every_target_named_in_the_issue_exists():
    wanted = (
        "onnx-fp32 onnx-fp16 onnx-int8 tflite-fp32 tflite-fp16 tflite-int8 coreml-fp32 coreml-fp16 coreml-w8 "
        "tensorrt-fp16 tensorrt-int8"
    ).split()
    for name in wanted:
        t = get_target(name)
        assert t.name == name and name.endswith(t.precision)
    assert {t.extension for t in TARGETS.values()} >= {".onnx", ".tflite", ".mlpackage", ".engine"}
    assert [n for n, t in TARGETS.items() if t.needs_calibration] == ["onnx-int8", "tflite-int8", "tensorrt-int8",
                                                                       "openvino-int8"]  # fmt: skip
    with pytest.raises(KatadeployError, match="choose one of: onnx-fp32"):
        get_target("onnx-int4")


def test_manifest_round_trip_and_source_check(tmp_path):
    art = tmp_path / "a.onnx"
    art.write_bytes(b"x")
    path = write_manifest(_manifest(), art)
    assert path.name == "a.onnx.json"
    m = read_manifest(art)
    assert m == read_manifest(path)
    assert (m.nn_x, m.nn_y, m.exact_board, m.fixed_batch) == (19, 19, False, None)
    assert m.inputs[0] == TensorSpec("spatial", ["N", 22, 19, 19])
    check_source(m, "ab" * 32)
    with pytest.raises(KatadeployError, match="re-export"):
        check_source(m, "cd" * 32, "other-net")


@pytest.mark.parametrize(
    "content, match",
    [
        (None, "manifest a.onnx.json is missing"),
        ("{not json", "not a valid artifact manifest"),
        ('{"target": "onnx-fp32"}', "missing format"),
        ('[1, 2]', "not a katadeploy artifact manifest"),
    ],
)  # fmt: skip
def test_bad_manifests_are_clear_errors(tmp_path, content, match):
    art = tmp_path / "a.onnx"
    art.write_bytes(b"x")
    if content is not None:
        (tmp_path / "a.onnx.json").write_text(content)
    with pytest.raises(KatadeployError, match=match):
        read_manifest(art)


def test_newer_manifest_and_missing_artifact(tmp_path):
    art = tmp_path / "a.onnx"
    with pytest.raises(KatadeployError, match="no such artifact"):
        read_manifest(art)
    art.write_bytes(b"x")
    d = _manifest().to_json() | {"manifest_version": 99}
    (tmp_path / "a.onnx.json").write_text(json.dumps(d))
    with pytest.raises(KatadeployError, match="newer"):
        read_manifest(art)


def test_loader_refuses_unknown_formats_and_other_nets(tmp_path):
    art = tmp_path / "a.onnx"
    art.write_bytes(b"x")
    write_manifest(_manifest(format="weird"), art)
    with pytest.raises(KatadeployError, match="unknown artifact format"):
        open_evaluator(art)
    write_manifest(_manifest(), art)
    with pytest.raises(KatadeployError, match="exported from n"):
        open_evaluator(art, model_sha256="00" * 32)
    with pytest.raises(KatadeployError, match="needs the net"):
        open_evaluator("torch")


def test_missing_extra_names_the_fix(monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)  # makes `import openvino` raise ImportError
    with pytest.raises(MissingExtraError, match=r"pip install 'katadeploy\[openvino\]'"):
        require("openvino", "openvino")


def test_chunks_pad_and_trim():
    calls = []

    def run(s, g, m):
        calls.append(len(s))
        return RawBatch(s[:, :2], s[:, 0, 0, :2], g[:, :3], g[:, :4], s[:, :1])

    s = np.arange(5 * 3 * 2 * 2, dtype=np.float32).reshape(5, 3, 2, 2)
    g = np.arange(5 * 4, dtype=np.float32).reshape(5, 4)
    out = evaluate_in_chunks(run, 2, s, g)
    assert calls == [2, 2, 2]
    np.testing.assert_array_equal(out.value, g[:, :3])
    np.testing.assert_array_equal(out.policy, s[:, :2])
    calls.clear()
    evaluate_in_chunks(run, 4, s, g, pad=False)
    assert calls == [4, 1]


def test_export_cli_bad_input(tmp_path, capsys):
    net = str(small_net_path(NET))
    assert main(["export", net, "--target", "onnx-int4", "-o", str(tmp_path)]) == 2
    assert "unknown target" in capsys.readouterr().err
    assert main(["export", net, "--target", "onnx-fp32", "--nn-size", "50", "-o", str(tmp_path)]) == 2
    assert "--nn-size" in capsys.readouterr().err
    bad = tmp_path / "calib.npz"
    bad.write_bytes(b"this is not a calibration file")
    assert main(["export", net, "--target", "onnx-int8", "--calib", str(bad), "-o", str(tmp_path)]) == 2
    assert "calibrat" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.onnx"))


def test_check_inputs_holds_arrays_against_the_manifest_specs():
    from katadeploy.artifact import TensorSpec
    from katadeploy.runtime.base import check_inputs

    specs = [
        TensorSpec("spatial", ["N", 22, 19, 19]),
        TensorSpec("global", ["N", 19]),
        TensorSpec("meta", [8, 192]),
    ]
    s, g, m = np.zeros((2, 22, 19, 19), np.float64), np.zeros((2, 19)), np.zeros((2, 192))
    out = check_inputs("art", specs, s, g, m)
    assert [a.dtype for a in out] == [np.float32] * 3 and all(a.flags.c_contiguous for a in out)
    with pytest.raises(KatadeployError, match="art: this is a human-SL net.*meta"):
        check_inputs("art", specs, s, g)
    with pytest.raises(
        KatadeployError, match=r"input 'spatial' has shape \[2, 22, 9, 9\], the artifact expects"
    ):
        check_inputs("art", specs, np.zeros((2, 22, 9, 9)), g, m)
    with pytest.raises(KatadeployError, match="input 'global' has 3 rows, spatial has 2"):
        check_inputs("art", specs, s, np.zeros((3, 19)), m)
    assert len(check_inputs("art", specs[:2], s, g, m)) == 2  # meta for a net without it is not fed
