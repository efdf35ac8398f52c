"""``katadeploy deploy`` end to end on a small real net: every step runs, the summary agrees with the
per-artifact validation reports, FP32/FP16 artifacts pass KataGo's limits, the bench table and plot exist, and
a target that cannot be built is recorded without stopping the run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from katadeploy.cli import main
from katadeploy.deploy.pipeline import run_deploy
from tests.conftest import small_net_path

pytest.importorskip("onnxruntime")
pytest.importorskip("openvino")

NET = "g170-b6c96-s175395328-d26788732"


def test_deploy_small_net(tmp_path):
    out = tmp_path / "deploy"
    result = run_deploy(
        str(small_net_path(NET)), ["onnx-fp32", "onnx-fp16", "openvino-fp32", "tensorrt-fp16"], out,
        bench_batches=[1, 4], bench_seconds=0.3, threads=2, progress=False,
    )  # fmt: skip
    by_target = {t.target: t for t in result.targets}
    for name in ("onnx-fp32", "onnx-fp16", "openvino-fp32"):
        t = by_target[name]
        assert t.error is None and t.verdict == "PASS", (name, t)
        report = json.loads(Path(t.report).with_suffix(".json").read_text())
        assert report["passed"] is True and report["target"] == name
        assert set(t.evals_per_s) == {1, 4} and min(t.evals_per_s.values()) > 0
    trt = by_target["tensorrt-fp16"]  # no GPU / TensorRT here: recorded, the run went on
    assert trt.error and trt.verdict == "not run"
    assert not result.passed
    md = (out / "deploy.md").read_text()
    assert "| onnx-fp32 |" in md and "| tensorrt-fp16 | not built |" in md
    data = json.loads((out / "deploy.json").read_text())
    assert [t["target"] for t in data["targets"]] == [
        "onnx-fp32",
        "onnx-fp16",
        "openvino-fp32",
        "tensorrt-fp16",
    ]
    bench = json.loads((out / "bench-nn.json").read_text())
    assert {a["target"] for a in bench["artifacts"]} >= {"torch-fp32", "onnx-fp32", "openvino-fp32"}
    assert (out / "bench-nn.png").read_bytes()[:4] == b"\x89PNG"


def test_deploy_bad_net_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "broken.bin.gz"
    bad.write_bytes(b"\x1f\x8b not really gzip")
    rc = main(["deploy", str(bad), "-o", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc != 0 and "Traceback" not in err and "broken.bin.gz" in err


def test_int8_share_cell_says_what_really_runs_int8():
    from katadeploy.deploy.pipeline import _share

    assert _share(None) == "-"
    assert _share(0.8) == "80%"
    assert _share(0.8, 0.0) == "80% (onnxruntime CPU 0%)"
    assert _share(0.0).startswith("0% (nothing runs int8")
