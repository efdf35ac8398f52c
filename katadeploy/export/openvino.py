"""OpenVINO IR artifacts (``openvino-fp32``, ``openvino-fp16``, ``openvino-int8``) for the x86 CPU fast path.

Contract: :func:`export` ``(req)`` writes the IR pair ``<stem>.xml`` (the artifact the manifest names) and
``<stem>.bin`` (its weights; ``details["files"]`` lists both) plus the sidecar manifest, and returns the
``.xml`` path. Both files are written to a temporary directory and moved into place.

- Source graph: :class:`~katadeploy.export.graph.ExportNet` (masked, or the exact-board variant when
  ``req.exact``) converted straight from PyTorch by ``ov.convert_model(module, example_input=...)``, not via the
  ONNX file. The direct route keeps ``ScaledDotProductAttention``, ``Mish`` and ``Swish`` as single ops (the CPU
  plugin's fused attention kernel made the b10c384 transformer ~25% faster than the same net read from ONNX,
  where attention arrives as MatMul/Softmax/MatMul), and every node's friendly name carries its module path
  (``__module.net.blocks.3.blocks.0.conv1.conv/...``) from which the float islands below are selected. The batch
  axis is dynamic, the board tensor is ``nn_y`` x ``nn_x``; inputs are named ``spatial``, ``global`` (``meta``)
  and outputs ``policy``, ``policy_pass``, ``value``, ``score``, ``ownership``, all float32. The converted
  graph is run on real positions and compared with PyTorch before anything is written.
- ``fp32``: FP32 weights (``compress_to_fp16=False``), executed with ``INFERENCE_PRECISION_HINT=f32`` (the CPU
  plugin would otherwise run bf16 on CPUs with AVX512-BF16/AMX, which misses KataGo's FP32 limits).
- ``fp16``: FP16-compressed weights (``compress_to_fp16=True``; decompressed at load). Execution precision:
  bf16 when this CPU has it and bf16 execution meets KataGo's FP16 limits on the calibration data's validation
  split, else f32; the choice and its metrics are recorded in ``details["inference_precision"]`` and
  ``details["bf16_check"]``.
- ``int8``: NNCF post-training quantization (``nncf.quantize``) calibrated on ``req.calib.subset("calib")``.
  Only Convolution/MatMul ops with constant weights are quantized (int8 per-channel symmetric weights, u8/i8
  per-tensor activations); every other op stays float (an explicit ignored scope), and so do the float islands
  :data:`FLOAT_ISLANDS` (stem: conv_spatial, linear_global, meta_encoder; heads: policy_head, value_head) —
  norms (BatchNorm/RMSNorm), activations, residual adds, masks, global pooling, RoPE and attention
  (softmax and the QK^T/AV matmuls inside ``ScaledDotProductAttention``) therefore run in float. Transformer
  nets use ``ModelType.TRANSFORMER``. NNCF's overflow fix is disabled (it stores 7-bit weights; VNNI/AMX CPUs do
  not need it; the runtime warns on CPUs without VNNI). Several :class:`Recipe` candidates (preset
  PERFORMANCE/MIXED, activation range estimator, fast bias correction, SmoothQuant; one statistics pass shared by
  the single-step ones, :func:`quantize_recipes`) are scored on an evenly spaced sample of the validation split
  (``rank_positions``) against PyTorch FP32 with :func:`katadeploy.validate.metrics.compare` and
  :func:`~katadeploy.validate.metrics.selection_loss` ``(..., "int8")``; the lowest loss wins and is scored again
  on the whole split. When even the winner misses KataGo's FP16 limits, whole trunk blocks are returned to FP32
  (most sensitive first, found by bisection; where int8 dot products saturate the all-but-one-block extreme is
  tried first) until the validation split passes (``options["mixed_precision"]=False`` keeps the full-int8 winner
  instead). Every candidate's loss, the chosen recipe, the blocks kept float and the final validation metrics go
  to ``details["int8"]``.
  Calibration data has full 19x19 boards only, so a masked INT8 artifact is validated for full boards; smaller
  boards in its tensor can see activations outside the calibrated ranges (measured: the mixed-precision
  g170e-b15c192 artifact passes on the 60 full-board oracle positions, misses on the 20 small ones by 3%).
- CPU-plugin workaround (OpenVINO 2026.4): when the output of an int8 Convolution has several consumers and
  one of them is a residual ``Add`` whose other input is another int8 layer (the nested-bottleneck
  ``conv_pre`` output), the plugin's low-precision pipeline returns wrong values (the residual is lost: kata1-b18
  ran at 75% winrate error). An identity ``Maximum(x, -3e38)`` after every int8 weight op with several consumers
  (:func:`guard_fanout`) avoids it; the count is ``details["int8"]["fanout_guards"]``.
- ``details["runtime"]`` is :func:`runtime_report` of the compiled artifact: layer counts by execution
  precision, which Convolution+Mish/SiLU/ReLU and MatMul kernels run int8, and the float layers grouped by
  module; :func:`int8_report` ``(path)`` recomputes it for an existing artifact.

Options (``req.options``): ``calib_positions`` (default 300), ``val_positions`` (default 256), ``recipes`` (list of
recipe names, default :data:`DEFAULT_RECIPES`), ``mixed_precision`` (bool, default True), ``rank_positions``
(default 64: the sample recipes and blocks are ranked on; 0 for all), ``extreme_first`` (bool, default: whether
int8 dot products saturate on this CPU), ``threads``,
``bf16_check`` (bool, default True), ``int8_source`` (``nncf``, the default, or ``onnx-qdq``: the ``onnx-int8`` QDQ
graph read by OpenVINO, :mod:`katadeploy.export.openvino_qdq`, calibrated on every board size like onnx-int8).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import sys
import tempfile
import time
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from katadeploy.artifact import OUTPUT_NAMES, input_names, io_specs
from katadeploy.errors import KatadeployError
from katadeploy.export.graph import ExportNet, example_inputs
from katadeploy.export.macs import Row, conv_macs, matmul_macs
from katadeploy.export.macs import summarize as summarize_macs
from katadeploy.export.node_roles import node_role
from katadeploy.export.request import ExportRequest
from katadeploy.export.targets import INT8_SOURCE_QDQ, int8_source
from katadeploy.extras import require
from katadeploy.model.desc import ModelDesc
from katadeploy.progress import Progress
from katadeploy.runtime.cpu import int8_dot_saturates
from katadeploy.validate.positions import calibration_split
from katadeploy.validate.scoring import CandidateScorer, calibration_scorer, finite, summarize

#: module-path fragments whose Convolution/MatMul ops stay float in INT8 artifacts
FLOAT_ISLANDS = ("conv_spatial", "linear_global", "meta_encoder", "policy_head", "value_head")
WEIGHT_OPS = frozenset({"Convolution", "GroupConvolution", "MatMul"})
GUARD_SUFFIX = "/kd_fanout_guard"
SELF_CHECK_TOL = 2e-3
DEFAULT_CALIB_POSITIONS = 300
DEFAULT_VAL_POSITIONS = 256
DEFAULT_RANK_POSITIONS = 64  # positions the block ranking of the mixed-precision fallback scores on
_BLOCK_RE = re.compile(r"\bnet\.blocks\.(\d+)[./]")


# ------------------------------------------------------------------------------------------------- conversion
def _ov() -> Any:
    return require("openvino", "openvino")


def convert(model: ModelDesc, nn_x: int, nn_y: int, exact: bool) -> Any:
    """The FP32 ``ov.Model`` of ``ExportNet(model, exact)`` with a dynamic batch and named inputs/outputs."""
    ov = _ov()
    import torch

    net = ExportNet(model, exact=exact).eval()
    example = example_inputs(model, 2, nn_x, nn_y)
    spec = [(ov.PartialShape([-1, *t.shape[1:]]), ov.Type.f32) for t in example]
    with torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stdout(sys.stderr):
        warnings.simplefilter("ignore")
        om = ov.convert_model(net, example_input=tuple(example), input=spec)
    names = input_names(model)
    if len(om.inputs) != len(names) or len(om.outputs) != len(OUTPUT_NAMES):
        raise KatadeployError(
            f"OpenVINO conversion gave {len(om.inputs)} inputs/{len(om.outputs)} outputs, "
            f"expected {len(names)}/{len(OUTPUT_NAMES)}"
        )
    for port, name in zip(om.inputs, names):
        port.get_tensor().set_names({name})
        port.get_node().set_friendly_name(name)
    for port, name in zip(om.outputs, OUTPUT_NAMES):
        port.get_tensor().set_names({name})
    return om


def self_check(om: Any, model: ModelDesc, nn_x: int, nn_y: int, exact: bool, threads: int | None) -> float:
    """Largest |OpenVINO FP32 - PyTorch| over the raw outputs on 4 real positions; an error above the tolerance."""
    import torch

    from katadeploy.runtime.openvino_runtime import OpenVINOEvaluator

    inputs = example_inputs(model, 4, nn_x, nn_y)
    with torch.no_grad():
        ref = ExportNet(model, exact=exact).eval()(*inputs)
    ev = OpenVINOEvaluator(om, threads=threads, inference_precision="f32", name="self-check")
    got = ev.evaluate(*(t.numpy() for t in inputs))
    diff = max(float(np.max(np.abs(g - r.numpy()) / (1.0 + np.abs(r.numpy())))) for g, r in zip(got, ref))
    if not diff <= SELF_CHECK_TOL:
        raise KatadeployError(
            f"the OpenVINO conversion of {model.name} differs from PyTorch by {diff:.2e} (relative) on real "
            f"positions (tolerance {SELF_CHECK_TOL}); refusing to write it"
        )
    return diff


def save_ir(om: Any, xml: Path, compress_to_fp16: bool) -> tuple[Path, Path]:
    """Write ``xml`` and its ``.bin`` through a temporary directory; return both paths."""
    ov = _ov()
    xml = Path(xml)
    xml.parent.mkdir(parents=True, exist_ok=True)
    weights = xml.with_suffix(".bin")
    tmp = Path(tempfile.mkdtemp(prefix=".openvino-", dir=xml.parent))
    try:
        tmp_xml = tmp / xml.name
        ov.save_model(om, str(tmp_xml), compress_to_fp16=compress_to_fp16)
        os.replace(tmp_xml.with_suffix(".bin"), weights)
        os.replace(tmp_xml, xml)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return xml, weights


# ------------------------------------------------------------------------------------------------- validation
def make_scorer(req: ExportRequest, calib: Any, precision: str) -> CandidateScorer:
    """The validation split of ``calib`` with its PyTorch FP32 outputs, scoring under ``precision``'s limits."""
    limit = int(req.options.get("val_positions", DEFAULT_VAL_POSITIONS))
    req.log("validation: running the PyTorch FP32 reference on the calibration data's validation split")
    return calibration_scorer(
        req.model, calib, precision, exact=req.exact, limit=limit or None, progress=req.progress
    )


def score_model(
    scorer: CandidateScorer, om: Any, threads: int | None = None, inference_precision: str = "f32"
) -> tuple[float, Any]:
    """``(selection_loss, metrics)`` of the in-memory OpenVINO model ``om`` compiled at ``inference_precision``."""
    from katadeploy.runtime.openvino_runtime import OpenVINOEvaluator

    ev = OpenVINOEvaluator(
        om, threads=threads, inference_precision=inference_precision, name="candidate",
        throughput_batch=1 << 30,
    )  # fmt: skip
    try:
        return scorer.score(ev)
    finally:
        ev.close()


# ------------------------------------------------------------------------------------------------- int8
@dataclass(frozen=True)
class Recipe:
    """One NNCF post-training quantization configuration."""

    name: str
    preset: str = "mixed"  # mixed: asymmetric activations | performance: symmetric activations
    ranges: str = "minmax"  # activation range estimator: minmax | mean_minmax | histogram
    bias_correction: bool = False  # NNCF fast bias correction
    smooth_quant: float | None = None  # SmoothQuant alpha for convolutions (ModelType.TRANSFORMER only)


RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe("mixed-minmax"),
        Recipe("mixed-histogram", ranges="histogram"),
        Recipe("mixed-mean-minmax", ranges="mean_minmax"),
        Recipe("performance-minmax", preset="performance"),
        Recipe("mixed-minmax-fbc", bias_correction=True),
        Recipe("mixed-histogram-sq", ranges="histogram", smooth_quant=0.25),
    )
}
#: ``mixed-histogram`` is not a default: it was the worst candidate on every net it was scored on (g170-b6c96 58x the
#: limit against 6x for mixed-minmax; kata1-b18c384nbt 239x against 17x) and the slowest (146 s of b18 statistics)
DEFAULT_RECIPES = ("mixed-minmax", "performance-minmax", "mixed-minmax-fbc")
TRANSFORMER_RECIPES = ("mixed-histogram-sq",)


def _nncf() -> Any:
    return require("nncf", "openvino")


def weight_input(node: Any) -> Any | None:
    """The constant weight producer of a Convolution/MatMul (through Convert/FakeQuantize), else None."""
    if node.get_type_name() not in WEIGHT_OPS or node.get_input_size() < 2:
        return None
    src = node.input_value(1).get_node()
    for _ in range(3):
        kind = src.get_type_name()
        if kind == "Constant":
            return src
        if kind not in ("Convert", "FakeQuantize", "Multiply", "Subtract", "Reshape", "Transpose"):
            return None
        src = src.input_value(0).get_node()
    return None


def float_island(name: str) -> bool:
    return any(f".{part}." in name or f".{part}/" in name for part in FLOAT_ISLANDS)


def ignored_names(om: Any) -> tuple[list[str], list[str]]:
    """``(ignored, quantized)``: the names of every op NNCF must leave alone, and the weight ops it quantizes."""
    ignored, quantized = [], []
    for op in om.get_ordered_ops():
        kind = op.get_type_name()
        if kind in ("Parameter", "Constant", "Result"):
            continue
        name = op.get_friendly_name()
        if kind in WEIGHT_OPS and weight_input(op) is not None and not float_island(name):
            quantized.append(name)
        else:
            ignored.append(name)
    return ignored, quantized


def _range_params(nncf: Any, ranges: str) -> Any:
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet as R

    table = {"minmax": R.MINMAX, "mean_minmax": R.MEAN_MINMAX, "histogram": R.HISTOGRAM}
    if ranges not in table:
        raise KatadeployError(f"unknown activation range estimator {ranges!r}; use {', '.join(table)}")
    return table[ranges]


def _quantize_args(om: Any, recipe: Recipe, n: int, transformer: bool) -> dict[str, Any]:
    """The keyword arguments of ``nncf.quantize`` (less model and dataset) for ``recipe`` on ``n`` positions."""
    nncf = _nncf()
    ignored, _ = ignored_names(om)
    params: dict[str, Any] = {
        "overflow_fix": nncf.OverflowFix.DISABLE,
        "disable_bias_correction": not recipe.bias_correction,
        "activations_range_estimator_params": _range_params(nncf, recipe.ranges),
    }
    if transformer:
        params["smooth_quant_alphas"] = nncf.AdvancedSmoothQuantParameters(
            convolution=-1 if recipe.smooth_quant is None else recipe.smooth_quant, matmul=-1
        )
    preset = (
        nncf.QuantizationPreset.MIXED if recipe.preset == "mixed" else nncf.QuantizationPreset.PERFORMANCE
    )
    return {
        "preset": preset,
        "subset_size": n,
        "model_type": nncf.ModelType.TRANSFORMER if transformer else None,
        "fast_bias_correction": True,
        "ignored_scope": nncf.IgnoredScope(names=ignored, validate=False),
        "advanced_parameters": nncf.AdvancedQuantizationParameters(**params),
    }


def quantize(
    om: Any, recipe: Recipe, dataset: list[dict[str, np.ndarray]], transformer: bool, quiet: bool
) -> Any:
    """``nncf.quantize`` of a clone of ``om`` with ``recipe`` (see the module contract for what is quantized)."""
    nncf = _nncf()
    with _nncf_output(quiet):
        return nncf.quantize(
            om.clone(), nncf.Dataset(dataset), **_quantize_args(om, recipe, len(dataset), transformer)
        )


def quantize_recipes(
    om: Any, recipes: list[Recipe], dataset: list[dict[str, np.ndarray]], transformer: bool, quiet: bool
) -> Iterator[tuple[Recipe, Any]]:
    """``(recipe, quantize(om, recipe, ...))`` for each of ``recipes``, in order, with one statistics pass over
    ``dataset`` shared by every recipe whose NNCF pipeline is a single step (min-max ranges and fast bias
    correction without SmoothQuant: each recipe's collectors are registered on the same inference pass, and
    ``PostTrainingQuantization.apply`` takes the collected statistics, as ``nncf.quantize`` would after its own
    pass). On kata1-b18c384nbt a pass is ~95 s of a ~110 s recipe on 2 cores. NNCF's public API has no way to
    share a pass (its ``statistics_path`` is for weight compression only), so this uses the pipeline classes behind
    ``nncf.quantize``; where they are not importable every recipe runs ``nncf.quantize`` on its own."""
    nncf = _nncf()
    try:
        from nncf.openvino.graph.nncf_graph_builder import GraphConverter
        from nncf.quantization.algorithms.pipeline import collect_statistics
        from nncf.quantization.algorithms.post_training.algorithm import PostTrainingQuantization
    except ImportError:  # another NNCF layout: no shared pass
        for recipe in recipes:
            yield recipe, quantize(om, recipe, dataset, transformer, quiet)
        return
    algorithms = {}
    shared = None
    with _nncf_output(quiet):
        for recipe in recipes:
            args = _quantize_args(om, recipe, len(dataset), transformer)
            ptq = PostTrainingQuantization(target_device=nncf.TargetDevice.ANY, **args)
            steps = getattr(getattr(ptq, "_pipeline", None), "pipeline_steps", None)
            if steps is not None and len(steps) == 1:
                algorithms[recipe.name] = ptq
        if len(algorithms) > 1:
            model = om.clone()
            graph = GraphConverter.create_nncf_graph(model)
            containers = [ptq.get_statistic_points(model, graph) for ptq in algorithms.values()]
            shared = collect_statistics(containers, model, graph, nncf.Dataset(dataset))
    for recipe in recipes:
        if shared is None or recipe.name not in algorithms:
            yield recipe, quantize(om, recipe, dataset, transformer, quiet)
            continue
        with _nncf_output(quiet):
            model = om.clone()
            graph = GraphConverter.create_nncf_graph(model)
            applied = algorithms[recipe.name].apply(
                model, graph, statistic_points=shared, dataset=nncf.Dataset(dataset)
            )
        yield recipe, applied


@contextlib.contextmanager
def _nncf_output(quiet: bool) -> Iterator[None]:
    """NNCF's log and progress bars go to stderr (stdout is for results), and nowhere when ``quiet``."""
    log = logging.getLogger("nncf")
    level = log.level
    log.setLevel(logging.ERROR if quiet else logging.WARNING)
    try:
        with contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        log.setLevel(level)


def is_quantized(node: Any) -> bool:
    """A weight op whose activation input comes from a FakeQuantize (it runs as an int8 kernel)."""
    return (
        node.get_type_name() in WEIGHT_OPS
        and node.input_value(0).get_node().get_type_name() == "FakeQuantize"
    )


def guard_fanout(om: Any) -> int:
    """Insert the identity ``Maximum(x, -3e38)`` after every int8 weight op whose output has several consumers
    (the CPU-plugin workaround in the module contract); returns how many were inserted. Modifies ``om``."""
    ops = require("openvino.opset13", "openvino")
    count = 0
    for node in list(om.get_ordered_ops()):
        if not is_quantized(node):
            continue
        out = node.output(0)
        targets = list(out.get_target_inputs())
        if len(targets) < 2:
            continue
        guard = ops.maximum(out, ops.constant(np.float32(-3.0e38)))
        guard.set_friendly_name(node.get_friendly_name() + GUARD_SUFFIX)
        for t in targets:
            t.replace_source_output(guard.output(0))
        count += 1
    return count


def guarded(om: Any) -> tuple[Any, int]:
    """A copy of ``om`` with :func:`guard_fanout` applied (``om`` itself stays as it was, so other trials can start
    from it); returns ``(copy, guards)``."""
    g = om.clone()
    return g, guard_fanout(g)


def block_of(name: str) -> int | None:
    m = _BLOCK_RE.search(name)
    return int(m.group(1)) if m else None


def float_weights(om: Any) -> dict[str, Any]:
    """``{friendly name: weight output}`` of the constant weights of every weight op of the FP32 model."""
    out = {}
    for node in om.get_ordered_ops():
        if node.get_type_name() in WEIGHT_OPS and weight_input(node) is not None:
            out[node.get_friendly_name()] = node.input_value(1)
    return out


def _unquantized_source(value: Any) -> Any:
    """The float activation behind a FakeQuantize and, for SmoothQuant recipes, its ``nncf_smooth_quant`` scale."""
    node = value.get_node()
    if node.get_type_name() == "FakeQuantize":
        value = node.input_value(0)
        node = value.get_node()
    if node.get_type_name() == "Multiply" and node.get_friendly_name().endswith("/nncf_smooth_quant"):
        for v in node.input_values():
            if v.get_node().get_type_name() != "Constant":
                return v
    return value


def restore_float(om: Any, blocks: set[int], weights: dict[str, Any]) -> int:
    """Return the weight ops of trunk ``blocks`` to FP32: their activation FakeQuantize is bypassed and their
    weights are the FP32 model's again (``weights`` from :func:`float_weights`; NNCF stores quantized weights
    as int8 constants). Returns the number of layers restored. Modifies ``om``."""
    ops = require("openvino.opset13", "openvino")
    count = 0
    for node in list(om.get_ordered_ops()):
        name = node.get_friendly_name()
        if node.get_type_name() not in WEIGHT_OPS or block_of(name) not in blocks or not is_quantized(node):
            continue
        if name not in weights:
            raise KatadeployError(f"cannot find the FP32 weights of {name} to keep it float")
        node.input(0).replace_source_output(_unquantized_source(node.input_value(0)))
        original = weights[name]
        data = original.get_node().get_data() if original.get_node().get_type_name() == "Constant" else None
        if data is None:
            raise KatadeployError(f"the FP32 weights of {name} are not a constant")
        node.input(1).replace_source_output(ops.constant(data).output(0))
        count += 1
    return count


def mac_rows(om: Any, model: ModelDesc) -> list[Row]:
    """One :mod:`katadeploy.export.macs` row per convolution and matmul (weights or not) of ``om``: its MACs per
    position and whether its activation input is fake-quantized (so the CPU plugin runs it as an int8 kernel)."""
    rows: list[Row] = []
    for node in om.get_ordered_ops():
        kind = node.get_type_name()
        if kind not in WEIGHT_OPS:
            continue
        out = _static(node.get_output_partial_shape(0))
        if kind == "MatMul":
            a = _static(node.get_input_partial_shape(0))
            k = a[-2] if node.get_attributes().get("transpose_a", False) else a[-1]
            macs = matmul_macs(out, k)
        else:
            w = _static(node.get_input_partial_shape(1))
            macs = conv_macs(out, w[1:] if kind == "GroupConvolution" else w)
        name = node.get_friendly_name()
        role = node_role(onnx_style_name(name), "MatMul" if kind == "MatMul" else "Conv", model)
        rows.append((name, role, macs, is_quantized(node)))
    return rows


def onnx_style_name(name: str) -> str:
    """An OpenVINO friendly name in the ONNX exporter's scope form, for :func:`node_role`:
    ``__module.net.blocks.1.mid/aten::mul/Multiply`` -> ``/net/blocks.1/mid/Multiply``; ONNX-imported names
    (``/net/blocks.1/...``) are returned as they are."""
    if not name.startswith("__module."):
        return name
    scope, _, rest = name.partition("/")
    parts: list[str] = []
    for token in scope.removeprefix("__module.").split("."):
        if token.isdigit() and parts:
            parts[-1] += f".{token}"
        else:
            parts.append(token)
    return "/" + "/".join(parts) + "/" + rest.rsplit("/", 1)[-1]


def _static(shape: Any) -> list[int]:
    return [d.get_length() if d.is_static else 1 for d in shape]


def int8_macs(om: Any, model: ModelDesc) -> dict[str, float]:
    """Multiply-accumulates per position of the conv/matmul ops, split into int8 and float ones."""
    q = summarize_macs(mac_rows(om, model), "")
    macs = q["macs_per_position"]
    return {**macs, "int8_share": q["int8_mac_fraction"]}


def calibration_dataset(req: ExportRequest, limit: int) -> list[dict[str, np.ndarray]]:
    """NNCF's calibration items: one position per item, up to ``limit`` spread over the calibration split."""
    cs = calibration_split(req.calib, "calib", req.model, limit=limit)
    names = input_names(req.model)
    items = []
    for i in range(len(cs)):
        arrays = [cs.spatial[i : i + 1], cs.global_[i : i + 1]] + (
            [] if cs.meta is None else [cs.meta[i : i + 1]]
        )
        items.append(dict(zip(names, arrays)))
    return items


def quantize_int8(req: ExportRequest, om: Any) -> tuple[Any, dict[str, Any]]:
    """Choose and apply the INT8 recipe (and mixed precision) for ``req``; returns the guarded model and the
    ``details["int8"]`` record."""
    if req.calib is None:
        raise KatadeployError("openvino-int8 needs calibration data (--calib or the bundled default)")
    t0 = time.perf_counter()
    quiet = not req.progress
    transformer = bool(req.model.has_transformer)
    names = list(
        req.options.get("recipes") or (DEFAULT_RECIPES + (TRANSFORMER_RECIPES if transformer else ()))
    )
    unknown = [n for n in names if n not in RECIPES]
    if unknown:
        raise KatadeployError(f"unknown openvino-int8 recipe(s) {unknown}; choose from {', '.join(RECIPES)}")
    dataset = calibration_dataset(req, int(req.options.get("calib_positions", DEFAULT_CALIB_POSITIONS)))
    val = make_scorer(req, req.calib, "int8")
    threads = req.options.get("threads")
    _, quantized_names = ignored_names(om)
    record: dict[str, Any] = {
        "quantizer": f"nncf {_nncf().__version__} nncf.quantize",
        "model_type": "transformer" if transformer else "cnn",
        "quantized_op_types": sorted(WEIGHT_OPS),
        "float_islands": list(FLOAT_ISLANDS),
        "quantizable_layers": len(quantized_names),
        "overflow_fix": "disable",
        "calibration_positions": len(dataset),
        "validation_positions": len(val),
        "candidates": [],
    }
    # Recipes are compared on the ranking sample (every board size's share of ``val``); only the winner is scored
    # on all of ``val``. On kata1-b18c384nbt a full score took ~40 s of each ~130 s candidate.
    ranker = val.sample(int(req.options.get("rank_positions", DEFAULT_RANK_POSITIONS)))
    record["recipe_positions"] = len(ranker)
    best: tuple[float, str, Any, Any] | None = None
    chosen = [RECIPES[n] for n in names if RECIPES[n].smooth_quant is None or transformer]
    req.log(f"int8 recipes {', '.join(r.name for r in chosen)}: statistics on {len(dataset)} positions")
    t = time.perf_counter()
    for recipe, q in quantize_recipes(om, chosen, dataset, transformer, quiet):
        name = recipe.name
        candidate, guards = guarded(q)
        loss, metrics = score_model(ranker, candidate, threads)
        entry = {
            "recipe": name,
            **{k: v for k, v in vars(recipe).items() if k != "name"},
            "loss": finite(loss),
            **summarize(metrics, "int8"),
            "seconds": round(time.perf_counter() - t, 1),
        }
        t = time.perf_counter()
        record["candidates"].append(entry)
        req.log(
            f"int8 recipe {name}: loss {loss:.3g} (worst {entry['worst']['metric']} {entry['worst']['stat']} "
            f"at {entry['worst']['ratio']:.3g}x the limit), {guards} fan-out guards"
        )
        if best is None or loss < best[0]:
            best = (loss, name, q, metrics)
    if best is None:
        raise KatadeployError("no openvino-int8 recipe applies to this net")
    loss, name, q, metrics = best
    if len(ranker) < len(val):
        loss, metrics = score_model(val, guarded(q)[0], threads)
        req.log(f"int8 recipe {name} on all {len(val)} validation positions: loss {loss:.3g}")
    record["chosen"] = name
    record["full_int8"] = summarize(metrics, "int8")
    restored: list[int] = []
    if not metrics.passed("int8") and req.options.get("mixed_precision", True):
        restored, q, metrics, search = _mixed_precision(req, q, val, ranker, float_weights(om))
        record["mixed_precision"] = search
    final, record["fanout_guards"] = guarded(q)
    record["float_blocks"] = sorted(restored)
    record["macs_per_position"] = int8_macs(final, req.model)
    record["quantization"] = summarize_macs(
        mac_rows(final, req.model),
        f"nncf {name}" + (f", {len(restored)} trunk blocks FP32" if restored else ", every trunk layer int8"),
    )
    record["validation"] = summarize(metrics, "int8")
    record["seconds"] = round(time.perf_counter() - t0, 1)
    verdict = "meets" if metrics.passed("int8") else "MISSES"
    req.log(
        f"int8: recipe {name}, {len(restored)} of {len(req.model.trunk.blocks)} trunk blocks kept FP32 "
        f"({100 * record['macs_per_position']['int8_share']:.0f}% of MACs int8); {verdict} KataGo's FP16 limits "
        "on the validation split"
    )
    if record["macs_per_position"]["int8_share"] < 0.25:
        req.log(
            "note: most of this net had to stay FP32 to meet the limits, so this artifact is little faster "
            "than openvino-fp32 (`export --no-int8-fallback`, options mixed_precision=False, keeps every trunk "
            "layer int8, outside the limits)"
        )
    return final, record


def _mixed_precision(
    req: ExportRequest, q: Any, val: CandidateScorer, ranker: CandidateScorer, weights: dict[str, Any]
) -> tuple[list[int], Any, Any, dict[str, Any]]:
    """Return trunk blocks to FP32, most sensitive first, until ``val`` passes the FP16 limits (bisection on the
    number of blocks). Returns ``(blocks, model, metrics, record)``.

    The ranking (one trial per block) scores on ``ranker``, the ``rank_positions`` evenly spaced positions of
    ``val`` (default :data:`DEFAULT_RANK_POSITIONS`; 0: all) that also ranked the recipes: it only orders the
    blocks, and on kata1-b18c384nbt its 18 trials on all 256 positions were most of a 16-minute export. The bisection's verdicts use the whole of ``val``."""
    n_blocks = len(req.model.trunk.blocks)
    present = sorted(
        {
            b
            for op in q.get_ordered_ops()
            if is_quantized(op)
            for b in [block_of(op.get_friendly_name())]
            if b is not None
        }
    )
    cache: dict[tuple[int, ...], tuple[float, Any]] = {}

    def build(blocks: set[int]) -> Any:
        m = q.clone()
        restore_float(m, blocks, weights)
        return m

    def trial(blocks: set[int], scorer: CandidateScorer = val) -> tuple[float, Any]:
        key = (len(scorer), *sorted(blocks))
        if key not in cache:
            m = build(blocks)  # already a copy of q: guard it in place
            guard_fanout(m)
            cache[key] = score_model(scorer, m, req.options.get("threads"))
        return cache[key]

    req.log(
        f"int8 misses the FP16 limits; ranking {len(present)} trunk blocks by sensitivity on {len(ranker)} of the "
        f"{len(val)} validation positions"
    )
    sensitivity: dict[int, float] = {}
    with Progress(len(present), "block sensitivity", quiet=not req.progress) as bar:
        for b in present:
            loss, metrics = trial({b}, ranker)
            sensitivity[b] = metrics.worst("int8").ratio
            bar.advance()
    order = sorted(present, key=lambda b: sensitivity[b])
    lo, hi = 0, len(order)  # lo: known to fail (full int8); hi: all blocks float (assumed to pass)
    steps = []
    # Where u8 x s8 dot products saturate (x86 without VNNI/AMX) the search usually ends with every block FP32
    # (kata1-b18c384nbt on a Zen 3: 17 of 18 FP32 still 2.8x the limit), so the extreme is tried first: one
    # trial instead of the bisection's five when it fails, one more when it passes.
    extreme_first = bool(req.options.get("extreme_first", int8_dot_saturates()))
    while hi - lo > 1:
        mid = hi - 1 if extreme_first and not steps else (lo + hi) // 2
        loss, metrics = trial(set(order[:mid]))
        steps.append(
            {"float_blocks": mid, "loss": finite(loss), "worst_ratio": finite(metrics.worst("int8").ratio)}
        )
        req.log(f"  {mid} blocks FP32: worst {metrics.worst('int8').ratio:.3g}x the limit")
        if metrics.passed("int8"):
            hi = mid
        else:
            lo = mid
    chosen = set(order[:hi])
    loss, metrics = trial(chosen)
    model = build(chosen)
    record = {
        "order": "blocks returned to FP32 in increasing order of the worst-limit ratio when that block alone is FP32",
        "ranking_positions": len(ranker),
        "block_worst_ratio_when_float": {str(b): finite(sensitivity[b]) for b in present},
        "trunk_blocks": n_blocks,
        "extreme_first": extreme_first,
        "steps": steps,
        "passed": bool(metrics.passed("int8")),
    }
    return sorted(chosen), model, metrics, record


# ------------------------------------------------------------------------------------------------- fp16
def choose_fp16_precision(req: ExportRequest, om: Any) -> tuple[str, dict[str, Any]]:
    """``"bf16"`` when this CPU runs bf16 and that meets the FP16 limits on the validation split, else ``"f32"``."""
    ov = _ov()
    if not req.options.get("bf16_check", True):
        return "f32", {"checked": False, "reason": "disabled by options"}
    caps = ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    if "BF16" not in caps:
        return "f32", {"checked": False, "reason": "this CPU has no bf16 support to validate"}
    calib = req.calib
    if calib is None:
        if req.nn_x != req.nn_y:
            return "f32", {"checked": False, "reason": "no calibration data for a non-square tensor"}
        from katadeploy.data import calibration as C

        calib = C.load_calibration(C.default_calibration_path(req.nn_x, progress=req.progress))
        C.check_compatible(calib, req.model, req.nn_x, req.nn_y)
    val = make_scorer(req, calib, "fp16")
    loss, metrics = score_model(val, om, req.options.get("threads"), "bf16")
    summary = {"checked": True, "loss": finite(loss), **summarize(metrics, "fp16")}
    choice = "bf16" if metrics.passed("fp16") else "f32"
    req.log(
        f"fp16: bf16 execution {'meets' if choice == 'bf16' else 'misses'} KataGo's FP16 limits "
        f"(worst {summary['worst']['metric']} {summary['worst']['stat']} at {summary['worst']['ratio']:.3g}x); "
        f"runs {choice}"
    )
    return choice, summary


# ------------------------------------------------------------------------------------------------- reports
_ACTIVATIONS = {"Mish": "mish", "Swish": "silu", "Relu": "relu"}
_KERNELS = {"Convolution": "conv", "FullyConnected": "matmul", "MatMul": "matmul", "GroupConvolution": "conv"}
_INT8 = ("u8", "i8")


def _rt(op: Any, key: str) -> str:
    info = op.get_rt_info()
    if key not in info:
        return ""
    value = info[key]
    return value.astype(str) if hasattr(value, "astype") else str(value)


def _scope(names: list[str]) -> str:
    """The trunk block or top-level module a runtime node comes from (its first original op with a module path)."""
    for name in names:
        m = re.search(r"__module\.net\.((?:blocks\.\d+)|[a-z_]+)", name)
        if m:
            return m.group(1)
    return "unscoped"


def runtime_report(compiled: Any, names: bool = True) -> dict[str, Any]:
    """What the CPU plugin runs: conv/matmul kernel counts by precision, fused activations of the int8 ones,
    and the float conv/matmul layers grouped by module (their names, or only how many with ``names=False``),
    read from the runtime model's rt_info (``layerType``, ``runtimePrecision``, ``originalLayersNames``)."""
    counts: dict[str, Counter] = defaultdict(Counter)
    fused: Counter = Counter()
    float_layers: dict[str, list[str]] = defaultdict(list)
    other: Counter = Counter()
    for op in compiled.get_runtime_model().get_ordered_ops():
        layer = _rt(op, "layerType")
        prec = _rt(op, "runtimePrecision")
        if layer not in _KERNELS:
            if layer not in ("Input", "Output", "Const", "Reorder", ""):
                other[f"{layer}:{prec}"] += 1
            continue
        kind = _KERNELS[layer]
        names = [n for n in _rt(op, "originalLayersNames").split(",") if n]
        label = "int8" if prec in _INT8 else prec
        counts[kind][label] += 1
        acts = sorted({a for n in names for op_type, a in _ACTIVATIONS.items() if n.endswith("/" + op_type)})
        if label == "int8":
            fused[f"{kind}+{'+'.join(acts) or 'none'}"] += 1
        else:
            names = names or [op.get_friendly_name()]
            first = next((n for n in names if n.startswith("__module.")), names[0])
            short = re.sub(r"^__module\.net\.", "", first.split("/")[0])
            float_layers[_scope(names)].append(short + (f" (+{'+'.join(acts)})" if acts else ""))
    return {
        "kernels": {k: dict(v) for k, v in counts.items()},
        "int8_fused": dict(fused),
        "float_layers": {k: (v if names else len(v)) for k, v in sorted(float_layers.items())},
        "other_nodes": dict(other.most_common()),
        "execution_devices": list(compiled.get_property("EXECUTION_DEVICES")),
    }


def int8_report(path: str | Path, threads: int | None = None) -> dict[str, Any]:
    """:func:`runtime_report` of an exported OpenVINO artifact, compiled as its runtime compiles it."""
    from katadeploy.artifact import artifact_file, read_manifest
    from katadeploy.runtime.base import LoadRequest
    from katadeploy.runtime.openvino_runtime import load

    manifest = read_manifest(path)
    ev = load(LoadRequest(artifact_file(manifest, path), manifest, threads=threads))
    report = runtime_report(ev.compiled("LATENCY"))
    report["inference_precision"] = ev.precision
    report["target"] = manifest.target
    return report


# ------------------------------------------------------------------------------------------------- export
def export(req: ExportRequest) -> Path:
    """Build the ``openvino-*`` artifact for ``req`` and its sidecar manifest; return the ``.xml`` path."""
    ov = _ov()
    if req.target.format != "openvino":
        raise KatadeployError(f"target {req.target.name} is not an OpenVINO target")
    from katadeploy.runtime.openvino_runtime import OpenVINOEvaluator, cpu_check

    cpu_check(ov.Core())
    t0 = time.perf_counter()
    precision = req.target.precision
    threads = req.options.get("threads")
    req.log(
        f"converting {req.model.name} with OpenVINO {ov.__version__} "
        f"({req.nn_x}x{req.nn_y}{', exact board' if req.exact else ''})"
    )
    om = convert(req.model, req.nn_x, req.nn_y, req.exact)
    diff = self_check(om, req.model, req.nn_x, req.nn_y, req.exact, threads)
    details: dict[str, Any] = {
        "exporter": f"openvino {ov.__version__} ov.convert_model(torch ExportNet)",
        "source_graph": "torch (direct; not via ONNX)",
        "self_check_max_rel_diff": diff,
    }
    if precision == "fp32":
        details["inference_precision"] = "f32"
        details["weights"] = "fp32"
    elif precision == "fp16":
        details["weights"] = "fp16 (compress_to_fp16)"
        details["inference_precision"], details["bf16_check"] = choose_fp16_precision(req, om)
    elif precision == "int8":
        if int8_source(req.options) == INT8_SOURCE_QDQ:
            from katadeploy.export.openvino_qdq import from_onnx_qdq

            om, details["int8"] = from_onnx_qdq(req)
            details["source_graph"] = "onnx-int8 QDQ graph (ov.convert_model of the ONNX file)"
        else:
            om, details["int8"] = quantize_int8(req, om)
        details["weights"] = "int8 per-channel (quantized layers), fp32 (float layers)"
        details["inference_precision"] = "f32"
    else:
        raise KatadeployError(f"no OpenVINO precision {precision!r}")
    artifact = req.artifact_path()
    xml, weights = save_ir(om, artifact, compress_to_fp16=precision == "fp16")
    details["files"] = [xml.name, weights.name]
    details["bytes"] = {xml.name: xml.stat().st_size, weights.name: weights.stat().st_size}
    loaded = OpenVINOEvaluator(
        ov.Core().read_model(str(xml)), threads=threads, inference_precision=details["inference_precision"]
    )
    details["runtime"] = runtime_report(loaded.compiled("LATENCY"), names=precision == "int8")
    loaded.close()
    details["seconds"] = round(time.perf_counter() - t0, 1)
    inputs, outputs = io_specs(req.model, req.nn_x, req.nn_y, "N")
    quantization = (details.get("int8") or {}).pop("quantization", None)
    manifest = req.manifest(
        artifact, inputs, outputs, batch={"dynamic": True}, output_scale=1.0, details=details,
        quantization=quantization,
    )  # fmt: skip
    req.log(
        f"wrote {xml} + {weights.name} ({weights.stat().st_size / 1e6:.1f} MB) in {details['seconds']:.1f} s"
    )
    return req.finish(artifact, manifest)


__all__ = [
    "DEFAULT_RECIPES",
    "FLOAT_ISLANDS",
    "RECIPES",
    "Recipe",
    "convert",
    "export",
    "guard_fanout",
    "int8_report",
    "quantize",
    "runtime_report",
]
