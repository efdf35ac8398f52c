"""What an exporter is asked to build, and the one entry point that builds it.

Contract: :func:`export_artifact` takes the net as a :class:`~katadeploy.model.source.Net` (resolved, parsed
and hashed once by the caller) or a spec it opens (name, path or URL), checks the target, loads calibration data
for targets that need it (``--calib`` or, when absent, the default calibration built from the bundled games),
and calls ``katadeploy.export.<target.module>.export(request)``. Every exporter receives an :class:`ExportRequest`,
writes exactly one artifact at :meth:`ExportRequest.artifact_path` and its sidecar manifest (built with
:meth:`ExportRequest.manifest`), and returns the artifact path. Nothing is left half-written: exporters write to
a temporary name and move it into place.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from katadeploy.artifact import ArtifactManifest, TensorSpec, write_manifest
from katadeploy.errors import KatadeployError
from katadeploy.export.options import check_options
from katadeploy.export.targets import Target, every_board_size, get_target
from katadeploy.model.desc import ModelDesc
from katadeploy.model.source import Net, open_net
from katadeploy.progress import log


@dataclass
class ExportRequest:
    model: ModelDesc
    model_path: Path
    model_sha256: str
    target: Target
    out_dir: Path
    nn_x: int = 19
    nn_y: int = 19
    exact: bool = False
    batch: int = 8  # the largest batch a fixed-shape or profiled artifact accepts (ONNX stays dynamic)
    calib: Any = None  # katadeploy.data.calibration.CalibrationSet for targets that need it
    calib_path: Path | None = None
    progress: bool = True
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def stem(self) -> str:
        size = f"{self.nn_x}x{self.nn_y}" if (self.nn_x, self.nn_y) != (19, 19) else ""
        parts = [self.model.name, self.target.name, size, "exact" if self.exact else ""]
        return "-".join(p for p in parts if p)

    def artifact_path(self, extension: str | None = None) -> Path:
        return self.out_dir / (self.stem + (extension or self.target.extension))

    def log(self, msg: str) -> None:
        log(msg, self.progress)

    def manifest(
        self,
        artifact: Path,
        inputs: list[TensorSpec],
        outputs: list[TensorSpec],
        *,
        batch: dict[str, Any] | None = None,
        output_scale: float = 1.0,
        details: dict[str, Any] | None = None,
        quantization: dict[str, Any] | None = None,
    ) -> ArtifactManifest:
        calibration = None
        if self.calib is not None:
            calibration = {
                "sha256": getattr(self.calib, "sha256", None),
                "file": str(self.calib_path) if self.calib_path else None,
                "positions": int(len(self.calib.spatial)),
            }
        return ArtifactManifest(
            target=self.target.name,
            format=self.target.format,
            precision=self.target.precision,
            artifact=artifact.name,
            source={
                "name": self.model.name,
                "file": self.model_path.name,
                "sha256": self.model_sha256,
                "model_version": self.model.version,
            },
            board={"nn_x": self.nn_x, "nn_y": self.nn_y, "exact": self.exact},
            batch=batch or {"dynamic": True},
            inputs=inputs,
            outputs=outputs,
            output_scale=output_scale,
            calibration=calibration,
            quantization=quantization,
            details=details or {},
        )

    def finish(self, artifact: Path, manifest: ArtifactManifest) -> Path:
        write_manifest(manifest, artifact)
        return artifact


def _exporter(t: Target):
    name = f"katadeploy.export.{t.module}"
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name:
            raise KatadeployError(f"target {t.name}: no exporter for {t.format} in this katadeploy") from None
        raise


def load_request(
    model_spec: str | Path | Net | None,
    target: str,
    out_dir: str | Path,
    *,
    calib: str | Path | None = None,
    nn_size: int = 19,
    exact: bool = False,
    batch: int = 8,
    progress: bool = True,
    options: dict[str, Any] | None = None,
) -> ExportRequest:
    t = get_target(target)
    check_options(options)
    if not 2 <= nn_size <= 37:
        raise KatadeployError("--nn-size must be between 2 and 37")
    if batch < 1:
        raise KatadeployError("--batch must be positive")
    _exporter(t)  # fail early on a missing exporter
    net = open_net(model_spec, quiet=not progress)
    model = net.model
    if model.num_input_channels != 22 or model.num_input_global_channels != 19:
        raise KatadeployError(
            f"{model.name} (model v{model.version}) does not use the v7 inputs; katadeploy exports model v8-17 nets"
        )
    calib_set, calib_path = None, None
    if t.needs_calibration or calib is not None:
        from katadeploy.data import calibration as C

        calib_path = (
            Path(calib)
            if calib is not None
            else C.default_calibration_path(nn_size, progress=progress, every_size=every_board_size(t, options))
        )
        calib_set = C.load_calibration(calib_path)
        C.check_compatible(calib_set, model, nn_size, nn_size)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return ExportRequest(
        model=model,
        model_path=net.path,
        model_sha256=net.sha256,
        target=t,
        out_dir=out,
        nn_x=nn_size,
        nn_y=nn_size,
        exact=exact,
        batch=batch,
        calib=calib_set,
        calib_path=calib_path,
        progress=progress,
        options=dict(options or {}),
    )


def export_artifact(model_spec: str | Path | Net | None, target: str, out_dir: str | Path, **kwargs: Any) -> Path:
    req = load_request(model_spec, target, out_dir, **kwargs)
    return _exporter(req.target).export(req)
