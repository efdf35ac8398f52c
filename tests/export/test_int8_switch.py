"""The fallback's trials in one switched session (:mod:`katadeploy.export.int8_switch`), against onnxruntime running
the real graphs: switched on, a layer computes what onnxruntime computes from the QDQ graph (far closer than the
float layer is): on the tiny graph, whose three layers onnxruntime runs as integer kernels, and on a real net; switched off, it computes what :func:`float_layers` 's graph computes; all off is
the float graph; the MAC share needs no graph; and on g170-b6c96's 16-group graph the same holds for whole nets."""

from __future__ import annotations

import numpy as np
import pytest

from katadeploy.export import int8_fallback as F
from katadeploy.export import int8_switch as S
from katadeploy.runtime.onnx_runtime import integer_kernel_nodes
from tests.export.test_int8_fallback import LAYERS, _Metrics, graphs  # noqa: F401  (a fixture)
from tests.export.test_int8_qat import repaired  # noqa: F401  (a fixture)

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")


def _session(proto):
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.intra_op_num_threads = 2
    return ort.InferenceSession(proto.SerializeToString(), so, providers=["CPUExecutionProvider"])


def _switched_run(sess, switch, feed, floated=()):
    return sess.run(None, {**feed, **{s: np.array(k not in floated) for k, s in switch.items()}})


def test_switches_float_exactly_the_layers_float_layers_floats(graphs):  # noqa: F811
    proto, qdq, x, want = graphs
    sw, switch = S.switched_graph(qdq, proto, LAYERS)
    assert list(switch) == LAYERS and [i.name for i in sw.graph.input][1:] == list(switch.values())
    sess = _session(sw)
    assert integer_kernel_nodes(qdq.SerializeToString()) == set(LAYERS)  # the reference sums int8 products in int32
    int8 = _session(qdq).run(None, {"x": x})[0]
    on = _switched_run(sess, switch, {"x": x})[0]
    err = np.abs(int8 - want).max()
    assert err > 1e-3 and np.abs(on - int8).max() < 1e-3 * err  # the int8 graph, in float arithmetic
    for layer in LAYERS:
        ref = _session(F.float_layers(qdq, proto, [layer])).run(None, {"x": x})[0]
        np.testing.assert_allclose(_switched_run(sess, switch, {"x": x}, {layer})[0], ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(_switched_run(sess, switch, {"x": x}, set(LAYERS))[0], want, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="not in the float graph"):
        S.switched_graph(qdq, onnx.ModelProto(), ["c1"])


class _Evaluator:
    def __init__(self, sess, switch_values):
        self.sess, self.extra_feed = sess, dict(switch_values)


def test_float_trials_measure_the_switched_graph_and_count_macs_without_one(graphs, tmp_path):  # noqa: F811
    from katadeploy.export.macs import onnx_macs
    from katadeploy.export.macs import summarize as summarize_macs

    proto, qdq, x, want = graphs
    role = lambda n, op: "trunk"  # noqa: E731
    rows = onnx_macs(qdq, role)
    seen = []

    def score(ev):
        out = ev.sess.run(None, {"x": x, **ev.extra_feed})[0]
        seen.append(float(np.abs(out - want).max()))
        return seen[-1], _Metrics(seen[-1])

    trials = S.FloatTrials(qdq, proto, LAYERS, tmp_path / "sw.onnx", lambda p, ex: _Evaluator(
        _session(onnx.load(str(p))), ex), score, rows)  # fmt: skip
    rec = trials.measure(["c2"])
    assert rec["loss"] == seen[-1] and trials.evaluator.extra_feed[trials.switch["c2"]] == np.array(False)
    assert trials.measure(LAYERS)["loss"] < 1e-4 < 1e-3 < trials.measure([])["loss"]
    for floated in ([], ["c1"], ["c2", "mm"], LAYERS):
        graph = F.float_layers(qdq, proto, floated)
        want_fraction = summarize_macs(onnx_macs(graph, role), "")["int8_mac_fraction"]
        assert trials.fraction(floated) == pytest.approx(want_fraction, abs=1e-4)  # summarize rounds to 4 places
    with pytest.raises(ValueError, match="not a candidate"):
        trials.measure(["relu"])


@pytest.mark.parametrize("repaired", [16], ids=["16-groups"], indirect=True)
def test_on_a_real_grouped_net_switched_on_is_the_int8_graph_and_off_the_floated_one(repaired):  # noqa: F811
    model, repair, qdq, pre, calib = repaired
    assert repair.grouped
    layers = [la.node for la in repair.layers]
    src = repair.proto  # the float graph that was quantized: smoothed, split into groups
    sw, switch = S.switched_graph(qdq, src, layers)
    feed = {"spatial": calib.spatial[:8], "global": calib.global_[:8]}
    fp32 = _session(src).run(None, feed)
    int8 = _session(qdq).run(None, feed)  # onnxruntime's own session on the QDQ graph
    sess = _session(sw)
    on = _switched_run(sess, switch, feed)

    def rel(a, b):  # mean |a - b| over every output, in units of the int8 graph's error
        return sum(float(np.abs(x - y).mean()) for x, y in zip(a, b)) / sum(
            float(np.abs(x - y).mean()) for x, y in zip(int8, fp32))  # fmt: skip

    # the merged group convs sum the same products in another order: a last-bit difference flips a few int8 codes
    # downstream (median |diff| 1e-7 against the int8 error's 1e-2), measured 0.083 (2026-12-08)
    assert rel(on, int8) < 0.2
    for layer in layers[:3]:  # one layer int8, the rest float: the same function to float rounding
        ref = _session(F.float_layers(qdq, src, [la for la in layers if la != layer])).run(None, feed)
        got = _switched_run(sess, switch, feed, set(layers) - {layer})
        for g, r, f in zip(got, ref, fp32):
            assert np.abs(g - r).max() < 1e-3 * max(np.abs(r - f).max(), 1e-3)  # measured <= 2e-5 against 0.005-0.27
    floated = {layers[3], layers[-2]}
    ref = _session(F.float_layers(qdq, src, sorted(floated))).run(None, feed)
    assert rel(_switched_run(sess, switch, feed, floated), ref) < 0.2
    assert rel(_switched_run(sess, switch, feed, set(layers)), fp32) < 1e-3


def test_unknown_trials_or_rank_values_are_refused_before_calibration():
    from types import SimpleNamespace

    from katadeploy.errors import KatadeployError
    from katadeploy.export.onnx_int8 import _check_fallback_options

    _check_fallback_options(SimpleNamespace(options={"int8_trials": "session", "int8_fallback_rank": "energy"}))
    with pytest.raises(KatadeployError, match="unknown int8_trials 'sesion'; use graph or session"):
        _check_fallback_options(SimpleNamespace(options={"int8_trials": "sesion"}))
    with pytest.raises(KatadeployError, match="unknown int8_fallback_rank"):
        _check_fallback_options(SimpleNamespace(options={"int8_fallback_rank": "mse"}))
