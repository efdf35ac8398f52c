"""TFLite artifacts (``tflite-fp32``, ``tflite-fp16``, ``tflite-int8``) built with litert-torch.

Contract: :func:`export` ``(req)`` writes ``req.artifact_path()`` (a ``.tflite`` flatbuffer) and its sidecar
manifest, and returns the path.

- Graph: :class:`~katadeploy.export.graph.ExportNet` (masked, or the exact-board variant when ``req.exact``)
  converted by ``litert_torch.convert`` with example inputs of batch ``req.batch``. The batch is FIXED: litert-torch
  0.10 cannot lower this graph with a dynamic batch (``torch.export.Dim`` on the batch fails in its JAX bridge on
  the first ``view``/unsqueeze with a symbolic size), so the manifest says ``{"fixed": req.batch}`` and the
  runtime (:mod:`katadeploy.runtime.litert_runtime`) splits and pads. Inputs ``spatial``, ``global`` (and
  ``meta``) and the five outputs are float32 in every precision; their names in the model's ``serving_default``
  signature (``args_<i>``, ``output_<i>``) are checked against the manifest shapes (and, by the self-check below,
  against torch's values, which also tells policy from ownership when both are ``[N, 1, H, W]``) and recorded in
  ``details["signature"]``.
- The converted FP32 model is run with LiteRT on the example inputs and compared with PyTorch before anything
  is written; a difference above :data:`SELF_CHECK_TOL` on any raw output is an error (the measured errors are
  recorded in ``details["self_check"]``).
- ``fp16``: TFLite's float16 weight quantization, done by ai-edge-quantizer's ``float_casting`` algorithm
  (weight-only, explicit dequantize): the weights of every CONV_2D / FULLY_CONNECTED are stored as float16 and
  a DEQUANTIZE op turns them back into float32, so on CPU (XNNPACK) the arithmetic stays float32 and only the
  weights are rounded to float16.
- ``int8``: ai-edge-quantizer static quantization: int8 per-channel symmetric weights and int8 per-tensor
  (asymmetric) activations, with QUANTIZE/DEQUANTIZE around each quantized op, for the CONV_2D and
  FULLY_CONNECTED ops of the trunk blocks only (``options["int8_blocks"]``: e.g. ``"1-17"`` or a list of block
  indices, default every block). Kept float, and why: the stem (conv_spatial, linear_global, meta_encoder: raw
  input features and the residual stream's first values), every norm, activation and residual add (int8
  element-wise arithmetic on the residual stream compounds error), the attention QK^T / softmax / attention x V
  (BATCH_MATMUL and SOFTMAX: the logits' range is wide and the softmax is sharp), the trunk tip and both heads
  (the outputs themselves). Scopes come from the op's own location in the converted tensor names
  (``.../KataGoNet_net/...Block_<i>/...``). Calibration runs on up to ``options["calib_positions"]`` (default
  :data:`DEFAULT_CALIB_POSITIONS`) positions of ``req.calib.subset("calib")`` with min/max ranges averaged over
  batches (ai-edge-quantizer's default; a global min/max scored the same), collected by LiteRT's profiler
  (``options["calibration_mode"]="profiler"``, default) or from every intermediate tensor (``"all_tensors"``,
  ai-edge-quantizer's default: for b18c384nbt 9.7 GiB peak memory and 210 s instead of 1.3 GiB and 87 s; its
  ranges differ, worst KL 12.5x instead of 22x KataGo's limit, both far off). Clipping to the 99.99th
  percentile of ``|x|`` was tried and made KataGo nets 7x worse: their outliers carry signal.
  The result is then scored on up to ``options["val_positions"]`` (default :data:`DEFAULT_VAL_POSITIONS`, 0 skips
  it) validation positions against PyTorch FP32 with :func:`katadeploy.validate.metrics.compare` and written even
  when it misses KataGo's FP16 limits: ``details["int8"]["validation"]["passed"]`` says so (the small test nets
  and kata1-b18c384nbt miss them by a wide margin; even int8 weights alone exceed them).
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from katadeploy.artifact import OUTPUT_NAMES, input_names, io_specs
from katadeploy.errors import KatadeployError
from katadeploy.export.graph import ExportNet, example_inputs
from katadeploy.export.macs import Row, conv_macs, matmul_macs
from katadeploy.export.macs import summarize as summarize_macs
from katadeploy.export.request import ExportRequest
from katadeploy.extras import require
from katadeploy.files import staged
from katadeploy.model.desc import ModelDesc
from katadeploy.validate.positions import ValidationSet, calibration_split
from katadeploy.validate.scoring import calibration_scorer, worst_record

PRECISIONS = ("fp32", "fp16", "int8")
SIGNATURE_KEY = "serving_default"
#: FP32 self-check: largest allowed |LiteRT - torch| on any raw output
SELF_CHECK_TOL = 2e-3
DEFAULT_CALIB_POSITIONS = 256
DEFAULT_VAL_POSITIONS = 64
#: ai-edge-quantizer calibration modes: LiteRT's profiler (min/max tracked in C++) or every intermediate tensor kept
CALIBRATION_MODES = {
    "profiler": lambda m: m.CALIBRATION_PROFILER_BASED,
    "all_tensors": lambda m: m.CALIBRATION_PRESERVE_ALL_TENSORS,
}
#: TFLite ops quantized to int8 inside the trunk blocks
INT8_OPS = ("CONV_2D", "FULLY_CONNECTED")
#: the op's own (last) location in a converted tensor name lies in trunk block ``<i>``; the scope string that
#: ai-edge-quantizer matches is ``name;`` and fused names join locations with ``;;``
_BLOCK_SCOPE = r"KataGoNet_net/katadeploy\.model\.net\.\w*Block_({blocks})(?:/[^;]*)?;\d*;$"
FLOAT_PARTS = {
    "stem": "conv_spatial, linear_global, meta_encoder: raw input features and the first residual values",
    "norms_activations_residual_adds": "element-wise ops on the residual stream stay float (int8 error compounds)",
    "attention_qk_softmax_v": "BATCH_MATMUL/SOFTMAX: wide logit range and a sharp softmax",
    "trunk_tip": "the last norm before the heads",
    "policy_head": "produces the outputs",
    "value_head": "produces the outputs",
}


# ---------------------------------------------------------------------------------------------- conversion
@contextlib.contextmanager
def _quiet(progress: bool) -> Iterator[None]:
    """litert-torch and ai-edge-quantizer print progress to stdout: send it to stderr (or nowhere)."""
    sink: Any = sys.stderr if progress else io.StringIO()
    with contextlib.redirect_stdout(sink):
        if progress:
            yield
        else:
            with contextlib.redirect_stderr(io.StringIO()):
                yield


def convert_fp32(req: ExportRequest, path: Path) -> dict[str, Any]:
    """Convert the FP32 graph for ``req`` to ``path``; returns the conversion details."""
    require("litert_torch", "tflite", "litert-torch")
    import litert_torch
    import torch

    net = ExportNet(req.model, exact=req.exact).eval()
    args = example_inputs(req.model, req.batch, req.nn_x, req.nn_y)
    t0 = time.perf_counter()
    req.log(f"tflite: converting {req.model.name} with litert-torch (batch {req.batch})")
    with _quiet(req.progress), torch.no_grad():
        edge = litert_torch.convert(net, args)
        edge.export(str(path))
    return {
        "converter": f"litert-torch {litert_torch.__version__}",
        "convert_seconds": round(time.perf_counter() - t0, 1),
    }


def _interpreter(path_or_bytes: Path | bytes, threads: int = 2) -> Any:
    interp = require("ai_edge_litert.interpreter", "tflite", "ai-edge-litert")
    if isinstance(path_or_bytes, Path):
        return interp.Interpreter(model_path=str(path_or_bytes), num_threads=threads)
    return interp.Interpreter(model_content=bytes(path_or_bytes), num_threads=threads)


def signature_map(req: ExportRequest, path: Path) -> dict[str, dict[str, str]]:
    """Map our input/output names to the converted model's signature names, checking every shape."""
    runner = _interpreter(path).get_signature_runner(SIGNATURE_KEY)
    got_in = {k: [int(x) for x in v["shape"]] for k, v in runner.get_input_details().items()}
    got_out = {k: [int(x) for x in v["shape"]] for k, v in runner.get_output_details().items()}
    ins, outs = io_specs(req.model, req.nn_x, req.nn_y, req.batch)
    mapping = {
        "inputs": {t.name: f"args_{i}" for i, t in enumerate(ins)},
        "outputs": {name: f"output_{i}" for i, name in enumerate(OUTPUT_NAMES)},
    }
    for specs, names, got in ((ins, mapping["inputs"], got_in), (outs, mapping["outputs"], got_out)):
        if len(got) != len(specs):
            raise KatadeployError(f"litert-torch produced {sorted(got)}, expected {len(specs)} tensors")
        for spec in specs:
            if got.get(names[spec.name]) != spec.shape:
                raise KatadeployError(
                    f"litert-torch output mismatch: {names[spec.name]} has shape {got.get(names[spec.name])}, "
                    f"{spec.name} should be {spec.shape}"
                )
    return mapping


def run_signature(
    model: bytes | Path, mapping: dict[str, dict[str, str]], batch: int, feeds: dict[str, np.ndarray]
) -> list[np.ndarray]:
    """Run ``feeds`` (our input names, any number of rows) through the model, ``batch`` rows at a time."""
    runner = _interpreter(model).get_signature_runner(SIGNATURE_KEY)
    n = len(feeds["spatial"])
    parts: list[list[np.ndarray]] = []
    for i in range(0, n, batch):
        chunk = {k: v[i : i + batch] for k, v in feeds.items()}
        k = len(chunk["spatial"])
        if k < batch:
            idx = np.concatenate([np.arange(k), np.zeros(batch - k, dtype=np.int64)])
            chunk = {name: v[idx] for name, v in chunk.items()}
        out = runner(**{mapping["inputs"][name]: np.ascontiguousarray(v) for name, v in chunk.items()})
        parts.append([np.asarray(out[mapping["outputs"][o]], dtype=np.float32)[:k] for o in OUTPUT_NAMES])
    return [np.concatenate(p) for p in zip(*parts)]


def self_check(req: ExportRequest, path: Path, mapping: dict[str, dict[str, str]]) -> dict[str, float]:
    """Max |LiteRT - torch| per raw output on the example inputs; raises above :data:`SELF_CHECK_TOL`."""
    import torch

    args = example_inputs(req.model, req.batch, req.nn_x, req.nn_y)
    with torch.inference_mode():
        ref = [t.numpy() for t in ExportNet(req.model, exact=req.exact).eval()(*args)]
    feeds = dict(zip(input_names(req.model), (a.numpy() for a in args)))
    got = run_signature(path, mapping, req.batch, feeds)
    errors = {name: float(np.abs(a - b).max()) for name, a, b in zip(OUTPUT_NAMES, ref, got)}
    if max(errors.values()) > SELF_CHECK_TOL or not all(np.isfinite(list(errors.values()))):
        raise KatadeployError(
            f"{req.model.name}: the converted TFLite model disagrees with PyTorch: {errors}"
        )
    return errors


def op_histogram(model: bytes | Path) -> dict[str, int]:
    interp = _interpreter(model)
    return dict(sorted(Counter(op["op_name"] for op in interp._get_ops_details()).items()))


def tensor_dtypes(model: bytes | Path) -> dict[str, int]:
    interp = _interpreter(model)
    return dict(sorted(Counter(np.dtype(t["dtype"]).name for t in interp.get_tensor_details()).items()))


_MAC_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "BATCH_MATMUL")
_ROLE_PARTS = (
    ("policy_head", "policy_head"), ("value_head", "value_head"), ("conv_spatial", "stem"),
    ("linear_global", "stem"), ("meta_encoder", "stem"), ("Block", "trunk"),
)  # fmt: skip


def mac_rows(model: bytes | Path) -> list[Row]:
    """One :mod:`katadeploy.export.macs` row per convolution / fully-connected / batch-matmul op: MACs per
    position (the batch is the output's first dimension) and whether its weights (or both inputs) are int8."""
    interp = _interpreter(model)
    tensors = {t["index"]: t for t in interp.get_tensor_details()}
    rows: list[Row] = []
    for op in interp._get_ops_details():
        kind = op["op_name"]
        if kind not in _MAC_OPS or len(op["inputs"]) < 2:
            continue
        a, w, out = (tensors[op["inputs"][0]], tensors[op["inputs"][1]], tensors[op["outputs"][0]])
        out_shape, w_shape = [int(x) for x in out["shape"]], [int(x) for x in w["shape"]]
        if kind == "DEPTHWISE_CONV_2D":
            macs = conv_macs(out_shape, [1, *w_shape[1:3]])
        elif kind == "CONV_2D":
            macs = conv_macs(out_shape, w_shape)
        elif kind == "FULLY_CONNECTED":
            macs = matmul_macs(out_shape, w_shape[-1])
        else:
            macs = matmul_macs(out_shape, int(a["shape"][-1]))
        name = str(out["name"]).split(";;")[-1]
        role = next((r for part, r in _ROLE_PARTS if part in name), "other")
        int8 = np.dtype(w["dtype"]) == np.int8 and np.dtype(a["dtype"]) in (np.int8, np.int16)
        rows.append((name, role, macs, bool(int8)))
    return rows


# ---------------------------------------------------------------------------------------------- FP16
def float16_weights(fp32: Path) -> tuple[bytes, dict[str, Any]]:
    require("ai_edge_quantizer", "tflite", "ai-edge-quantizer")
    from ai_edge_quantizer import qtyping, quantizer
    from ai_edge_quantizer.algorithm_manager import AlgorithmName

    qt = quantizer.Quantizer(str(fp32))
    qt.add_weight_only_config(
        regex=".*", operation_name=qtyping.TFLOperationName.ALL_SUPPORTED, num_bits=16,
        algorithm_key=AlgorithmName.FLOAT_CASTING,
    )  # fmt: skip
    result = qt.quantize(enable_progress_report=False, enable_progress_bar=False)
    data = bytes(result.quantized_model)
    return data, {
        "fp16": {
            "method": "ai-edge-quantizer float_casting (TFLite float16 weight quantization)",
            "weights": "float16, DEQUANTIZE to float32 at run time",
            "arithmetic": "float32 (XNNPACK on CPU)",
            "ops": "every CONV_2D and FULLY_CONNECTED",
        }
    }


# ---------------------------------------------------------------------------------------------- INT8
def parse_blocks(spec: Any, n_blocks: int) -> list[int]:
    """``None``/``"all"`` -> every block; ``"1-3,7"`` or ``[1, 2, 3, 7]`` -> those block indices."""
    if spec is None or spec == "all":
        return list(range(n_blocks))
    items: list[int] = []
    parts = spec.split(",") if isinstance(spec, str) else list(spec)
    try:
        for part in parts:
            if isinstance(part, str) and "-" in part.strip()[1:]:
                lo, hi = part.split("-", 1)
                items.extend(range(int(lo), int(hi) + 1))
            elif str(part).strip():
                items.append(int(part))
    except ValueError:
        raise KatadeployError(
            f"int8_blocks {spec!r}: expected 'all', 'A-B,C' or a list of block indices"
        ) from None
    bad = [b for b in items if not 0 <= b < n_blocks]
    if bad or not items:
        raise KatadeployError(f"int8_blocks {spec!r}: the net has blocks 0-{n_blocks - 1}")
    return sorted(set(items))


def block_scope(blocks: list[int]) -> str:
    return _BLOCK_SCOPE.format(blocks="|".join(str(b) for b in blocks))


def _quantizer(fp32: Path, scope: str) -> Any:
    from ai_edge_quantizer import qtyping, quantizer

    qt = quantizer.Quantizer(str(fp32))
    for op in INT8_OPS:
        qt.add_static_config(scope, qtyping.TFLOperationName(op), activation_num_bits=8, weight_num_bits=8)
    return qt


def _feeds(
    positions: ValidationSet, mapping: dict[str, dict[str, str]], batch: int
) -> list[dict[str, np.ndarray]]:
    """Signature feeds of exactly ``batch`` rows (the last one padded) for ai-edge-quantizer's calibration."""
    ours = {"spatial": positions.spatial, "global": positions.global_}
    if positions.meta is not None:
        ours["meta"] = positions.meta
    out = []
    for i in range(0, len(positions), batch):
        chunk = {k: v[i : i + batch] for k, v in ours.items()}
        k = len(chunk["spatial"])
        if k < batch:
            idx = np.concatenate([np.arange(k), np.zeros(batch - k, dtype=np.int64)])
            chunk = {name: v[idx] for name, v in chunk.items()}
        out.append({mapping["inputs"][name]: np.ascontiguousarray(v) for name, v in chunk.items()})
    return out


def validate_int8(
    req: ExportRequest, data: bytes, mapping: dict[str, dict[str, str]], n_val: int
) -> dict[str, Any] | None:
    """KataGo ``testgpuerror`` statistics of the INT8 model against PyTorch FP32 on validation positions, run
    through the LiteRT evaluator exactly as the final artifact will be."""
    if n_val == 0:
        return None
    from katadeploy.artifact import candidate_manifest
    from katadeploy.runtime.litert_runtime import LiteRTEvaluator

    scorer = calibration_scorer(
        req.model, req.calib, "int8", exact=req.exact, limit=n_val, source=str(req.calib_path or "calibration")
    )
    req.log(f"int8: checking against PyTorch FP32 on {len(scorer)} validation positions")
    with tempfile.TemporaryDirectory(prefix="katadeploy-tflite-") as tmpdir:
        path = Path(tmpdir) / "candidate.tflite"
        path.write_bytes(data)
        manifest = candidate_manifest(
            req.model, req.nn_x, req.nn_y, "tflite", "int8", path, exact=req.exact, batch=req.batch
        )
        manifest.details["signature"] = mapping
        _, metrics = scorer.score(LiteRTEvaluator(path, manifest))
    worst = worst_record(metrics, "int8")
    passed = bool(metrics.passed("int8"))
    req.log(
        f"int8: worst {worst['metric']} {worst['stat']} at {worst['ratio']:.2f}x KataGo's FP16 limit"
        + ("" if passed else " -- WARNING: misses KataGo's FP16 error limits")
    )
    return {
        "positions": len(scorer),
        "passed": passed,
        "worst": worst,
        "top1_agreement": float(metrics.top1),
    }


def quantize_int8(
    req: ExportRequest, fp32: Path, mapping: dict[str, dict[str, str]]
) -> tuple[bytes, dict[str, Any]]:
    if req.calib is None:
        raise KatadeployError(
            f"{req.target.name} needs calibration data (--calib, or the default bundled set)"
        )
    require("ai_edge_quantizer", "tflite", "ai-edge-quantizer")
    from ai_edge_quantizer.calibrator import CalibrationMode

    model: ModelDesc = req.model
    blocks = parse_blocks(req.options.get("int8_blocks"), len(model.trunk.blocks))
    scope = block_scope(blocks)
    n_calib = int(req.options.get("calib_positions", DEFAULT_CALIB_POSITIONS))
    n_val = int(req.options.get("val_positions", DEFAULT_VAL_POSITIONS))
    if n_calib < 1 or n_val < 0:
        raise KatadeployError("calib_positions must be positive and val_positions not negative")
    mode = str(req.options.get("calibration_mode", "profiler")).lower()
    if mode not in CALIBRATION_MODES:
        raise KatadeployError(f"unknown calibration_mode {mode!r}; use {' or '.join(CALIBRATION_MODES)}")
    calib = calibration_split(
        req.calib, "calib", model, exact=req.exact, limit=n_calib, source=str(req.calib_path or "calibration")
    )
    t0 = time.perf_counter()
    qt = _quantizer(fp32, scope)
    req.log(f"int8: calibrating trunk blocks {_span(blocks)} on {len(calib)} positions")
    with _quiet(req.progress):
        qsvs = qt.calibrate(
            {SIGNATURE_KEY: _feeds(calib, mapping, req.batch)},
            num_threads=max(1, min(4, os.cpu_count() or 1)),
            mode=CALIBRATION_MODES[mode](CalibrationMode),
        )
        data = bytes(
            qt.quantize(qsvs, enable_progress_report=False, enable_progress_bar=False).quantized_model
        )
    calib_seconds = time.perf_counter() - t0
    ops = op_histogram(data)
    if not ops.get("QUANTIZE"):
        raise KatadeployError(f"{model.name}: no trunk convolution was quantized (blocks {_span(blocks)})")
    return data, {
        "int8": {
            "quantizer": "ai-edge-quantizer static, min/max calibration (moving average over batches)",
            "weights": "int8 symmetric per-channel",
            "activations": "int8 asymmetric per-tensor, QUANTIZE/DEQUANTIZE around each quantized op",
            "op_types": list(INT8_OPS),
            "blocks": blocks,
            "scope_regex": scope,
            "float": FLOAT_PARTS,
            "calibration_mode": mode,
            "calibration_positions": len(calib),
            "calibration_seconds": round(calib_seconds, 1),
            "validation": validate_int8(req, data, mapping, n_val),
            "quantize_ops": ops.get("QUANTIZE", 0),
            "dequantize_ops": ops.get("DEQUANTIZE", 0),
        }
    }


def _span(blocks: list[int]) -> str:
    if blocks == list(range(blocks[0], blocks[-1] + 1)):
        return f"{blocks[0]}-{blocks[-1]}"
    return ",".join(map(str, blocks))


# ---------------------------------------------------------------------------------------------- export
def export(req: ExportRequest) -> Path:
    precision = req.target.precision
    if precision not in PRECISIONS:
        raise KatadeployError(f"tflite targets are {', '.join('tflite-' + p for p in PRECISIONS)}")
    path = req.artifact_path()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="katadeploy-tflite-", dir=req.out_dir) as tmpdir:
        fp32 = Path(tmpdir) / "fp32.tflite"
        details: dict[str, Any] = convert_fp32(req, fp32)
        mapping = signature_map(req, fp32)
        details["signature"] = {"key": SIGNATURE_KEY, **mapping}
        details["self_check"] = {
            "max_abs_error_vs_torch_fp32": self_check(req, fp32, mapping),
            "positions": req.batch,
        }
        if precision == "fp32":
            data = fp32.read_bytes()
        elif precision == "fp16":
            with _quiet(req.progress):
                data, extra = float16_weights(fp32)
            details.update(extra)
        else:
            data, extra = quantize_int8(req, fp32, mapping)
            details.update(extra)
        with staged(path) as tmp:
            tmp.write_bytes(data)
            details["ops"] = op_histogram(tmp)
            details["tensor_dtypes"] = tensor_dtypes(tmp)
            details["export_seconds"] = round(time.perf_counter() - t0, 1)
    quantization = None
    if precision == "int8":
        recipe = f"ai-edge-quantizer static int8, trunk blocks {details['int8'].get('blocks')}"
        quantization = summarize_macs(mac_rows(path), recipe)
    ins, outs = io_specs(req.model, req.nn_x, req.nn_y, req.batch)
    manifest = req.manifest(
        path, ins, outs, batch={"fixed": req.batch}, details=details, quantization=quantization
    )
    req.log(f"tflite: wrote {path} ({path.stat().st_size / 2**20:.1f} MiB, {details['export_seconds']} s)")
    return req.finish(path, manifest)
