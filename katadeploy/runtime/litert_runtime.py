"""The LiteRT (TFLite) evaluator for ``tflite-*`` artifacts.

Contract: :func:`load` ``(path, manifest, device=None, threads=None, **opts)`` opens a ``.tflite`` file written by
:mod:`katadeploy.export.tflite` with ``ai_edge_litert``'s interpreter (CPU; the XNNPACK delegate unless
``xnnpack=False``, ``threads`` worker threads, default 2) and returns a :class:`LiteRTEvaluator` named
``tflite-<precision>-cpu``. The artifact has a fixed batch (``manifest.batch["fixed"]``): any batch is split into
chunks of that size and the last one padded (:func:`~katadeploy.runtime.base.evaluate_in_chunks`). Inputs and
outputs go through the model's signature; which signature name is which of ``spatial``/``global``/``meta`` and
``policy``/.../``ownership`` comes from ``manifest.details["signature"]`` (written at export) and falls back to
litert-torch's positional names (``args_<i>``, ``output_<i>``). Every signature tensor's shape is checked against
the manifest when the artifact is opened, so a mis-mapped or foreign file fails with a clear error instead of
giving silently wrong numbers. Only ``device`` ``None``/``"cpu"`` is accepted; other options are ignored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from katadeploy.artifact import OUTPUT_NAMES, ArtifactManifest
from katadeploy.errors import KatadeployError
from katadeploy.extras import require
from katadeploy.runtime.base import LoadRequest, RawBatch, evaluate_checked

DEFAULT_THREADS = 2
SIGNATURE_KEY = "serving_default"


def signature_names(manifest: ArtifactManifest) -> tuple[dict[str, str], dict[str, str]]:
    """``({input name: signature input}, {output name: signature output})`` for the artifact."""
    sig = manifest.details.get("signature") or {}
    ins = sig.get("inputs") or {t.name: f"args_{i}" for i, t in enumerate(manifest.inputs)}
    outs = sig.get("outputs") or {name: f"output_{i}" for i, name in enumerate(OUTPUT_NAMES)}
    return dict(ins), dict(outs)


class LiteRTEvaluator:
    output_scale = 1.0

    def __init__(
        self, path: Path, manifest: ArtifactManifest, threads: int | None = None, xnnpack: bool = True
    ) -> None:
        interp_mod = require("ai_edge_litert.interpreter", "tflite", "ai-edge-litert")
        self.manifest = manifest
        self.path = Path(path)
        self.name = f"tflite-{manifest.precision}-cpu"
        self.output_scale = float(manifest.output_scale)
        batch = manifest.fixed_batch
        if batch is None:
            raise KatadeployError(f"{path}: a tflite artifact must have a fixed batch in its manifest")
        self.batch = batch
        resolver = (
            interp_mod.OpResolverType.AUTO
            if xnnpack
            else interp_mod.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        )
        try:
            self._interp = interp_mod.Interpreter(
                model_path=str(path), num_threads=int(threads or DEFAULT_THREADS),
                experimental_op_resolver_type=resolver,
            )  # fmt: skip
        except (ValueError, RuntimeError) as exc:
            raise KatadeployError(f"{path}: LiteRT cannot load this file ({exc})") from None
        sigs = self._interp.get_signature_list()
        key = SIGNATURE_KEY if SIGNATURE_KEY in sigs else next(iter(sigs), None)
        if key is None:
            raise KatadeployError(f"{path}: the model has no signature; re-export it with katadeploy")
        self._runner = self._interp.get_signature_runner(key)
        self._inputs, self._outputs = signature_names(manifest)
        self._check_shapes()

    def _check_shapes(self) -> None:
        got_in = {k: tuple(int(x) for x in v["shape"]) for k, v in self._runner.get_input_details().items()}
        got_out = {k: tuple(int(x) for x in v["shape"]) for k, v in self._runner.get_output_details().items()}
        for specs, mapping, got, kind in (
            (self.manifest.inputs, self._inputs, got_in, "input"),
            (self.manifest.outputs, self._outputs, got_out, "output"),
        ):
            for spec in specs:
                sig_name = mapping.get(spec.name)
                want = tuple(self.batch if d == "N" else int(d) for d in spec.shape)
                if sig_name not in got:
                    raise KatadeployError(
                        f"{self.path}: the model has no {kind} {sig_name!r} for {spec.name!r} "
                        f"(it has {', '.join(sorted(got))}); the manifest does not describe this file"
                    )
                if got[sig_name] != want:
                    raise KatadeployError(
                        f"{self.path}: {kind} {spec.name!r} ({sig_name}) has shape {list(got[sig_name])}, "
                        f"the manifest says {list(want)}; the manifest does not describe this file"
                    )
            if kind == "input" and len(got) != len(specs):
                raise KatadeployError(
                    f"{self.path}: the model has {len(got)} inputs, the manifest {len(specs)}"
                )

    def _run(self, spatial: np.ndarray, global_: np.ndarray, meta: np.ndarray | None) -> RawBatch:
        feeds: dict[str, Any] = {self._inputs["spatial"]: spatial, self._inputs["global"]: global_}
        if meta is not None and "meta" in self._inputs:  # check_inputs made sure a meta net has it
            feeds[self._inputs["meta"]] = meta
        out = self._runner(**feeds)
        return RawBatch(*(np.asarray(out[self._outputs[n]], dtype=np.float32) for n in OUTPUT_NAMES))

    def evaluate(self, spatial: np.ndarray, global_: np.ndarray, meta: np.ndarray | None = None) -> RawBatch:
        return evaluate_checked(
            str(self.path), self.manifest.inputs, self._run, self.batch, spatial, global_, meta
        )


def load(req: LoadRequest) -> LiteRTEvaluator:
    path, manifest, device, threads, opts = req.path, req.manifest, req.device, req.threads, req.options
    if device not in (None, "cpu"):
        raise KatadeployError(
            f"tflite artifacts run on the CPU (LiteRT + XNNPACK); device {device!r} is not supported"
        )
    return LiteRTEvaluator(Path(path), manifest, threads=threads, xnnpack=bool(opts.get("xnnpack", True)))
