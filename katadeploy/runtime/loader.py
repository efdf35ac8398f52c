"""Open any evaluator by name or artifact path.

Contract: :func:`open_evaluator` accepts ``"torch"`` (the FP32 reference; needs ``model``) or the path of an
exported artifact. For an artifact it reads the sidecar manifest, refuses an artifact built from a different net
than ``model_sha256`` (when given), and hands over to ``katadeploy.runtime.<module>.load(LoadRequest)``
for the artifact's format (:data:`RUNTIME_MODULES`). Each such ``load`` returns an
:class:`~katadeploy.runtime.base.Evaluator` with a ``manifest`` attribute; a missing optional package raises
:class:`~katadeploy.errors.MissingExtraError` naming the extra.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from katadeploy.artifact import ArtifactManifest, artifact_file, check_source, read_manifest
from katadeploy.errors import KatadeployError
from katadeploy.model.desc import ModelDesc
from katadeploy.runtime.base import Evaluator, LoadRequest

RUNTIME_MODULES: dict[str, str] = {
    "onnx": "katadeploy.runtime.onnx_runtime",
    "tflite": "katadeploy.runtime.litert_runtime",
    "coreml": "katadeploy.runtime.coreml_runtime",
    "tensorrt": "katadeploy.runtime.tensorrt_runtime",
    "openvino": "katadeploy.runtime.openvino_runtime",
}


def is_torch(spec: str | Path) -> bool:
    return str(spec).lower() in ("torch", "torch-fp32", "pytorch")


def open_manifest(spec: str | Path) -> tuple[Path, ArtifactManifest]:
    manifest = read_manifest(spec)
    return artifact_file(manifest, spec), manifest


def open_evaluator(
    spec: str | Path,
    *,
    model: ModelDesc | None = None,
    model_sha256: str | None = None,
    device: str | None = None,
    threads: int | None = None,
    **options: Any,
) -> Evaluator:
    if is_torch(spec):
        if model is None:
            raise KatadeployError("the torch backend needs the net itself (--model)")
        from katadeploy.runtime.torch_runtime import TorchEvaluator

        return TorchEvaluator(model, device=device or "cpu", threads=threads)
    path, manifest = open_manifest(spec)
    if model_sha256 is not None:
        check_source(manifest, model_sha256, model.name if model is not None else "")
    module_name = RUNTIME_MODULES.get(manifest.format)
    if module_name is None:
        raise KatadeployError(f"{path}: unknown artifact format {manifest.format!r}")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            raise KatadeployError(f"no runtime for {manifest.format} artifacts in this katadeploy") from None
        raise
    if not path.exists():
        raise KatadeployError(f"{path}: artifact named by its manifest is missing")
    return module.load(LoadRequest(path, manifest, device, threads, dict(options)))
