"""Core ML artifacts (``coreml-*`` ``.mlpackage``): predictions on macOS, a structural check everywhere.

Contract:
- :func:`load` ``(path, manifest, device=None, threads=None, **opts)``: on macOS returns a :class:`CoreMLEvaluator`
  (``coremltools.models.MLModel.predict``; ``device`` ``None``/``"all"`` -> all compute units, ``"cpu"`` -> CPU
  only, ``"gpu"`` -> CPU and GPU, ``"ane"``/``"npu"`` -> CPU and Neural Engine) named
  ``coreml-<precision>-<device>``, which splits any batch into the artifact's fixed batch and pads the last chunk.
  The evaluator has not been run by katadeploy's own checks (they run on Linux). On any other OS, :func:`load`
  raises :class:`~katadeploy.errors.KatadeployError`: Core ML predictions need macOS.
- :func:`inspect_mlpackage` ``(path) -> dict`` reads the package's protobuf spec without loading the model (works
  on Linux) and reports what can be checked without running it: input/output names, shapes and dtypes; the MIL
  program's op histogram (nested blocks included); how many compute ops produce float16 vs float32 values; the
  const weights by dtype; the ``constexpr_*`` ops and the dtype of their packed data (8-bit weights in ``w8``).
  It states that the numbers are unverified: ``"verified": False``.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from katadeploy.artifact import OUTPUT_NAMES, ArtifactManifest
from katadeploy.errors import KatadeployError
from katadeploy.extras import require
from katadeploy.runtime.base import LoadRequest, RawBatch, evaluate_checked

UNVERIFIED_NOTE = (
    "structural check only: Core ML cannot run on this OS, so these are facts about the file, "
    "not evidence that its numbers are right (run `katadeploy validate` on macOS for that)"
)
COMPUTE_UNITS = {
    "all": "ALL",
    "cpu": "CPU_ONLY",
    "gpu": "CPU_AND_GPU",
    "ane": "CPU_AND_NE",
    "npu": "CPU_AND_NE",
}
#: ops that only move or name data; they are not counted as float16/float32 compute
_NON_COMPUTE = {"const", "cast"}


# ---------------------------------------------------------------------------------------------- structure
def _load_spec(path: Path) -> Any:
    ct = require("coremltools", "coreml")
    if not Path(path).exists():
        raise KatadeployError(f"{path}: no such Core ML package")
    try:
        return ct.utils.load_spec(str(path))
    except Exception as exc:  # coremltools raises bare Exceptions for unreadable packages
        raise KatadeployError(f"{path}: not a readable Core ML model ({exc})") from None


def _feature(f: Any) -> dict[str, Any]:
    from coremltools.proto import FeatureTypes_pb2

    arr = f.type.multiArrayType
    return {
        "name": f.name,
        "shape": [int(d) for d in arr.shape],
        "dtype": FeatureTypes_pb2.ArrayFeatureType.ArrayDataType.Name(arr.dataType).lower(),
    }


def _operations(block: Any) -> Iterator[Any]:
    for op in block.operations:
        yield op
        for inner in op.blocks:
            yield from _operations(inner)


def _dtype(value_type: Any) -> str:
    from coremltools.proto import MIL_pb2

    if value_type.HasField("tensorType"):
        return MIL_pb2.DataType.Name(value_type.tensorType.dataType).lower()
    return "other"


def inspect_mlpackage(path: str | Path) -> dict[str, Any]:
    spec = _load_spec(Path(path))
    result: dict[str, Any] = {
        "verified": False,
        "note": UNVERIFIED_NOTE,
        "spec_version": int(spec.specificationVersion),
        "inputs": [_feature(f) for f in spec.description.input],
        "outputs": [_feature(f) for f in spec.description.output],
    }
    if not spec.HasField("mlProgram"):
        result["model_type"] = spec.WhichOneof("Type")
        return result
    ops: Counter[str] = Counter()
    compute: Counter[str] = Counter()
    const_weights: Counter[str] = Counter()
    constexpr: dict[str, Counter[str]] = {}
    opsets = []
    for fname, func in spec.mlProgram.functions.items():
        opsets.append(f"{fname}:{func.opset}")
        for op in _operations(func.block_specializations[func.opset]):
            ops[op.type] += 1
            if op.type == "const":
                val = op.attributes.get("val")
                if val is not None and val.type.HasField("tensorType") and val.type.tensorType.rank > 0:
                    const_weights[_dtype(val.type)] += 1
            elif op.type.startswith("constexpr_"):
                packed = constexpr.setdefault(op.type, Counter())
                for key in ("quantized_data", "data", "indices", "lut"):
                    if key in op.attributes:
                        packed[f"{key}:{_dtype(op.attributes[key].type)}"] += 1
            elif op.type not in _NON_COMPUTE:
                for out in op.outputs:
                    compute[_dtype(out.type)] += 1
    result.update(
        {
            "model_type": "mlProgram",
            "opsets": opsets,
            "op_histogram": dict(sorted(ops.items())),
            "op_count": int(sum(ops.values())),
            "compute_output_dtypes": dict(sorted(compute.items())),
            "fp16_compute_ops": int(compute.get("float16", 0)),
            "fp32_compute_ops": int(compute.get("float32", 0)),
            "const_tensors": dict(sorted(const_weights.items())),
            "constexpr_ops": {k: dict(sorted(v.items())) for k, v in sorted(constexpr.items())},
            "weights_8bit": int(
                sum(n for c in constexpr.values() for k, n in c.items() if k.endswith(("int8", "uint8")))
            ),
        }
    )
    return result


# ---------------------------------------------------------------------------------------------- macOS runtime
class CoreMLEvaluator:
    """``MLModel.predict`` behind the Evaluator interface (macOS only; not exercised by katadeploy's Linux CI)."""

    output_scale = 1.0

    def __init__(self, path: Path, manifest: ArtifactManifest, device: str | None = None) -> None:
        ct = require("coremltools", "coreml")
        key = (device or "all").lower()
        if key not in COMPUTE_UNITS:
            raise KatadeployError(f"unknown Core ML device {device!r}; use one of {', '.join(COMPUTE_UNITS)}")
        batch = manifest.fixed_batch
        if batch is None:
            raise KatadeployError(f"{path}: a Core ML artifact must have a fixed batch in its manifest")
        self.path, self.manifest, self.batch = Path(path), manifest, batch
        self.name = f"coreml-{manifest.precision}-{key}"
        self.output_scale = float(manifest.output_scale)
        self._inputs = [t.name for t in manifest.inputs]
        try:
            self._model = ct.models.MLModel(
                str(path), compute_units=getattr(ct.ComputeUnit, COMPUTE_UNITS[key])
            )
        except Exception as exc:  # coremltools raises bare Exceptions
            raise KatadeployError(f"{path}: Core ML cannot load this model ({exc})") from None

    def _run(self, spatial: np.ndarray, global_: np.ndarray, meta: np.ndarray | None) -> RawBatch:
        feed = {"spatial": spatial, "global": global_}
        if meta is not None and "meta" in self._inputs:  # check_inputs made sure a meta net has it
            feed["meta"] = meta
        out = self._model.predict(feed)
        return RawBatch(*(np.asarray(out[name], dtype=np.float32) for name in OUTPUT_NAMES))

    def evaluate(self, spatial: np.ndarray, global_: np.ndarray, meta: np.ndarray | None = None) -> RawBatch:
        return evaluate_checked(
            str(self.path), self.manifest.inputs, self._run, self.batch, spatial, global_, meta
        )


def load(req: LoadRequest) -> CoreMLEvaluator:
    path, manifest, device = req.path, req.manifest, req.device
    if sys.platform != "darwin":
        raise KatadeployError(
            f"{Path(path).name}: Core ML predictions need macOS (this is {sys.platform}); on this machine "
            "only its structure can be checked (katadeploy.runtime.coreml_runtime.inspect_mlpackage)"
        )
    return CoreMLEvaluator(Path(path), manifest, device=device)
