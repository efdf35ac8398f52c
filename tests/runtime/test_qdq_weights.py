"""u8 weight codes for onnxruntime (:mod:`katadeploy.runtime.qdq_weights`) and the CPU facts behind them.

- the rewrite keeps the graph's function exactly (against onnxruntime's unfused QDQ arithmetic) and stores u8 codes
  with zero point 128;
- with it, onnxruntime's fused int8 MatMul kernel computes what the graph says on every CPU; on a CPU whose
  u8 x s8 dot product saturates, the stored s8 codes are shown to go wrong (the reason the rewrite exists);
- ``OnnxEvaluator`` applies it for int8 artifacts under ``int8_weights=auto`` exactly where the CPU saturates, and
  reports what ran.
"""

from __future__ import annotations

import numpy as np
import pytest

from katadeploy.errors import KatadeployError
from katadeploy.runtime import cpu
from katadeploy.runtime.qdq_weights import unsigned_weights, weights_mode

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def _qdq_matmul(k: int = 64, n: int = 16) -> onnx.ModelProto:
    """u8 activations (range [0, 8]) x s8 per-column weights with codes near +-127, MatMul with a float output:
    the pattern onnxruntime fuses into an integer kernel."""
    rng = np.random.default_rng(0)
    w = np.where(rng.random((k, n)) < 0.5, 127, 120).astype(np.int8)  # same-signed large codes: saturating pairs
    w[:, ::2] *= -1
    inits = [
        numpy_helper.from_array(np.array(8 / 255, np.float32), "xs"),
        numpy_helper.from_array(np.array(0, np.uint8), "xz"),
        numpy_helper.from_array(w, "wq"),
        numpy_helper.from_array(np.full(n, 0.01, np.float32), "ws"),
        numpy_helper.from_array(np.zeros(n, np.int8), "wz"),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
        helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["wd"], axis=1),
        helper.make_node("MatMul", ["xd", "wd"], ["y"], name="mm"),
    ]
    g = helper.make_graph(nodes, "qdq", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, k])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)  # fmt: skip
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def _run(proto: onnx.ModelProto, x: np.ndarray, fused: bool) -> np.ndarray:
    so = ort.SessionOptions()
    if not fused:
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(proto.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


def test_unsigned_weights_keep_the_function_and_do_not_saturate():
    x = np.full((4, 64), 8.0, np.float32)  # every activation code 255
    proto = _qdq_matmul()
    exact = _run(proto, x, fused=False)
    stored = _run(proto, x, fused=True)
    rewritten = onnx.ModelProto()
    rewritten.CopyFrom(proto)
    assert unsigned_weights(rewritten) == 1
    inits = {i.name: numpy_helper.to_array(i) for i in rewritten.graph.initializer}
    dq = next(n for n in rewritten.graph.node if n.output[0] == "wd")
    assert inits[dq.input[0]].dtype == np.uint8 and (inits[dq.input[2]] == 128).all()
    assert "wq" not in inits  # the s8 codes are replaced, not kept beside
    np.testing.assert_allclose(_run(rewritten, x, fused=False), exact, rtol=0, atol=1e-5)
    np.testing.assert_allclose(_run(rewritten, x, fused=True), exact, rtol=1e-5, atol=1e-4)
    err = float(np.abs(stored - exact).max() / np.abs(exact).max())
    if cpu.int8_dot_saturates():
        assert err > 0.01, f"the s8 kernel did not saturate on {cpu.cpu_name()} ({cpu.int8_isa()})"
    else:
        assert err < 1e-5, err


def test_rewrite_leaves_asymmetric_weights_alone():
    proto = _qdq_matmul()
    for i in proto.graph.initializer:
        if i.name == "wz":
            i.CopyFrom(numpy_helper.from_array(np.full(16, 3, np.int8), "wz"))
    assert unsigned_weights(proto) == 0
    assert unsigned_weights(onnx.ModelProto()) == 0


def test_weights_mode():
    assert weights_mode("s8") == "s8" and weights_mode("U8") == "u8"
    assert weights_mode(None) == weights_mode("auto") == ("u8" if cpu.int8_dot_saturates() else "s8")
    with pytest.raises(KatadeployError, match="int8_weights"):
        weights_mode("u4")


def test_int8_dot_saturates_by_flags(monkeypatch):
    monkeypatch.setattr(cpu.platform, "machine", lambda: "x86_64")
    assert cpu.int8_dot_saturates({"avx2", "fma"}) and cpu.int8_isa({"avx2"}) == "avx2 (saturating)"
    assert not cpu.int8_dot_saturates({"avx2", "avx512_vnni"}) and cpu.int8_isa({"avx512_vnni"}) == "vnni"
    assert not cpu.int8_dot_saturates({"avx_vnni"}) and cpu.int8_isa({"amx_int8", "avx512_vnni"}) == "amx"
    assert cpu.int8_dot_saturates(set())  # unreadable flags on x86: the safe answer
    monkeypatch.setattr(cpu.platform, "machine", lambda: "aarch64")
    assert not cpu.int8_dot_saturates(set())


def test_onnx_evaluator_runs_the_codes_it_reports(tmp_path, g170_path, monkeypatch):
    """The tiny graph under a real net's int8 manifest: the session is built (rewritten or not) before the
    input-name check refuses it, so the load path an artifact takes is exercised for every option."""
    from katadeploy.artifact import candidate_manifest
    from katadeploy.model.format import load_model
    from katadeploy.runtime.onnx_runtime import OnnxEvaluator

    path = tmp_path / "q.onnx"
    onnx.save(_qdq_matmul(), str(path))
    manifest = candidate_manifest(load_model(g170_path), 19, 19, "onnx", "int8", path)
    rewritten: list[bool] = []
    real = OnnxEvaluator._unsigned
    monkeypatch.setattr(OnnxEvaluator, "_unsigned", lambda self, p: rewritten.append(True) or real(self, p))
    want = {"auto": "u8" if cpu.int8_dot_saturates() else "s8", "s8": "s8", "u8": "u8"}
    for option, codes in want.items():
        rewritten.clear()
        with pytest.raises(KatadeployError, match="do not match its manifest"):
            OnnxEvaluator(path, manifest, int8_weights=option)
        assert rewritten == ([True] if codes == "u8" else []), option


def _qdq_conv(output_q: bool) -> onnx.ModelProto:
    """u8 input -> Conv with s8 weights, its output quantized too (``output_q``) or left float."""
    rng = np.random.default_rng(1)
    inits = [
        numpy_helper.from_array(np.array(0.02, np.float32), "s"),
        numpy_helper.from_array(np.array(0, np.uint8), "z"),
        numpy_helper.from_array(rng.integers(-127, 128, (8, 4, 3, 3)).astype(np.int8), "wq"),
        numpy_helper.from_array(np.full(8, 0.001, np.float32), "ws"),
        numpy_helper.from_array(np.zeros(8, np.int8), "wz"),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"]),
        helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["wd"], axis=0),
        helper.make_node("Conv", ["xd", "wd"], ["c" if output_q else "y"], name="blocks.0/conv", pads=[1, 1, 1, 1]),
    ]
    if output_q:
        nodes += [helper.make_node("QuantizeLinear", ["c", "s", "z"], ["cq"]),
                  helper.make_node("DequantizeLinear", ["cq", "s", "z"], ["y"])]  # fmt: skip
    g = helper.make_graph(nodes, "conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 5, 5])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)  # fmt: skip
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def test_integer_kernel_nodes_names_the_graphs_own_nodes(tmp_path):
    """onnxruntime renames a fused QLinearConv (``<name>_token_N``); the report maps it back to the graph's node.
    Which patterns it fuses is onnxruntime's business: what it reports must be the graph's own names."""
    from katadeploy.runtime.onnx_runtime import integer_kernel_nodes

    for output_q in (True, False):
        path = tmp_path / f"conv-{output_q}.onnx"
        onnx.save(_qdq_conv(output_q), str(path))
        assert integer_kernel_nodes(path) <= {"blocks.0/conv"}
    assert integer_kernel_nodes(tmp_path / "conv-True.onnx") == {"blocks.0/conv"}  # conv in, u8 out: QLinearConv
    path = tmp_path / "mm.onnx"
    onnx.save(_qdq_matmul(), str(path))
    assert integer_kernel_nodes(path) == {"mm"}  # MatMulIntegerToFloat keeps the name
