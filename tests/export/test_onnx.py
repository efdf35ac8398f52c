"""ONNX artifacts of the three small test nets against KataGo's goldens and the PyTorch FP32 reference.

- ``onnx-fp32`` (masked, 19x19 tensor) through raw-nn matches the KataGo v1.17.2 Eigen goldens on all 80 oracle
  positions (the 7x7/9x9/13x13 ones masked inside the 19x19 tensor), with test_oracle's gates;
- the exact-board variant has no op reading the mask channel and matches the goldens on the 19x19 positions;
- ``onnx-fp16`` and ``onnx-int8`` stay within KataGo's FP16 ``testgpuerror`` limits against PyTorch FP32 on the
  oracle positions, and the file really keeps the FP32 islands / float nodes the manifest claims;
- manifests, dynamic batch (1 and 7), and the clear errors (bad calibration file, artifact of another net,
  missing GPU provider, wrong input shape).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from katadeploy.artifact import int8_label, read_manifest
from katadeploy.errors import KatadeployError
from katadeploy.export import node_roles as R
from katadeploy.export import onnx as X
from katadeploy.export.onnx_fp16 import FP32_ROLES, float_types
from katadeploy.export.onnx_int8 import FLOAT_ROLES
from katadeploy.export.request import export_artifact
from katadeploy.go.position import load_positions
from katadeploy.hashing import sha256_file
from katadeploy.model.format import load_model
from katadeploy.runtime.loader import open_evaluator
from katadeploy.runtime.onnx_runtime import integer_kernel_nodes
from katadeploy.runtime.rawnn import raw_nn
from katadeploy.runtime.torch_runtime import TorchEvaluator
from katadeploy.validate.positions import load_validation_set
from tests.conftest import load_golden, small_net_path
from tests.export.artifacts import (
    NETS,
    POSITIONS,
    RESNET,
    artifact_builder,
    assert_full_boards_match_katago,
    assert_honest_int8_label,
    int8_known_failure,
    open_for,
    oracle_metrics,
)
from tests.golden_check import GATES, assert_within_gates, golden_errors

# the acceptance gates of tests/model/test_oracle.py (goldens are printed to ~6 decimals)
#: INT8 calibration kept small so the suite stays quick (the artifact is then judged on the oracle positions)
#: plain PTQ (the pre-repair recipe: range methods only, s8 activations, no fallback, every trunk layer int8), held by
#: its own ceilings; the default smooth-gptq recipe is tests/export/test_int8_repair.py's
INT8_OPTIONS = {
    "calib_positions": 64, "val_positions": 32, "int8_methods": "minmax,percentile,entropy",
    "int8_activations": "s8", "mixed_precision": False, "int8_gpool_float": False,
}  # fmt: skip
artifact = artifact_builder({"onnx-int8": INT8_OPTIONS})


# ---------------------------------------------------------------------------------------------- FP32
@pytest.mark.parametrize("stem", NETS)
def test_fp32_masked_matches_katago_on_all_positions(out_dir, stem):
    path = artifact(out_dir, stem, "onnx-fp32")
    ev, model = open_for(path, stem)
    assert ev.name == "onnx-fp32-cpu"
    states = load_positions(POSITIONS)
    assert len(states) == 80 and {s.x_size for s in states} >= {7, 9, 13, 19}
    assert_within_gates(golden_errors(stem, ev, model, states))
    proto = onnx.load(str(path))
    assert X.mask_consumers(proto), "the masked graph must read the mask channel"
    assert {i.name for i in proto.graph.input} == {"spatial", "global"}
    assert [o.name for o in proto.graph.output] == ["policy", "policy_pass", "value", "score", "ownership"]


@pytest.mark.parametrize("stem", NETS)
def test_exact_board_variant_has_no_mask_ops_and_matches_katago(out_dir, stem):
    path = artifact(out_dir, stem, "onnx-fp32", exact=True)
    assert path.name.endswith("-exact.onnx")
    proto = onnx.load(str(path))
    assert X.mask_consumers(proto) == []
    consumers = {n.op_type for n in proto.graph.node if "spatial" in n.input}
    # only the stem convolution reads the input planes (Shape reads the batch size)
    assert "Conv" in consumers and consumers <= {"Conv", "Shape"}, consumers
    assert read_manifest(path).exact_board
    assert_full_boards_match_katago(path, stem)


def test_small_tensor_artifact_matches_katago(tmp_path):
    """A 9x9-tensor artifact: the 9x9 oracle positions fill it, as KataGo's exact-size tensors did."""
    path = export_artifact(small_net_path(RESNET), "onnx-fp32", tmp_path, nn_size=9, progress=False)
    assert path.name.endswith("-9x9.onnx")
    m = read_manifest(path)
    assert m.board == {"nn_x": 9, "nn_y": 9, "exact": False} and m.inputs[0].shape == ["N", 22, 9, 9]
    ev, model = open_for(path, RESNET)
    states = [s for s in load_positions(POSITIONS) if s.x_size == 9]
    assert states
    golden = load_golden(RESNET)
    for state, raw in raw_nn(ev, model, states, nn_x=9, nn_y=9):
        g = golden[state.id]
        assert abs(raw["whiteWin"] - g["whiteWin"]) <= GATES["winloss"], state.id
        assert abs(raw["whiteLead"] - g["whiteLead"]) <= GATES["lead"], state.id
        dp = max(abs((a or 0) - (b or 0)) for a, b in zip(raw["policy"], g["policy"]))
        assert dp <= GATES["policy"], (state.id, dp)


def test_fp32_manifest_contents(out_dir):
    path = artifact(out_dir, RESNET, "onnx-fp32")
    m = read_manifest(path)
    raw = json.loads(Path(str(path) + ".json").read_text())
    assert (m.target, m.format, m.precision, m.artifact) == ("onnx-fp32", "onnx", "fp32", path.name)
    assert m.source["sha256"] == sha256_file(small_net_path(RESNET)) and m.source["model_version"] == 8
    assert m.board == {"nn_x": 19, "nn_y": 19, "exact": False}
    assert m.batch == {"dynamic": True} and m.fixed_batch is None
    assert [(t.name, t.shape) for t in m.inputs] == [("spatial", ["N", 22, 19, 19]), ("global", ["N", 19])]
    assert [(t.name, t.shape) for t in m.outputs] == [
        ("policy", ["N", 1, 19, 19]), ("policy_pass", ["N", 1]), ("value", ["N", 3]),
        ("score", ["N", 4]), ("ownership", ["N", 1, 19, 19]),
    ]  # fmt: skip
    assert m.output_scale == 1.0 and m.calibration is None
    d = raw["details"]
    assert d["opset"] == X.OPSET and d["mask_ops"] is True
    assert d["fp32_max_abs_diff_vs_torch"] < 1e-3
    assert d["nodes"] == len(onnx.load(str(path)).graph.node)
    # the graph's own I/O shapes agree with the manifest (batch symbolic, board fixed)
    proto = onnx.load(str(path))
    shape = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert shape == ["N", 22, 19, 19]


@pytest.mark.parametrize("batch", [1, 7])
def test_dynamic_batch(out_dir, batch):
    path = artifact(out_dir, "b7c96h6kv3qk32v16tflrs-fson-bnh", "onnx-fp32")
    ev, model = open_for(path, "b7c96h6kv3qk32v16tflrs-fson-bnh")
    vs = load_validation_set(None, model)
    s, g = vs.spatial[:batch], vs.global_[:batch]
    got = ev.evaluate(s, g)
    want = TorchEvaluator(model).evaluate(s, g)
    for a, b in zip(got, want):
        assert a.shape == b.shape and a.shape[0] == batch
        np.testing.assert_allclose(a, b, atol=2e-4, rtol=0)


# ---------------------------------------------------------------------------------------------- FP16 / INT8
@pytest.mark.parametrize("stem", NETS)
def test_fp16_within_katago_fp16_limits_and_keeps_fp32_islands(out_dir, stem):
    path = artifact(out_dir, stem, "onnx-fp16")
    model = load_model(small_net_path(stem))
    proto = onnx.load(str(path))
    types = float_types(proto)
    for vi in [*proto.graph.input, *proto.graph.output]:
        assert vi.type.tensor_type.elem_type == onnx.TensorProto.FLOAT, vi.name
    fp16_convs = fp32_nodes = 0
    for n in proto.graph.node:
        if n.op_type == "Cast":
            continue
        role = R.node_role(n.name, n.op_type, model)
        out_types = {types.get(o) for o in n.output}
        if role in FP32_ROLES and out_types & {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16}:
            assert onnx.TensorProto.FLOAT16 not in out_types, f"{n.name} ({role}) should compute in FP32"
            fp32_nodes += 1
        if role == "trunk" and n.op_type == "Conv":
            assert out_types == {onnx.TensorProto.FLOAT16}, n.name
            fp16_convs += 1
    assert fp16_convs >= 10 and fp32_nodes > 0
    if model.has_transformer:
        assert any(n.op_type == "Softmax" for n in proto.graph.node)
    details = json.loads(Path(str(path) + ".json").read_text())["details"]["fp16"]
    assert details["fp32_nodes"]["count"] == fp32_nodes
    assert set(details["fp32_nodes"]["by_role"]) <= set(FP32_ROLES)
    metrics = oracle_metrics(path, stem)
    assert metrics.passed("fp16"), metrics.to_json("fp16")


#: measured 2026-11-23 (policy KL p99 / max over KataGo's FP16 limit): g170-b6c96 9x, b7c96h6kv3 17x, b7c96h3tfrs
#: 82x. Per-channel INT8 *weights alone* already put g170-b6c96 at 2x the KL limit, so static PTQ cannot meet the
#: gate on these nets; the gate stays where it is and this xfail is strict, so a fix that passes turns it red.
#: (The recipe that passes on g170-b6c96, 8 activation groups with the clipping guard, is a plain passing test in
#: test_int8_groups.py; this one holds plain PTQ's baseline.)
INT8_KNOWN_FAILURE = (
    "INT8 (static QDQ PTQ, stem/norms/softmax/heads in float) misses KataGo's FP16 testgpuerror limits on policy KL; "
    "see the closing note of issue 4"
)


#: regression ceilings (worst limit ratio on the oracle positions, plain PTQ on the bundled default calibration of
#: every board size), about 1.5x what was measured on 2026-12-03
INT8_CEILING = {  # measured: 10.2x, 11.4x, 78.4x (policy KL p99)
    "g170-b6c96-s175395328-d26788732": 15.0,
    "b7c96h6kv3qk32v16tflrs-fson-bnh": 17.0,
    "b7c96h3tfrs-test5-cnorm": 118.0,
}


@pytest.mark.parametrize("stem", NETS)
def test_int8_within_katago_fp16_limits(out_dir, stem):
    """xfails where INT8 misses KataGo's FP16 limits (the tiny test nets do): a real finding, not loosened; fails
    when the miss grows past its ceiling, and when INT8 starts to pass (so the test can become a plain pass)."""
    path = artifact(out_dir, stem, "onnx-int8")
    int8_known_failure(oracle_metrics(path, stem), INT8_CEILING[stem], INT8_KNOWN_FAILURE)


def test_int8_graph_and_manifest(out_dir):
    stem = RESNET
    path = artifact(out_dir, stem, "onnx-int8")
    model = load_model(small_net_path(stem))
    m = read_manifest(path)
    assert (m.target, m.precision) == ("onnx-int8", "int8")
    assert m.calibration and m.calibration["sha256"] and m.calibration["positions"] > 0
    d = json.loads(Path(str(path) + ".json").read_text())["details"]["int8"]
    assert d["format"] == "QDQ" and d["method"] in ("minmax", "percentile", "entropy")
    assert set(d["methods"]) == {"minmax", "percentile", "entropy"}
    assert d["method"] == min(
        d["methods"], key=lambda k: (d["methods"][k]["loss"], d["methods"][k]["worst"]["ratio"])
    )
    assert d["calibration_positions"] == INT8_OPTIONS["calib_positions"]
    q = assert_honest_int8_label(path, stem, all_trunk=True)
    assert q["recipe"].startswith("onnxruntime quantize_static") and set(q["float_macs_by_role"]) <= set(
        FLOAT_ROLES
    )
    # what onnxruntime's CPU provider runs in int8, read off its own optimised graph independently of the record
    ort_cpu = q["onnxruntime_cpu"]
    fused = integer_kernel_nodes(path)
    assert ort_cpu["integer_kernels"] == len(fused) and 0.0 <= ort_cpu["int8_mac_fraction"] <= q["int8_mac_fraction"]
    weight_ops = {n.name for n in onnx.load(str(path)).graph.node if n.op_type in ("Conv", "MatMul", "Gemm")}
    assert fused <= weight_ops and (fused or ort_cpu["int8_mac_fraction"] == 0.0)
    assert f"onnxruntime CPU {100 * ort_cpu['int8_mac_fraction']:.0f}%" in int8_label(q)
    proto = onnx.load(str(path))
    producers = {o: n for n in proto.graph.node for o in n.output}
    quantized, float_roles = 0, set()
    for n in proto.graph.node:
        if n.op_type not in ("Conv", "MatMul", "Gemm"):
            continue
        fed = [producers.get(i) for i in n.input[:2]]
        is_q = all(p is not None and p.op_type == "DequantizeLinear" for p in fed)
        role = R.node_role(n.name, n.op_type, model)
        if role in ("stem", "policy_head", "value_head", "norm_bn", "norm_rms", "trunk_tip"):
            assert not any(p is not None and p.op_type == "DequantizeLinear" for p in fed), n.name
            float_roles.add(role)
        elif is_q:
            quantized += 1
            w = next(i for i in proto.graph.initializer if i.name == producers[n.input[1]].input[0])
            assert w.data_type == onnx.TensorProto.INT8  # symmetric QInt8 weights
    assert quantized == d["quantized_nodes"] > 0
    assert float_roles == {"stem", "policy_head", "value_head"}
    assert set(d["float_nodes"]["by_role"]) == float_roles
    ev, _ = open_for(path, stem)
    assert ev.name == "onnx-int8-cpu"


def test_human_sl_net_takes_meta_and_keeps_its_rmsnorm_tip_in_fp32(tmp_path):
    """A random v15 human-SL net (meta encoder, attention, RMSNorm trunk tip) written to a model file."""
    from katadeploy.model.synthetic import random_model
    from katadeploy.model.writer import save_model

    desc = random_model(15, "ordinary,attn:h2:kv1:q8:v4:rope=fixed,ffn,gpool", 16, tip="rms", meta=True,
                        name="synthetic-human")  # fmt: skip
    net = save_model(desc, tmp_path / "human.bin.gz")
    model = load_model(net)
    fp32 = export_artifact(net, "onnx-fp32", tmp_path, progress=False)
    assert [t.name for t in read_manifest(fp32).inputs] == ["spatial", "global", "meta"]
    ev = open_evaluator(fp32, model=model)
    vs = load_validation_set(None, model)
    assert vs.meta is not None
    got = ev.evaluate(vs.spatial, vs.global_, vs.meta)
    want = TorchEvaluator(model).evaluate(vs.spatial, vs.global_, vs.meta)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, atol=1e-4, rtol=0)
    with pytest.raises(KatadeployError, match="meta"):
        ev.evaluate(vs.spatial, vs.global_)
    fp16 = export_artifact(net, "onnx-fp16", tmp_path, progress=False)
    proto = onnx.load(str(fp16))
    types = float_types(proto)
    tip = [n for n in proto.graph.node if R.node_scopes(n.name)[1:2] == ["trunk_tip"] and n.op_type != "Cast"]
    assert tip and all(types.get(n.output[0]) != onnx.TensorProto.FLOAT16 for n in tip)
    meta_nodes = [n for n in proto.graph.node if R.node_scopes(n.name)[1:2] == ["meta_encoder"]]
    assert meta_nodes and any(types.get(n.output[0]) == onnx.TensorProto.FLOAT16 for n in meta_nodes)


# ---------------------------------------------------------------------------------------------- errors
def test_bad_calibration_files_are_clear_errors(tmp_path):
    net = small_net_path(RESNET)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip file at all")
    with pytest.raises(KatadeployError, match="junk.npz"):
        export_artifact(net, "onnx-int8", tmp_path, calib=junk, progress=False)
    empty = tmp_path / "empty.npz"
    np.savez(empty, spatial=np.zeros((2, 22, 19, 19), np.float32))
    with pytest.raises(KatadeployError, match="empty.npz"):
        export_artifact(net, "onnx-int8", tmp_path, calib=empty, progress=False)
    with pytest.raises(KatadeployError, match="does not exist|no such|not found|missing"):
        export_artifact(net, "onnx-int8", tmp_path, calib=tmp_path / "absent.npz", progress=False)
    from katadeploy.data.calibration import default_calibration_path

    nn19 = default_calibration_path(19, progress=False)
    with pytest.raises(KatadeployError, match="19"):
        export_artifact(net, "onnx-int8", tmp_path, calib=nn19, nn_size=13, progress=False)
    assert not list(tmp_path.glob("*.onnx"))


def test_artifact_of_another_net_and_bad_inputs_are_refused(out_dir):
    path = artifact(out_dir, RESNET, "onnx-fp32")
    other = small_net_path("b7c96h3tfrs-test5-cnorm")
    with pytest.raises(KatadeployError, match="exported from g170-b6c96"):
        open_evaluator(path, model=load_model(other), model_sha256=sha256_file(other))
    ev, model = open_for(path, RESNET)
    with pytest.raises(KatadeployError, match="shape"):
        ev.evaluate(np.zeros((1, 22, 9, 9), np.float32), np.zeros((1, 19), np.float32))
    with pytest.raises(KatadeployError, match="unknown onnxruntime device"):
        open_evaluator(path, device="tpu")


def test_gpu_devices_without_the_gpu_build_name_onnxruntime_gpu(out_dir):
    import onnxruntime as ort

    path = artifact(out_dir, RESNET, "onnx-fp32")
    for device, provider in (("cuda", "CUDAExecutionProvider"), ("tensorrt", "TensorrtExecutionProvider")):
        if provider in ort.get_available_providers():
            continue
        with pytest.raises(KatadeployError, match="onnxruntime-gpu"):
            open_evaluator(path, device=device)


def test_session_cache_reuses_the_optimised_model(out_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("KATADEPLOY_CACHE", str(tmp_path))
    path = artifact(out_dir, RESNET, "onnx-fp32")
    first, model = open_for(path, RESNET)
    cached = open_evaluator(path, session_cache=True)
    assert cached.session_cache is not None and cached.session_cache.is_file()
    again = open_evaluator(path, session_cache=True)
    vs = load_validation_set(None, model)
    s, g = vs.spatial[:4], vs.global_[:4]
    for a, b in zip(first.evaluate(s, g), again.evaluate(s, g)):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)


def test_int8_u8_activations_option(out_dir):
    """``int8_activations=u8``: activations quantized to asymmetric uint8, weights still s8 per channel."""
    path = artifact(
        out_dir, RESNET, "onnx-int8", int8_activations="u8", int8_methods="minmax", int8_float_scopes="convg"
    )
    proto = onnx.load(str(path))
    inits = {t.name: t for t in proto.graph.initializer}
    act_zp = [
        inits[n.input[2]]
        for n in proto.graph.node
        if n.op_type == "QuantizeLinear" and n.input[0] not in inits
    ]
    assert act_zp and all(z.data_type == onnx.TensorProto.UINT8 for z in act_zp)
    # (g170 nets use ReLU, so their zero points are 0: u8 spends all 256 codes on [0, max])
    weights = [
        inits[n.input[0]] for n in proto.graph.node if n.op_type == "DequantizeLinear" and n.input[0] in inits
    ]
    assert any(w.data_type == onnx.TensorProto.INT8 for w in weights)
    m = read_manifest(path)
    assert "u8 activations" in m.quantization["recipe"] and m.details["int8"]["method"] == "minmax"
    # int8_float_scopes: the global-pooling convolutions stay float, and the label counts them as float
    assert m.details["int8"]["float_nodes"]["by_role"]["fallback"] == {"Conv": 2}
    assert any("/convg/" in n for n in m.quantization["float_layer_names"])
    assert (
        m.quantization["int8_mac_fraction"]
        < read_manifest(artifact(out_dir, RESNET, "onnx-int8")).quantization["int8_mac_fraction"]
    )


def test_export_option_parsing():
    from katadeploy.export.commands import exporter_option

    assert exporter_option("int8_activations=u8") == ("int8_activations", "u8")
    assert exporter_option("calib_positions=256") == ("calib_positions", 256)
    assert exporter_option("mixed_precision=false") == ("mixed_precision", False)
    assert exporter_option("int8_methods=minmax,entropy") == ("int8_methods", "minmax,entropy")
    import argparse

    with pytest.raises(argparse.ArgumentTypeError):
        exporter_option("novalue")



def test_a_margin_calls_the_fallback_on_a_graph_that_passes_without_headroom():
    from katadeploy.export.onnx_int8 import needs_fallback

    def record(passed, ratio):
        return {"passed": passed, "worst": {"ratio": ratio}}

    assert needs_fallback(record(False, 1.2), 1.0) and needs_fallback(record(False, None), 1.0)
    assert not needs_fallback(record(True, 0.94), 1.0)
    assert needs_fallback(record(True, 0.94), 0.5) and not needs_fallback(record(True, 0.4), 0.5)


def test_the_energy_fallback_is_recorded_with_its_gains(out_dir):
    """``int8_fallback_rank=energy`` end to end (plain PTQ on g170-b6c96, which misses the gate): the ranking holds
    each layer's energy gain per float MAC, and the floor holds."""
    path = artifact(out_dir, RESNET, "onnx-int8", mixed_precision=True, int8_fallback_rank="energy",
                    int8_min_fraction=0.85)  # fmt: skip
    m = read_manifest(path)
    fb = m.details["int8"]["fallback"]
    assert fb["rank"] == "energy" and fb["ranking"] and all("gain_per_mac" in r for r in fb["ranking"])
    gains = [r["gain_per_mac"] for r in fb["ranking"]]
    assert gains == sorted(gains, reverse=True)
    assert fb["floated"] and fb["int8_mac_fraction"] >= 0.85
    assert fb["steps"][-1]["energy"] < fb["before"]["energy"]
    assert m.quantization["int8_mac_fraction"] == pytest.approx(fb["int8_mac_fraction"], abs=1e-3)
