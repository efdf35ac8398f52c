"""INT8 repair (:mod:`katadeploy.export.int8_repair`): each step against an independent reference.

- ``fake_quant`` equals onnxruntime's own QuantizeLinear -> DequantizeLinear with onnxruntime's scale rules;
- GPTQ lowers the layer's output error below round-to-nearest on correlated inputs (the reason it exists);
- the MSE range beats the min-max range on a heavy-tailed sample and never widens it;
- the smoothed FP32 graph computes what the original graph computes, and the QDQ graph executes exactly the
  repaired INT8 weights, scales and INT32 biases;
- on the small test nets, the ``smooth-gptq`` onnx-int8 artifact is held by a ceiling far below plain PTQ's.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from katadeploy.artifact import read_manifest
from katadeploy.export import int8_repair as R
from katadeploy.export.onnx_int8 import CalibrationReader, _augmented, _quantize, _session
from katadeploy.runtime.qdq_weights import unsigned_weights, weights_mode
from tests.export.artifacts import (
    NETS,
    RESNET,
    artifact_builder,
    assert_honest_int8_label,
    int8_known_failure,
    oracle_metrics,
)

ort = pytest.importorskip("onnxruntime")


def _qdq_graph(activations: str, lo: float, hi: float) -> bytes:
    """x -> QuantizeLinear -> DequantizeLinear with onnxruntime's scale and zero point for [lo, hi]."""
    from onnxruntime.quantization.quant_utils import compute_scale_zp

    qtype = np.uint8 if activations == "u8" else np.int8
    qmin, qmax = (np.array(0, qtype), np.array(255, qtype)) if activations == "u8" else (
        np.array(-127, qtype), np.array(127, qtype))
    zp, scale = compute_scale_zp(np.array(lo, np.float32), np.array(hi, np.float32), qmin, qmax,
                                 symmetric=activations == "s8")  # fmt: skip
    inits = [numpy_helper.from_array(np.array(scale, np.float32), "s"),
             numpy_helper.from_array(np.array(zp, qtype), "z")]  # fmt: skip
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"])]  # fmt: skip
    g = helper.make_graph(nodes, "qdq", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None])], inits)  # fmt: skip
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


@pytest.mark.parametrize("activations,lo,hi", [("u8", -0.31, 7.3), ("u8", 0.0, 2.0), ("s8", -1.7, 4.2)])
def test_fake_quant_is_onnxruntime_qdq(activations, lo, hi):
    x = np.random.default_rng(0).uniform(lo - 1, hi + 1, 5000).astype(np.float32)
    sess = ort.InferenceSession(_qdq_graph(activations, lo, hi), providers=["CPUExecutionProvider"])
    want = sess.run(None, {"x": x})[0]
    np.testing.assert_allclose(R.fake_quant(x, lo, hi, activations), want, rtol=0, atol=1e-6)


def test_gptq_beats_round_to_nearest_on_correlated_inputs():
    rng = np.random.default_rng(1)
    k, n, rows = 96, 4000, 32
    mix = rng.normal(size=(k, k)) * (rng.uniform(0.1, 3.0, size=k))[None, :]
    x = rng.normal(size=(n, k)) @ mix  # strongly correlated columns, as im2col of a feature map is
    w = rng.normal(size=(rows, k)).astype(np.float32)
    q, scale = R.gptq(w, x.T @ x)
    assert q.dtype == np.int8 and np.abs(q).max() <= 127 and scale.shape == (rows,)
    s_rtn = np.abs(w).max(axis=1, keepdims=True) / 127
    rtn = np.clip(np.rint(w / s_rtn), -127, 127) * s_rtn
    err_gptq = np.linalg.norm(x @ (q * scale[:, None] - w).T)
    err_rtn = np.linalg.norm(x @ (rtn - w).T)
    assert err_gptq < 0.8 * err_rtn, (err_gptq, err_rtn)


def test_gptq_column_groups():
    """One group of every column is plain GPTQ; groups give each row one scale per group, and on columns whose
    weights differ by 100x between groups the per-group scales cut the output error of per-row ones."""
    rng = np.random.default_rng(4)
    k, n, rows = 64, 3000, 16
    x = rng.normal(size=(n, k)) @ rng.normal(size=(k, k))
    w = (rng.normal(size=(rows, k)) * np.where(np.arange(k) % 2 == 0, 1.0, 0.01)[None, :]).astype(np.float32)
    h = x.T @ x
    q, scale = R.gptq(w, h)
    q1, scale1 = R.gptq(w, h, col_groups=[np.arange(k)])
    np.testing.assert_array_equal(q1, q)
    np.testing.assert_array_equal(scale1[:, 0], scale)
    groups = [np.arange(0, k, 2), np.arange(1, k, 2)]
    qg, sg = R.gptq(w, h, col_groups=groups)
    assert sg.shape == (rows, 2) and np.abs(qg).max() <= 127
    assert (sg[:, 1] < 0.1 * sg[:, 0]).all()  # the small columns' own, finer scale
    wg = np.empty_like(w)
    for j, g in enumerate(groups):
        wg[:, g] = qg[:, g] * sg[:, j : j + 1]
    err_g = np.linalg.norm(x @ (wg - w).T)
    err_1 = np.linalg.norm(x @ (q * scale[:, None] - w).T)
    assert err_g < 0.7 * err_1, (err_g, err_1)
    with pytest.raises(Exception, match="cover every column"):
        R.gptq(w, h, col_groups=[np.arange(0, k, 2)])


def test_mse_range_clips_outliers_and_stays_inside():
    rng = np.random.default_rng(2)
    v = np.concatenate([rng.exponential(0.3, 200_000), [40.0]]).astype(np.float32)
    lo, hi = R.mse_range(v, 0.0, 40.0, "u8")
    assert lo == 0.0 and 0 < hi < 40.0
    mse = lambda a, b: float(np.mean((R.fake_quant(v, a, b, "u8") - v) ** 2))  # noqa: E731
    assert mse(lo, hi) < mse(0.0, 40.0)
    slo, shi = R.mse_range(v - 1.0, -1.0, 39.0, "s8")
    assert slo == -shi and 0 < shi <= 39.0


def test_smoothing_scales_normalised():
    s = R.smoothing_scales(np.array([10.0, 1.0, 0.0]), np.array([0.1, 1.0, 1.0]), 0.5)
    assert s.max() == pytest.approx(1.0) and (s > 0).all() and s[0] > s[1] > s[2]


def _tiny_graph(rng: np.random.Generator) -> onnx.ModelProto:
    """conv(3x3, bias) -> Relu -> conv(3x3, no bias) -> MatMul(weight) over the channel axis."""
    c = 8
    w1 = (rng.normal(size=(c, 4, 3, 3)) * np.linspace(0.05, 2, 4)[None, :, None, None]).astype(np.float32)
    w2 = rng.normal(size=(c, c, 3, 3)).astype(np.float32) * 0.3
    b1 = rng.normal(size=c).astype(np.float32)
    m = rng.normal(size=(c, 5)).astype(np.float32)
    conv = dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["a"], name="c1", **conv),
        helper.make_node("Relu", ["a"], ["r"], name="relu"),
        helper.make_node("Conv", ["r", "w2"], ["y"], name="c2", **conv),
        helper.make_node("Transpose", ["y"], ["t"], name="tr", perm=[0, 2, 3, 1]),
        helper.make_node("MatMul", ["t", "m"], ["out"], name="mm"),
    ]
    inits = [numpy_helper.from_array(a, n) for a, n in ((w1, "w1"), (w2, "w2"), (b1, "b1"), (m, "m"))]
    g = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4, 6, 6])],
                          [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)], inits)  # fmt: skip
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


class _Positions:
    def __init__(self, x: np.ndarray):
        self.spatial, self.global_, self.meta = x, np.zeros((len(x), 1), np.float32), None


class _Reader(CalibrationReader):
    def get_next(self):  # the tiny graph has one input
        feed = super().get_next()
        return None if feed is None else {"x": feed["spatial"]}


def _inputs(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` non-negative inputs of the tiny graph whose 4 channels span 250x in range."""
    return (np.abs(rng.normal(size=(n, 4, 6, 6))) * np.array([5, 1, 0.2, 0.02])[None, :, None, None]).astype(np.float32)


def _runner(proto, x: np.ndarray) -> R.TensorRun:
    """plan_repair's ``run`` over ``x`` in chunks of 8, through onnxruntime like the exporter's."""
    reader = _Reader(_Positions(x), chunk=8)

    def run(tensors, label):
        sess = _session(ort, _augmented(proto, tensors))
        reader.rewind()
        while (feed := reader.get_next()) is not None:
            yield dict(zip(tensors, sess.run(tensors, feed)))

    return run


def test_repaired_graph_is_the_same_function_and_runs_the_repaired_weights(tmp_path):
    rng = np.random.default_rng(3)
    proto = _tiny_graph(rng)
    x = _inputs(rng, 32)
    run = _runner(proto, x)
    repair = R.plan_repair(proto, ["c1", "c2", "mm"], run, "u8", 0.5)
    assert [la.node for la in repair.layers] == ["c1", "c2", "mm"]
    feed = {"x": x[:4]}
    want = ort.InferenceSession(proto.SerializeToString()).run(None, feed)[0]
    got = ort.InferenceSession(repair.proto.SerializeToString()).run(None, feed)[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)  # smoothing alone changes nothing
    smoothed = tmp_path / "smoothed.onnx"
    onnx.save(repair.proto, str(smoothed))
    out = tmp_path / "qdq.onnx"
    ranges = {t: (np.array(lo, np.float32), np.array(hi, np.float32)) for t, (lo, hi) in repair.ranges.items()}
    _quantize(smoothed, out, "minmax", ranges, ["c1", "c2", "mm"], tmp_path, False, "u8")
    qdq = onnx.load(str(out))
    assert R.apply_weights(qdq, repair) == 3
    inits = {i.name: numpy_helper.to_array(i) for i in qdq.graph.initializer}
    producer = {o: n for n in qdq.graph.node for o in n.output}
    for la in repair.layers:
        node = next(n for n in qdq.graph.node if n.name == la.node)
        wq, ws, _ = producer[node.input[1]].input
        np.testing.assert_array_equal(inits[wq], la.q)
        np.testing.assert_array_equal(inits[ws], la.w_scale)
        if la.kind == "conv" and la.bias is not None:
            bq, bs, *_ = producer[node.input[2]].input
            xs = inits[producer[node.input[0]].input[1]]
            np.testing.assert_allclose(inits[bs], xs * la.w_scale, rtol=1e-6)
            np.testing.assert_allclose(inits[bq] * inits[bs], la.bias, atol=float(inits[bs].max()))
    # the QDQ graph equals the numpy model of what it should run: fake-quantized x/s times the INT8 weights. The
    # graph's own arithmetic (no fusion) first, then onnxruntime's fused int8 kernels as katadeploy's runtime loads
    # them (u8 weight codes where this CPU's u8 x s8 dot product saturates: katadeploy.runtime.qdq_weights)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    exact = ort.InferenceSession(qdq.SerializeToString(), so).run(None, feed)[0]
    err_q = np.abs(exact - want).max() / np.abs(want).max()
    assert 0 < err_q < 0.05, err_q
    if weights_mode("auto") == "u8":
        assert unsigned_weights(qdq) == 3
    fused = ort.InferenceSession(qdq.SerializeToString()).run(None, feed)[0]
    np.testing.assert_allclose(fused, exact, rtol=0, atol=1e-4 * np.abs(want).max())


def test_grouped_activations_split_each_conv_into_group_convs_with_their_own_scales(tmp_path):
    """``act_groups=2``: each conv becomes a Gather + Conv per channel group and a Sum, the same function in float;
    the QDQ graph gives each group's input its own scale (the group's range), runs the group's columns of the GPTQ
    weights with the group's scale column, and rounds x/s closer to float than one scale per tensor does."""
    rng = np.random.default_rng(3)
    proto = _tiny_graph(rng)
    x = _inputs(rng, 32)
    run = _runner(proto, x)
    feed = {"x": x[:4]}
    want = ort.InferenceSession(proto.SerializeToString()).run(None, feed)[0]
    errors = {}
    for groups in (1, 2):
        repair = R.plan_repair(proto, ["c1", "c2", "mm"], run, "u8", 0.0, act_groups=groups)
        got = ort.InferenceSession(repair.proto.SerializeToString()).run(None, feed)[0]
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)  # the split alone changes nothing
        names = repair.quantize_names(["c1", "c2", "mm"])
        smoothed, out = tmp_path / f"smoothed{groups}.onnx", tmp_path / f"qdq{groups}.onnx"
        onnx.save(repair.proto, str(smoothed))
        _quantize(smoothed, out, "minmax", repair.ranges, names, tmp_path, False, "u8")
        qdq = onnx.load(str(out))
        assert R.apply_weights(qdq, repair) == 3
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        errors[groups] = np.abs(ort.InferenceSession(qdq.SerializeToString(), so).run(None, feed)[0] - want).max()
        if groups == 1:
            assert names == ["c1", "c2", "mm"] and not repair.grouped
            continue
        assert names == ["c1__group0", "c1__group1", "c2__group0", "c2__group1", "mm"]
        assert {R.layer_of(n) for n in names} == {"c1", "c2", "mm"}
        ops = [n.op_type for n in repair.proto.graph.node]
        assert ops.count("Gather") == 4 and ops.count("Sum") == 2 and ops.count("Conv") == 4
        inits = {i.name: numpy_helper.to_array(i) for i in qdq.graph.initializer}
        producer = {o: n for n in qdq.graph.node for o in n.output}
        for la in repair.layers[:2]:
            assert la.groups is not None and la.group_ranges is not None
            assert sorted(np.concatenate(la.groups).tolist()) == list(range(len(la.s)))
            for k, g in enumerate(la.groups):
                node = next(n for n in qdq.graph.node if n.name == R.group_node(la.node, k))
                wq, ws, _ = producer[node.input[1]].input
                np.testing.assert_array_equal(inits[wq], la.q[:, g])
                np.testing.assert_array_equal(inits[ws], la.w_scale[:, k])
                lo, hi = la.group_ranges[k]
                np.testing.assert_allclose(inits[producer[node.input[0]].input[1]], (hi - lo) / 255, rtol=1e-6)
                assert (len(node.input) > 2) == (k == R.bias_group(la) and la.bias is not None)  # the bias once
        # the per-layer fallback floats a layer as a unit: every group conv of c2, nothing of c1
        from katadeploy.export.int8_fallback import float_layers

        fl = float_layers(qdq, repair.proto, ["c2"])
        prod = {o: n.op_type for n in fl.graph.node for o in n.output}
        for n in fl.graph.node:
            if n.op_type == "Conv":
                from_dq = [prod.get(i) == "DequantizeLinear" for i in n.input[:2]]
                assert from_dq == ([False, False] if R.layer_of(n.name) == "c2" else [True, True]), n.name
    assert 0 < errors[2] < errors[1], errors


def test_the_bias_sits_on_a_group_whose_int32_step_can_hold_it(tmp_path):
    """A conv whose narrowest channel group has all-zero weights (GPTQ scales them at 1e-12): its bias goes on the
    other group, the INT32 codes are finite and the QDQ graph stays close to float. On group 0 the bias overflowed
    INT32 (g170e-b15c192 with 32 groups: 27x KataGo's limit, 2026-12-07)."""
    rng = np.random.default_rng(3)
    proto = _tiny_graph(rng)
    w1 = next(i for i in proto.graph.initializer if i.name == "w1")
    dead = numpy_helper.to_array(w1).copy()
    dead[:, 2:] = 0  # the two narrowest input channels (ranges 0.2 and 0.02): group 0 of two
    w1.CopyFrom(numpy_helper.from_array(dead, "w1"))
    x = _inputs(rng, 32)
    repair = R.plan_repair(proto, ["c1", "c2", "mm"], _runner(proto, x), "u8", 0.0, act_groups=2)
    c1 = repair.layers[0]
    assert c1.groups is not None and sorted(c1.groups[0].tolist()) == [2, 3]
    assert c1.w_scale is not None and c1.w_scale[:, 0].max() < 1e-9  # the dead group's scale
    assert R.bias_group(c1) == 1
    smoothed, out = tmp_path / "smoothed.onnx", tmp_path / "qdq.onnx"
    onnx.save(repair.proto, str(smoothed))
    _quantize(smoothed, out, "minmax", repair.ranges, repair.quantize_names(["c1", "c2", "mm"]), tmp_path, False,
              "u8")  # fmt: skip
    qdq = onnx.load(str(out))
    assert R.apply_weights(qdq, repair) == 3
    inits = {i.name: numpy_helper.to_array(i) for i in qdq.graph.initializer}
    producer = {o: n for n in qdq.graph.node for o in n.output}
    node = next(n for n in qdq.graph.node if n.name == R.group_node("c1", 1))
    bq, bs, *_ = producer[node.input[2]].input
    np.testing.assert_allclose(inits[bq] * inits[bs], c1.bias, atol=float(inits[bs].max()))
    feed = {"x": x[:4]}
    want = ort.InferenceSession(proto.SerializeToString()).run(None, feed)[0]
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    got = ort.InferenceSession(qdq.SerializeToString(), so).run(None, feed)[0]
    assert np.abs(got - want).max() / np.abs(want).max() < 0.05
    # a bias no group can hold is a clear error, not a silently wrapped INT32
    c1.bias = c1.bias * 1e30
    with pytest.raises(R.KatadeployError, match="does not fit INT32"):
        R.apply_weights(onnx.load(str(out)), repair)


def test_tail_range_gives_room_where_one_position_set_the_maximum():
    """``tail_range``: the calibration extremes widened by T x the gap to the k-th most extreme position."""
    many = np.full(40, 2.0)  # forty positions reach 2.0: no room needed
    assert R.tail_range(-many / 10, many, 0.8) == pytest.approx((-0.2, 2.0))
    one = np.concatenate([[4.0], np.linspace(1.0, 2.0, 39)])  # one position at 4.0, the 10th at ~1.79
    lo, hi = R.tail_range(np.zeros(40), one, 0.8, k=10)
    assert lo == 0.0 and hi == pytest.approx(4.0 + 0.8 * (4.0 - np.sort(one)[::-1][9]))
    assert R.tail_range(np.zeros(3), np.array([1.0, 3.0, 2.0]), 1.0, k=10) == (0.0, 5.0)  # k capped at the count


def test_group_tail_widens_the_group_one_position_stretches(tmp_path):
    """``group_tail``: with one calibration position far above the rest in one channel, that channel's group gets
    more room than the other (no margin, no floor); recorded in the summary."""
    rng = np.random.default_rng(3)
    proto = _tiny_graph(rng)
    x = _inputs(rng, 32)
    x[5, 0] *= 4  # channel 0 (the widest): one position far out
    run = _runner(proto, x)
    bare = R.plan_repair(proto, ["c1"], run, "u8", 0.0, act_groups=2).layers[0]
    tailed = R.plan_repair(proto, ["c1"], run, "u8", 0.0, act_groups=2, group_tail=0.8)
    la = tailed.layers[0]
    assert la.groups is not None and bare.group_ranges is not None and la.group_ranges is not None
    wide = next(k for k, g in enumerate(la.groups) if 0 in g)
    growth = [t[1] / b[1] for t, b in zip(la.group_ranges, bare.group_ranges)]
    assert growth[wide] > 1.15 and growth[wide] > growth[1 - wide] >= 1.0, growth
    assert tailed.summary()["group_tail"] == 0.8 and "tail" in tailed.summary()["recipe"]
    with pytest.raises(R.KatadeployError, match="int8_group_tail"):
        R.plan_repair(proto, ["c1"], run, "u8", 0.0, act_groups=2, group_tail=-1)


def test_group_nodes_limit_the_split_to_the_named_convs():
    """``group_nodes``: only the named convs are split (the rest keep one MSE range per input); same function."""
    rng = np.random.default_rng(3)
    proto = _tiny_graph(rng)
    x = _inputs(rng, 16)
    run = _runner(proto, x)
    repair = R.plan_repair(proto, ["c1", "c2", "mm"], run, "u8", 0.0, act_groups=2, group_nodes=["c2"])
    assert repair.quantize_names(["c1", "c2", "mm"]) == ["c1", "c2__group0", "c2__group1", "mm"]
    assert repair.summary()["grouped_nodes"] == 1
    assert repair.ranges.keys() >= {repair.layers[0].smoothed} and repair.layers[0].groups is None
    want = ort.InferenceSession(proto.SerializeToString()).run(None, {"x": x[:4]})[0]
    got = ort.InferenceSession(repair.proto.SerializeToString()).run(None, {"x": x[:4]})[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    # the clipping guard: no group narrower than F x its layer's span, the widest group untouched
    bare = repair.layers[1].group_ranges
    floored = R.plan_repair(proto, ["c2"], run, "u8", 0.0, act_groups=2, group_floor=0.5).layers[0].group_ranges
    span = (min(r[0] for r in bare), max(r[1] for r in bare))
    assert min(r[1] for r in bare) < 0.5 * span[1]  # the input's channels span 250x: one group is narrow
    for (lo, hi), (flo, fhi) in zip(bare, floored):
        assert fhi == pytest.approx(max(hi, 0.5 * span[1])) and flo == pytest.approx(min(lo, 0.5 * span[0]))
    with pytest.raises(R.KatadeployError, match="int8_group_floor"):
        R.plan_repair(proto, ["c2"], run, "u8", 0.0, act_groups=2, group_floor=1.5)
    # the margin: each group's own range stretched M times (before the floor), and recorded
    stretched = R.plan_repair(proto, ["c2"], run, "u8", 0.0, act_groups=2, group_margin=1.25)
    for (lo, hi), (mlo, mhi) in zip(bare, stretched.layers[0].group_ranges):
        assert mhi == pytest.approx(1.25 * hi) and mlo == pytest.approx(1.25 * lo)
    assert stretched.summary()["group_margin"] == 1.25 and " x 1.25" in stretched.summary()["recipe"]
    with pytest.raises(R.KatadeployError, match="int8_group_margin"):
        R.plan_repair(proto, ["c2"], run, "u8", 0.0, act_groups=2, group_margin=0.9)


def test_group_options_are_checked():
    from katadeploy.errors import KatadeployError
    from katadeploy.export.int8_groups import GroupSpec, auto_count, choose, group_spec, scoped_nodes

    nodes = ["/net/blocks.1/conv1/conv/Conv", "/net/blocks.11/conv1/conv/Conv", "/net/blocks.11/conv2/conv/Conv"]
    assert group_spec({"int8_act_groups": "8"}) == GroupSpec(8, floor=0.5)  # the clipping guard by default
    assert group_spec({"int8_act_groups": 8, "int8_group_floor": 0}).floor == 0.0
    assert group_spec({"int8_act_groups": 8, "int8_group_margin": "1.2"}).margin == 1.2
    spec = group_spec({"int8_act_groups": 4, "int8_group_scopes": "blocks.11"})
    assert scoped_nodes(spec, nodes) == nodes[1:]
    assert scoped_nodes(group_spec({"int8_act_groups": 4}), nodes) is None  # unset: every repaired conv
    auto = group_spec({"int8_act_groups": 8, "int8_group_scopes": "auto"})
    assert auto.auto == 0 and auto_count(auto, 30) == 8 and auto_count(auto, 2) == 1
    assert auto_count(group_spec({"int8_act_groups": 8, "int8_group_scopes": "auto:3"}), 30) == 3
    ranking = [{"layer": n} for n in ("/net/blocks.11/conv2/conv/Conv", "/net/linear/MatMul", nodes[0], nodes[1])]
    assert choose(ranking, nodes, 2) == [nodes[0], nodes[2]]  # the top 2 convs, in graph order
    bad = [
        ({"int8_act_groups": "0"}, "at least 1"),
        ({"int8_act_groups": "eight"}, "whole number"),
        ({"int8_act_groups": 1, "int8_group_scopes": "blocks.1"}, "needs int8_act_groups"),
        ({"int8_act_groups": 4, "int8_group_scopes": "auto:0"}, "positive whole N"),
        ({"int8_act_groups": 4, "int8_group_scopes": "auto:x"}, "positive whole N"),
        ({"int8_act_groups": 4, "int8_group_scopes": "auto,blocks.1"}, "no scopes beside it"),
        ({"int8_act_groups": 4, "int8_group_floor": 2}, "int8_group_floor must be in"),
        ({"int8_act_groups": 4, "int8_group_floor": "half"}, "int8_group_floor must be a number"),
        ({"int8_act_groups": 4, "int8_group_margin": 0.5}, "int8_group_margin must be in"),
        ({"int8_act_groups": 4, "int8_group_margin": "wide"}, "int8_group_margin must be a number"),
    ]
    for opts, msg in bad:
        with pytest.raises(KatadeployError, match=msg):
            group_spec(opts)
    with pytest.raises(KatadeployError, match="matches none"):
        scoped_nodes(group_spec({"int8_act_groups": 4, "int8_group_scopes": "blocks.7"}), nodes)


# ---------------------------------------------------------------------------------------------- the small nets
#: smooth-gptq, u8, fallback, no QAT, one activation scale per conv input (the per-tensor recipe: the default of 16
#: channel groups is test_int8_groups')
REPAIR_OPTIONS = {"calib_positions": 64, "val_positions": 32, "int8_qat": "off", "int8_act_groups": 1}
artifact = artifact_builder({"onnx-int8": REPAIR_OPTIONS})

#: regression ceilings of the default recipe (smooth-gptq, u8, per-layer fallback; worst limit ratio on the 80 oracle
#: positions, the bundled default calibration of every board size, 64 positions), 1.5x what was measured; plain PTQ
#: on the same data (test_onnx's INT8_CEILING): 10.2x / 11.4x / 78.4x
#: Measured 2026-12-03 before random-play positions joined the every-size set: 1.18x (policy KL p99, 80% int8
#: MACs), 6.15x, 17.7x; after (3 of the 8 strata random, so 24 of these 64 positions): 1.57x, 6.01x, 53.7x (policy KL
#: max, one position). The small calibration pays for the random strata on the test transformer; at the default
#: 1024 positions g170e-b15c192 gains 4.84x -> 2.15x (README). The transformer's ceiling is re-based on the new
#: measurement, the others hold. With the oracle positions' games held out of the calibration (plan 6): 1.34x,
#: 5.52x, 22.5x (ceilings kept).
REPAIR_CEILING = {
    "g170-b6c96-s175395328-d26788732": 1.8,
    "b7c96h6kv3qk32v16tflrs-fson-bnh": 9.2,
    "b7c96h3tfrs-test5-cnorm": 80.0,
}
REPAIR_MISSES = "smooth-gptq INT8 (smoothing, MSE ranges, GPTQ) still misses KataGo's FP16 limits here"


@pytest.mark.parametrize("stem", NETS)
def test_smooth_gptq_int8_on_the_small_nets(out_dir, stem):
    path = artifact(out_dir, stem, "onnx-int8")
    d = json.loads(Path(str(path) + ".json").read_text())["details"]["int8"]
    assert d["method"] == "smooth-gptq" and d["repair"]["patched_nodes"] == d["repair"]["repaired_nodes"] > 0
    q = read_manifest(path).quantization
    floated = d.get("fallback", {}).get("floated", [])
    before = d.get("fallback", {}).get("before", {}).get("int8_mac_fraction", q["int8_mac_fraction"])
    floor = 0.8 if before >= 0.8 else 0.8 * before  # transformers start below 0.8 (attention stays float)
    assert q["int8_mac_fraction"] >= floor - 1e-9 and len(floated) <= 12
    assert set(floated) <= set(q["float_layer_names"])
    if stem == RESNET:  # MACs counted on the torch port (ResNets only)
        assert_honest_int8_label(path, stem, all_trunk=not floated)
    int8_known_failure(oracle_metrics(path, stem), REPAIR_CEILING[stem], REPAIR_MISSES)
