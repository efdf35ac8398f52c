"""INT8 ONNX graphs: static QDQ quantization with onnxruntime, calibrated on real positions of every board size.

Contract: :func:`quantize_int8` ``(req, proto, path)`` turns the folded FP32 graph (:func:`katadeploy.export.onnx
.build_fp32`) into a QDQ graph at ``path`` and returns its details. The recipe:

- ``quant_pre_process`` (symbolic shape inference + onnxruntime's basic graph optimisation, which folds each
  convolution's following BatchNorm affine into it), then ``quantize_static`` with ``QuantFormat.QDQ``, per-channel
  symmetric QInt8 weights and asymmetric QUInt8 activations (the default: every trunk conv input is a Mish/ReLU
  output, see :data:`ACTIVATIONS`; ``options["int8_activations"] = "s8"`` for symmetric QInt8, which TensorRT's
  explicit quantization needs and ``tensorrt-int8`` sets), on the ``Conv``/``MatMul``/``Gemm`` nodes of the trunk.
  Activation Q/DQ pairs sit on the inputs of those nodes (``options["int8_placement"] = "inputs"``, the default:
  TensorRT's recommended placement, with ~4x smaller policy errors than also quantizing outputs on the test nets)
  or on their inputs and outputs (``"inputs+outputs"``, which lets onnxruntime's CPU EP fuse some QLinearConv).
- Kept float (by module scope, :func:`katadeploy.export.node_roles.node_role`): the stem (initial conv, global linear,
  meta encoder), every norm (BatchNorm affine, RMSNorm, trunk tip), the attention softmax and the QK^T / attention
  x V matmuls, both heads, and the global-pooling linear layers (role ``gpool_linear``, :data:`GPOOL_LINEAR`;
  ``options["int8_gpool_float"] = false`` quantizes them); plus any module scope listed in
  ``options["int8_float_scopes"]`` (for example ``convg`` or ``blocks.3/conv1``, role ``fallback``). Activations,
  residual adds and norms are never quantized (only the listed op types are); ``details["int8"]["float_nodes"]``
  summarises the convolution-type nodes left in float by role.
- Calibration: one pass over up to ``options["calib_positions"]`` (default :data:`DEFAULT_CALIB_POSITIONS`)
  positions of ``req.calib.subset("calib")`` (read through :class:`CalibrationReader`; full-board positions only for
  exact-board graphs; the bundled default holds 7x7, 9x9, 13x13, 19x19 and 9x13 positions in equal shares) records,
  for every tensor the quantizer needs, its min/max (MinMax), a 2048-bin histogram of ``|x|`` (Percentile,
  99.999%) and a 512-bin signed histogram (Entropy: onnxruntime's KL threshold search over 128 quantized bins).
- ``smooth-gptq`` (the default method, :mod:`katadeploy.export.int8_repair`): per-channel smoothing of each node's
  input (``options["int8_smooth_alpha"]``, default 0.5), MSE activation ranges, and GPTQ-rounded INT8 weights
  written into the QDQ graph after ``quantize_static`` (``options["int8_bias_correction"]``: empirical bias
  correction, off by default: it made the policy worse on g170-b6c96). ``options["int8_act_groups"]`` K > 1 splits
  every repaired conv into K convs over channel groups (default 16, :data:`katadeploy.export.int8_groups
  .DEFAULT_ACT_GROUPS`; 1 is one u8 scale per conv input), each input group with its own u8 scale and each weight
  group with its own per-channel scale (still all int8 MACs; see int8_repair's "Activation groups");
  ``options["int8_group_scopes"]`` limits that to the convs inside the listed module scopes (``blocks.11,blocks.12``);
  ``options["int8_group_floor"]`` (default 0.5) keeps each group's range at least that share of its layer's span;
  ``options["int8_group_margin"]`` (default 1.15) first stretches each group's range that many times;
  ``options["int8_hessian_positions"]`` caps the positions of GPTQ's Hessians (default 0: all the calibration
  positions). These defaults are the recipe that passed KataGo's FP16 gate on g170-b6c96 for three calibration seeds
  (:mod:`katadeploy.export.int8_groups`). The plain range methods ``minmax``, ``percentile`` and ``entropy`` can be
  listed in ``options["int8_methods"]`` too.
- QAT (``options["int8_qat"]``: ``auto``, the default, reuses cached weights; ``on`` trains; ``off``): distillation
  quantization-aware training of the ``smooth-gptq`` INT8 weights (:mod:`katadeploy.export.int8_qat`, recipe options
  ``int8_qat_steps/batch/lr/power/range_lr/bias_lr/positions``), cached per net sha256 and recipe, so ``katadeploy qat``
  trains once and ``export`` reuses it. The trained weights replace GPTQ's only when they score better on the
  validation split; ``details["int8"]["repair"]["qat"]`` records both scores and whether they were used.
- ``quantization["onnxruntime_cpu"]`` (:func:`onnxruntime_cpu`): the share of MACs onnxruntime's CPU provider
  really runs in int8 on the exporting machine. The graph's ``int8_mac_fraction`` counts what is quantized, which
  OpenVINO and TensorRT run in int8; onnxruntime 1.32 fuses no input-only QDQ ``Conv`` into an integer kernel (it
  dequantizes and convolves in float), so on the CPU provider that share is far lower (0% on g170-b6c96).
- Method choice: each candidate method is run with onnxruntime on up to ``options["val_positions"]`` (default
  :data:`DEFAULT_VAL_POSITIONS`) positions of the validation split and scored against the PyTorch FP32 reference
  with :func:`katadeploy.validate.metrics.compare` + ``selection_loss(metrics, "int8")``; ties (0 = comfortably
  inside KataGo's FP16 limits) go to the smaller worst limit ratio. With ``options["int8_per_board"]`` (default on)
  the score is the worst of the whole split's and each board size's own statistics, so 19x19 must pass by itself.
- Per-layer fallback (``options["mixed_precision"]``, default on; ``export --no-int8-fallback`` turns it off):
  when the chosen graph misses the limits on the validation split, :func:`katadeploy.export.int8_fallback
  .accuracy_fallback` returns single layers to float, ranked by the same score (``options["int8_fallback_rank"]
  =energy``: by the error energy each removes per float MAC), until it passes (with ``options["int8_margin"]`` < 1:
  it runs and goes on until its worst ratio is at most that), at most
  ``options["int8_fallback_layers"]`` (12) layers, never below ``options["int8_min_fraction"]`` (0.8) of the MACs
  in int8. The per-method losses, the fallback's ranking and steps, and the winner are recorded; the winner is
  written even when it misses the limits (``passed`` says so, validation decides).

Measured against PyTorch FP32 (2026-12-07, the bundled every-size calibration, these defaults; worst ratio to
KataGo's FP16 limits; scripts/reports/int8/groups/README.md "The default"): g170-b6c96 without the fallback
**passes** at 94% int8 MACs (oracle 0.72x on a Zen 4, 0.85x on a Zen 3; and every one of four position sets on
three calibration seeds); g170e-b15c192 misses: oracle 1.73x / 256 held-out 2.07x at 99% int8 MACs without the
fallback, 1.56x / 1.62x with it (one conv returned to float, 95% int8 MACs; policy KL on 19x19 game positions of
moves 2-40 each time), export 17 min on 2 AMD EPYC Zen 4 cores. (2026-12-03, per tensor with the fallback: b6 1.07x at 80%, b15 4.84x at 85%; plain
MinMax/Percentile/Entropy on 19x19-only calibration: 9.3x and 221x.)
"""

from __future__ import annotations

import contextlib
import math
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from katadeploy.errors import KatadeployError
from katadeploy.export import int8_repair
from katadeploy.export.int8_groups import GroupSpec, group_spec, in_scopes, scope_list, scoped_nodes
from katadeploy.export.macs import onnx_macs
from katadeploy.export.macs import summarize as summarize_macs
from katadeploy.export.node_roles import node_role, summarize_nodes
from katadeploy.export.request import ExportRequest
from katadeploy.extras import require
from katadeploy.files import staged
from katadeploy.model.desc import ModelDesc
from katadeploy.progress import Progress
from katadeploy.validate.positions import ValidationSet, calibration_split
from katadeploy.validate.scoring import calibration_scorer, worst_record

CHUNK = 8  # calibration positions per onnxruntime batch

#: range methods; ``smooth-gptq`` is :mod:`katadeploy.export.int8_repair` (smoothing, MSE ranges, GPTQ weights)
METHODS = ("minmax", "percentile", "entropy", "smooth-gptq")
REPAIR = "smooth-gptq"
DEFAULT_METHODS = (REPAIR,)
PLAIN_METHODS = ("minmax", "percentile", "entropy")
QUANT_OPS = ("Conv", "MatMul", "Gemm")
#: node roles whose Conv/MatMul/Gemm stay float
FLOAT_ROLES = (
    "stem", "norm_bn", "norm_rms", "trunk_tip", "attention_softmax", "attention_matmul",
    "policy_head", "value_head", "other", "gpool_linear",
)  # fmt: skip
#: the global-pooling branch's linear layer (``blocks.N/linear_g``): its input mixes channel means, maxima and the
#: board-size terms, its MACs are ~0.01% of a net's, and on g170-b6c96 quantizing it alone cost 0.3x of the KL
#: limit (smooth-gptq + fallback, 2026-12-03), so it stays float unless ``int8_gpool_float=false``
GPOOL_LINEAR = "linear_g"
#: every calibration position of the bundled every-size default set (1024 positions, a quarter held out): on
#: g170-b6c96 768 passed where 256 left single unseen positions clipped, and 1536-2304 of a wider set coarsened every
#: group (scripts/reports/int8/groups/README.md)
DEFAULT_CALIB_POSITIONS = 768
DEFAULT_VAL_POSITIONS = 128
#: where activations get Q/DQ: the inputs of each quantized node (TensorRT's recommended placement, and 4x smaller
#: policy errors on the test nets) or also its outputs (lets onnxruntime's CPU EP fuse QLinearConv)
PLACEMENTS = ("inputs", "inputs+outputs")
#: activation encodings: ``u8`` asymmetric (the default: every trunk conv input is a Mish/ReLU output that never
#: goes far below 0, so symmetric int8 wastes half its codes; onnxruntime and OpenVINO run u8 x s8 kernels) or ``s8``
#: symmetric (what TensorRT's explicit quantization requires). Measured on g170-b6c96 (2026-12-02, oracle positions,
#: MinMax ranges from a self-play calibration of 7x7-19x19 + 9x13): u8 5.0x KataGo's FP16 KL limit against s8
#: 24.7x; smooth-gptq on the same data: u8 1.39x, s8 3.51x.
ACTIVATIONS = ("u8", "s8")
DEFAULT_ACTIVATIONS = "u8"
PERCENTILE = 99.999
PERCENTILE_BINS = 2048
ENTROPY_BINS = 512
ENTROPY_QUANT_BINS = 128


# ---------------------------------------------------------------------------------------------- data
def _ort_quant() -> Any:
    require("onnxruntime", "onnx")
    import onnxruntime.quantization as q

    return q


class CalibrationReader:
    """onnxruntime ``CalibrationDataReader`` over calibration positions, ``chunk`` positions per batch."""

    def __init__(self, positions: ValidationSet, chunk: int = CHUNK):
        self.spatial, self.global_, self.meta = positions.spatial, positions.global_, positions.meta
        self.chunk = chunk
        self.pos = 0

    def __len__(self) -> int:
        return math.ceil(len(self.spatial) / self.chunk)

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.pos >= len(self.spatial):
            return None
        sl = slice(self.pos, self.pos + self.chunk)
        self.pos += self.chunk
        feed = {"spatial": self.spatial[sl], "global": self.global_[sl]}
        if self.meta is not None:
            feed["meta"] = self.meta[sl]
        return feed

    def rewind(self) -> None:
        self.pos = 0


def _reader_class() -> type:
    q = _ort_quant()

    class Reader(CalibrationReader, q.CalibrationDataReader):  # registered as onnxruntime's reader type
        pass

    return Reader


# ---------------------------------------------------------------------------------------------- statistics
class AbsHistogram:
    """Histogram of ``|x|`` on uniform bins over ``[0, top]``, widened in whole bins as larger values arrive."""

    def __init__(self, bins: int):
        self.bins = bins
        self.hist: np.ndarray | None = None
        self.top = 0.0

    def add(self, x: np.ndarray) -> None:
        a = np.abs(x.ravel())
        amax = float(a.max()) if a.size else 0.0
        if self.hist is None:
            self.top = amax if amax > 0 else 1e-8
            self.hist = np.histogram(a, self.bins, range=(0.0, self.top))[0].astype(np.int64)
            return
        width = self.top / len(self.hist)
        if amax > self.top:
            extra = int(math.ceil((amax - self.top) / width))
            self.hist = np.concatenate([self.hist, np.zeros(extra, dtype=np.int64)])
            self.top = width * len(self.hist)
        self.hist += np.histogram(a, len(self.hist), range=(0.0, self.top))[0]

    def percentile(self, p: float) -> float:
        assert self.hist is not None
        cdf = np.cumsum(self.hist) / max(int(self.hist.sum()), 1)
        i = int(np.searchsorted(cdf, p / 100.0))
        width = self.top / len(self.hist)
        return min(self.top, (i + 1) * width)


class RangeCollector:
    """Per-tensor statistics for the three calibration methods from one pass over the data."""

    def __init__(self, tensors: list[str], methods: tuple[str, ...]):
        q = _ort_quant()
        self.tensors, self.methods = tensors, methods
        self.lo = {t: np.float32(np.inf) for t in tensors}
        self.hi = {t: np.float32(-np.inf) for t in tensors}
        self.abs_hist = {t: AbsHistogram(PERCENTILE_BINS) for t in tensors} if "percentile" in methods else {}
        self.entropy = (
            q.calibrate.HistogramCollector(
                "entropy", True, ENTROPY_BINS, ENTROPY_QUANT_BINS, PERCENTILE, "same"
            )
            if "entropy" in methods
            else None
        )

    def add(self, values: dict[str, np.ndarray]) -> None:
        for t in self.tensors:
            x = values[t]
            if x.size == 0:
                continue
            self.lo[t] = min(self.lo[t], np.float32(x.min()))
            self.hi[t] = max(self.hi[t], np.float32(x.max()))
            if t in self.abs_hist:
                self.abs_hist[t].add(x)
        if self.entropy is not None:
            self.entropy.collect_value({t: values[t].astype(np.float32, copy=False) for t in self.tensors})

    def ranges(self, method: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        out = {}
        for t in self.tensors:
            lo, hi = np.float32(self.lo[t]), np.float32(self.hi[t])
            if method == "percentile":
                th = np.float32(self.abs_hist[t].percentile(PERCENTILE))
                lo, hi = np.float32(max(lo, -th)), np.float32(min(hi, th))
            elif method == "entropy":
                assert self.entropy is not None
                with contextlib.redirect_stdout(sys.stderr):
                    lo_e, hi_e = self.entropy.get_entropy_threshold(
                        self.entropy.histogram_dict[t], ENTROPY_QUANT_BINS
                    )
                lo, hi = np.float32(lo_e), np.float32(hi_e)
            out[t] = (np.array(lo, dtype=np.float32), np.array(hi, dtype=np.float32))
        return out


# ---------------------------------------------------------------------------------------------- graph analysis
def int8_role(name: str, op_type: str, model: ModelDesc, gpool_float: bool = True) -> str:
    """:func:`node_role`, with the global-pooling linear layers as ``gpool_linear`` when they stay float."""
    role = node_role(name, op_type, model)
    if gpool_float and role == "trunk" and f"/{GPOOL_LINEAR}/" in name:
        return "gpool_linear"
    return role


def plan_nodes(
    proto: Any, model: ModelDesc, outputs: bool = False, float_scopes: Sequence[str] = (), gpool_float: bool = True
) -> tuple[list[str], list[tuple[str, str, str]], list[str]]:
    """``(nodes to quantize, float nodes of the quantizable op types as (name, op, role), tensors to
    calibrate)`` for a pre-processed graph. Nodes inside any of ``float_scopes`` (module paths such as
    ``blocks.2/convg`` or just ``convg``) stay float too, with role ``fallback``."""
    inits = {i.name for i in proto.graph.initializer}
    quantize, kept, tensors = [], [], []
    seen: set[str] = set()
    for n in proto.graph.node:
        if n.op_type not in QUANT_OPS:
            continue
        role = int8_role(n.name, n.op_type, model, gpool_float)
        if role not in FLOAT_ROLES and in_scopes(n.name, float_scopes):
            role = "fallback"
        if role in FLOAT_ROLES or role == "fallback":
            kept.append((n.name, n.op_type, role))
            continue
        quantize.append(n.name)
        for t in [
            *n.input[:1],
            *(n.input[1:2] if n.op_type == "MatMul" else []),
            *(n.output if outputs else []),
        ]:
            if t and t not in inits and t not in seen:
                seen.add(t)
                tensors.append(t)
    return quantize, kept, tensors


def _augmented(proto: Any, tensors: list[str]) -> bytes:
    from onnx import TensorProto, helper

    aug = type(proto)()
    aug.CopyFrom(proto)
    outs = {o.name for o in aug.graph.output}
    for t in tensors:
        if t not in outs:
            aug.graph.output.append(helper.make_tensor_value_info(t, TensorProto.FLOAT, None))
    return aug.SerializeToString()


def tidy(proto: Any) -> None:
    """Drop the opset imports no node uses (the optimiser adds onnxruntime's private domains) and mark the
    producer, so the file stays a plain ONNX graph for other runtimes."""
    from katadeploy import __version__

    used = {n.domain for n in proto.graph.node} | {""}
    keep = [o for o in proto.opset_import if o.domain in used or (o.domain == "ai.onnx" and "" in used)]
    del proto.opset_import[:]
    proto.opset_import.extend(keep)
    proto.producer_name, proto.producer_version = "katadeploy", __version__


def _session(ort: Any, model: Any, threads: int | None = None) -> Any:
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    if threads:
        so.intra_op_num_threads = threads
    return ort.InferenceSession(
        str(model) if isinstance(model, Path) else model, so, providers=["CPUExecutionProvider"]
    )


def collect_ranges(
    proto: Any, tensors: list[str], reader: CalibrationReader, methods: tuple[str, ...], progress: bool
) -> RangeCollector:
    ort = require("onnxruntime", "onnx")
    sess = _session(ort, _augmented(proto, tensors))
    collector = RangeCollector(tensors, methods)
    reader.rewind()
    with Progress(len(reader.spatial), "int8 calibration", quiet=not progress) as bar:
        while (feed := reader.get_next()) is not None:
            values = sess.run(tensors, feed)
            collector.add(dict(zip(tensors, values)))
            bar.advance(len(feed["spatial"]))
    return collector


# ---------------------------------------------------------------------------------------------- quantize + select
def _quantize(
    pre: Path,
    out: Path,
    method: str,
    ranges: dict,
    quantize: list[str],
    tmp: Path,
    outputs: bool,
    activations: str = "u8",
) -> None:
    """``quantize_static`` with ranges computed beforehand (its calibration cache, onnxruntime >= 1.26; older
    releases get the same ``QDQQuantizer`` call that ``quantize_static`` makes)."""
    import inspect

    q = _ort_quant()
    enum = {"minmax": q.CalibrationMethod.MinMax, "percentile": q.CalibrationMethod.Percentile,
            "entropy": q.CalibrationMethod.Entropy}[method]  # fmt: skip
    data = {t: q.calibrate.TensorData(lowest=lo, highest=hi) for t, (lo, hi) in ranges.items()}
    tensors = q.calibrate.TensorsData(enum, data)
    act_type = q.QuantType.QUInt8 if activations == "u8" else q.QuantType.QInt8
    extra = {
        "ActivationSymmetric": activations == "s8",
        "WeightSymmetric": True,
        **({} if outputs else {"OpTypesToExcludeOutputQuantization": list(QUANT_OPS)}),
    }
    if "calibration_cache_path" in inspect.signature(q.quantize_static).parameters:
        cache = tmp / f"ranges-{method}.json"
        q.calibrate.save_tensors_data(tensors, cache)
        q.quantize_static(
            str(pre), str(out), calibration_data_reader=None, calibration_cache_path=str(cache),
            quant_format=q.QuantFormat.QDQ, op_types_to_quantize=list(QUANT_OPS), nodes_to_quantize=quantize,
            per_channel=True, activation_type=act_type, weight_type=q.QuantType.QInt8,
            calibrate_method=enum, extra_options=extra,
        )  # fmt: skip
        return
    from onnxruntime.quantization.qdq_quantizer import QDQQuantizer
    from onnxruntime.quantization.quant_utils import load_model_with_shape_infer

    quantizer = QDQQuantizer(
        load_model_with_shape_infer(pre), True, False, q.QuantType.QInt8, act_type, tensors, quantize,
        [], list(QUANT_OPS), extra,
    )  # fmt: skip
    quantizer.quantize_model()
    quantizer.model.save_model_to_file(str(out), False)


def _repaired(
    req: ExportRequest,
    pre_proto: Any,
    quantize: list[str],
    reader: CalibrationReader,
    collector: RangeCollector,
    tmp: Path,
    out: Path,
    outputs: bool,
    activations: str,
    act_groups: int = 1,
    group_nodes: list[str] | None = None,
    group_floor: float = 0.0,
    group_margin: float = 1.0,
    group_tail: float = 0.0,
) -> tuple[dict[str, Any], Any, Any]:
    """The ``smooth-gptq`` candidate (its summary, the smoothed float graph and the :class:`~katadeploy.export
    .int8_repair.Repair`): :func:`katadeploy.export.int8_repair.plan_repair` on the pre-processed graph,
    ``quantize_static`` of the smoothed graph with the repaired ranges (min-max for any other tensor), then the
    GPTQ weights written into the QDQ graph."""
    import onnx

    ort = require("onnxruntime", "onnx")

    def streamer(positions: CalibrationReader) -> int8_repair.TensorRun:
        def run(tensors: list[str], label: str) -> Any:
            sess = _session(ort, _augmented(pre_proto, tensors))
            positions.rewind()
            with Progress(len(positions.spatial), label, quiet=not req.progress) as bar:
                while (feed := positions.get_next()) is not None:
                    yield dict(zip(tensors, sess.run(tensors, feed)))
                    bar.advance(len(feed["spatial"]))

        return run

    alpha = float(req.options.get("int8_smooth_alpha", int8_repair.DEFAULT_ALPHA))
    t0 = time.perf_counter()
    bias_correction = _flag(req.options.get("int8_bias_correction", False))
    hessian_run = None
    n_hess = int(req.options.get("int8_hessian_positions", 0) or 0)
    if 0 < n_hess < len(reader.spatial):  # evenly spread over the calibration positions, so every board size counts
        source = str(req.calib_path or "the calibration data")
        sub = calibration_split(req.calib, "calib", req.model, exact=req.exact, limit=n_hess, source=source)
        hessian_run = streamer(_reader_class()(sub))
    repair = int8_repair.plan_repair(pre_proto, quantize, streamer(reader), activations, alpha, req.progress,
                                     bias_correction, act_groups, hessian_run, group_nodes,
                                     group_floor, group_margin, group_tail)  # fmt: skip
    smoothed = tmp / "pre-smoothed.onnx"
    onnx.save(repair.proto, str(smoothed))
    ranges = {**collector.ranges("minmax"), **repair.ranges}
    with contextlib.redirect_stdout(sys.stderr):
        _quantize(smoothed, out, "minmax", ranges, repair.quantize_names(quantize), tmp, outputs, activations)
    qdq = onnx.load(str(out))
    patched = int8_repair.apply_weights(qdq, repair)
    onnx.save(qdq, str(out))
    summary = {**repair.summary(), "patched_nodes": patched, "seconds": round(time.perf_counter() - t0, 2)}
    return summary, repair.proto, repair


#: ``options["int8_qat"]``: ``auto`` (the default) reuses weights that ``katadeploy qat`` trained for this net and
#: recipe when they are cached, ``on`` trains them when they are not, ``off`` never uses QAT
QAT_MODES = ("auto", "on", "off")


def _qat_mode(req: ExportRequest) -> str:
    """``options["int8_qat"]``: one of :data:`QAT_MODES`; a boolean (or a boolean word, read by :func:`_flag`)
    means ``on``/``off``."""
    raw = req.options.get("int8_qat", "auto")
    mode = str(raw).lower()
    if mode in QAT_MODES:
        return mode
    if isinstance(raw, bool) or mode in _FLAG_WORDS:
        return "on" if _flag(raw) else "off"
    raise KatadeployError(f"unknown int8_qat {raw!r}; use {', '.join(QAT_MODES)}")


def _qat(
    req: ExportRequest, repair: Any, pre_proto: Any, out: Path, activations: str, scorer: Any, gptq_loss: float
) -> tuple[dict[str, Any], float, Any] | None:
    """Distillation QAT (:mod:`katadeploy.export.int8_qat`) of the ``smooth-gptq`` weights in ``out``, trained or
    taken from the cache; the trained weights replace the GPTQ ones only when they score better on the validation
    split. Returns the QAT record with the loss and metrics of the graph now in ``out``, or None when QAT is off (or
    ``auto`` without a cache entry)."""
    import copy

    import onnx

    from katadeploy.export import int8_qat

    mode = _qat_mode(req)
    if mode == "off":
        return None
    recipe = int8_qat.Recipe.from_options(req.options)
    n_pos = int(req.options.get("int8_qat_positions", int8_qat.DEFAULT_POSITIONS))
    source = str(req.calib_path or "the calibration data")
    extra = {"calibration": getattr(req.calib, "sha256", None) or source, "positions": n_pos,
             "activations": activations, "exact": req.exact, "nn": [req.nn_x, req.nn_y]}  # fmt: skip
    key = int8_qat.cache_key(req.model_sha256, recipe, repair, extra)
    path = int8_qat.cache_path(req.model.name, key)
    if mode == "auto" and not path.exists():
        return None
    gptq_state = [(la.q, la.w_scale, la.a_scale, la.bias) for la in repair.layers]
    gptq_proto = copy.deepcopy(repair.proto)
    qdq = onnx.load(str(out))
    summary = int8_qat.load_cached(path, repair)
    if summary is not None:
        req.log(f"int8: QAT weights from the cache ({path})")
        record: dict[str, Any] = {**summary, "cached": str(path)}
    elif mode == "auto":
        return None
    else:
        positions = calibration_split(req.calib, "calib", req.model, exact=req.exact, limit=n_pos, source=source)
        result = int8_qat.train(req.model, repair, qdq, pre_proto, positions, recipe, req.exact, req.log,
                                req.progress)  # fmt: skip
        int8_qat.save_cached(path, repair, result)
        record = {**result.summary(), "cache": str(path)}
    int8_repair.apply_weights(qdq, repair)
    trial = out.with_name(out.stem + "-qat.onnx")
    onnx.save(qdq, str(trial))
    loss, metrics = scorer.score(_candidate(trial, req, req.options.get("threads")))
    record.update(val_loss=float(loss), val_loss_gptq=float(gptq_loss), worst=worst_record(metrics, "int8"))
    better = float(loss) < float(gptq_loss) or (float(loss) == float(gptq_loss) == 0.0)
    record["used"] = bool(better)
    if better:
        trial.replace(out)
        req.log(f"int8: QAT: loss {loss:.4f} on the validation split (smooth-gptq {gptq_loss:.4f}) <- used")
        return record, float(loss), metrics
    for la, (q, ws, a, b) in zip(repair.layers, gptq_state):
        la.q, la.w_scale, la.a_scale, la.bias = q, ws, a, b
    repair.proto.CopyFrom(gptq_proto)
    req.log(f"int8: QAT: loss {loss:.4f} on the validation split is no better than smooth-gptq's "
            f"{gptq_loss:.4f}; kept the GPTQ weights")  # fmt: skip
    return record, float(gptq_loss), None


def _candidate(path: Path, req: ExportRequest, threads: int | None) -> Any:
    """An onnxruntime evaluator for a candidate QDQ file (no sidecar yet), built like the final artifact's."""
    from katadeploy.artifact import candidate_manifest
    from katadeploy.runtime.onnx_runtime import OnnxEvaluator

    manifest = candidate_manifest(req.model, req.nn_x, req.nn_y, "onnx", "int8", path, exact=req.exact)
    return OnnxEvaluator(path, manifest, threads=threads)


def _fallback_nodes(proto: Any, floated: set[str]) -> list[tuple[str, str, str]]:
    return [(n.name, n.op_type, "fallback") for n in proto.graph.node if n.name in floated]


def _gpool_float(req: ExportRequest) -> bool:
    """``options["int8_gpool_float"]`` (default on): the global-pooling linear layers stay float."""
    return _flag(req.options.get("int8_gpool_float", True))


#: the words an option flag reads as false (:func:`_flag`) and, with their opposites, as a flag at all
_FALSE_WORDS = ("0", "false", "no", "off")
_FLAG_WORDS = (*_FALSE_WORDS, "1", "true", "yes", "on")


def _flag(raw: Any) -> bool:
    """An on/off option: a bool, or any word but :data:`_FALSE_WORDS` for on."""
    return raw if isinstance(raw, bool) else str(raw).lower() not in _FALSE_WORDS


def _mixed_precision(req: ExportRequest) -> bool:
    """``options["mixed_precision"]`` (default on; ``export --no-int8-fallback`` turns it off)."""
    return _flag(req.options.get("mixed_precision", True))


def _fallback(req: ExportRequest, qdq: Any, float_proto: Any, quantize: list[str], scorer: Any, tmp: Path) -> Any:
    """:func:`katadeploy.export.int8_fallback.accuracy_fallback` over the quantized nodes, scored like the
    method selection (each candidate written to ``tmp`` and loaded by onnxruntime)."""

    from katadeploy.export import int8_fallback

    model = req.model
    score = _proto_score(req, scorer, tmp / "int8-fallback.onnx")

    def fraction(proto: Any) -> float:
        return float(summarize_macs(onnx_macs(proto, lambda n, op: int8_role(n, op, model, _gpool_float(req))), "")[
            "int8_mac_fraction"
        ])

    return int8_fallback.accuracy_fallback(
        qdq, float_proto, quantize, score, fraction,
        min_fraction=float(req.options.get("int8_min_fraction", int8_fallback.DEFAULT_MIN_FRACTION)),
        max_layers=int(req.options.get("int8_fallback_layers", int8_fallback.DEFAULT_MAX_LAYERS)),
        margin=_margin(req),
        rank=str(req.options.get("int8_fallback_rank", int8_fallback.DEFAULT_RANK)),
        log=req.log, progress=req.progress, trials=_trials(req, qdq, float_proto, quantize, scorer, tmp),
    )  # fmt: skip


def _trials(req: ExportRequest, qdq: Any, float_proto: Any, quantize: list[str], scorer: Any, tmp: Path) -> Any:
    """``options["int8_trials"]``: ``graph`` (default) ranks the fallback's layers with a graph per trial (None
    here); ``session`` runs every trial in one switched session (:mod:`katadeploy.export.int8_switch`)."""
    from katadeploy.export import int8_switch

    mode = str(req.options.get("int8_trials", int8_switch.DEFAULT_TRIALS))  # checked by _check_fallback_options
    if mode == "graph":
        return None
    from katadeploy.artifact import candidate_manifest
    from katadeploy.runtime.onnx_runtime import OnnxEvaluator

    def evaluator(path: Path, extra: dict[str, Any]) -> Any:
        manifest = candidate_manifest(req.model, req.nn_x, req.nn_y, "onnx", "int8", path, exact=req.exact)
        return OnnxEvaluator(path, manifest, threads=req.options.get("threads"), extra_inputs=extra)

    rows = onnx_macs(qdq, lambda n, op: int8_role(n, op, req.model, _gpool_float(req)))
    req.log(f"int8 fallback: ranking trials in one switched session over {len(quantize)} layers")
    return int8_switch.FloatTrials(qdq, float_proto, quantize, tmp / "int8-switched.onnx", evaluator, scorer.score,
                                   rows)  # fmt: skip


def _check_fallback_options(req: ExportRequest) -> None:
    """Refuse a fallback option value no search knows before calibration starts, not after it (one line)."""
    from katadeploy.export.int8_fallback import DEFAULT_RANK, RANKS
    from katadeploy.export.int8_switch import DEFAULT_TRIALS, TRIALS

    for key, choices, default in (("int8_fallback_rank", RANKS, DEFAULT_RANK), ("int8_trials", TRIALS, DEFAULT_TRIALS)):
        value = str(req.options.get(key, default))
        if value not in choices:
            raise KatadeployError(f"unknown {key} {value!r}; use {' or '.join(choices)}")


def needs_fallback(chosen: dict[str, Any], margin: float) -> bool:
    """Whether the chosen candidate's record (``passed``, ``worst.ratio``) calls for the fallback: it misses the
    gate on the validation split, or passes with less headroom than ``margin`` (``int8_margin`` < 1) asks for."""
    return not (chosen["passed"] and chosen["worst"]["ratio"] is not None and chosen["worst"]["ratio"] <= margin)


def _margin(req: ExportRequest) -> float:
    """``options["int8_margin"]``: the worst limit ratio the fallback goes on to (default 1: just passing)."""
    from katadeploy.export.int8_fallback import DEFAULT_MARGIN

    return float(req.options.get("int8_margin", DEFAULT_MARGIN))


def _proto_score(req: ExportRequest, scorer: Any, trial: Path) -> Any:
    """``score(proto) -> (loss, metrics)`` on the validation split, each graph written to ``trial`` first."""
    import onnx

    def score(proto: Any) -> Any:
        onnx.save(proto, str(trial))
        return scorer.score(_candidate(trial, req, req.options.get("threads")))

    return score


def _auto_groups(
    req: ExportRequest, spec: GroupSpec, repaired: tuple[dict[str, Any], Any, Any], scored: tuple[float, Any],
    build: Any, out: Path, scorer: Any, tmp: Path,
) -> tuple[tuple[dict[str, Any], Any, Any], tuple[float, Any]]:
    """``int8_group_scopes=auto[:N]``: rank the layers of the per-tensor ``smooth-gptq`` graph in ``out`` by the
    gate (each returned to float alone), build the graph with the N most sensitive convs grouped
    (``build(out, group_nodes)`` -> a ``_repaired`` triple) and keep whichever scores better on the validation
    split in ``out``. Returns the kept ``(details, float graph, repair)`` and its ``(loss, metrics)``; the details
    record the ranking, the choice and both scores (:mod:`katadeploy.export.int8_groups`)."""
    import onnx

    from katadeploy.export import int8_fallback, int8_groups

    details, float_proto, repair = repaired
    convs = [la.node for la in repair.layers if la.kind == "conv"]
    n = int8_groups.auto_count(spec, len(convs))
    measure = int8_fallback.gate_measure(_proto_score(req, scorer, tmp / "int8-rank.onnx"))
    ranking = int8_fallback.rank_layers(onnx.load(str(out)), float_proto, [la.node for la in repair.layers],
                                        measure, "int8 groups: ranking layers", req.progress)  # fmt: skip
    chosen = int8_groups.choose(ranking, convs, n)
    req.log(f"int8: {spec.act_groups} activation groups on the {n} most sensitive convs: " + ", ".join(chosen))
    trial = tmp / "int8-grouped.onnx"
    g_repaired = build(trial, chosen)
    g_loss, g_metrics = scorer.score(_candidate(trial, req, req.options.get("threads")))
    loss, metrics = scored
    per_tensor = {"loss": float(loss), "worst": worst_record(metrics, "int8")}
    grouped = {"loss": float(g_loss), "worst": worst_record(g_metrics, "int8")}
    used = (grouped["loss"], grouped["worst"]["ratio"]) <= (per_tensor["loss"], per_tensor["worst"]["ratio"])
    record = {"mode": f"auto:{n}", "chosen": chosen, "ranking": ranking, "used": used,
              "per_tensor": per_tensor, "grouped": grouped}  # fmt: skip
    req.log(f"int8: grouped loss {g_loss:.4f} against per tensor {loss:.4f}"
            + (" <- grouped kept" if used else "; kept per tensor"))  # fmt: skip
    if used:
        trial.replace(out)
        details, float_proto, repair = g_repaired
        loss, metrics = g_loss, g_metrics
    details["group_selection"] = record
    return (details, float_proto, repair), (loss, metrics)


def _float_scopes(req: ExportRequest) -> list[str]:
    """``options["int8_float_scopes"]``: module scopes kept float (a list, or one comma-separated string)."""
    return scope_list(req.options.get("int8_float_scopes"))


def _methods(req: ExportRequest) -> tuple[str, ...]:
    raw = req.options.get("int8_methods") or DEFAULT_METHODS
    if isinstance(raw, str):
        raw = [m for m in raw.split(",") if m]
    methods = tuple(str(m).lower() for m in raw)
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise KatadeployError(
            f"unknown INT8 calibration method {', '.join(bad) or '(none)'}; use {', '.join(METHODS)}"
        )
    return methods


def onnxruntime_cpu(proto: Any, rows: list[Any]) -> dict[str, Any]:
    """What onnxruntime's CPU provider runs in int8 on this machine: the share of ``rows``' MACs (the graph's
    :func:`~katadeploy.export.macs.onnx_macs` rows) whose node it fuses into an integer kernel, with the CPU and
    onnxruntime it was read on (:func:`katadeploy.runtime.onnx_runtime.integer_kernel_nodes`)."""
    ort = require("onnxruntime", "onnx")
    from katadeploy.runtime.cpu import cpu_name, int8_isa
    from katadeploy.runtime.onnx_runtime import integer_kernel_nodes
    from katadeploy.runtime.qdq_weights import weights_mode

    fused = integer_kernel_nodes(proto.SerializeToString())
    share = summarize_macs([(n, r, m, q and n in fused) for n, r, m, q in rows], "")["int8_mac_fraction"]
    return {"int8_mac_fraction": share, "integer_kernels": len(fused), "cpu": cpu_name(), "int8_isa": int8_isa(),
            "int8_weights": weights_mode("auto"), "onnxruntime": ort.__version__}  # fmt: skip


def quantize_int8(req: ExportRequest, proto: Any, path: Path) -> dict[str, Any]:
    if req.calib is None:
        raise KatadeployError(
            f"{req.target.name} needs calibration data (--calib, or the default bundled set)"
        )
    onnx = require("onnx", "onnx")
    ort = require("onnxruntime", "onnx")
    q = _ort_quant()
    model = req.model
    methods = _methods(req)
    placement = str(req.options.get("int8_placement", "inputs")).lower()
    if placement not in PLACEMENTS:
        raise KatadeployError(f"unknown int8_placement {placement!r}; use {' or '.join(PLACEMENTS)}")
    quant_outputs = placement == "inputs+outputs"
    activations = str(req.options.get("int8_activations", DEFAULT_ACTIVATIONS)).lower()
    if activations not in ACTIVATIONS:
        raise KatadeployError(f"unknown int8_activations {activations!r}; use {' or '.join(ACTIVATIONS)}")
    _check_fallback_options(req)
    n_calib = int(req.options.get("calib_positions", DEFAULT_CALIB_POSITIONS))
    n_val = int(req.options.get("val_positions", DEFAULT_VAL_POSITIONS))
    if n_calib < 1 or n_val < 1:
        raise KatadeployError("calib_positions and val_positions must be positive")
    source = str(req.calib_path or "the calibration data")
    spec = group_spec(req.options)
    calib = calibration_split(req.calib, "calib", model, exact=req.exact, limit=n_calib, source=source)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="katadeploy-int8-") as tmpdir:
        tmp = Path(tmpdir)
        fp32 = tmp / "fp32.onnx"
        pre = tmp / "pre.onnx"
        onnx.save(proto, str(fp32))
        req.log("int8: onnxruntime quantization pre-processing")
        with contextlib.redirect_stdout(sys.stderr):
            q.quant_pre_process(str(fp32), str(pre))
        pre_proto = onnx.load(str(pre))
        quantize, kept, tensors = plan_nodes(pre_proto, model, quant_outputs, _float_scopes(req), _gpool_float(req))
        if not quantize:
            raise KatadeployError(f"{model.name}: no trunk convolution left to quantize")
        req.log(
            f"int8: calibrating {len(tensors)} tensors of {len(quantize)} nodes on {len(calib)} positions"
        )
        reader = _reader_class()(calib)
        collector = collect_ranges(pre_proto, tensors, reader, methods, req.progress)
        calib_seconds = time.perf_counter() - t0
        scorer = calibration_scorer(model, req.calib, "int8", exact=req.exact, limit=n_val, source=source,
                                    per_board=_flag(req.options.get("int8_per_board", True)))  # fmt: skip
        results: dict[str, dict[str, Any]] = {}
        req.log(f"int8: choosing among {', '.join(methods)} on {len(scorer)} validation positions")
        repair_details: dict[str, Any] | None = None
        repair_proto: Any = None
        repair: Any = None
        with Progress(len(methods), "int8 method selection", quiet=not req.progress) as bar:
            for m in methods:
                out = tmp / f"int8-{m}.onnx"
                if m == REPAIR:

                    def build(dest: Path, nodes: list[str] | None, k: int = spec.act_groups) -> Any:
                        return _repaired(req, pre_proto, quantize, reader, collector, tmp, dest, quant_outputs,
                                         activations, k, nodes, spec.floor, spec.margin, spec.tail)  # fmt: skip

                    if spec.auto is None:
                        repaired = build(out, scoped_nodes(spec, quantize))
                    else:
                        repaired = build(out, None, 1)
                else:
                    with contextlib.redirect_stdout(sys.stderr):
                        _quantize(pre, out, m, collector.ranges(m), quantize, tmp, quant_outputs, activations)
                loss, metrics = scorer.score(_candidate(out, req, req.options.get("threads")))
                if m == REPAIR and spec.auto is not None:
                    repaired, (loss, metrics) = _auto_groups(req, spec, repaired, (loss, metrics), build, out,
                                                             scorer, tmp)  # fmt: skip
                if m == REPAIR:
                    repair_details, repair_proto, repair = repaired
                if m == REPAIR and repair_details is not None:
                    qat = _qat(req, repair, pre_proto, out, activations, scorer, float(loss))
                    if qat is not None:
                        repair_details["qat"] = qat[0]
                        if qat[2] is not None:
                            loss, metrics = qat[1], qat[2]
                results[m] = {
                    "loss": float(loss),
                    "worst": worst_record(metrics, "int8"),
                    "passed": bool(metrics.passed("int8")),
                    "top1_agreement": float(metrics.top1),
                }
                bar.advance()
        best = min(methods, key=lambda m: (results[m]["loss"], results[m]["worst"]["ratio"]))
        for m in methods:
            req.log(
                f"int8: {m}: loss {results[m]['loss']:.4f} (worst {results[m]['worst']['metric']} "
                f"{results[m]['worst']['stat']} at {results[m]['worst']['ratio']:.2f}x its limit)"
                + ("  <- chosen" if m == best else "")
            )
        final = onnx.load(str(tmp / f"int8-{best}.onnx"))
        fallback = None
        if needs_fallback(results[best], _margin(req)) and _mixed_precision(req):
            float_proto = repair_proto if best == REPAIR else pre_proto
            fallback = _fallback(req, final, float_proto, quantize, scorer, tmp)
            final = fallback.proto
        passed = fallback.passed if fallback is not None else results[best]["passed"]
        if not passed:
            w = fallback.ratio if fallback is not None else results[best]["worst"]["ratio"]
            req.log(
                f"int8: note: even {best}{' with the per-layer fallback' if fallback else ''} misses KataGo's FP16 "
                f"limits on the validation split (worst at {w:.1f}x its limit); check it with `katadeploy validate`"
            )
        tidy(final)
        onnx.checker.check_model(final)
        floated = set(fallback.floated if fallback is not None else ())

        def role(name: str, op: str) -> str:
            return "fallback" if int8_repair.layer_of(name) in floated else int8_role(name, op, model, _gpool_float(req))

        rows = onnx_macs(final, role)
        groups = repair.act_groups if best == REPAIR and repair is not None and repair.grouped else 1
        grain = "per tensor" if groups == 1 else f"per tensor on each of {groups} channel groups per conv input"
        if groups > 1 and not all(la.groups is not None for la in repair.layers if la.kind == "conv"):
            n_grouped = sum(la.groups is not None for la in repair.layers)
            grain = f"per tensor ({n_grouped} convs: on each of {groups} channel groups of their input)"
        quantization = summarize_macs(
            rows,
            f"onnxruntime quantize_static QDQ, {best} ranges, {activations} activations {grain}, s8 weights per "
            f"channel{' and group' if groups > 1 else ''}, {placement}"
            + (f", {len(floated)} layer(s) returned to float by the gate" if floated else ""),
        )
        quantization["onnxruntime_cpu"] = onnxruntime_cpu(final, rows)
        with staged(path) as out_tmp:
            onnx.save(final, str(out_tmp))
    return {
        "quantization": quantization,
        "int8": {
            "quantizer": f"onnxruntime {ort.__version__} quantize_static",
            "format": "QDQ",
            "weights": "QInt8 symmetric per-channel" + (" and group" if groups > 1 else ""),
            "activations": ("QUInt8 asymmetric " if activations == "u8" else "QInt8 symmetric ") + grain,
            "act_groups": groups,
            "placement": placement,
            "op_types": list(QUANT_OPS),
            "quantized_nodes": len(quantize) - len(floated),
            "float_roles": list(FLOAT_ROLES),
            "float_nodes": summarize_nodes(kept + _fallback_nodes(pre_proto, floated)),
            "calibrated_tensors": len(tensors),
            "calibration_positions": int(len(calib)),
            "validation_positions": int(len(scorer)),
            "methods": results,
            "method": best,
            "selection": 'katadeploy.validate.metrics.selection_loss(metrics, "int8") vs PyTorch FP32 on the '
            "validation split; ties broken by the worst limit ratio",
            "percentile": PERCENTILE,
            "entropy_bins": [ENTROPY_BINS, ENTROPY_QUANT_BINS],
            "calibration_seconds": round(calib_seconds, 2),
            **({"repair": repair_details} if repair_details else {}),
            **({"fallback": fallback.summary()} if fallback is not None else {}),
            "seconds": round(time.perf_counter() - t0, 2),
        },
    }
