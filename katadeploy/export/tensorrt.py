"""TensorRT engines (``tensorrt-fp16``, ``tensorrt-int8``) built from katadeploy's own ONNX.

Contract: :func:`export` builds one serialized engine (``.engine``) for the request and writes its sidecar
manifest. It uses full TensorRT (``import tensorrt``) when present, else TensorRT-RTX (``tensorrt_rtx``, or the
bare ``tensorrt_rtx_bindings`` module its bindings wheel installs); with neither it raises
:class:`TensorRTMissingError` (a :class:`~katadeploy.errors.MissingExtraError` naming ``katadeploy[tensorrt]``).
Precision comes from the ONNX, not from builder flags: the network is *strongly typed*, so ``tensorrt-fp16``
parses an FP16 ONNX (with the FP32 islands the ONNX writer keeps) and ``tensorrt-int8`` a QDQ ONNX (explicit
INT8 quantization from the calibration set; TensorRT 11 has no calibrator-based INT8 any more), both written
by :func:`katadeploy.export.onnx.write_onnx` into a temporary directory; the INT32 bias ``DequantizeLinear``
constants of the QDQ file, which TensorRT's parser rejects, are first folded to float (:func:`float_biases`).
TensorRT-RTX 1.7 targets compute capability 7.5/8.0/8.6/8.9/12.x only (not Hopper's 9.0); on a GPU it does not
list the export stops with that explanation. Every input gets one optimisation
profile over the batch dimension: min 1, opt ``req.batch``, max ``max(req.batch, options["max_batch"])``
(default 64, :func:`batch_profile`).

Building needs a CUDA GPU (a clear :class:`~katadeploy.errors.KatadeployError` otherwise), except TensorRT-RTX
ahead-of-time builds for explicit targets (``options["compute_capability"] = "SM89"`` or ``"8.6,8.9"``),
which TensorRT-RTX can do on a CPU-only machine. Options (``req.options``): ``max_batch``, ``workspace_mib``
(default 4096), ``opt_level`` (builder optimisation level 0-5, default 3), ``device`` (``"cuda:N"``),
``compute_capability`` (TensorRT-RTX only), ``engine_cache`` (default True), ``rebuild`` (ignore the engine
cache), ``allow_unsupported_gpu`` (TensorRT-RTX: try a GPU it does not list), ``detailed_layers`` (keep per-layer
precision details for :meth:`~katadeploy.runtime.tensorrt_runtime.TensorRTEvaluator.layers`), ``verbose`` (echo
TensorRT's warnings).

Caches live under ``katadeploy.cache.cache_dir("tensorrt")``: a timing cache (full TensorRT; TensorRT-RTX has
none) and an engine cache, both keyed by :func:`cache_key` over the TensorRT flavour and version, the GPU name
and compute capability, the net's sha256 and the batch profile (the engine key adds the ONNX file's sha256, the
precision and the builder settings). An engine already built for the same key is copied instead of rebuilt.

The manifest's ``details`` record the TensorRT flavour/version, the GPU and compute capability, the profile,
precision, the ONNX writer's details (kept-float nodes) and the fact that engines only run with the same
TensorRT version on the same kind of GPU; :mod:`katadeploy.runtime.tensorrt_runtime` enforces that.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from katadeploy.artifact import TensorSpec
from katadeploy.errors import KatadeployError
from katadeploy.export.request import ExportRequest
from katadeploy.files import atomic_copy, atomic_write_bytes
from katadeploy.runtime.tensorrt_env import (
    GpuInfo,
    TensorRTLib,
    cache_key,
    cache_root,
    dtype_name,
    gpu_info,
    load_tensorrt,
    make_logger,
    parse_compute_capabilities,
    rtx_targets,
    sm_to_cc,
)

DEFAULT_MAX_BATCH = 64
DEFAULT_WORKSPACE_MIB = 4096
DEFAULT_OPT_LEVEL = 3
PORTABILITY_NOTE = (
    "TensorRT engines are specific to the TensorRT version that built them and to the GPU (compute capability; "
    "full TensorRT tunes for the exact GPU model). Rebuild the engine with `katadeploy export` on the machine "
    "that runs it."
)


# ------------------------------------------------------------------------------------------------------- GPU


# ------------------------------------------------------------------------------------------ profile & cache
def batch_profile(batch: int, max_batch: int | None = None) -> tuple[int, int, int]:
    """The optimisation profile ``(min, opt, max)`` over the batch dimension: ``(1, batch, max(batch,
    max_batch))``, ``max_batch`` defaulting to 64."""
    mb = DEFAULT_MAX_BATCH if max_batch is None else max_batch
    for name, v in (("batch", batch), ("max_batch", mb)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise KatadeployError(f"TensorRT {name} must be a positive integer, not {v!r}")
    return (1, batch, max(batch, mb))


# ------------------------------------------------------------------------------------------------- building


def make_progress_monitor(trt: ModuleType, quiet: bool) -> Any:
    """A TensorRT build progress monitor drawing a :class:`~katadeploy.progress.Progress` bar on stderr for
    each top-level builder phase (nested phases are not shown)."""
    import threading

    from katadeploy.progress import Progress

    class _Monitor(trt.IProgressMonitor):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self.lock = threading.Lock()
            self.bars: dict[str, Progress] = {}

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            if parent_phase is None and num_steps > 1:
                with self.lock:
                    self.bars[phase_name] = Progress(num_steps, f"TensorRT: {phase_name}", quiet=quiet)

        def step_complete(self, phase_name: str, step: int) -> bool:
            with self.lock:
                bar = self.bars.get(phase_name)
                if bar is not None:
                    bar.advance(1)
            return True

        def phase_finish(self, phase_name: str) -> None:
            with self.lock:
                bar = self.bars.pop(phase_name, None)
            if bar is not None:
                bar.close()

    return _Monitor()


def parse_onnx(trt: ModuleType, builder: Any, onnx_path: Path, logger: Any) -> tuple[Any, Any]:
    """A strongly typed network parsed from ``onnx_path``; parser errors become one KatadeployError."""
    flag = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flag)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = []
        for i in range(parser.num_errors):
            e = parser.get_error(i)
            where = f"node {e.node()} {e.node_name() or ''} ({e.node_operator() or '?'})".replace("  ", " ")
            errors.append(f"{where}: {e.desc()}")
        detail = "; ".join(errors[:5]) or "; ".join(logger.errors[-3:]) or "no details"
        more = f" (+{len(errors) - 5} more)" if len(errors) > 5 else ""
        raise KatadeployError(f"the TensorRT ONNX parser rejected {onnx_path.name}: {detail}{more}")
    return network, parser


def float_biases(onnx_path: Path) -> int:
    """Replace INT32 ``DequantizeLinear`` constants (the quantized Conv/Gemm biases onnxruntime's QDQ
    quantizer writes) by their float values, in place; returns how many. TensorRT dequantizes only 8-bit and
    narrower types and keeps biases in float itself; the values are the exact ``(q - zero_point) * scale``."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(onnx_path))
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    replaced, keep = 0, []
    for node in graph.node:
        q = inits.get(node.input[0]) if node.op_type == "DequantizeLinear" and node.input else None
        if q is None or q.data_type != onnx.TensorProto.INT32 or node.input[1] not in inits:
            keep.append(node)
            continue
        values = numpy_helper.to_array(q).astype(np.float64)
        scale = numpy_helper.to_array(inits[node.input[1]]).astype(np.float64)
        zp = 0.0
        if len(node.input) > 2 and node.input[2] in inits:
            zp = numpy_helper.to_array(inits[node.input[2]]).astype(np.float64)
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        if np.ndim(scale) == 1 and values.ndim > 0:
            shape = [1] * values.ndim
            shape[axis % values.ndim] = -1
            scale = scale.reshape(shape)
            zp = np.reshape(zp, shape) if np.ndim(zp) == 1 else zp
        out = ((values - zp) * scale).astype(np.float32)
        graph.initializer.append(numpy_helper.from_array(out, node.output[0]))
        replaced += 1
    if replaced:
        del graph.node[:]
        graph.node.extend(keep)
        used = {name for node in keep for name in node.input} | {o.name for o in graph.output}
        unused = [t for t in graph.initializer if t.name not in used]
        for t in unused:
            graph.initializer.remove(t)
        onnx.save(model, str(onnx_path))
    return replaced


def io_tensor_specs(network: Any, req: ExportRequest) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """Input/output specs for the manifest: katadeploy's names and shapes, the network's dtypes."""
    from katadeploy.artifact import io_specs

    ins, outs = io_specs(req.model, req.nn_x, req.nn_y, "N")
    known = {t.name: t for t in ins + outs}

    def spec(t: Any) -> TensorSpec:
        base = known.get(t.name)
        shape: list[int | str] = (
            list(base.shape) if base is not None else ["N" if d < 0 else int(d) for d in t.shape]
        )
        return TensorSpec(t.name, shape, dtype_name(t.dtype))

    net_ins = [spec(network.get_input(i)) for i in range(network.num_inputs)]
    net_outs = [spec(network.get_output(i)) for i in range(network.num_outputs)]
    return net_ins, net_outs


def add_batch_profile(builder: Any, config: Any, network: Any, profile: tuple[int, int, int]) -> None:
    prof = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        t = network.get_input(i)
        dims = list(t.shape)
        if any(d < 0 for d in dims[1:]):
            raise KatadeployError(
                f"input {t.name} has a dynamic non-batch dimension {dims}; expected [N, ...]"
            )
        shapes = [tuple([b, *dims[1:]]) for b in profile]
        prof.set_shape(t.name, *shapes)
    if config.add_optimization_profile(prof) < 0:
        raise KatadeployError("TensorRT refused the optimisation profile")


@dataclass
class BuildSettings:
    profile: tuple[int, int, int]
    workspace_mib: int
    opt_level: int
    targets: list[str]  # TensorRT-RTX ComputeCapability members ("CURRENT", "SM89", ...); [] for full TRT
    detailed: bool = False  # keep per-layer details in the engine (for EngineInspector)


def settings_from_options(lib: TensorRTLib, req: ExportRequest, gpu: GpuInfo | None) -> BuildSettings:
    opts = req.options
    profile = batch_profile(req.batch, opts.get("max_batch"))
    workspace = opts.get("workspace_mib", DEFAULT_WORKSPACE_MIB)
    opt_level = opts.get("opt_level", DEFAULT_OPT_LEVEL)
    if not isinstance(workspace, int) or workspace < 16:
        raise KatadeployError(f"workspace_mib must be an integer >= 16, not {workspace!r}")
    if not isinstance(opt_level, int) or not 0 <= opt_level <= 5:
        raise KatadeployError(
            f"opt_level (TensorRT builder optimisation level) must be 0-5, not {opt_level!r}"
        )
    targets: list[str] = []
    cc_opt = opts.get("compute_capability")
    if lib.is_rtx:
        supported = rtx_targets(lib.module)
        if cc_opt is not None and str(cc_opt).lower() != "current":
            targets = parse_compute_capabilities(cc_opt, supported)
        else:
            if gpu is None:
                raise KatadeployError("internal: a CURRENT TensorRT-RTX build needs the GPU")
            if gpu.sm not in supported and not opts.get("allow_unsupported_gpu"):
                raise KatadeployError(
                    f"{lib.label} does not support {gpu.name} (compute capability {gpu.compute_capability}); it "
                    f"targets {', '.join(sm_to_cc(s) for s in supported)}. Install full TensorRT "
                    "(pip install 'katadeploy[tensorrt]') for this GPU"
                )
            targets = ["CURRENT"]
    elif cc_opt is not None:
        raise KatadeployError(
            "the compute_capability option is for TensorRT-RTX ahead-of-time builds; full TensorRT builds for "
            "the GPU it runs on"
        )
    return BuildSettings(profile, workspace, opt_level, targets, bool(opts.get("detailed_layers")))


def build_serialized(
    lib: TensorRTLib,
    builder: Any,
    network: Any,
    settings: BuildSettings,
    timing_cache_path: Path | None,
    logger: Any,
    monitor: Any = None,
) -> bytes:
    trt = lib.module
    config = builder.create_builder_config()
    if monitor is not None:
        config.progress_monitor = monitor
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, settings.workspace_mib << 20)
    config.builder_optimization_level = settings.opt_level
    if settings.detailed:
        config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    if settings.targets:
        config.num_compute_capabilities = len(settings.targets)
        for i, t in enumerate(settings.targets):
            if not config.set_compute_capability(getattr(trt.ComputeCapability, t), i):
                raise KatadeployError(f"{lib.label} refused compute capability target {t}")
    add_batch_profile(builder, config, network, settings.profile)
    cache = None
    if timing_cache_path is not None:
        blob = timing_cache_path.read_bytes() if timing_cache_path.is_file() else b""
        cache = config.create_timing_cache(blob)
        if cache is None or not config.set_timing_cache(cache, False):
            cache = config.create_timing_cache(b"")  # stale or foreign cache: start a fresh one
            config.set_timing_cache(cache, False)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        detail = "; ".join(logger.errors[-3:]) or "see TensorRT's messages above"
        raise KatadeployError(f"{lib.label} failed to build the engine: {detail}")
    if timing_cache_path is not None:
        tc = config.get_timing_cache()
        if tc is not None:
            atomic_write_bytes(timing_cache_path, bytes(tc.serialize()))
    return bytes(serialized)


def _environment(lib: TensorRTLib, req: ExportRequest) -> tuple[GpuInfo | None, str, str]:
    """The GPU (None for a TensorRT-RTX ahead-of-time build without one), its name and cc for cache keys."""
    cc_opt = req.options.get("compute_capability")
    aot = lib.is_rtx and cc_opt is not None and str(cc_opt).lower() != "current"
    if aot:
        try:
            gpu = gpu_info(req.options.get("device"))
        except KatadeployError:
            gpu = None
        return gpu, "any", "aot"
    gpu = gpu_info(req.options.get("device"))
    return gpu, gpu.name, gpu.compute_capability


def _jsonable(o: Any) -> Any:
    item = getattr(o, "item", None)  # numpy scalars
    if callable(item) and getattr(o, "shape", None) == ():
        return item()
    tolist = getattr(o, "tolist", None)
    return tolist() if callable(tolist) else str(o)


def export(req: ExportRequest) -> Path:
    precision = req.target.precision
    if precision not in ("fp16", "int8"):
        raise KatadeployError(f"TensorRT target {req.target.name}: no {precision} engine (use fp16 or int8)")
    lib = load_tensorrt()
    trt = lib.module
    gpu, gpu_key, cc_key = _environment(lib, req)
    settings = settings_from_options(lib, req, gpu)
    if settings.targets and settings.targets != ["CURRENT"]:
        compute_capabilities = [sm_to_cc(t) for t in settings.targets]
        cc_key = ",".join(compute_capabilities)
    else:
        assert gpu is not None
        compute_capabilities = [gpu.compute_capability]
    if gpu is not None and gpu_key != "any":
        import torch

        torch.cuda.set_device(gpu.index)  # TensorRT builds on the current CUDA device
    base_key = dict(
        flavour=lib.flavour,
        version=lib.version,
        gpu=gpu_key,
        compute_capability=cc_key,
        model_sha256=req.model_sha256,
        profile=settings.profile,
    )
    from katadeploy.export.onnx import write_onnx
    from katadeploy.hashing import sha256_file

    root = cache_root()
    timing_path = None if lib.is_rtx else root / "timing" / f"{cache_key(**base_key)}.cache"
    artifact = req.artifact_path()
    logger = make_logger(trt, echo=bool(req.options.get("verbose")))
    with tempfile.TemporaryDirectory(prefix="katadeploy-trt-") as tmp:
        onnx_path = Path(tmp) / f"{req.stem}-{precision}.onnx"
        req.log(f"writing the {precision} ONNX for {lib.label}")
        if precision == "int8":  # TensorRT's explicit quantization takes symmetric int8 activations only
            req.options.setdefault("int8_activations", "s8")
            # one scale per conv input: the onnx-int8 default of 16 channel groups was measured with u8 activations
            # only, and its 16 partial convolutions per layer are not fused into one TensorRT kernel
            req.options.setdefault("int8_act_groups", 1)
        onnx_details = json.loads(json.dumps(write_onnx(req, onnx_path, precision) or {}, default=_jsonable))
        if precision == "int8":
            onnx_details["tensorrt_float_biases"] = float_biases(onnx_path)
        onnx_sha = sha256_file(onnx_path)
        builder = trt.Builder(logger)
        network, _parser = parse_onnx(trt, builder, onnx_path, logger)
        inputs, outputs = io_tensor_specs(network, req)
        engine_key = cache_key(
            **base_key,
            onnx_sha256=onnx_sha,
            precision=precision,
            opt_level=settings.opt_level,
            workspace_mib=settings.workspace_mib,
            targets=settings.targets,
            detailed=settings.detailed,
        )
        cached = root / "engines" / f"{engine_key}.engine"
        use_cache = bool(req.options.get("engine_cache", True))
        hit = use_cache and not req.options.get("rebuild") and cached.is_file()
        t0 = time.perf_counter()
        if hit:
            req.log(f"reusing the engine built earlier for this net, GPU and TensorRT ({cached})")
            atomic_copy(cached, artifact)
        else:
            where = f"for {gpu.name}" if gpu is not None and gpu_key != "any" else f"for {cc_key}"
            req.log(f"building the {precision} engine with {lib.label} {where} (this can take minutes)")
            monitor = make_progress_monitor(trt, quiet=not req.progress)
            blob = build_serialized(lib, builder, network, settings, timing_path, logger, monitor)
            atomic_write_bytes(artifact, blob)
            if use_cache:
                atomic_copy(artifact, cached)
        build_seconds = time.perf_counter() - t0
    pmin, popt, pmax = settings.profile
    details = {
        "tensorrt": {
            "flavour": lib.flavour,
            "version": lib.version,
            "strongly_typed": True,
            "compute_capabilities": compute_capabilities,
            "targets": settings.targets,
        },
        "gpu": gpu.to_json() if gpu is not None and gpu_key != "any" else None,
        "profile": {"min": pmin, "opt": popt, "max": pmax},
        "precision": precision,
        "builder": {
            "optimization_level": settings.opt_level,
            "detailed_layers": settings.detailed,
            "workspace_mib": settings.workspace_mib,
            "seconds": round(build_seconds, 3),
            "engine_cache_hit": bool(hit),
            "cache_key": engine_key,
            "timing_cache": str(timing_path) if timing_path is not None else None,
        },
        "onnx": {**onnx_details, "sha256": onnx_sha},
        "engine_bytes": artifact.stat().st_size,
        "portability": PORTABILITY_NOTE,
    }
    manifest = req.manifest(
        artifact,
        inputs,
        outputs,
        batch={"dynamic": True, "min": pmin, "opt": popt, "max": pmax},
        output_scale=float(onnx_details.get("output_scale", 1.0)),
        details=details,
        quantization=onnx_details.get("quantization"),  # the QDQ ONNX's int8 share is the engine's
    )
    return req.finish(artifact, manifest)
