"""Per-layer INT8 fallback (:mod:`katadeploy.export.int8_fallback`) on a tiny QDQ graph from onnxruntime's own
quantizer: a floated layer reads exactly the float tensors (all layers float = the float graph's outputs to
rounding), its orphaned Q/DQ nodes are gone, and the search ranks layers by the score, stops at the gate or at the
int8 MAC floor, and reports every step."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from katadeploy.export import int8_fallback as F
from katadeploy.export.onnx_int8 import _quantize
from tests.export.test_int8_repair import _tiny_graph

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

LAYERS = ["c1", "c2", "mm"]


@pytest.fixture(scope="module")
def graphs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fallback")
    rng = np.random.default_rng(7)
    proto = _tiny_graph(rng)
    src = tmp / "float.onnx"
    onnx.save(proto, str(src))
    x = np.abs(rng.normal(size=(16, 4, 6, 6))).astype(np.float32)
    sess = ort.InferenceSession(proto.SerializeToString())
    inter = {"x": x}
    # ranges of every quantized input: x, r (c2's input), t (mm's input) from a float run with those outputs
    aug = onnx.load(str(src))
    aug.graph.output.extend([onnx.helper.make_tensor_value_info(t, onnx.TensorProto.FLOAT, None) for t in ("r", "t")])
    _, r, t = ort.InferenceSession(aug.SerializeToString()).run(None, {"x": x})
    inter.update(r=r, t=t)
    ranges = {k: (np.array(v.min(), np.float32), np.array(v.max(), np.float32)) for k, v in inter.items()}
    out = tmp / "qdq.onnx"
    _quantize(src, out, "minmax", ranges, LAYERS, tmp, False, "u8")
    return proto, onnx.load(str(out)), x[:4], sess.run(None, {"x": x[:4]})[0]


def _run(proto, x):
    return ort.InferenceSession(proto.SerializeToString()).run(None, {"x": x})[0]


def _dq_inputs(proto, name):
    producer = {o: n for n in proto.graph.node for o in n.output}
    node = next(n for n in proto.graph.node if n.name == name)
    return [i for i in node.input if i in producer and producer[i].op_type == "DequantizeLinear"]


def test_float_layers_rewires_to_the_float_tensors(graphs):
    proto, qdq, x, want = graphs
    assert all(_dq_inputs(qdq, n) for n in LAYERS)
    err_q = np.abs(_run(qdq, x) - want).max()
    assert err_q > 1e-4  # int8 changes the output
    one = F.float_layers(qdq, proto, ["c2"])
    assert not _dq_inputs(one, "c2") and _dq_inputs(one, "c1") and _dq_inputs(one, "mm")
    assert len(one.graph.node) < len(qdq.graph.node)  # c2's weight DQ (and nothing it needs) is gone
    every = F.float_layers(qdq, proto, LAYERS)
    assert {n.op_type for n in every.graph.node}.isdisjoint({"QuantizeLinear", "DequantizeLinear"})
    np.testing.assert_allclose(_run(every, x), want, rtol=1e-5, atol=1e-5)
    assert len(qdq.graph.node) > len(every.graph.node)  # the input graph is left as it was
    with pytest.raises(ValueError, match="not in the float graph"):
        F.float_layers(qdq, onnx.ModelProto(), ["c1"])


class _Metrics:
    """The gate's worst ratio, and an error energy (:func:`error_energy`) carried by one KL value per position."""

    metrics = ("policy_kl",)
    overall = None

    def __init__(self, ratio, energy=None):
        self.ratio = ratio
        self.errors = {"policy_kl": np.full(4, 0.002 * (ratio if energy is None else energy))}

    def worst(self, _precision):
        return SimpleNamespace(ratio=self.ratio, metric="policy_kl", stat="p99")

    def passed(self, _precision):
        return self.ratio <= 1.0


def test_search_ranks_by_the_score_and_stops_at_the_gate_or_the_floor(graphs):
    proto, qdq, _, _ = graphs
    cost = {"c1": 0.8, "c2": 2.0, "mm": 0.1}  # each int8 layer's share of the error

    def int8_layers(p):
        return [n for n in LAYERS if _dq_inputs(p, n)]

    def score(p):
        ratio = 0.3 + sum(cost[n] for n in int8_layers(p))
        return max(0.0, ratio - 0.5), _Metrics(ratio)

    def fraction(p):
        return len(int8_layers(p)) / 3

    r = F.accuracy_fallback(qdq, proto, LAYERS, score, fraction, min_fraction=0.0)
    assert [x["layer"] for x in r.ranking] == ["c2", "c1", "mm"]
    assert r.floated == ["c2", "c1"] and r.passed and r.ratio == pytest.approx(0.4)
    assert [s["floated"] for s in r.steps] == [["c2"], ["c2", "c1"]]
    floor = F.accuracy_fallback(qdq, proto, LAYERS, score, fraction, min_fraction=0.5)
    assert floor.floated == ["c2"] and not floor.passed and floor.int8_fraction == pytest.approx(2 / 3)
    assert floor.ratio == pytest.approx(1.2)
    # a margin goes on past the first pass (0.4x) to the first state at most 0.35x: every layer float
    wide = F.accuracy_fallback(qdq, proto, LAYERS, score, fraction, min_fraction=0.0, margin=0.35)
    assert wide.floated == ["c2", "c1", "mm"] and wide.passed and wide.ratio == pytest.approx(0.3)
    # a margin out of reach within the floor keeps the best state found, still passing
    short = F.accuracy_fallback(qdq, proto, LAYERS, score, fraction, min_fraction=0.3, margin=0.35)
    assert short.floated == ["c2", "c1"] and short.passed and short.ratio == pytest.approx(0.4)
    capped = F.accuracy_fallback(qdq, proto, LAYERS, score, fraction, min_fraction=0.0, max_layers=0)
    assert capped.floated == [] and capped.ranking == [] and capped.proto is qdq


def test_energy_search_takes_layers_by_energy_per_mac_skips_those_past_the_floor_and_keeps_the_last(graphs):
    proto, qdq, _, _ = graphs
    gain = {"c1": 0.3, "c2": 0.2, "mm": 1.0}  # each int8 layer's additive share of the error energy
    macs = {"c1": 0.3, "c2": 0.1, "mm": 0.6}  # gain per MAC: c2 2.0, mm 1.67, c1 1.0

    def int8_layers(p):
        return [n for n in LAYERS if _dq_inputs(p, n)]

    def score(p):
        energy = 0.1 + sum(gain[n] for n in int8_layers(p))
        # the gate's worst ratio is two positions: floating c1 alone happens to fix one outlier
        ratio = 2 * energy - (1.0 if int8_layers(p) == ["c2", "mm"] else 0.0)
        return max(0.0, ratio - 0.5), _Metrics(ratio, energy)

    def fraction(p):
        return sum(macs[n] for n in int8_layers(p))

    gate = F.accuracy_fallback(qdq, proto, LAYERS, score, fraction, min_fraction=0.0)
    assert [x["layer"] for x in gate.ranking] == ["mm", "c1", "c2"]
    r = F.accuracy_fallback(qdq, proto, LAYERS, score, fraction, min_fraction=0.0, rank="energy")
    assert [x["layer"] for x in r.ranking] == ["c2", "mm", "c1"]
    assert [x["gain"] for x in r.ranking] == pytest.approx([0.2, 1.0, 0.3])  # each layer alone in int8
    assert [x["int8_mac_fraction"] for x in r.ranking] == pytest.approx([0.1, 0.6, 0.3])
    assert r.energy == pytest.approx({"all_int8": 1.6, "all_float": 0.1, "sum_alone": 1.5, "additivity": 1.0})
    assert r.floated == ["c2", "mm"] and r.passed and r.ratio == pytest.approx(0.8) and r.rank == "energy"
    # mm would leave 30% int8 MACs: skipped for the smaller c1; nothing passes, the last state is kept
    floor = F.accuracy_fallback(qdq, proto, LAYERS, score, fraction, min_fraction=0.5, rank="energy")
    assert floor.floated == ["c2", "c1"] and not floor.passed and floor.int8_fraction == pytest.approx(0.6)
    assert [s["floated"] for s in floor.steps] == [["c2"], ["c2", "c1"]]
    assert floor.summary()["rank"] == "energy"
    with pytest.raises(ValueError, match="int8_fallback_rank"):
        F.accuracy_fallback(qdq, proto, LAYERS, score, fraction, rank="worst")


def test_energy_search_never_floats_a_layer_without_energy_of_its_own(graphs):
    proto, qdq, _, _ = graphs

    def score(p):
        energy = 1.0 + (0.5 if _dq_inputs(p, "c1") else 0.0)  # only c1 carries error; the others are noise-free
        return energy, _Metrics(2 * energy, energy)

    r = F.accuracy_fallback(qdq, proto, LAYERS, score, lambda p: 1.0, min_fraction=0.0, rank="energy")
    assert r.floated == ["c1"] and not r.passed and r.ratio == pytest.approx(2.0)
