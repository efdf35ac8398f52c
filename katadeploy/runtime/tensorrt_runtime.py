"""Run a TensorRT engine (``tensorrt-fp16`` / ``tensorrt-int8`` artifacts) on a CUDA GPU.

Contract: :func:`load` returns a :class:`TensorRTEvaluator` named like ``tensorrt-fp16-H100``. Before it
deserializes anything it checks (:func:`check_compatible`, pure Python) that the running TensorRT flavour and
version and the GPU match the manifest; a mismatch is a :class:`~katadeploy.errors.KatadeployError` that says
to rebuild the engine on this machine (``allow_other_gpu=True`` accepts another GPU model of the same compute
capability; ``allow_mismatch=True`` skips katadeploy's check and leaves the verdict to TensorRT). Inputs and
outputs travel through torch CUDA tensors: ``set_input_shape`` + ``set_tensor_address`` + ``execute_async_v3`` on
a torch CUDA stream, so neither cuda-python nor pycuda is needed. Any batch size works: batches above the
engine's profile maximum are split. Outputs come back as float32 numpy arrays (:meth:`evaluate`), or stay on
the GPU as torch tensors (:meth:`TensorRTEvaluator.run_torch`, for benchmarks). TensorRT-RTX engines keep their
just-in-time compiled kernels in a runtime cache under ``katadeploy.cache.cache_dir("tensorrt")``;
``rtx_specialization`` (``lazy``/``eager``/``none``) picks how it specialises kernels for new batch sizes.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from katadeploy.artifact import OUTPUT_NAMES, ArtifactManifest
from katadeploy.errors import KatadeployError
from katadeploy.files import atomic_write_bytes
from katadeploy.runtime import tensorrt_env as env
from katadeploy.runtime.base import LoadRequest, RawBatch, evaluate_in_chunks


def _label(flavour: str, version: str) -> str:
    return f"{'TensorRT-RTX' if flavour == 'tensorrt-rtx' else 'TensorRT'} {version}"


def running_environment(lib: env.TensorRTLib, gpu: env.GpuInfo) -> dict[str, str]:
    return {
        "flavour": lib.flavour,
        "version": lib.version,
        "gpu": gpu.name,
        "compute_capability": gpu.compute_capability,
    }


def check_compatible(
    manifest: ArtifactManifest, running: dict[str, str], *, allow_other_gpu: bool = False
) -> None:
    """Refuse an engine built by another TensorRT flavour/version or for another GPU than ``running``
    (``{"flavour", "version", "gpu", "compute_capability"}``, see :func:`running_environment`)."""
    details = manifest.details or {}
    trt = details.get("tensorrt") or {}
    if not trt.get("flavour") or not trt.get("version"):
        raise KatadeployError(
            f"{manifest.artifact}: its manifest does not say which TensorRT built it; re-export the engine"
        )
    gpu = details.get("gpu") or {}
    ccs = [str(c) for c in trt.get("compute_capabilities") or ([gpu["compute_capability"]] if gpu else [])]
    built_on = gpu.get("name") or "compute capability " + "/".join(ccs or ["?"])
    problems = []
    if trt["flavour"] != running["flavour"] or str(trt["version"]) != running["version"]:
        problems.append(
            f"it was built with {_label(trt['flavour'], str(trt['version']))}, this machine runs "
            f"{_label(running['flavour'], running['version'])}"
        )
    if ccs and running["compute_capability"] not in ccs:
        problems.append(
            f"it was built for {built_on} (compute capability {', '.join(ccs)}), this GPU is {running['gpu']} "
            f"(compute capability {running['compute_capability']})"
        )
    elif (
        trt["flavour"] == "tensorrt"
        and gpu.get("name")
        and gpu["name"] != running["gpu"]
        and not allow_other_gpu
    ):
        problems.append(
            f"it was built and tuned on {gpu['name']}, this GPU is {running['gpu']} (pass allow_other_gpu=True "
            "to run it anyway)"
        )
    if problems:
        raise KatadeployError(
            f"{manifest.artifact}: {'; '.join(problems)}. TensorRT engines are GPU- and version-specific: "
            f"rebuild it here with `katadeploy export {manifest.source.get('file') or 'MODEL'} --target "
            f"{manifest.target}`"
        )


class TensorRTEvaluator:
    """A deserialized engine with one execution context and its own CUDA stream."""

    def __init__(
        self,
        path: Path,
        manifest: ArtifactManifest,
        lib: env.TensorRTLib,
        gpu: env.GpuInfo,
        *,
        rtx_specialization: str | None = None,
        runtime_cache: bool = True,
    ):
        import torch

        self.manifest = manifest
        self.lib = lib
        self.gpu = gpu
        self.output_scale = float(manifest.output_scale)
        self.name = f"{manifest.target}-{gpu.short_name}"
        self.device = torch.device("cuda", gpu.index)
        trt = lib.module
        self._logger = env.make_logger(trt)
        torch.cuda.set_device(self.device)
        torch.empty(1, device=self.device)  # make torch's (primary) CUDA context current for TensorRT
        self._runtime = trt.Runtime(self._logger)
        blob = Path(path).read_bytes()
        engine = self._runtime.deserialize_cuda_engine(blob)
        if engine is None:
            detail = "; ".join(self._logger.errors[-3:]) or "no details"
            raise KatadeployError(
                f"{path}: {lib.label} could not load this engine ({detail}); rebuild it on this machine with "
                f"`katadeploy export ... --target {manifest.target}`"
            )
        self.engine = engine
        self._runtime_config = None
        self._runtime_cache_path: Path | None = None
        if lib.is_rtx:
            self._runtime_config = self._rtx_runtime_config(blob, rtx_specialization, runtime_cache)
            context = engine.create_execution_context(self._runtime_config)
        else:
            context = engine.create_execution_context()
        if context is None:
            raise KatadeployError(f"{path}: TensorRT could not create an execution context (GPU memory?)")
        self.context = context
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        self.inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        wanted = [n for n in OUTPUT_NAMES if n in outputs]
        self.outputs = wanted if len(wanted) == len(OUTPUT_NAMES) else outputs
        if len(self.outputs) != len(OUTPUT_NAMES):
            raise KatadeployError(f"{path}: the engine has outputs {outputs}, expected {list(OUTPUT_NAMES)}")
        self.dtypes = {n: self._torch_dtype(engine.get_tensor_dtype(n)) for n in names}
        self.max_batch = min(int(engine.get_tensor_profile_shape(n, 0)[2][0]) for n in self.inputs)
        self.stream = torch.cuda.Stream(device=self.device)
        self._seen_batches: set[int] = set()

    @staticmethod
    def _torch_dtype(dtype: Any) -> Any:
        import torch

        name = env.dtype_name(dtype)
        if not isinstance(getattr(torch, name, None), torch.dtype):
            raise KatadeployError(f"engine tensor type {name} has no torch equivalent")
        return getattr(torch, name)

    def _rtx_runtime_config(self, blob: bytes, specialization: str | None, use_cache: bool) -> Any:
        trt = self.lib.module
        config = self.engine.create_runtime_config()
        if specialization is not None:
            members = trt.DynamicShapesKernelSpecializationStrategy.__members__
            if specialization.upper() not in members:
                raise KatadeployError(
                    f"rtx_specialization must be one of {', '.join(m.lower() for m in members)}"
                )
            config.dynamic_shapes_kernel_specialization_strategy = members[specialization.upper()]
        if use_cache:
            import hashlib

            key = env.cache_key(
                flavour=self.lib.flavour,
                version=self.lib.version,
                gpu=self.gpu.name,
                compute_capability=self.gpu.compute_capability,
                model_sha256=hashlib.sha256(blob).hexdigest(),
                profile=[0, 0, 0],
                kind="runtime-cache",
            )
            self._runtime_cache_path = env.cache_root() / "runtime" / f"{key}.cache"
            cache = config.create_runtime_cache()
            if self._runtime_cache_path.is_file():
                cache.deserialize(self._runtime_cache_path.read_bytes())  # False (ignored) on a stale cache
            config.set_runtime_cache(cache)
        return config

    def _save_runtime_cache(self) -> None:
        if self._runtime_config is None or self._runtime_cache_path is None:
            return
        cache = self._runtime_config.get_runtime_cache()
        if cache is not None:
            atomic_write_bytes(self._runtime_cache_path, bytes(cache.serialize()))

    def close(self) -> None:
        """Save TensorRT-RTX's runtime cache (kernels compiled so far); the evaluator stays usable."""
        try:
            self.stream.synchronize()
            self._save_runtime_cache()
        except Exception as exc:  # noqa: BLE001 - a cache that cannot be saved only costs compile time later
            print(f"katadeploy: could not save the TensorRT-RTX runtime cache: {exc}", file=sys.stderr)

    def layers(self) -> list[dict[str, Any]]:
        """The engine's layers as TensorRT's inspector reports them (formats and precisions only when the
        engine was built with ``detailed_layers``)."""
        import json

        trt = self.lib.module
        inspector = self.engine.create_engine_inspector()
        info = json.loads(inspector.get_engine_information(trt.LayerInformationFormat.JSON) or "{}")
        return [x if isinstance(x, dict) else {"Name": str(x)} for x in info.get("Layers", [])]

    def run_torch(self, *inputs: Any) -> tuple[Any, ...]:
        """Run one batch (at most :attr:`max_batch`) of CUDA tensors in input order (spatial, global[, meta]);
        returns the five outputs as CUDA tensors of the engine's dtypes, ready on the caller's stream."""
        import torch

        if len(inputs) < len(self.inputs):
            raise KatadeployError(f"{self.name} needs inputs {self.inputs}, got {len(inputs)}")
        n = int(inputs[0].shape[0])
        if not 1 <= n <= self.max_batch:
            raise KatadeployError(
                f"{self.name}: batch {n} is outside the engine's profile 1..{self.max_batch}"
            )
        caller = torch.cuda.current_stream(self.device)
        self.stream.wait_stream(caller)
        with torch.cuda.device(self.device), torch.cuda.stream(self.stream):
            keep = []
            for name, t in zip(self.inputs, inputs):
                t = t.to(self.device, self.dtypes[name]).contiguous()
                t.record_stream(self.stream)
                keep.append(t)
                if not self.context.set_input_shape(name, tuple(t.shape)):
                    raise KatadeployError(f"{self.name}: input {name} shape {tuple(t.shape)} is not accepted")
                self.context.set_tensor_address(name, t.data_ptr())
            outs = []
            for name in self.outputs:
                shape = tuple(self.context.get_tensor_shape(name))
                o = torch.empty(shape, dtype=self.dtypes[name], device=self.device)
                self.context.set_tensor_address(name, o.data_ptr())
                outs.append(o)
            if not self.context.execute_async_v3(self.stream.cuda_stream):
                detail = "; ".join(self._logger.errors[-3:]) or "no details"
                raise KatadeployError(f"{self.name}: TensorRT execution failed ({detail})")
        caller.wait_stream(self.stream)
        for o in outs:
            o.record_stream(caller)
        if n not in self._seen_batches:
            self._seen_batches.add(n)
            if self._runtime_config is not None:
                self.stream.synchronize()
                self._save_runtime_cache()
        return tuple(outs)

    def _run_numpy(self, spatial: np.ndarray, global_: np.ndarray, meta: np.ndarray | None) -> RawBatch:
        import torch

        arrays = [spatial, global_] + ([meta] if len(self.inputs) > 2 else [])
        if len(self.inputs) > 2 and meta is None:
            raise KatadeployError(f"{self.name} is a human-SL net's engine: it needs the meta input")
        with torch.cuda.device(self.device):
            tensors = [
                torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).to(self.device) for a in arrays
            ]
            outs = self.run_torch(*tensors)
            return RawBatch(*(o.float().cpu().numpy() for o in outs))

    def evaluate(self, spatial: np.ndarray, global_: np.ndarray, meta: np.ndarray | None = None) -> RawBatch:
        return evaluate_in_chunks(self._run_numpy, self.max_batch, spatial, global_, meta, pad=False)


def load(req: LoadRequest) -> TensorRTEvaluator:
    """Open a TensorRT engine artifact (``req.threads`` is ignored: TensorRT runs on the GPU)."""
    path, manifest, device, opts = req.path, req.manifest, req.device, req.options
    built = (manifest.details or {}).get("tensorrt") or {}
    lib = env.load_tensorrt(built.get("flavour"))
    gpu = env.gpu_info(device)
    if not opts.get("allow_mismatch"):
        check_compatible(
            manifest, running_environment(lib, gpu), allow_other_gpu=bool(opts.get("allow_other_gpu"))
        )
    return TensorRTEvaluator(
        Path(path),
        manifest,
        lib,
        gpu,
        rtx_specialization=opts.get("rtx_specialization"),
        runtime_cache=bool(opts.get("runtime_cache", True)),
    )
