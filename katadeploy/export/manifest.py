"""The sidecar manifest written next to every exported artifact.

Contract: ``<artifact>.json`` (for example ``net-onnx-fp32.onnx.json``, ``net-coreml-fp16.mlpackage.json``)
records what the artifact is and where it came from: target, format, precision, the source net's name and
sha256, the board tensor (``nn_x``, ``nn_y`` and whether it is the exact-board variant without mask ops), the
batch it accepts, input/output names and shapes (``"N"`` marks a dynamic batch), the output scale, the
calibration data's sha256 (INT8 and friends), free-form target ``details`` and the katadeploy version.
:func:`read_manifest` validates the file and raises :class:`~katadeploy.errors.KatadeployError` with the fix
when it is missing or malformed; :func:`check_source` refuses an artifact that was built from another net.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from katadeploy import __version__
from katadeploy.errors import KatadeployError

MANIFEST_VERSION = 1


@dataclass
class TensorSpec:
    name: str
    shape: list[int | str]
    dtype: str = "float32"


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


def sidecar_path(artifact: str | Path) -> Path:
    p = Path(artifact)
    return p.with_name(p.name + ".json")


def write_manifest(manifest: ArtifactManifest, artifact: str | Path) -> Path:
    path = sidecar_path(artifact)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(manifest.to_json(), indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


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


def check_source(manifest: ArtifactManifest, model_sha256: str, model_name: str = "") -> None:
    """Refuse an artifact exported from another net than the one given."""
    want = manifest.source.get("sha256")
    if want and want != model_sha256:
        raise KatadeployError(
            f"artifact {manifest.artifact} was exported from {manifest.source.get('name', '?')} "
            f"(sha256 {want[:12]}…), not from {model_name or 'this net'} (sha256 {model_sha256[:12]}…); "
            "pass the net it was built from, or re-export it from this one"
        )
