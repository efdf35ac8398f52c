"""Core ML artifacts (``coreml-fp32``, ``coreml-fp16``, ``coreml-w8``): ML programs built by coremltools.

Contract: :func:`export` ``(req)`` writes ``req.artifact_path()`` (an ``.mlpackage`` directory) and its sidecar
manifest, and returns the path.

- Graph: :class:`~katadeploy.export.graph.ExportNet` (masked, or exact-board with ``req.exact``) captured with
  ``torch.export`` at batch ``req.batch`` and run through torch's default decompositions (without them
  coremltools 9 turns the RoPE ``einsum`` over a float ``arange`` into an int32 x float32 matmul and fails) except
  Mish and softplus, which coremltools lowers itself (to its ``softplus`` and ``tanh`` ops), then
  ``coremltools.convert(..., convert_to="mlprogram", minimum_deployment_target=macOS13/iOS16)``. The batch is
  FIXED (``{"fixed": req.batch}``): a ``RangeDim`` batch also converts, but it cannot be checked here and keeps
  the model off the Neural Engine; the runtime splits and pads. Inputs ``spatial``, ``global`` (and ``meta``)
  and the five outputs are float32 in every precision (casts inside the model).
- ``fp32``: ``compute_precision=FLOAT32``; ``fp16``: ``FLOAT16`` (float16 weights and activations);
  ``w8``: the FP16 program with 8-bit weights from ``coremltools.optimize.coreml.linear_quantize_weights``
  (linear symmetric, per output channel, int8; tensors smaller than coremltools' default 2048-element threshold
  stay float16): ``constexpr_affine_dequantize`` ops unpack them at load time, compute stays float16.
- Mish: coremltools lowers Mish to softplus + tanh, which is reported to lose precision in float16 on the Apple
  Neural Engine. ``options["mish"]`` picks ``"native"`` or ``"exp"`` (default ``"exp"`` for fp16/w8, ``"native"``
  for fp32). ``"exp"`` swaps the activation, for this export only, for
  ``mish(x) = x * n / (n + 2)`` with ``n = e * (e + 2)``, ``e = exp(min(x, 5.5))`` (algebraically
  ``x * tanh(softplus(x))``; the clamp keeps ``n`` finite in float16 and costs a relative error below 3.3e-5, far
  under float16's 4.9e-4 resolution). Nets without Mish are unaffected (``details["mish"]["activations"]`` = 0).
- Before conversion the exported program (decompositions and Mish form included) is run in float32 and compared
  with the net (``details["torch_export_check"]``; the exp form differs from native Mish by at most ~1e-3).
- Every artifact gets :func:`katadeploy.runtime.coreml_runtime.inspect_mlpackage`'s structural check in
  ``details["structure"]`` (unverified numbers: Core ML cannot run on Linux), and export fails if the structure
  contradicts the target (wrong I/O, no float16 compute in fp16/w8, no 8-bit weights in w8, softplus left with
  the exp form).
"""

from __future__ import annotations

import contextlib
import io
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from katadeploy.artifact import OUTPUT_NAMES, io_specs
from katadeploy.errors import KatadeployError
from katadeploy.export.graph import ExportNet, example_inputs
from katadeploy.export.request import ExportRequest
from katadeploy.extras import require
from katadeploy.files import staged as staged_path

PRECISIONS = ("fp32", "fp16", "w8")
MISH_FORMS = ("native", "exp")
#: exp(2 * 5.5) * (1 + 2 / exp(5.5)) + 2 < 65504 (float16 max)
EXP_MISH_CLAMP = 5.5
DEPLOYMENT_TARGET = "macOS13"
#: largest allowed |exported program - net| (float32, either Mish form) on any raw output
EXPORT_CHECK_TOL = 2e-2


# ---------------------------------------------------------------------------------------------- Mish
def exp_mish(x: Any) -> Any:
    """Mish without softplus/tanh: ``x * n / (n + 2)``, ``n = e * (e + 2)``, ``e = exp(min(x, 5.5))``."""
    import torch

    e = torch.exp(torch.clamp(x, max=EXP_MISH_CLAMP))
    n = e * (e + 2.0)
    return x * (n / (n + 2.0))


@contextlib.contextmanager
def mish_form(form: str) -> Iterator[list[int]]:
    """While active, :class:`~katadeploy.model.net.KataGoNet` computes Mish in ``form``; yields a one-item list
    counting the Mish activations traced (``native`` leaves the net untouched and counts them too)."""
    if form not in MISH_FORMS:
        raise KatadeployError(f"unknown mish form {form!r}; use one of {', '.join(MISH_FORMS)}")
    from katadeploy.model import net as net_module

    original = net_module._act
    count = [0]

    def act(kind: str, x: Any) -> Any:
        if kind == "ACTIVATION_MISH":
            count[0] += 1
            if form == "exp":
                return exp_mish(x)
        return original(kind, x)

    net_module._act = act
    try:
        yield count
    finally:
        net_module._act = original


# ---------------------------------------------------------------------------------------------- conversion
@contextlib.contextmanager
def _quiet(progress: bool) -> Iterator[None]:
    """coremltools prints progress bars and notes; keep stdout clean and silence them when not wanted."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with contextlib.redirect_stdout(sys.stderr if progress else io.StringIO()):
            if progress:
                yield
            else:
                with contextlib.redirect_stderr(io.StringIO()):
                    yield


def _coremltools(progress: bool) -> Any:
    with _quiet(progress):  # importing coremltools logs notes about optional native parts and torch versions
        return require("coremltools", "coreml")


def _decompositions() -> Any:
    """torch's default decompositions, except Mish and softplus: coremltools lowers those itself (softplus + tanh)."""
    import torch

    table = torch.export.default_decompositions()
    for op in (torch.ops.aten.mish.default, torch.ops.aten.softplus.default):
        table.pop(op, None)
    return table


def convert(req: ExportRequest, mish: str) -> tuple[Any, dict[str, Any]]:
    """The ML program for ``req`` (fp32 or fp16 compute) and conversion details."""
    ct = _coremltools(req.progress)
    import torch

    precision = ct.precision.FLOAT32 if req.target.precision == "fp32" else ct.precision.FLOAT16
    net = ExportNet(req.model, exact=req.exact).eval()
    args = example_inputs(req.model, req.batch, req.nn_x, req.nn_y)
    t0 = time.perf_counter()
    req.log(f"coreml: torch.export of {req.model.name} (batch {req.batch}, mish {mish})")
    with mish_form(mish) as mish_count, torch.no_grad(), _quiet(req.progress):
        program = torch.export.export(net, args).run_decompositions(_decompositions())
    export_seconds = time.perf_counter() - t0
    check = export_check(net, program, args)
    specs_in, _ = io_specs(req.model, req.nn_x, req.nn_y, req.batch)
    inputs = [
        ct.TensorType(name=t.name, shape=tuple(int(d) for d in t.shape), dtype=np.float32) for t in specs_in
    ]
    outputs = [ct.TensorType(name=name, dtype=np.float32) for name in OUTPUT_NAMES]
    req.log(f"coreml: converting to an ML program ({req.target.precision})")
    t1 = time.perf_counter()
    with _quiet(req.progress):
        mlmodel = ct.convert(
            program, inputs=inputs, outputs=outputs, convert_to="mlprogram", compute_precision=precision,
            minimum_deployment_target=getattr(ct.target, DEPLOYMENT_TARGET),
        )  # fmt: skip
    details = {
        "converter": f"coremltools {ct.__version__} from torch.export (torch {torch.__version__})",
        "deployment_target": DEPLOYMENT_TARGET,
        "compute_precision": "float32" if req.target.precision == "fp32" else "float16",
        "torch_export_seconds": round(export_seconds, 1),
        "convert_seconds": round(time.perf_counter() - t1, 1),
        "mish": {"form": mish, "activations": mish_count[0]},
        "torch_export_check": check,
    }
    if mish == "exp":
        details["mish"]["formula"] = f"x * n / (n + 2), n = e * (e + 2), e = exp(min(x, {EXP_MISH_CLAMP}))"
    return mlmodel, details


def export_check(net: Any, program: Any, args: tuple[Any, ...]) -> dict[str, Any]:
    """Max |exported program - KataGoNet| per output in float32 on the example inputs: checks ``torch.export``, the
    decompositions and the Mish swap (what coremltools receives). coremltools' own result cannot be run here."""
    import torch

    with torch.no_grad():
        ref = net(*args)
        got = program.module()(*args)
    errors = {n: float((a - b).abs().max()) for n, a, b in zip(OUTPUT_NAMES, ref, got)}
    if not all(np.isfinite(list(errors.values()))) or max(errors.values()) > EXPORT_CHECK_TOL:
        raise KatadeployError(f"torch.export of the net disagrees with the net itself: {errors}")
    return {"max_abs_error_vs_torch_fp32": errors, "positions": int(args[0].shape[0])}


def quantize_weights_8bit(mlmodel: Any, progress: bool) -> tuple[Any, dict[str, Any]]:
    _coremltools(progress)
    import coremltools.optimize.coreml as cto

    op_config = cto.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8", granularity="per_channel")
    t0 = time.perf_counter()
    with _quiet(progress):
        quantized = cto.linear_quantize_weights(
            mlmodel, config=cto.OptimizationConfig(global_config=op_config)
        )
    return quantized, {
        "w8": {
            "method": "coremltools.optimize.coreml.linear_quantize_weights",
            "mode": "linear_symmetric",
            "dtype": "int8",
            "granularity": "per_channel",
            "weight_threshold": int(op_config.weight_threshold),
            "base": "the float16 program",
            "seconds": round(time.perf_counter() - t0, 1),
        }
    }


def check_structure(req: ExportRequest, structure: dict[str, Any], mish: str) -> None:
    """Refuse an artifact whose structure contradicts its target."""
    problems = []
    want_in = [t.name for t in io_specs(req.model, req.nn_x, req.nn_y, req.batch)[0]]
    if [f["name"] for f in structure["inputs"]] != want_in:
        problems.append(f"inputs {[f['name'] for f in structure['inputs']]} != {want_in}")
    if [f["name"] for f in structure["outputs"]] != list(OUTPUT_NAMES):
        problems.append(f"outputs {[f['name'] for f in structure['outputs']]} != {list(OUTPUT_NAMES)}")
    if any(f["dtype"] != "float32" for f in structure["inputs"] + structure["outputs"]):
        problems.append("inputs/outputs are not all float32")
    ops = structure.get("op_histogram", {})
    precision = req.target.precision
    if precision == "fp32" and structure.get("fp16_compute_ops", 0):
        problems.append("float16 compute in an fp32 program")
    if precision in ("fp16", "w8") and not structure.get("fp16_compute_ops", 0):
        problems.append("no float16 compute in a float16 program")
    if precision == "w8" and not structure.get("weights_8bit", 0):
        problems.append("no 8-bit weights in a w8 program")
    if mish == "exp" and ops.get("softplus", 0):
        problems.append(f"{ops['softplus']} softplus ops left with the exp Mish form")
    if problems:
        raise KatadeployError(
            f"{req.target.name} for {req.model.name}: unexpected Core ML structure: {'; '.join(problems)}"
        )


def export(req: ExportRequest) -> Path:
    from katadeploy.runtime.coreml_runtime import inspect_mlpackage

    precision = req.target.precision
    if precision not in PRECISIONS:
        raise KatadeployError(f"coreml targets are {', '.join('coreml-' + p for p in PRECISIONS)}")
    mish = str(req.options.get("mish", "native" if precision == "fp32" else "exp")).lower()
    if mish not in MISH_FORMS:
        raise KatadeployError(f"unknown mish form {mish!r}; use one of {', '.join(MISH_FORMS)}")
    t0 = time.perf_counter()
    mlmodel, details = convert(req, mish)
    if precision == "w8":
        mlmodel, extra = quantize_weights_8bit(mlmodel, req.progress)
        details.update(extra)
    path = req.artifact_path()
    with tempfile.TemporaryDirectory(prefix="katadeploy-coreml-", dir=req.out_dir) as tmpdir:
        staged = Path(tmpdir) / path.name
        with _quiet(req.progress):
            mlmodel.save(str(staged))
        structure = inspect_mlpackage(staged)
        check_structure(req, structure, mish)
        details["structure"] = structure
        details["export_seconds"] = round(time.perf_counter() - t0, 1)
        with staged_path(path) as final:
            shutil.move(str(staged), final)
    ins, outs = io_specs(req.model, req.nn_x, req.nn_y, req.batch)
    manifest = req.manifest(path, ins, outs, batch={"fixed": req.batch}, details=details)
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    req.log(
        f"coreml: wrote {path} ({size / 2**20:.1f} MiB, {details['export_seconds']} s; numbers unverified here)"
    )
    return req.finish(path, manifest)
