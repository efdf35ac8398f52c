"""The artifact contract: what every exported artifact is, and how runtimes read it. Torch-free.

Contract:

- :data:`INPUT_NAMES` and :data:`OUTPUT_NAMES` are the one definition of the I/O tensor names every artifact uses
  (``spatial``, ``global`` and for human-SL nets ``meta``; ``policy``, ``policy_pass``, ``value``, ``score``,
  ``ownership``, in that order, which is also the field order of :class:`katadeploy.runtime.base.RawBatch`).
  :func:`input_names` and :func:`io_specs` give a net's names and shapes (``"N"`` marks a dynamic batch).
- The sidecar manifest ``<artifact>.json`` (for example ``net-onnx-fp32.onnx.json``,
  ``net-coreml-fp16.mlpackage.json``) records what the artifact is and where it came from: target, format,
  precision, the source net's name and sha256, the board tensor (``nn_x``, ``nn_y`` and whether it is the
  exact-board variant without mask ops), the batch it accepts, input/output names and shapes, the output scale,
  the calibration data's sha256 (INT8 and friends), for INT8 artifacts ``quantization`` (``int8_mac_fraction``,
  recipe, float layers: a label that says how much of it really is int8), free-form target ``details`` and the
  katadeploy version.
  :func:`write_manifest` writes it atomically; :func:`read_manifest` validates the file and raises
  :class:`~katadeploy.errors.KatadeployError` with the fix when it is missing or malformed; :func:`check_source`
  refuses an artifact that was built from another net.
- :func:`content_sha256` identifies what an artifact computes, not when it was built: the sha256 of its payload
  (:func:`payload_files`: the artifact file or directory, plus OpenVINO's ``.bin`` beside its ``.xml``) and of
  the manifest fields that decide its function (target, board, I/O, output scale, source net). Re-exporting the
  same net with the same options gives the same value wherever the export is deterministic (FP32/FP16), while the
  manifest's own sha256 changes with every export (``created``, timings).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from katadeploy import __version__
from katadeploy.errors import KatadeployError
from katadeploy.files import atomic_write_text
from katadeploy.model.desc import ModelDesc

MANIFEST_VERSION = 1

INPUT_NAMES = ("spatial", "global", "meta")
OUTPUT_NAMES = ("policy", "policy_pass", "value", "score", "ownership")


@dataclass
class TensorSpec:
    name: str
    shape: list[int | str]
    dtype: str = "float32"


def input_names(model: ModelDesc) -> list[str]:
    """The artifact input names for ``model``: ``spatial``, ``global`` and, for human-SL nets, ``meta``."""
    return list(INPUT_NAMES if model.meta_encoder_version > 0 else INPUT_NAMES[:2])


def io_specs(
    model: ModelDesc, nn_x: int, nn_y: int, batch: int | str = "N"
) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """Input and output specs (names in :data:`INPUT_NAMES`/:data:`OUTPUT_NAMES` order, NCHW shapes)."""
    p = model.num_policy_channels
    ins = [
        TensorSpec("spatial", [batch, model.num_input_channels, nn_y, nn_x]),
        TensorSpec("global", [batch, model.num_input_global_channels]),
    ]
    if model.meta_encoder_version > 0:
        ins.append(TensorSpec("meta", [batch, model.num_meta_channels]))
    outs = [
        TensorSpec("policy", [batch, p, nn_y, nn_x]),
        TensorSpec("policy_pass", [batch, p]),
        TensorSpec("value", [batch, 3]),
        TensorSpec("score", [batch, model.num_score_channels]),
        TensorSpec("ownership", [batch, 1, nn_y, nn_x]),
    ]
    return ins, outs


@dataclass
class ArtifactManifest:
    target: str
    format: str
    precision: str
    artifact: str  # file or directory name, relative to the manifest
    source: dict[str, Any]  # name, file, sha256, model_version
    board: dict[str, Any]  # nn_x, nn_y, exact
    batch: dict[str, Any]  # {"dynamic": True, "max": ...} or {"fixed": B}
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    output_scale: float = 1.0
    calibration: dict[str, Any] | None = None
    #: INT8 artifacts: ``int8_mac_fraction`` (the share of the net's multiply-accumulates that run in int8), the
    #: recipe and the layers left float (:mod:`katadeploy.export.macs`); None for float artifacts
    quantization: dict[str, Any] | None = None
    details: dict[str, Any] = field(default_factory=dict)
    katadeploy_version: str = __version__
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    manifest_version: int = MANIFEST_VERSION

    @property
    def nn_x(self) -> int:
        return int(self.board["nn_x"])

    @property
    def nn_y(self) -> int:
        return int(self.board["nn_y"])

    @property
    def exact_board(self) -> bool:
        return bool(self.board.get("exact", False))

    @property
    def fixed_batch(self) -> int | None:
        b = self.batch.get("fixed")
        return int(b) if b else None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def int8_label(quantization: dict[str, Any] | None) -> str:
    """How much of an artifact really runs int8, for reports: ``"int8 MACs 94%"`` (empty for float artifacts);
    ``"int8 MACs 80%, onnxruntime CPU 0%"`` where the manifest also records what onnxruntime's CPU provider runs in
    int8 (``quantization["onnxruntime_cpu"]``, onnx-int8)."""
    if not quantization or "int8_mac_fraction" not in quantization:
        return ""
    label = f"int8 MACs {100 * float(quantization['int8_mac_fraction']):.0f}%"
    ort_cpu = onnxruntime_cpu_fraction(quantization)
    return label if ort_cpu is None else label + f", onnxruntime CPU {100 * ort_cpu:.0f}%"


def onnxruntime_cpu_fraction(quantization: dict[str, Any] | None) -> float | None:
    """The share of MACs onnxruntime's CPU provider runs in int8 (``quantization["onnxruntime_cpu"]``, onnx-int8),
    or None where the manifest does not record it."""
    ort_cpu = (quantization or {}).get("onnxruntime_cpu")
    if not isinstance(ort_cpu, dict) or "int8_mac_fraction" not in ort_cpu:
        return None
    return float(ort_cpu["int8_mac_fraction"])


def sidecar_path(artifact: str | Path) -> Path:
    p = Path(artifact)
    return p.with_name(p.name + ".json")


def write_manifest(manifest: ArtifactManifest, artifact: str | Path) -> Path:
    return atomic_write_text(sidecar_path(artifact), json.dumps(manifest.to_json(), indent=2) + "\n")


_REQUIRED = ("target", "format", "precision", "artifact", "source", "board", "batch", "inputs", "outputs")


def read_manifest(artifact: str | Path) -> ArtifactManifest:
    """Read ``artifact``'s sidecar manifest (``artifact`` may also be the manifest itself)."""
    p = Path(artifact)
    path = p if p.suffix == ".json" and p.is_file() else sidecar_path(p)
    if not p.exists():
        raise KatadeployError(f"{p}: no such artifact")
    if not path.is_file():
        raise KatadeployError(
            f"{p}: its manifest {path.name} is missing; artifacts are only usable with the sidecar JSON that "
            "`katadeploy export` writes next to them (re-export it)"
        )
    try:
        raw = json.loads(path.read_text("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise KatadeployError(f"{path}: not a valid artifact manifest ({exc})") from None
    if not isinstance(raw, dict) or any(k not in raw for k in _REQUIRED):
        missing = [k for k in _REQUIRED if not isinstance(raw, dict) or k not in raw]
        raise KatadeployError(f"{path}: not a katadeploy artifact manifest (missing {', '.join(missing)})")
    if raw.get("manifest_version", 1) > MANIFEST_VERSION:
        raise KatadeployError(
            f"{path}: manifest version {raw['manifest_version']} is newer than this katadeploy"
        )
    try:
        raw["inputs"] = [TensorSpec(**t) for t in raw["inputs"]]
        raw["outputs"] = [TensorSpec(**t) for t in raw["outputs"]]
        known = set(ArtifactManifest.__dataclass_fields__)
        m = ArtifactManifest(**{k: v for k, v in raw.items() if k in known})
        m.nn_x, m.nn_y  # noqa: B018 - validate
    except (TypeError, KeyError, ValueError) as exc:
        raise KatadeployError(f"{path}: malformed artifact manifest ({exc})") from None
    return m


def artifact_file(manifest: ArtifactManifest, manifest_or_artifact: str | Path) -> Path:
    """The artifact's path, resolved next to its manifest."""
    p = Path(manifest_or_artifact)
    base = p.parent
    return base / manifest.artifact


def payload_files(manifest: ArtifactManifest, manifest_or_artifact: str | Path) -> list[Path]:
    """The files (or ``.mlpackage``-style directory) that hold the artifact's graph and weights."""
    main = artifact_file(manifest, manifest_or_artifact)
    if not main.exists():
        raise KatadeployError(
            f"{manifest_or_artifact}: its manifest names the payload {manifest.artifact!r}, which is not beside it "
            "(renamed? rename the payload and its .json together and set the manifest's \"artifact\" field)"
        )
    files = [main]
    if main.suffix == ".xml" and main.with_suffix(".bin").is_file():
        files.append(main.with_suffix(".bin"))
    return files


#: manifest fields that decide what an artifact computes (the rest are provenance: dates, timings, machine)
FUNCTION_FIELDS = ("target", "format", "precision", "source", "board", "batch", "inputs", "outputs",
                   "output_scale")  # fmt: skip


def content_sha256(artifact: str | Path) -> str:
    """sha256 of ``artifact``'s payload and function-deciding manifest fields (see the module contract)."""
    from katadeploy.hashing import sha256_file, sha256_text

    manifest = read_manifest(artifact)
    fields = {k: v for k, v in manifest.to_json().items() if k in FUNCTION_FIELDS}
    parts = [json.dumps(fields, sort_keys=True)]
    parts += [f"{f.name}:{sha256_file(f)}" for f in payload_files(manifest, artifact)]
    return sha256_text("\n".join(parts))


def check_source(manifest: ArtifactManifest, model_sha256: str, model_name: str = "") -> None:
    """Refuse an artifact exported from another net than the one given."""
    want = manifest.source.get("sha256")
    if want and want != model_sha256:
        raise KatadeployError(
            f"artifact {manifest.artifact} was exported from {manifest.source.get('name', '?')} "
            f"(sha256 {want[:12]}…), not from {model_name or 'this net'} (sha256 {model_sha256[:12]}…); "
            "pass the net it was built from, or re-export it from this one"
        )


def candidate_manifest(
    model: ModelDesc,
    nn_x: int,
    nn_y: int,
    fmt: str,
    precision: str,
    artifact: str | Path,
    *,
    exact: bool = False,
    batch: int | None = None,
) -> ArtifactManifest:
    """An in-memory manifest for a candidate an exporter is still choosing (never written): lets a runtime
    evaluator open the candidate file exactly as it will open the final artifact."""
    ins, outs = io_specs(model, nn_x, nn_y, "N" if batch is None else batch)
    return ArtifactManifest(
        target=f"{fmt}-{precision}",
        format=fmt,
        precision=precision,
        artifact=Path(artifact).name,
        source={"name": model.name, "model_version": model.version},
        board={"nn_x": nn_x, "nn_y": nn_y, "exact": exact},
        batch={"fixed": batch} if batch is not None else {"dynamic": True},
        inputs=ins,
        outputs=outs,
        details={"candidate": True},
    )
