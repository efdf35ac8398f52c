"""ONNX artifacts for KataGo's own ONNX backend: the I/O contract of ``cpp/neuralnet/onnxbackend.cpp``
(lightvector/KataGo pull/1171 @ a4ac35b3) checked on FP32, FP16 and INT8 artifacts, numerically unchanged.

The contract is held structurally and by feeding the file the tensors the backend feeds (shapes from
onnxbackend.cpp:963-1003); with a KataGo ONNX build in the cache (``katadeploy katago build --backend onnx``) the
real backend runs each file too, and must give what katadeploy's own onnxruntime run gives."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from katadeploy.artifact import read_manifest
from katadeploy.errors import KatadeployError
from katadeploy.export import katago_onnx as ko
from katadeploy.export.graph import example_inputs
from katadeploy.model.format import load_model
from tests.conftest import small_net_path
from tests.export.artifacts import INT8_DEFAULT_NO_FALLBACK, artifact_builder

NET = "g170-b6c96-s175395328-d26788732"
ONNX_SOURCE_ENV = "KATADEPLOY_KATAGO_ONNX_SOURCE"


#: the onnx-int8 artifact is the one test_int8_groups checks against KataGo's limits
OPTIONS = {"onnx-int8": INT8_DEFAULT_NO_FALLBACK}


@pytest.fixture(scope="module", params=["onnx-fp32", "onnx-fp16", "onnx-int8"])
def artifacts(request, tmp_path_factory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp(request.param)
    src = artifact_builder(OPTIONS)(out, NET, request.param)
    return src, ko.write_katago_onnx(src)


def test_katadeploy_names_break_the_contract(artifacts):
    src, _ = artifacts
    problems = ko.check_contract(src)
    assert any("'InputGlobal'" in p for p in problems)
    assert any("rank 2" in p and "onnxbackend.cpp:975" in p for p in problems)
    assert any("missing output 'OutputScoreValue'" in p for p in problems)


def test_converted_file_meets_the_contract(artifacts):
    _, dst = artifacts
    assert ko.check_contract(dst) == []
    got = ko.introspect(dst)
    assert got == {"spatial": 22, "global": 19, "policy": 1, "value": 3, "score": 4, "ownership": 1,
                   "model_version": 8}  # fmt: skip
    man = read_manifest(dst)
    assert man.target.startswith("katago-onnx-") and man.artifact == dst.name
    assert [t.name for t in man.inputs] == ["InputSpatial", "InputGlobal"]
    assert {t.name for t in man.outputs} == {"OutputPolicy", "OutputPolicyPass", "OutputValue",
                                             "OutputScoreValue", "OutputOwnership"}  # fmt: skip
    keys = ko.config_keys(dst)
    assert keys["onnxOutputMiscvalue"] == "OutputScoreValue" and keys["onnxModelVersion"] == 8


def test_converted_file_gives_the_same_numbers(artifacts):
    import onnxruntime as ort

    src, dst = artifacts
    model = load_model(small_net_path(NET))
    spatial, glob = (t.numpy() for t in example_inputs(model, 4))
    a = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"])
    b = ort.InferenceSession(str(dst), providers=["CPUExecutionProvider"])
    ref = dict(zip(["policy", "policy_pass", "value", "score", "ownership"],
                   a.run(["policy", "policy_pass", "value", "score", "ownership"], {"spatial": spatial, "global": glob})))  # fmt: skip
    # what KataGo feeds: NCHW spatial, global as [N, C, 1, 1] (onnxbackend.cpp:969-979)
    feed = {"InputSpatial": spatial, "InputGlobal": glob.reshape(4, 19, 1, 1)}
    names = [ko.DEFAULT_NAMES[r][0] for r in ("policy", "policy_pass", "value", "score", "ownership")]
    out = dict(zip(["policy", "policy_pass", "value", "score", "ownership"], b.run(names, feed)))
    assert out["policy_pass"].shape == (4, 1, 1, 1)
    for k in ref:
        np.testing.assert_array_equal(out[k].reshape(ref[k].shape), ref[k])
    # KataGo's mask input (channel 0 of spatial, onnxbackend.cpp:951) is what the graph already derives
    assert all(i.name != "InputMask" for i in b.get_inputs())


def test_detect_model_version_matches_source():
    assert ko.detect_model_version(22, 19, 1, 4) == 8
    assert ko.detect_model_version(22, 19, 1, 6) == 10
    assert ko.detect_model_version(22, 19, 2, 6) == 15
    assert ko.detect_model_version(22, 19, 4, 6, newest=16) == 16


def test_refuses_non_onnx(tmp_path):
    p = tmp_path / "x.xml"
    p.write_text("<x/>")
    with pytest.raises(KatadeployError, match="loads .onnx files"):
        ko.write_katago_onnx(p)


def test_contract_transcription_matches_source():
    raw = os.environ.get(ONNX_SOURCE_ENV)
    if not raw:
        pytest.skip(
            f"needs KataGo's ONNX backend source (lightvector/KataGo pull/1171): set ${ONNX_SOURCE_ENV}"
        )
    cpp = Path(raw) / "cpp" if (Path(raw) / "cpp").is_dir() else Path(raw)
    lines = (cpp / "neuralnet" / "onnxbackend.cpp").read_text().splitlines()
    for default, key in ko.DEFAULT_NAMES.values():
        assert any(f'Name("{default}")' in ln for ln in lines[330:340]), default  # onnxbackend.cpp:331-339
        assert any(f'cfg.contains("{key}")' in ln for ln in lines[456:466]), key  # onnxbackend.cpp:457-465
    assert "globalShape = {batchSize, numGlobalFeatures, 1, 1}" in lines[974]
    assert "maskShape = {batchSize, 1, nnYLen, nnXLen}" in lines[962]
    assert 'lowerName.find("scorevalue")' in lines[181]
    assert "if(names[i] == t)" in lines[913]
    assert "NUM_FEATURES_SPATIAL_V7" in lines[62]


# ---------------------------------------------------------------------------------------------- a KataGo ONNX build

#: |KataGo ONNX backend - katadeploy's onnxruntime run of the same file|: both are onnxruntime on one graph, so
#: only KataGo's 6-decimal printing (3 for scores) separates them
SAME_FILE = {"whiteWin": 2e-6, "whiteLead": 2e-3, "policy": 2e-6, "ownership": 2e-6}


@pytest.mark.katago
def test_katago_onnx_backend_runs_the_artifact(artifacts, tmp_path):
    """With a KataGo built with ``USE_BACKEND=ONNX`` in the cache (``katadeploy katago build --backend onnx``),
    the converted artifact runs through ``kata-raw-nn`` under a ``configure onnx`` config with no unused key,
    and gives what katadeploy's own onnxruntime run of the same artifact gives on the 80 oracle positions (19x19
    tensor; smaller boards masked); FP32 is also held against KataGo's Eigen FP32 goldens."""
    from katadeploy.deploy.configure import configure
    from katadeploy.engine.katago.build import built
    from katadeploy.engine.katago.gtp import GTPEngine
    from katadeploy.go.position import load_positions
    from katadeploy.runtime.rawnn import raw_nn
    from tests.conftest import SHARED, load_golden
    from tests.export.artifacts import open_for
    from tests.golden_check import GATES, raw_errors

    b = built("onnx")
    if b is None:
        pytest.skip(
            "no KataGo ONNX build in the cache (katadeploy katago build --backend onnx --onnxruntime-root DIR)"
        )
    src, dst = artifacts
    target = read_manifest(src).target
    _, cfg = configure("onnx", tmp_path / "onnx.cfg", mode="gtp", artifact=str(src))
    path = SHARED / "oracle" / "positions.jsonl"
    queries = [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]
    ev, model = open_for(src, NET)
    ours = {state.id: raw for state, raw in raw_nn(ev, model, load_positions(path))}
    golden = load_golden(NET)
    worst = dict.fromkeys(SAME_FILE, 0.0)
    worst_golden = dict.fromkeys(SAME_FILE, 0.0)
    with GTPEngine(dst, cfg, binary=b.binary()) as engine:
        for q in queries:
            got = engine.raw_nn(q)
            for acc, ref in ((worst, ours[q["id"]]), (worst_golden, golden[q["id"]])):
                err = raw_errors(got, ref, q["id"])
                for key in acc:
                    acc[key] = max(acc[key], err[key])
        stderr = "\n".join(engine.stderr_tail)
    print(f"{target}: vs same file {worst}; vs Eigen goldens {worst_golden}")
    assert "Unused key" not in stderr, stderr
    assert "Using ONNX backend" in b.binary().run("version").stdout
    for key, limit in SAME_FILE.items():
        assert worst[key] <= limit, (target, key, worst)
    if target == "onnx-fp32":
        assert worst_golden["whiteWin"] <= GATES["winloss"] and worst_golden["policy"] <= GATES["policy"], (
            worst_golden
        )
        assert worst_golden["ownership"] <= GATES["ownership"], worst_golden
