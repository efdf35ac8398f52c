"""TFLite artifacts (LiteRT on CPU) of the small test nets against KataGo's goldens and the PyTorch FP32 reference.

- ``tflite-fp32`` through raw-nn matches the KataGo v1.17.2 Eigen goldens on all 80 oracle positions (small boards
  masked inside the 19x19 tensor) with test_oracle's gates, for every small net;
- the fixed batch is hidden by the evaluator (1, 3 and 11 positions give the rows of one batch);
- ``tflite-fp16`` and ``tflite-int8`` are held to KataGo's FP16 ``testgpuerror`` limits against PyTorch FP32 on the
  oracle positions (INT8 misses them on these tiny nets: a real finding, not loosened);
- the INT8 file quantizes exactly the trunk-block convolutions it claims and leaves stem and heads float;
- manifests and the clear errors (wrong device, a manifest that does not describe the file, bad int8_blocks).
- slow: kata1-b18c384nbt exported to ``tflite-fp32`` matches the goldens (its ``coreml-fp16`` export is checked in
  test_coreml.py).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from katadeploy.artifact import read_manifest
from katadeploy.errors import KatadeployError
from katadeploy.export import tflite as T
from katadeploy.export.request import export_artifact
from katadeploy.go.position import load_positions
from katadeploy.hashing import sha256_file
from katadeploy.model import desc as D
from katadeploy.model.format import load_model
from katadeploy.runtime.loader import open_evaluator
from katadeploy.runtime.torch_runtime import TorchEvaluator
from katadeploy.validate.positions import load_validation_set
from tests.conftest import real_net_path, small_net_path
from tests.export.artifacts import (
    NETS,
    POSITIONS,
    RESNET,
    artifact_builder,
    assert_honest_int8_label,
    int8_known_failure,
    open_for,
    oracle_metrics,
)
from tests.golden_check import assert_within_gates, golden_errors

pytest.importorskip("litert_torch")
pytest.importorskip("ai_edge_litert")

# the acceptance gates of tests/model/test_oracle.py (goldens are printed to ~6 decimals)
#: INT8 calibration kept small so the suite stays quick; the tests judge the artifact on the oracle positions
INT8_OPTIONS = {"calib_positions": 64, "val_positions": 0}
artifact = artifact_builder({"tflite-int8": INT8_OPTIONS})


def interpreter(path: Path):
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter(model_path=str(path))


# ---------------------------------------------------------------------------------------------- FP32
@pytest.mark.parametrize("stem", NETS)
def test_fp32_matches_katago_on_all_positions(out_dir, stem):
    path = artifact(out_dir, stem, "tflite-fp32")
    ev, model = open_for(path, small_net_path(stem))
    assert ev.name == "tflite-fp32-cpu"
    states = load_positions(POSITIONS)
    assert len(states) == 80 and {s.x_size for s in states} >= {7, 9, 13, 19}
    assert_within_gates(golden_errors(stem, ev, model, states, all_golden=True))


def test_fixed_batch_is_hidden_by_the_evaluator(out_dir):
    path = artifact(out_dir, RESNET, "tflite-fp32")
    ev, model = open_for(path, small_net_path(RESNET))
    assert ev.batch == 8 and read_manifest(path).fixed_batch == 8
    vs = load_validation_set(None, model)
    spatial, glob = vs.spatial[:11], vs.global_[:11]
    ref = TorchEvaluator(model).evaluate(spatial, glob)
    eleven = ev.evaluate(spatial, glob)
    for n in (1, 3):
        few = ev.evaluate(spatial[:n], glob[:n])
        for a, b in zip(few, eleven):
            assert a.shape[0] == n
            np.testing.assert_allclose(a, b[:n], rtol=0, atol=1e-5)
    for name, a, b in zip(ref._fields, ref, eleven):
        assert a.shape == b.shape, name
        assert float(np.abs(a - b).max()) < 1e-3, name


def test_fp32_manifest(out_dir):
    path = artifact(out_dir, RESNET, "tflite-fp32")
    model_path = small_net_path(RESNET)
    m = read_manifest(path)
    assert (m.target, m.format, m.precision) == ("tflite-fp32", "tflite", "fp32")
    assert m.source["sha256"] == sha256_file(model_path) and m.source["model_version"] == 8
    assert m.batch == {"fixed": 8} and m.board == {"nn_x": 19, "nn_y": 19, "exact": False}
    assert [(t.name, t.shape) for t in m.inputs] == [("spatial", [8, 22, 19, 19]), ("global", [8, 19])]
    assert [(t.name, t.shape) for t in m.outputs] == [
        ("policy", [8, 1, 19, 19]), ("policy_pass", [8, 1]), ("value", [8, 3]), ("score", [8, 4]),
        ("ownership", [8, 1, 19, 19]),
    ]  # fmt: skip
    d = m.details
    assert d["signature"]["inputs"] == {"spatial": "args_0", "global": "args_1"}
    assert list(d["signature"]["outputs"]) == ["policy", "policy_pass", "value", "score", "ownership"]
    assert max(d["self_check"]["max_abs_error_vs_torch_fp32"].values()) < 1e-3
    assert d["tensor_dtypes"].get("float16", 0) == 0 and d["tensor_dtypes"].get("int8", 0) == 0


# ---------------------------------------------------------------------------------------------- FP16
@pytest.mark.parametrize("stem", NETS)
def test_fp16_within_katago_fp16_limits(out_dir, stem):
    path = artifact(out_dir, stem, "tflite-fp16")
    metrics = oracle_metrics(path, stem)
    assert metrics.passed("fp16"), json.dumps(metrics.to_json("fp16")["worst"])


def test_fp16_weights_are_float16(out_dir):
    path = artifact(out_dir, RESNET, "tflite-fp16")
    m = read_manifest(path)
    assert m.precision == "fp16" and "float_casting" in m.details["fp16"]["method"]
    interp = interpreter(path)
    tensors = {t["index"]: t for t in interp.get_tensor_details()}
    convs = [op for op in interp._get_ops_details() if op["op_name"] in ("CONV_2D", "FULLY_CONNECTED")]
    assert convs
    for op in convs:  # every weight comes from a DEQUANTIZE of a float16 constant
        weight = tensors[op["inputs"][1]]
        assert weight["dtype"] == np.float32
        producer = [o for o in interp._get_ops_details() if op["inputs"][1] in o["outputs"]]
        assert producer and producer[0]["op_name"] == "DEQUANTIZE", weight["name"]
        assert tensors[producer[0]["inputs"][0]]["dtype"] == np.float16
    assert m.details["ops"]["DEQUANTIZE"] == len(convs)
    fp32_size = artifact(out_dir, RESNET, "tflite-fp32").stat().st_size
    assert path.stat().st_size < 0.6 * fp32_size


# ---------------------------------------------------------------------------------------------- INT8
#: measured 2026-11-23 on the oracle positions: 39x, 61x and 209x KataGo's FP16 limits on the three small nets
#: (INT8 trunk weights alone already reach 2x on g170-b6c96). Strict: a fix that passes turns this red.
TFLITE_INT8_MISSES = (
    "TFLite INT8 (ai-edge-quantizer static, trunk conv/FC only) misses KataGo's FP16 testgpuerror limits; "
    "see the closing note of issue 4"
)
#: regression ceilings (worst limit ratio on the oracle positions), 1.5x what was measured on 2026-12-02
INT8_CEILING = {  # measured: 39.4x, 61.3x, 209x
    "g170-b6c96-s175395328-d26788732": 60.0,
    "b7c96h6kv3qk32v16tflrs-fson-bnh": 92.0,
    "b7c96h3tfrs-test5-cnorm": 315.0,
}


@pytest.mark.parametrize("stem", NETS)
def test_int8_within_katago_fp16_limits(out_dir, stem):
    """xfails where INT8 misses KataGo's FP16 limits (the tiny test nets do): a real finding; fails when the miss
    grows past its ceiling, and when INT8 starts to pass."""
    path = artifact(out_dir, stem, "tflite-int8")
    int8_known_failure(oracle_metrics(path, stem), INT8_CEILING[stem], TFLITE_INT8_MISSES)


def test_int8_quantizes_trunk_convolutions_only(out_dir):
    path = artifact(out_dir, RESNET, "tflite-int8")
    m = read_manifest(path)
    assert (m.target, m.precision, m.batch) == ("tflite-int8", "int8", {"fixed": 8})
    assert m.calibration is not None and m.calibration["sha256"] and m.calibration["positions"] > 0
    d = m.details["int8"]
    assert d["blocks"] == list(range(6)) and d["calibration_positions"] == 64 and d["validation"] is None
    assert_honest_int8_label(path, RESNET, all_trunk=True)
    assert set(d["float"]) >= {"stem", "policy_head", "value_head", "trunk_tip"}
    interp = interpreter(path)
    tensors = {t["index"]: t for t in interp.get_tensor_details()}
    quantized, floating = [], []
    for op in interp._get_ops_details():
        if op["op_name"] not in ("CONV_2D", "FULLY_CONNECTED"):
            continue
        weight = tensors[op["inputs"][1]]
        own = tensors[op["outputs"][0]]["name"].split(";;")[-1]
        (quantized if weight["dtype"] == np.int8 else floating).append(own)
    assert quantized and all(
        re.search(r"KataGoNet_net/katadeploy\.model\.net\.\w*Block_\d", n) for n in quantized
    )
    for part in ("conv_spatial", "linear_global", "policy_head", "value_head"):
        assert any(part in n for n in floating), part
    assert not any(re.search(r"KataGoNet_net/katadeploy\.model\.net\.\w*Block_\d", n) for n in floating)
    # ordinary blocks: 2 convolutions; global-pooling blocks: 3 convolutions + 1 linear
    blocks = load_model(small_net_path(RESNET)).trunk.blocks
    assert len(quantized) == sum({D.OrdinaryBlock: 2, D.GPoolBlock: 4}[type(b)] for b in blocks)
    assert m.details["ops"]["QUANTIZE"] == d["quantize_ops"] > 0


def test_block_scope_selects_the_ops_own_block(out_dir):
    """Converted tensor names fuse several locations (``A;;B;1``); the scope must follow the op's own one."""
    path = artifact(out_dir, RESNET, "tflite-fp32")
    interp = interpreter(path)
    names = {t["index"]: t["name"] for t in interp.get_tensor_details()}
    scope = re.compile(T.block_scope([0]))
    hits = []
    for op in interp._get_ops_details():
        if op["op_name"] == "CONV_2D":
            full = ";".join(names[i] for i in op["outputs"]) + ";"
            if scope.search(full):
                hits.append(full)
    assert len(hits) == 2, hits  # block 0 is an ordinary block: conv1 and conv2
    assert all("OrdinaryBlock_0/katadeploy.model.net.Conv_conv" in h.split(";;")[-1] for h in hits)
    # the naive pattern would also catch later blocks' convs whose fused names mention block 0
    naive = [op for op in interp._get_ops_details() if op["op_name"] == "CONV_2D"]
    assert sum("OrdinaryBlock_0/" in ";".join(names[i] for i in op["outputs"]) for op in naive) > 2


def test_parse_blocks():
    assert T.parse_blocks(None, 4) == [0, 1, 2, 3]
    assert T.parse_blocks("all", 3) == [0, 1, 2]
    assert T.parse_blocks("1-3,7", 8) == [1, 2, 3, 7]
    assert T.parse_blocks([2, 0], 3) == [0, 2]
    for bad in ("9", "x", "", "2-12"):
        with pytest.raises(KatadeployError):
            T.parse_blocks(bad, 8)


# ---------------------------------------------------------------------------------------------- errors
def test_clear_errors(out_dir, tmp_path):
    path = artifact(out_dir, RESNET, "tflite-fp32")
    model_path = small_net_path(RESNET)
    model = load_model(model_path)
    with pytest.raises(KatadeployError, match="CPU"):
        open_evaluator(path, model=model, device="cuda")
    other = small_net_path("b7c96h3tfrs-test5-cnorm")
    with pytest.raises(KatadeployError, match="exported from"):
        open_evaluator(path, model=model, model_sha256=sha256_file(other))
    # a manifest that does not describe the file (wrong tensor size) is refused when opening
    bad = tmp_path / path.name
    shutil.copyfile(path, bad)
    raw = json.loads(Path(str(path) + ".json").read_text())
    raw["inputs"][0]["shape"] = [8, 22, 13, 13]
    raw["board"] = {"nn_x": 13, "nn_y": 13, "exact": False}
    Path(str(bad) + ".json").write_text(json.dumps(raw))
    with pytest.raises(KatadeployError, match="manifest"):
        open_evaluator(bad, model=model)
    with pytest.raises(KatadeployError, match="int8_blocks"):
        export_artifact(model_path, "tflite-int8", tmp_path, progress=False, options={"int8_blocks": "40"})


# ---------------------------------------------------------------------------------------------- real net
@pytest.mark.slow
def test_real_net_tflite_fp32_matches_katago(tmp_path):
    stem = "kata1-b18c384nbt"
    model_path = real_net_path(stem)
    path = export_artifact(model_path, "tflite-fp32", tmp_path, progress=False)
    ev, model = open_for(path, model_path)
    assert_within_gates(golden_errors(stem, ev, model, load_positions(POSITIONS), all_golden=True))
