"""ONNX artifacts (``onnx-fp32``, ``onnx-fp16``, ``onnx-int8``) and the FP32 ONNX graph other exporters build on.

Contract:
- :func:`write_onnx` ``(req, path, precision)`` writes one ONNX file of ``precision`` ``"fp32"``, ``"fp16"`` or
  ``"int8"`` (static QDQ) for ``req.model`` on an ``req.nn_y`` x ``req.nn_x`` tensor (masked, or the exact-board
  variant without mask ops when ``req.exact``) and returns a JSON-able details dict (exporter, opset, node counts,
  the nodes kept in FP32 / left unquantized, INT8 calibration method and per-method losses, ``output_scale``).
  It writes no manifest: the TensorRT and OpenVINO exporters feed that file to their own builders.
  :func:`export` writes the ``onnx-*`` artifact at ``req.artifact_path()`` plus its sidecar manifest.
- Graph: inputs ``spatial [N, 22, H, W]``, ``global [N, 19]`` (and ``meta [N, 192]`` for human-SL nets), outputs
  ``policy``, ``policy_pass``, ``value``, ``score``, ``ownership`` (:mod:`katadeploy.artifact`), all float32
  whatever the precision; only the batch axis ``N`` is dynamic. Traced with torch's TorchScript exporter (opset
  17): it exports in well under a second where the dynamo exporter needs 8-25 s for the same graph, the two agree
  with torch to ~1e-5, and its node names carry the module scope (``/net/blocks.3/norm/Mul``) that the FP16 block
  list and the INT8 exclusions are derived from (:func:`katadeploy.export.node_roles.node_role`). Because the board tensor is fixed, every
  value that depends only on H and W (RoPE tables, reshape sizes) is then folded into constants
  (:func:`fold_constants`), so the file carries no shape arithmetic except for the batch.
- No onnxruntime graph optimisation is baked into ``onnx-fp32``/``onnx-fp16`` files: onnxruntime applies level ALL
  itself when it loads them, and what that level produces (NCHWc layouts, fused kernels) is specific to the
  execution provider and the CPU, which would tie a portable file to one machine (TensorRT and OpenVINO read these
  files too). :mod:`katadeploy.runtime.onnx_runtime` can cache the optimised session per machine instead. The INT8
  recipe does run onnxruntime's portable BASIC level through ``quant_pre_process`` before quantizing.
- The FP32 graph is checked against the PyTorch reference before anything is written; a mismatch is an error.
- FP16 lives in :mod:`katadeploy.export.onnx_fp16`, INT8 in :mod:`katadeploy.export.onnx_int8`.
"""

from __future__ import annotations

import json
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from katadeploy.artifact import OUTPUT_NAMES, input_names, io_specs
from katadeploy.errors import KatadeployError
from katadeploy.export.graph import ExportNet, example_inputs
from katadeploy.export.onnx_fp16 import convert_fp16
from katadeploy.export.onnx_int8 import quantize_int8
from katadeploy.export.request import ExportRequest
from katadeploy.extras import require
from katadeploy.files import staged
from katadeploy.model.desc import ModelDesc

OPSET = 17
PRECISIONS = ("fp32", "fp16", "int8")
#: largest folded constant (elements); bigger constant subgraphs stay as nodes
FOLD_LIMIT = 1 << 22
#: FP32 self-check: largest allowed |onnxruntime - torch| on any raw output
SELF_CHECK_TOL = 2e-3

# ---------------------------------------------------------------------------------------------- export + fold
def trace_to_onnx(model: ModelDesc, path: Path, nn_x: int, nn_y: int, exact: bool) -> None:
    """Trace :class:`ExportNet` with torch's TorchScript ONNX exporter (dynamic batch only)."""
    import torch

    net = ExportNet(model, exact=exact).eval()
    names = input_names(model)
    args = example_inputs(model, 2, nn_x, nn_y)
    dynamic = {n: {0: "N"} for n in [*names, *OUTPUT_NAMES]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy-exporter deprecation and tracer notes
        torch.onnx.export(
            net, args, str(path), dynamo=False, opset_version=OPSET, input_names=names,
            output_names=list(OUTPUT_NAMES), dynamic_axes=dynamic, do_constant_folding=True,
        )  # fmt: skip


def _shape_table(model: Any) -> dict[str, list[int | None]]:
    out: dict[str, list[int | None]] = {}
    g = model.graph
    for vi in [*g.value_info, *g.input, *g.output]:
        t = vi.type.tensor_type
        if t.HasField("shape"):
            out[vi.name] = [dim.dim_value if dim.HasField("dim_value") else None for dim in t.shape.dim]
    return out


def fold_constants(model: Any) -> Any:
    """Fold every node whose inputs are constant, treating static dimensions of ``Shape`` results as constants.

    With only the batch dynamic, this turns the shape arithmetic of traced code (RoPE angle tables from the board
    size, repeat/reshape sizes) into initializers; what remains depends on the inputs or on the batch size.
    """
    onnx = require("onnx", "onnx")
    from onnx import helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    model = onnx.shape_inference.infer_shapes(model)
    g = model.graph
    shapes = _shape_table(model)
    consts: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    partial: dict[str, list[int | None]] = {}  # 1-D int64 shape vectors with some known entries
    kept = []
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), OPSET)

    def evaluate(node: Any) -> list[np.ndarray] | None:
        try:
            ev = ReferenceEvaluator(helper.make_model(
                helper.make_graph([node], "fold", [], []), opset_imports=[helper.make_opsetid("", opset)]
            ))  # fmt: skip
        except Exception:
            return None
        feeds = {i: consts[i] for i in node.input if i}
        try:
            outs = ev.run(list(node.output), feeds)
        except Exception:
            return None
        return [np.asarray(o) for o in outs]

    for node in g.node:
        ins = [i for i in node.input if i]
        if node.op_type == "Constant" or all(i in consts for i in ins):
            outs = evaluate(node)
            if outs is not None and all(o.size <= FOLD_LIMIT for o in outs):
                consts.update(zip(node.output, outs))
                continue
        if node.op_type == "Shape" and node.input[0] in shapes:
            dims = shapes[node.input[0]]
            attrs = {a.name: a.i for a in node.attribute}
            dims = dims[attrs.get("start", 0) : attrs.get("end", len(dims))]
            if all(v is not None for v in dims):
                consts[node.output[0]] = np.array(dims, dtype=np.int64)
                continue
            partial[node.output[0]] = dims
        elif node.op_type == "Gather" and node.input[0] in partial and node.input[1] in consts:
            idx = consts[node.input[1]]
            vec = partial[node.input[0]]
            picked = [vec[int(i)] for i in np.atleast_1d(idx)]
            if all(v is not None for v in picked):
                consts[node.output[0]] = np.array(picked, dtype=np.int64).reshape(idx.shape)
                continue
        kept.append(node)

    used = {i for n in kept for i in n.input} | {o.name for o in g.output}
    produced = {o for n in kept for o in n.output} | {i.name for i in g.input}
    new_inits = [numpy_helper.from_array(v, k) for k, v in consts.items() if k in used and k not in produced]
    # drop nodes whose outputs nobody reads (dead shape arithmetic)
    live: set[str] = {o.name for o in g.output}
    alive = []
    for node in reversed(kept):
        if any(o in live for o in node.output):
            alive.append(node)
            live.update(i for i in node.input if i)
    alive.reverse()
    new_inits = [t for t in new_inits if t.name in live]
    del g.node[:]
    g.node.extend(alive)
    del g.initializer[:]
    g.initializer.extend(new_inits)
    del g.value_info[:]
    return onnx.shape_inference.infer_shapes(model)


def build_fp32(model: ModelDesc, nn_x: int, nn_y: int, exact: bool) -> Any:
    """The folded FP32 ONNX graph (a ``ModelProto``) for ``model`` on an ``nn_x`` x ``nn_y`` tensor."""
    onnx = require("onnx", "onnx")
    with tempfile.TemporaryDirectory(prefix="katadeploy-onnx-") as tmp:
        raw = Path(tmp) / "traced.onnx"
        trace_to_onnx(model, raw, nn_x, nn_y, exact)
        proto = onnx.load(str(raw))
    proto = fold_constants(proto)
    proto.producer_name = "katadeploy"
    from katadeploy import __version__

    proto.producer_version = __version__
    onnx.checker.check_model(proto)
    return proto


def self_check(proto_or_path: Any, model: ModelDesc, nn_x: int, nn_y: int, exact: bool, tol: float) -> float:
    """Run the graph with onnxruntime on real positions and return the largest difference to torch; raise if
    it exceeds ``tol``."""
    import torch

    ort = require("onnxruntime", "onnx")
    data = str(proto_or_path) if isinstance(proto_or_path, (str, Path)) else proto_or_path.SerializeToString()
    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
    args = example_inputs(model, 3, nn_x, nn_y)
    feed = {n: a.numpy() for n, a in zip(input_names(model), args)}
    got = sess.run(list(OUTPUT_NAMES), feed)
    net = ExportNet(model, exact=exact).eval()
    with torch.inference_mode():
        want = [t.numpy() for t in net(*args)]
    worst = max(float(np.max(np.abs(a.astype(np.float64) - b))) for a, b in zip(got, want))
    if not worst <= tol:
        raise KatadeployError(
            f"the exported ONNX graph of {model.name} disagrees with PyTorch (max |diff| {worst:.3g} > {tol:g})"
        )
    return worst


def op_counts(proto: Any) -> dict[str, int]:
    return dict(sorted(Counter(n.op_type for n in proto.graph.node).items()))


def mask_consumers(proto: Any) -> list[str]:
    """Nodes that read the ``spatial`` input other than convolutions (the masked graph slices channel 0 as the
    board mask; the exact-board graph must have none)."""
    return [
        f"{n.op_type} {n.name}"
        for n in proto.graph.node
        if "spatial" in n.input and n.op_type not in ("Conv", "Shape")
    ]


# ---------------------------------------------------------------------------------------------- entry points
def _save(proto: Any, path: Path) -> None:
    onnx = require("onnx", "onnx")
    with staged(path) as tmp:
        onnx.save(proto, str(tmp))


def write_onnx(req: ExportRequest, path: Path, precision: str) -> dict[str, Any]:
    """Write an ONNX file of ``precision`` for ``req`` at ``path`` (no manifest); return its details."""
    require("onnx", "onnx")
    require("onnxruntime", "onnx")
    if precision not in PRECISIONS:
        raise KatadeployError(f"no ONNX precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    path = Path(path)
    model = req.model
    t0 = time.perf_counter()
    req.log(
        f"tracing {model.name} to ONNX (opset {OPSET}, {req.nn_x}x{req.nn_y}{', exact board' if req.exact else ''})"
    )
    proto = build_fp32(model, req.nn_x, req.nn_y, req.exact)
    fp32_diff = self_check(proto, model, req.nn_x, req.nn_y, req.exact, SELF_CHECK_TOL)
    details: dict[str, Any] = {
        "exporter": f"torch {_torch_version()} TorchScript ONNX exporter (dynamo=False), constant-folded",
        "opset": OPSET,
        "precision": precision,
        "output_scale": 1.0,
        "fp32_max_abs_diff_vs_torch": fp32_diff,
        "mask_ops": not req.exact,
        "trace_seconds": round(time.perf_counter() - t0, 3),
    }
    if precision == "fp32":
        _save(proto, path)
    elif precision == "fp16":
        fp16, extra = convert_fp16(proto, model)
        _save(fp16, path)
        details.update(extra)
    else:
        details.update(quantize_int8(req, proto, path))
    final = require("onnx", "onnx").load(str(path), load_external_data=False)
    details["nodes"] = len(final.graph.node)
    details["op_counts"] = op_counts(final)
    details["seconds"] = round(time.perf_counter() - t0, 3)
    return details


def _torch_version() -> str:
    import torch

    return torch.__version__.split("+")[0]


def export(req: ExportRequest) -> Path:
    """Build the ``onnx-*`` artifact for ``req`` and its sidecar manifest; return the artifact path."""
    if req.target.format != "onnx":
        raise KatadeployError(f"target {req.target.name} is not an ONNX target")
    artifact = req.artifact_path()
    details = write_onnx(req, artifact, req.target.precision)
    details = json.loads(json.dumps(details, default=_json_default))
    quantization = details.pop("quantization", None)
    inputs, outputs = io_specs(req.model, req.nn_x, req.nn_y, "N")
    manifest = req.manifest(
        artifact, inputs, outputs, batch={"dynamic": True}, output_scale=1.0, details=details,
        quantization=quantization,
    )  # fmt: skip
    req.log(f"wrote {artifact} ({artifact.stat().st_size / 1e6:.1f} MB) in {details['seconds']:.1f} s")
    return req.finish(artifact, manifest)


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    return str(o)
