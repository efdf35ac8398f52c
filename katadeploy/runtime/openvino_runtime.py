"""Run OpenVINO IR artifacts (``openvino-fp32`` / ``openvino-fp16`` / ``openvino-int8``) on the CPU plugin.

Contract: :func:`load` ``(path, manifest, device=None, threads=None, **opts)`` reads ``<stem>.xml`` (and the
``<stem>.bin`` next to it) and returns an :class:`OpenVINOEvaluator` named ``openvino-<precision>-cpu``
implementing :class:`~katadeploy.runtime.base.Evaluator`; batches of any size are accepted and the input shapes
are checked against the manifest.

- Device: ``None``/``"cpu"`` is OpenVINO's CPU plugin (x86-64, or ARM64 through its ARM plugin); other OpenVINO
  device names (``"gpu"``, ``"npu"``) are passed through when ``ov.Core().available_devices`` lists them. A
  machine without a usable CPU device, or a CPU architecture the plugin does not support, is a
  :class:`~katadeploy.errors.KatadeployError` that names the fix; a missing ``openvino`` package is a
  :class:`~katadeploy.errors.MissingExtraError` naming ``katadeploy[openvino]``.
- ``threads`` sets ``INFERENCE_NUM_THREADS``. The execution precision is the manifest's
  ``details["inference_precision"]`` (``f32`` for ``openvino-fp32``, so CPUs with bf16/AMX do not silently run
  it in bf16; ``openvino-fp16`` records ``bf16`` only when its exporter validated bf16 execution against the FP16
  limits, else ``f32``; the float islands of ``openvino-int8`` run ``f32``); ``inference_precision=`` overrides.
- :meth:`OpenVINOEvaluator.evaluate` runs a batch smaller than ``throughput_batch`` (default 16) on a
  ``LATENCY``-hint compilation with one infer request using every thread; larger batches are cut into one chunk
  per stream of a ``THROUGHPUT``-hint compilation and run concurrently. :meth:`OpenVINOEvaluator.evaluate_many`
  is the search-style path: a list of batches (sizes 1-64) kept in flight on an ``AsyncInferQueue`` of the
  throughput compilation, results returned in order. Both compilations are made lazily, once.
- :func:`cpu_check` is shared with the exporter; the CPU's flags come from :mod:`katadeploy.runtime.cpu`.
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from katadeploy.artifact import OUTPUT_NAMES, ArtifactManifest
from katadeploy.errors import KatadeployError
from katadeploy.extras import require
from katadeploy.runtime.base import LoadRequest, RawBatch, check_inputs, concat
from katadeploy.runtime.cpu import int8_dot_saturates

PRECISION_HINTS = {"f32": "f32", "fp32": "f32", "bf16": "bf16", "f16": "f16", "fp16": "f16"}
THROUGHPUT_BATCH = 16
_SUPPORTED_ARCH = ("x86_64", "amd64", "i686", "x86", "aarch64", "arm64")
_warned_vnni = False


def openvino() -> Any:
    """The ``openvino`` module, or :class:`~katadeploy.errors.MissingExtraError` naming the extra."""
    return require("openvino", "openvino")


def cpu_check(core: Any, device: str = "CPU") -> None:
    """Refuse a machine OpenVINO cannot run on, naming the fix."""
    arch = platform.machine().lower()
    if device == "CPU" and arch not in _SUPPORTED_ARCH:
        raise KatadeployError(
            f"OpenVINO's CPU plugin supports x86-64 and ARM64 CPUs, not {platform.machine()}; use the onnx or "
            "torch runtime on this machine, or run the openvino artifact on an x86-64/ARM64 machine"
        )
    devices = list(core.available_devices)
    if device not in devices:
        fix = (
            "OpenVINO's CPU plugin needs an x86-64 CPU with at least SSE4.2 or an ARM64 CPU (its ARM plugin "
            "ships with the openvino wheel); reinstall it with `pip install --force-reinstall 'katadeploy[openvino]'`"
            if device == "CPU"
            else f"install the OpenVINO driver for {device}, or use device cpu"
        )
        raise KatadeployError(
            f"OpenVINO finds no {device} device here (available: {', '.join(devices) or 'none'}); {fix}"
        )


def parse_device(device: str | None) -> str:
    text = (device or "cpu").strip()
    if not text or not text.replace(".", "").replace(":", "").replace("_", "").isalnum():
        raise KatadeployError(
            f"bad OpenVINO device {device!r}; use cpu (or an OpenVINO device name such as GPU)"
        )
    return text.upper()


def precision_hint(name: str) -> str:
    try:
        return PRECISION_HINTS[str(name).lower()]
    except KeyError:
        raise KatadeployError(
            f"unknown OpenVINO inference precision {name!r}; use f32, bf16 or f16"
        ) from None


def compile_config(threads: int | None, precision: str, hint: str) -> dict[str, Any]:
    cfg: dict[str, Any] = {"PERFORMANCE_HINT": hint, "INFERENCE_PRECISION_HINT": precision_hint(precision)}
    if threads:
        cfg["INFERENCE_NUM_THREADS"] = int(threads)
    return cfg


def _warn_no_vnni(manifest: ArtifactManifest | None) -> None:
    global _warned_vnni
    if _warned_vnni or manifest is None or manifest.precision != "int8":
        return
    if int8_dot_saturates():
        _warned_vnni = True
        print(
            "katadeploy: warning: this CPU has no VNNI/AMX int8 instructions; the int8 kernels of this artifact "
            "(built without NNCF's overflow fix) may saturate on it; prefer openvino-fp32 here",
            file=sys.stderr,
        )


class OpenVINOEvaluator:
    """An OpenVINO model behind the :class:`~katadeploy.runtime.base.Evaluator` interface."""

    def __init__(
        self,
        model: Any,
        manifest: ArtifactManifest | None = None,
        *,
        device: str | None = None,
        threads: int | None = None,
        inference_precision: str | None = None,
        throughput_batch: int = THROUGHPUT_BATCH,
        name: str | None = None,
        core: Any = None,
    ):
        ov = openvino()
        self._ov = ov
        self.core = core or ov.Core()
        self.device = parse_device(device)
        cpu_check(self.core, self.device)
        self.model = model
        self.manifest = manifest
        self.output_scale = float(manifest.output_scale) if manifest is not None else 1.0
        details = manifest.details if manifest is not None else {}
        self.precision = precision_hint(inference_precision or details.get("inference_precision", "f32"))
        self.threads = threads
        self.throughput_batch = max(2, int(throughput_batch))
        target = manifest.precision if manifest is not None else "model"
        self.name = name or f"openvino-{target}-{self.device.lower()}"
        self.input_names = [p.get_any_name() for p in model.inputs]
        # the manifest's input specs; a bare model (the exporter's own checks) is checked by rank only
        self._specs = (
            manifest.inputs
            if manifest is not None
            else [
                SimpleNamespace(name=n, shape=["N"] * len(p.get_partial_shape()))
                for n, p in zip(self.input_names, model.inputs)
            ]
        )
        self._latency: Any = None
        self._latency_req: Any = None
        self._throughput: Any = None
        self._queue: Any = None
        _warn_no_vnni(manifest)

    # ------------------------------------------------------------------------------------------------ compile
    def compiled(self, hint: str = "LATENCY") -> Any:
        """The compiled model for ``hint`` (``LATENCY`` or ``THROUGHPUT``), compiled on first use."""
        if hint == "LATENCY":
            if self._latency is None:
                cfg = compile_config(self.threads, self.precision, "LATENCY")
                self._latency = self.core.compile_model(self.model, self.device, cfg)
                self._latency_req = self._latency.create_infer_request()
            return self._latency
        if hint == "THROUGHPUT":
            if self._throughput is None:
                cfg = compile_config(self.threads, self.precision, "THROUGHPUT")
                self._throughput = self.core.compile_model(self.model, self.device, cfg)
                jobs = int(self._throughput.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
                self._queue = self._ov.AsyncInferQueue(self._throughput, max(1, jobs))
                self._queue.set_callback(_collect)
            return self._throughput
        raise KatadeployError(f"unknown OpenVINO performance hint {hint!r}")

    @property
    def streams(self) -> int:
        self.compiled("THROUGHPUT")
        return len(self._queue)

    # ------------------------------------------------------------------------------------------------ inputs
    def _inputs(
        self, spatial: np.ndarray, global_: np.ndarray, meta: np.ndarray | None
    ) -> dict[str, np.ndarray]:
        if meta is not None and len(self._specs) == 2:
            raise KatadeployError(f"{self.name}: this artifact takes 2 inputs, got 3 (meta)")
        arrays = check_inputs(self.name, self._specs, spatial, global_, meta)
        if len(spatial) == 0:
            raise KatadeployError("empty batch")
        return dict(zip(self.input_names, arrays))

    # ------------------------------------------------------------------------------------------------ run
    def evaluate(self, spatial: np.ndarray, global_: np.ndarray, meta: np.ndarray | None = None) -> RawBatch:
        feed = self._inputs(spatial, global_, meta)
        n = len(spatial)
        if n >= self.throughput_batch and self.streams > 1:
            parts = np.array_split(np.arange(n), self.streams)
            return concat(self._run_queue([{k: v[p] for k, v in feed.items()} for p in parts if len(p)]))
        self.compiled("LATENCY")
        self._latency_req.infer(feed)
        return _outputs(self._latency_req)

    def evaluate_many(
        self, batches: Iterable[Sequence[np.ndarray | None] | tuple[np.ndarray, ...]]
    ) -> list[RawBatch]:
        """Evaluate ``(spatial, global_[, meta])`` batches with several infer requests in flight (THROUGHPUT
        hint, ``AsyncInferQueue``); the results come back in the order of ``batches``."""
        feeds = []
        for b in batches:
            b = tuple(b)
            if len(b) not in (2, 3):
                raise KatadeployError("evaluate_many takes (spatial, global_[, meta]) tuples")
            feeds.append(self._inputs(b[0], b[1], b[2] if len(b) == 3 else None))
        return self._run_queue(feeds)

    def _run_queue(self, feeds: list[dict[str, np.ndarray]]) -> list[RawBatch]:
        self.compiled("THROUGHPUT")
        results: list[RawBatch | None] = [None] * len(feeds)
        errors: list[BaseException] = []
        for i, feed in enumerate(feeds):
            self._queue.start_async(feed, userdata=(results, errors, i))
        self._queue.wait_all()
        if errors:
            raise errors[0]
        return [r for r in results if r is not None]

    def close(self) -> None:
        """Release the compiled models (they are compiled again on the next call)."""
        if self._queue is not None:
            self._queue.wait_all()
        self._latency = self._latency_req = self._throughput = self._queue = None


def _outputs(request: Any) -> RawBatch:
    return RawBatch(
        *(np.array(request.get_tensor(name).data, dtype=np.float32, copy=True) for name in OUTPUT_NAMES)
    )


def _collect(request: Any, userdata: tuple[list[Any], list[BaseException], int]) -> None:
    """AsyncInferQueue callback: copy the outputs into the caller's list. It holds no reference to the
    evaluator, so the queue and its compiled model are freed with it (a callback closing over the evaluator
    makes a reference cycle through OpenVINO that the garbage collector cannot see)."""
    results, errors, index = userdata
    try:
        results[index] = _outputs(request)
    except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
        errors.append(exc)


def load(req: LoadRequest) -> OpenVINOEvaluator:
    path, manifest, device, threads, opts = req.path, req.manifest, req.device, req.threads, req.options
    ov = openvino()
    path = Path(path)
    if path.suffix != ".xml":
        raise KatadeployError(f"{path}: an OpenVINO artifact is the .xml file of an IR (with its .bin)")
    weights = path.with_suffix(".bin")
    if not weights.is_file():
        raise KatadeployError(f"{path}: its weights file {weights.name} is missing; copy both IR files")
    core = ov.Core()
    try:
        model = core.read_model(str(path), str(weights))
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise KatadeployError(f"{path}: OpenVINO cannot read this IR ({first})") from None
    return OpenVINOEvaluator(
        model,
        manifest,
        device=device,
        threads=threads,
        inference_precision=opts.pop("inference_precision", None),
        throughput_batch=int(opts.pop("throughput_batch", THROUGHPUT_BATCH)),
        core=core,
    )
