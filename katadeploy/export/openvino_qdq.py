"""``openvino-int8`` built from the ``onnx-int8`` QDQ graph (``options["int8_source"] = "onnx-qdq"``).

Contract: :func:`from_onnx_qdq` ``(req)`` builds the FP32 ONNX graph, quantizes it with the ``onnx-int8`` recipe
(:func:`katadeploy.export.onnx_int8.quantize_int8`: smoothing, MSE ranges, GPTQ weights, the per-layer fallback,
cached QAT weights; same options, calibration of every board size), reads that QDQ graph with
``ov.convert_model`` and returns ``(ov.Model, details["int8"] record)``. The record keeps the ONNX recipe's own
record (``onnx_int8``), its ``quantization`` label (the int8 MAC share is counted on the QDQ graph, which is the
graph OpenVINO runs), the fan-out guards and ``agreement_with_onnxruntime``: mean |OpenVINO - onnxruntime| over
the raw outputs on real positions divided by mean |onnxruntime - PyTorch FP32| (an error above
:data:`AGREEMENT_LIMIT`: OpenVINO would not be running the graph that was validated).

Why: OpenVINO's ONNX frontend turns each QuantizeLinear/DequantizeLinear pair into a ``FakeQuantize`` and the CPU
plugin's low-precision transformations then run those convolutions as u8 x s8 kernels, so the artifact carries the
repaired INT8 graph's accuracy with OpenVINO's INT8 speed (g170-b6c96, batch 8, 2 threads, 2026-12-03: 466 evals/s
against 248 for OpenVINO FP32 and 128 for onnxruntime on the same QDQ file), where NNCF's own PTQ of the torch
graph has no weight-rounding repair.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from katadeploy.artifact import OUTPUT_NAMES, input_names
from katadeploy.errors import KatadeployError
from katadeploy.export.request import ExportRequest
from katadeploy.extras import require

#: largest allowed OpenVINO-vs-onnxruntime disagreement, relative to the INT8 graph's own error (measured 0.03-0.1:
#: the two runtimes round a few INT8 codes differently)
AGREEMENT_LIMIT = 0.5


def _agreement(om: Any, qdq_path: Path, req: ExportRequest) -> float:
    import torch

    from katadeploy.export.graph import ExportNet, example_inputs
    from katadeploy.runtime.openvino_runtime import OpenVINOEvaluator

    ort = require("onnxruntime", "onnx")
    inputs = example_inputs(req.model, 8, req.nn_x, req.nn_y)
    feed = dict(zip(input_names(req.model), (t.numpy() for t in inputs)))
    so = ort.SessionOptions()
    so.log_severity_level = 3
    ref = ort.InferenceSession(str(qdq_path), so, providers=["CPUExecutionProvider"]).run(list(OUTPUT_NAMES), feed)
    ev = OpenVINOEvaluator(om, threads=req.options.get("threads"), inference_precision="f32", name="qdq-check")
    got = ev.evaluate(*feed.values())
    ev.close()
    with torch.no_grad():
        fp = ExportNet(req.model, exact=req.exact).eval()(*inputs)
    num = sum(float(np.abs(g - r).mean()) for g, r in zip(got, ref))
    den = sum(float(np.abs(r - f.numpy()).mean()) for r, f in zip(ref, fp))
    return num / max(den, 1e-12)


def from_onnx_qdq(req: ExportRequest) -> tuple[Any, dict[str, Any]]:
    ov = require("openvino", "openvino")
    from katadeploy.export.onnx import build_fp32
    from katadeploy.export.onnx_int8 import quantize_int8
    from katadeploy.export.openvino import guard_fanout

    req.log("int8: building the onnx-int8 QDQ graph for OpenVINO")
    proto = build_fp32(req.model, req.nn_x, req.nn_y, req.exact)
    with tempfile.TemporaryDirectory(prefix="katadeploy-ovqdq-") as tmpdir:
        qdq_path = Path(tmpdir) / "qdq.onnx"
        details = quantize_int8(req, proto, qdq_path)
        with warnings.catch_warnings(), contextlib.redirect_stdout(sys.stderr):
            warnings.simplefilter("ignore")
            om = ov.convert_model(str(qdq_path))
        for port, name in zip(om.inputs, input_names(req.model)):
            port.get_tensor().set_names({name})
        for port, name in zip(om.outputs, OUTPUT_NAMES):
            port.get_tensor().set_names({name})
        guards = guard_fanout(om)
        agreement = _agreement(om, qdq_path, req)
    if not agreement <= AGREEMENT_LIMIT:
        raise KatadeployError(
            f"OpenVINO's reading of the onnx-int8 QDQ graph of {req.model.name} disagrees with onnxruntime "
            f"({agreement:.2f}x the INT8 graph's own error, limit {AGREEMENT_LIMIT}); refusing to write it"
        )
    req.log(f"int8: OpenVINO runs the QDQ graph within {agreement:.2f}x of onnxruntime (relative to the INT8 error)")
    onnx_record = details["int8"]
    quantization = dict(details["quantization"])
    quantization.pop("onnxruntime_cpu", None)  # OpenVINO runs the quantized convolutions in int8 itself
    quantization["recipe"] = "onnx-int8 QDQ graph read by OpenVINO: " + str(quantization.get("recipe", ""))
    record = {
        "source": "onnx-qdq",
        "quantizer": f"{onnx_record['quantizer']} (katadeploy onnx-int8 recipe), read by openvino "
        f"{ov.__version__} ov.convert_model",
        "onnx_int8": onnx_record,
        "fanout_guards": guards,
        "agreement_with_onnxruntime": round(agreement, 4),
        "quantization": quantization,
    }
    return om, record
