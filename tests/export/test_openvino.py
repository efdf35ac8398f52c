"""OpenVINO artifacts of the small test nets against KataGo's goldens and the PyTorch FP32 reference.

- ``openvino-fp32`` (masked, 19x19 tensor) through raw-nn matches the KataGo v1.17.2 Eigen goldens on all 80
  oracle positions with test_oracle's gates, and runs in f32 even on CPUs that would default to bf16;
- the exact-board variant has no op reading the mask channel and matches the goldens on the 19x19 positions;
- ``openvino-fp16`` stays within KataGo's FP16 ``testgpuerror`` limits against PyTorch FP32 on the oracle positions;
- ``openvino-int8``: full INT8 misses those limits on these nets (strict xfail: a real finding, the gate is not
  loosened); the default mixed-precision artifact meets them on the full-board oracle positions (its
  calibration data has full 19x19 boards only) and really runs int8 kernels where its manifest says so;
- the CPU-plugin fan-out workaround: without the guard an int8 residual block computes garbage, with it the
  int8 graph agrees with its own FakeQuantize emulation;
- manifest, IR files, dynamic batch (1 and 7), the async path, and the clear errors.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from katadeploy.artifact import read_manifest
from katadeploy.errors import KatadeployError, MissingExtraError
from katadeploy.export import openvino as X
from katadeploy.export.request import export_artifact
from katadeploy.go.position import load_positions
from katadeploy.hashing import sha256_file
from katadeploy.model.format import load_model
from katadeploy.runtime.base import RawBatch
from katadeploy.runtime.loader import open_evaluator
from katadeploy.runtime.torch_runtime import TorchEvaluator
from katadeploy.validate.positions import load_validation_set
from tests.conftest import REAL_NETS, real_net_path, small_net_path
from tests.export.artifacts import (
    NETS,
    POSITIONS,
    RESNET,
    TRANSFORMER,
    artifact_builder,
    assert_full_boards_match_katago,
    assert_honest_int8_label,
    int8_known_failure,
    open_for,
    oracle_metrics,
)
from tests.golden_check import assert_within_gates, golden_errors

ov = pytest.importorskip("openvino")

# the acceptance gates of tests/model/test_oracle.py (goldens are printed to ~6 decimals)
#: kept small so the suite stays quick; the artifacts are then judged on the oracle positions
INT8_OPTIONS = {"calib_positions": 96, "val_positions": 96, "recipes": ["mixed-minmax"]}
FP16_OPTIONS = {"val_positions": 32}
artifact = artifact_builder({"openvino-int8": INT8_OPTIONS, "openvino-fp16": FP16_OPTIONS})


def mask_readers(path: Path) -> list[str]:
    """Ops other than the stem convolution that read the ``spatial`` input (the mask channel slice)."""
    model = ov.Core().read_model(str(path))
    param = next(p for p in model.get_parameters() if "spatial" in p.output(0).get_names())
    return [t.get_node().get_type_name() for t in param.output(0).get_target_inputs()]


# ---------------------------------------------------------------------------------------------- FP32
@pytest.mark.parametrize("stem", NETS)
def test_fp32_masked_matches_katago_on_all_positions(out_dir, stem):
    path = artifact(out_dir, stem, "openvino-fp32")
    ev, model = open_for(path, stem)
    assert ev.name == "openvino-fp32-cpu" and ev.precision == "f32"
    # the plugin must really execute f32 (it defaults to bf16 on CPUs with AVX512-BF16/AMX)
    assert ev.compiled("LATENCY").get_property("INFERENCE_PRECISION_HINT") == ov.Type.f32
    states = load_positions(POSITIONS)
    assert len(states) == 80 and {s.x_size for s in states} >= {7, 9, 13, 19}
    assert_within_gates(golden_errors(stem, ev, model, states))
    assert "Slice" in mask_readers(path) or "StridedSlice" in mask_readers(path), mask_readers(path)


@pytest.mark.parametrize("stem", [RESNET, TRANSFORMER])
def test_exact_board_variant_has_no_mask_ops_and_matches_katago(out_dir, stem):
    path = artifact(out_dir, stem, "openvino-fp32", exact=True)
    assert path.name.endswith("-exact.xml")
    # only the stem convolution reads the input planes (ShapeOf reads the batch size)
    assert sorted(set(mask_readers(path))) in (["Convolution"], ["Convolution", "ShapeOf"]), mask_readers(
        path
    )
    assert read_manifest(path).exact_board
    assert_full_boards_match_katago(path, stem)


def test_fp32_manifest_and_files(out_dir):
    path = artifact(out_dir, RESNET, "openvino-fp32")
    m = read_manifest(path)
    raw = json.loads(Path(str(path) + ".json").read_text())
    assert (m.target, m.format, m.precision, m.artifact) == ("openvino-fp32", "openvino", "fp32", path.name)
    assert m.source["sha256"] == sha256_file(small_net_path(RESNET)) and m.source["model_version"] == 8
    assert m.board == {"nn_x": 19, "nn_y": 19, "exact": False}
    assert m.batch == {"dynamic": True} and m.calibration is None and m.output_scale == 1.0
    assert [(t.name, t.shape) for t in m.inputs] == [("spatial", ["N", 22, 19, 19]), ("global", ["N", 19])]
    assert [t.name for t in m.outputs] == ["policy", "policy_pass", "value", "score", "ownership"]
    d = raw["details"]
    weights = path.with_suffix(".bin")
    assert d["files"] == [path.name, weights.name] and weights.is_file()
    assert d["bytes"][weights.name] == weights.stat().st_size
    assert d["inference_precision"] == "f32" and d["self_check_max_rel_diff"] < 1e-3
    assert d["runtime"]["kernels"]["conv"] == {"f32": 20}
    assert not list(path.parent.glob(".openvino-*")), "temporary directory left behind"
    # the IR's own I/O: names, dynamic batch, fixed board
    model = ov.Core().read_model(str(path))
    assert [p.get_any_name() for p in model.inputs] == ["spatial", "global"]
    assert [p.get_any_name() for p in model.outputs] == [t.name for t in m.outputs]
    assert model.inputs[0].get_partial_shape().to_string() == "[?,22,19,19]"


@pytest.mark.parametrize("batch", [1, 7])
def test_dynamic_batch_and_async_path(out_dir, batch):
    path = artifact(out_dir, TRANSFORMER, "openvino-fp32")
    ev, model = open_for(path, TRANSFORMER)
    vs = load_validation_set(None, model)
    s, g = vs.spatial[:batch], vs.global_[:batch]
    want = TorchEvaluator(model).evaluate(s, g)
    got = ev.evaluate(s, g)
    many = ev.evaluate_many([(s[i : i + 1], g[i : i + 1]) for i in range(batch)] + [(s, g)])
    assert len(many) == batch + 1
    stacked = RawBatch(*(np.concatenate(p) for p in zip(*many[:batch])))
    for a, b, c, d in zip(got, want, stacked, many[-1]):
        assert a.shape == b.shape and a.shape[0] == batch
        np.testing.assert_allclose(a, b, atol=2e-4, rtol=0)
        np.testing.assert_allclose(c, b, atol=2e-4, rtol=0)
        np.testing.assert_allclose(d, b, atol=2e-4, rtol=0)


def test_large_batch_runs_on_the_throughput_streams(out_dir):
    path = artifact(out_dir, RESNET, "openvino-fp32")
    ev, model = open_for(path, RESNET)
    vs = load_validation_set(None, model)
    got = ev.evaluate(vs.spatial[:20], vs.global_[:20])  # >= throughput_batch: split over the streams
    want = TorchEvaluator(model).evaluate(vs.spatial[:20], vs.global_[:20])
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, atol=2e-4, rtol=0)


@pytest.mark.slow
@pytest.mark.parametrize("stem", sorted(REAL_NETS))
def test_real_nets_fp32_match_katago(tmp_path, stem):
    """The full-size nets' openvino-fp32 artifacts against KataGo's goldens on all 80 positions."""
    model_path = real_net_path(stem)
    path = export_artifact(model_path, "openvino-fp32", tmp_path, progress=False)
    model = load_model(model_path)
    ev = open_evaluator(path, model=model, model_sha256=sha256_file(model_path), threads=2)
    assert_within_gates(golden_errors(stem, ev, model, load_positions(POSITIONS)))


# ---------------------------------------------------------------------------------------------- FP16
@pytest.mark.parametrize("stem", NETS)
def test_fp16_within_katago_fp16_limits(out_dir, stem):
    path = artifact(out_dir, stem, "openvino-fp16")
    d = read_manifest(path).details
    assert d["inference_precision"] in ("f32", "bf16")
    # the weights are stored as f16 in the IR
    model = ov.Core().read_model(str(path))
    assert any(
        op.get_type_name() == "Constant" and op.get_element_type() == ov.Type.f16 for op in model.get_ops()
    )
    fp32 = artifact(out_dir, stem, "openvino-fp32").with_suffix(".bin").stat().st_size
    assert path.with_suffix(".bin").stat().st_size < 0.6 * fp32
    metrics = oracle_metrics(path, stem)
    assert metrics.passed("fp16"), metrics.to_json("fp16")["worst"]


# ---------------------------------------------------------------------------------------------- INT8
#: measured 2026-11-23, full INT8 (every recipe) on the calibration data's validation split, worst statistic over
#: KataGo's FP16 limit (policy KL): g170-b6c96 7.1x, b7c96h6kv3 12x, b7c96h3tfrs 38x; kata1-b18c384nbt 14.9x,
#: b10c384h6nbttflrs 42x, g170e-b15c192 10.4x. INT8 weights alone already miss the KL limit on kata1-b18c384nbt, so
#: post-training INT8 of every trunk layer cannot meet the gate; the gate stays and this xfail is strict, so a fix
#: that passes turns it red.
FULL_INT8_MISSES = (
    "full INT8 (NNCF PTQ, float stem/norms/attention/heads) misses KataGo's FP16 limits (policy KL)"
)


#: regression ceiling (worst limit ratio on the oracle positions), 1.5x what was measured on 2026-12-02
FULL_INT8_CEILING = 40.0  # measured: 26.2x (policy KL p99)


def test_full_int8_within_katago_fp16_limits(out_dir):
    path = artifact(out_dir, RESNET, "openvino-int8", mixed_precision=False)
    int8_known_failure(oracle_metrics(path, RESNET), FULL_INT8_CEILING, FULL_INT8_MISSES)


def test_int8_mixed_precision_meets_fp16_limits_on_full_boards(out_dir):
    path = artifact(out_dir, RESNET, "openvino-int8")
    m = read_manifest(path)
    assert (m.target, m.precision) == ("openvino-int8", "int8")
    assert m.calibration and m.calibration["sha256"] and m.calibration["positions"] > 0
    d = m.details["int8"]
    assert d["validation"]["passed"] and not d["full_int8"]["passed"]
    assert d["candidates"][0]["recipe"] == "mixed-minmax" and d["chosen"] == "mixed-minmax"
    assert d["calibration_positions"] == INT8_OPTIONS["calib_positions"]
    assert 0 < d["macs_per_position"]["int8_share"] < 1
    q = assert_honest_int8_label(path, RESNET, all_trunk=False)  # mixed precision: some blocks FP32
    assert q["int8_mac_fraction"] == pytest.approx(d["macs_per_position"]["int8_share"], abs=1e-3)
    assert "trunk blocks FP32" in q["recipe"] and q["float_macs_by_role"].get("trunk", 0) > 0
    # the blocks the manifest calls float really run float, the others int8 (runtime model of the CPU plugin)
    report = X.int8_report(path)
    assert report["kernels"]["conv"].get("int8", 0) > 0
    float_blocks = {k for k in report["float_layers"] if k.startswith("blocks.")}
    assert float_blocks == {f"blocks.{b}" for b in d["float_blocks"]}
    assert {"conv_spatial", "policy_head", "value_head"} <= set(report["float_layers"])
    assert report["int8_fused"] and all(k.startswith(("conv+", "matmul+")) for k in report["int8_fused"])
    metrics = oracle_metrics(path, RESNET, full_boards_only=True)
    assert metrics.passed("int8"), json.dumps(metrics.to_json("int8")["worst"])


def test_recipes_share_one_statistics_pass_and_quantize_as_nncf_quantize_does():
    """quantize_recipes collects the statistics of every single-step recipe in one pass; each model it yields
    computes exactly what ``nncf.quantize`` of that recipe alone computes (same ranges, same bias correction)."""
    from katadeploy.artifact import input_names

    model = load_model(small_net_path(RESNET))
    om = X.convert(model, 19, 19, False)
    vs = load_validation_set(POSITIONS, model)
    names = input_names(model)
    dataset = [dict(zip(names, [vs.spatial[i : i + 1], vs.global_[i : i + 1]])) for i in range(0, 80, 5)]
    recipes = [X.RECIPES[n] for n in ("mixed-minmax", "performance-minmax", "mixed-minmax-fbc")]
    core = ov.Core()
    batch = dict(zip(names, [vs.spatial[:8], vs.global_[:8]]))

    def outputs(m):
        compiled = core.compile_model(m, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        return [np.asarray(v) for v in compiled(batch).values()]

    shared = list(X.quantize_recipes(om, recipes, dataset, False, True))
    assert [r.name for r, _ in shared] == [r.name for r in recipes]
    for recipe, q in shared:
        alone = X.quantize(om, recipe, dataset, False, True)
        assert sum(X.is_quantized(op) for op in q.get_ordered_ops()) > 0
        for a, b in zip(outputs(q), outputs(alone)):
            np.testing.assert_array_equal(a, b, err_msg=recipe.name)
    # the recipes really differ (symmetric vs asymmetric activations), so sharing a pass did not merge them; fast
    # bias correction changes nothing on this net (NNCF's threshold), hence the pair compared here
    mixed, performance = outputs(shared[0][1]), outputs(shared[1][1])
    assert any(not np.array_equal(a, b) for a, b in zip(mixed, performance))


def test_fanout_guard_keeps_int8_residual_blocks_correct():
    """OpenVINO's CPU plugin computes ``A + f(A)`` wrong when ``A`` is an int8 convolution output with several
    consumers; the guard makes the int8 graph agree with its own FakeQuantize emulation again.

    The weight ranges are twice the weights' extent, so every weight code is within +-64: on x86 CPUs without VNNI
    (``katadeploy.runtime.cpu.int8_dot_saturates``) oneDNN adds u8 x s8 products in pairs in a saturating int16,
    and full 8-bit codes would add that (separate) error to the guarded graph (measured 9% on an AMD EPYC Zen 3).
    ``255 * 64 * 2 < 32767``, so this graph has the same exact int8 function on every CPU."""
    ops = pytest.importorskip("openvino.opset13")
    rng = np.random.default_rng(0)
    c = 64
    weights = [(rng.standard_normal((c, c, k, k)) * 0.05).astype(np.float32) for k in (1, 3, 3)]

    def fq(v, lo, hi, levels=256):
        lo_, hi_ = ops.constant(lo), ops.constant(hi)
        return ops.fake_quantize(v, lo_, hi_, lo_, hi_, levels)

    def conv(v, w):
        s = 2 * np.abs(w).max(axis=(1, 2, 3), keepdims=True)  # codes within +-64: no int16 saturation
        k = w.shape[-1]
        return ops.convolution(v, fq(ops.constant(w), -s, s, 255), [1, 1], [k // 2] * 2, [k // 2] * 2, [1, 1])

    def build():
        lo, hi = np.float32(-0.31), np.float32(5.4)
        x = ops.parameter([-1, c, 9, 9], np.float32, name="x")
        a = conv(fq(ops.mish(x), lo, hi), weights[0])
        h = conv(fq(ops.mish(ops.multiply(a, ops.constant(np.float32(1.1)))), lo, hi), weights[1])
        h = conv(fq(ops.mish(h), lo, hi), weights[2])
        return ov.Model([ops.add(a, h)], [x])

    def emulate(model):  # FakeQuantize written out as float ops: what the int8 graph should compute
        for op in model.get_ordered_ops():
            if op.get_type_name() == "FakeQuantize":
                x, lo, hi = (op.input_value(i) for i in range(3))
                step = ops.divide(ops.subtract(hi, lo), ops.constant(np.float32(op.get_levels() - 1)))
                clipped = ops.minimum(ops.maximum(x, lo), hi)
                q = ops.round(ops.divide(ops.subtract(clipped, lo), step), "half_to_even")
                op.output(0).replace(ops.add(ops.multiply(q, step), lo).output(0))
        return model

    xs = rng.standard_normal((2, c, 9, 9)).astype(np.float32) * 2
    core = ov.Core()

    def run(model):
        compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        return compiled.create_infer_request().infer([xs])[0]

    want = run(emulate(build()))
    scale = np.abs(want).max()
    unguarded = np.abs(run(build()) - want).max()
    guarded = build()
    assert X.guard_fanout(guarded) == 1
    err = np.abs(run(guarded) - want).max()
    assert err < 0.05 * scale, (err, scale)
    if unguarded < 0.05 * scale:
        pytest.skip(
            f"this OpenVINO ({ov.__version__}) no longer needs the fan-out guard (error {unguarded:.3g})"
        )


# ---------------------------------------------------------------------------------------------- errors
def test_missing_openvino_names_the_extra(monkeypatch, out_dir):
    path = artifact(out_dir, RESNET, "openvino-fp32")
    for name in [m for m in sys.modules if m == "openvino" or m.startswith("openvino.")]:
        monkeypatch.setitem(sys.modules, name, None)  # "import openvino" now raises ImportError
    monkeypatch.setitem(sys.modules, "openvino", None)
    with pytest.raises(MissingExtraError, match=r"katadeploy\[openvino\]"):
        open_for(path, RESNET)
    with pytest.raises(MissingExtraError, match=r"katadeploy\[openvino\]"):
        export_artifact(small_net_path(RESNET), "openvino-fp32", out_dir / "missing", progress=False)


def test_unsupported_cpu_is_a_clear_error(monkeypatch, out_dir):
    from katadeploy.runtime import openvino_runtime as R

    path = artifact(out_dir, RESNET, "openvino-fp32")

    class NoCpuCore:
        available_devices = ["GPU"]

    with pytest.raises(KatadeployError, match="finds no CPU device"):
        R.cpu_check(NoCpuCore())
    monkeypatch.setattr(R.platform, "machine", lambda: "riscv64")
    with pytest.raises(KatadeployError, match="x86-64 and ARM64"):
        open_for(path, RESNET)


def test_bad_inputs_and_foreign_net_are_clear_errors(out_dir):
    path = artifact(out_dir, RESNET, "openvino-fp32")
    ev, model = open_for(path, RESNET)
    with pytest.raises(KatadeployError, match="expects"):
        ev.evaluate(np.zeros((1, 22, 9, 9), np.float32), np.zeros((1, 19), np.float32))
    with pytest.raises(KatadeployError, match="exported from"):
        other = small_net_path(TRANSFORMER)
        open_evaluator(path, model=load_model(other), model_sha256=sha256_file(other))
    path.with_suffix(".bin").rename(path.with_suffix(".bak"))
    try:
        with pytest.raises(KatadeployError, match="weights file"):
            open_for(path, RESNET)
    finally:
        path.with_suffix(".bak").rename(path.with_suffix(".bin"))


def test_cli_no_int8_fallback_reaches_the_exporter(monkeypatch, tmp_path, capsys):
    """`export --no-int8-fallback` asks the exporter for the full-INT8 recipe (options mixed_precision=False)."""
    import katadeploy.export.request as request
    from katadeploy.cli import main

    seen = []

    def fake_export(model, target, out_dir, **kwargs):
        seen.append((target, kwargs.get("options")))
        return tmp_path / f"{target}.xml"

    monkeypatch.setattr(request, "export_artifact", fake_export)
    net = str(small_net_path(RESNET))
    assert main(["export", net, "--target", "openvino-int8", "--no-int8-fallback", "-o", str(tmp_path)]) == 0
    assert main(["export", net, "--target", "openvino-int8", "-o", str(tmp_path), "-q"]) == 0
    assert seen == [("openvino-int8", {"mixed_precision": False}), ("openvino-int8", None)]
    assert capsys.readouterr().out.splitlines() == [str(tmp_path / "openvino-int8.xml")] * 2


#: worst KataGo limit ratio on the 80 oracle positions of openvino-int8 built from the onnx-int8 QDQ graph with these
#: tests' 96/96 positions (policy KL max, measured 2026-12-03); the ceiling is 1.5x of it. With the default 256/128
#: positions the same artifact PASSES every limit (policy KL p99 at 0.993x) at 80% int8 MACs.
QDQ_MEASURED = 3.15
QDQ_CEILING = 1.5 * QDQ_MEASURED


def test_int8_from_onnx_qdq_runs_the_repaired_graph_in_int8(out_dir):
    path = artifact(out_dir, RESNET, "openvino-int8", int8_source="onnx-qdq", int8_qat="off")
    m = read_manifest(path)
    d = m.details["int8"]
    assert d["source"] == "onnx-qdq" and d["onnx_int8"]["method"] == "smooth-gptq"
    assert d["agreement_with_onnxruntime"] < 0.5
    q = m.quantization
    assert q["int8_mac_fraction"] >= 0.8 - 1e-9 and "QDQ graph read by OpenVINO" in q["recipe"]
    assert m.calibration and m.calibration["file"] and "bundled-all" in m.calibration["file"]  # every board size
    report = X.int8_report(path)  # the CPU plugin really runs those convolutions in int8
    assert report["kernels"]["conv"].get("int8", 0) > 0
    worst = oracle_metrics(path, RESNET).worst("int8")
    assert worst.ratio <= QDQ_CEILING, (worst.metric, worst.stat, worst.ratio)


def test_unknown_int8_source_is_a_clear_error(out_dir):
    with pytest.raises(KatadeployError, match="int8_source"):
        artifact(out_dir, RESNET, "openvino-int8", int8_source="magic")
