"""Run ONNX artifacts (``onnx-fp32`` / ``onnx-fp16`` / ``onnx-int8``) with onnxruntime.

Contract: :func:`load` ``(path, manifest, device=None, threads=None, **opts)`` returns an :class:`OnnxEvaluator`
named ``onnx-<precision>-<device>`` (``onnx-int8-cpu``, ``onnx-fp16-cuda``, ``onnx-fp32-tensorrt``) implementing
:class:`~katadeploy.runtime.base.Evaluator`. ``device`` picks the execution provider: ``None``/``"cpu"`` the CPU
EP (``threads`` intra-op threads), ``"cuda"``/``"cuda:K"`` the CUDA EP, ``"tensorrt"``/``"tensorrt:K"`` the
TensorRT EP (with CUDA as fallback); a provider this onnxruntime lacks is a
:class:`~katadeploy.errors.KatadeployError` naming ``onnxruntime-gpu``. Sessions use graph optimisation level
ALL. ``session_cache=True`` keeps the optimised model under ``katadeploy.cache.cache_dir("onnxruntime")``, keyed
by the artifact's sha256, onnxruntime's version, the provider and the CPU, and loads it from there next time.
Inputs are float32 for every precision (FP16 graphs keep FP32 I/O); batches of any size are accepted; the shapes
are checked against the manifest before running. An ``onnx-int8`` artifact on the CPU EP runs with the weight codes of
``int8_weights`` (``auto``/``s8``/``u8``, :mod:`katadeploy.runtime.qdq_weights`): on x86 CPUs without VNNI/AMX,
``auto`` loads its s8 weights as the equal u8 codes so onnxruntime's int8 kernels do not saturate;
``evaluator.int8_weights`` says which ran.
"""

from __future__ import annotations

import hashlib
import os
import platform
from pathlib import Path
from typing import Any

import numpy as np

from katadeploy.artifact import OUTPUT_NAMES, ArtifactManifest
from katadeploy.errors import KatadeployError
from katadeploy.extras import require
from katadeploy.runtime.base import LoadRequest, RawBatch, check_inputs
from katadeploy.runtime.cpu import cpu_name
from katadeploy.runtime.qdq_weights import unsigned_weights, weights_mode

GPU_HINT = (
    "pip uninstall onnxruntime && pip install onnxruntime-gpu (it provides the CUDA and TensorRT execution "
    "providers; the CPU-only onnxruntime package has neither)"
)


def parse_device(device: str | None) -> tuple[str, int]:
    """``None``/``"cpu"``/``"cuda[:K]"``/``"tensorrt[:K]"`` -> ``(kind, index)``."""
    text = (device or "cpu").strip().lower()
    kind, _, idx = text.partition(":")
    if kind == "trt":
        kind = "tensorrt"
    if kind not in ("cpu", "cuda", "tensorrt") or (idx and not idx.isdigit()):
        raise KatadeployError(
            f"unknown onnxruntime device {device!r}; use cpu, cuda, cuda:N, tensorrt or tensorrt:N"
        )
    return kind, int(idx or 0)


def providers_for(
    ort: Any, kind: str, index: int, manifest: ArtifactManifest, opts: dict[str, Any]
) -> list[Any]:
    available = set(ort.get_available_providers())
    if kind == "cpu":
        return ["CPUExecutionProvider"]
    need = "CUDAExecutionProvider" if kind == "cuda" else "TensorrtExecutionProvider"
    if need not in available:
        raise KatadeployError(
            f"this onnxruntime ({ort.__version__}) has no {need} (available: {', '.join(sorted(available))}); "
            f"for device {kind!r} install the GPU build: {GPU_HINT}"
        )
    cuda = ("CUDAExecutionProvider", {"device_id": index})
    if kind == "cuda":
        return [cuda, "CPUExecutionProvider"]
    from katadeploy.cache import cache_dir

    trt_opts: dict[str, Any] = {
        "device_id": index,
        "trt_engine_cache_enable": True,
        "trt_engine_cache_path": str(cache_dir("onnxruntime", "tensorrt")),
        "trt_fp16_enable": manifest.precision in ("fp16", "int8"),
        "trt_int8_enable": manifest.precision == "int8",
    }
    trt_opts.update(opts.get("tensorrt_options") or {})
    return [("TensorrtExecutionProvider", trt_opts), cuda, "CPUExecutionProvider"]


def session_cache_path(ort: Any, artifact: Path, kind: str, index: int, weights: str = "s8") -> Path:
    """Where the optimised model for this artifact, onnxruntime, provider, CPU and int8 weight codes is kept."""
    from katadeploy.cache import cache_dir
    from katadeploy.hashing import sha256_file

    sha = sha256_file(artifact)
    key = hashlib.sha256(
        "|".join([sha, ort.__version__, kind, str(index), cpu_name(), platform.machine(), weights]).encode()
    ).hexdigest()[:20]
    return cache_dir("onnxruntime", "sessions") / f"{artifact.stem}-{sha[:12]}-{key}.onnx"


#: onnxruntime's integer kernels that its QDQ fusion produces from a Conv / MatMul / Gemm
INTEGER_KERNELS = ("QLinearConv", "ConvInteger", "QLinearMatMul", "MatMulInteger", "MatMulIntegerToFloat", "QGemm",
                   "DynamicQuantizeMatMul")  # fmt: skip


def integer_kernel_nodes(model: str | Path | bytes, weights: str | None = None) -> set[str]:
    """Names of the ``model`` graph's (a file, or its serialized bytes) Conv/MatMul/Gemm nodes that onnxruntime's
    CPU provider, on this machine, runs as integer kernels, with the weight codes of ``weights`` (``int8_weights``:
    ``auto``/``s8``/``u8``). Every other Conv/MatMul/Gemm of a QDQ graph is dequantized and run in float. The
    optimised graph names a fused kernel after its node, or after it with a suffix (``<name>_token_19`` for a
    ``QLinearConv``): the longest node name that prefixes it is the one."""
    import tempfile

    ort = require("onnxruntime", "onnx")
    onnx = require("onnx", "onnx")
    proto = onnx.load_from_string(model) if isinstance(model, bytes) else onnx.load(str(model))
    if weights_mode(weights) == "u8":
        unsigned_weights(proto)
    with tempfile.TemporaryDirectory(prefix="katadeploy-ort-") as tmp:
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3
        so.optimized_model_filepath = str(Path(tmp) / "optimized.onnx")
        so.add_session_config_entry("session.optimized_model_external_initializers_file_name", "weights.bin")
        ort.InferenceSession(proto.SerializeToString(), so, providers=["CPUExecutionProvider"])
        optimized = onnx.load(so.optimized_model_filepath, load_external_data=False)
    ops = sorted((n.name for n in proto.graph.node if n.op_type in ("Conv", "MatMul", "Gemm")), key=len, reverse=True)
    found = set()
    for n in optimized.graph.node:
        if n.op_type in INTEGER_KERNELS:
            match = next((o for o in ops if n.name == o or n.name.startswith(o + "_")), None)
            if match is not None:
                found.add(match)
    return found


class OnnxEvaluator:
    """An onnxruntime session behind the :class:`~katadeploy.runtime.base.Evaluator` interface."""

    def __init__(
        self,
        path: str | Path,
        manifest: ArtifactManifest,
        device: str | None = None,
        threads: int | None = None,
        **opts: Any,
    ):
        ort = require("onnxruntime", "onnx")
        self.path = Path(path)
        self.manifest = manifest
        self.output_scale = float(manifest.output_scale)
        kind, index = parse_device(device)
        self.device = kind
        self.name = f"onnx-{manifest.precision}-{kind}"
        self.input_names = [t.name for t in manifest.inputs]
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = int(opts.get("log_severity", 3))
        if threads:
            so.intra_op_num_threads = int(threads)
        so.inter_op_num_threads = 1
        source: str | bytes = str(self.path)
        #: the int8 weight codes the session runs: the stored s8, or u8 where this CPU's u8 x s8 kernel saturates
        self.int8_weights = weights_mode(opts.get("int8_weights")) if self._rewrites(manifest, kind) else None
        self.session_cache: Path | None = None
        if opts.get("session_cache") and kind != "tensorrt":
            cached = session_cache_path(ort, self.path, kind, index, self.int8_weights or "s8")
            self.session_cache = cached
            if cached.is_file():
                source = str(cached)
                so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
            else:
                so.optimized_model_filepath = str(cached.with_name(f".{cached.name}.{os.getpid()}.tmp"))
        if self.int8_weights == "u8" and source == str(self.path):  # not the cached, already rewritten model
            source = self._unsigned(source)
        providers = providers_for(ort, kind, index, manifest, opts)
        try:
            self.session = ort.InferenceSession(source, so, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise KatadeployError(f"onnxruntime cannot load {self.path.name}: {first}") from None
        if so.optimized_model_filepath:
            tmp = Path(so.optimized_model_filepath)
            if tmp.is_file():
                tmp.replace(self.session_cache)  # type: ignore[arg-type]
        #: constant feeds for graph inputs beyond the manifest's (``extra_inputs``: name -> array), e.g. the layer
        #: switches of :mod:`katadeploy.export.int8_switch`; the caller may change their values between runs
        self.extra_feed: dict[str, np.ndarray] = dict(opts.get("extra_inputs") or {})
        names = [i.name for i in self.session.get_inputs()]
        if names != [*self.input_names, *self.extra_feed]:
            raise KatadeployError(
                f"{self.path.name}: graph inputs {names} do not match its manifest ({self.input_names}); re-export it"
            )
        self.providers = self.session.get_providers()

    @staticmethod
    def _rewrites(manifest: ArtifactManifest, kind: str) -> bool:
        return manifest.precision == "int8" and kind == "cpu"

    def _unsigned(self, path: str) -> bytes:
        """The artifact with u8 weight codes (:func:`katadeploy.runtime.qdq_weights.unsigned_weights`)."""
        onnx = require("onnx", "onnx")
        try:
            proto = onnx.load(path)
        except Exception as exc:  # onnx raises DecodeError and friends
            raise KatadeployError(f"onnx cannot read {self.path.name}: {exc}") from None
        unsigned_weights(proto)
        return proto.SerializeToString()

    def evaluate(self, spatial: np.ndarray, global_: np.ndarray, meta: np.ndarray | None = None) -> RawBatch:
        arrays = check_inputs(self.name, self.manifest.inputs, spatial, global_, meta)
        feed = dict(zip(self.input_names, arrays))
        if len(feed["spatial"]) == 0:
            raise ValueError("empty batch")
        feed.update(self.extra_feed)
        out = self.session.run(list(OUTPUT_NAMES), feed)
        return RawBatch(*(np.asarray(o, dtype=np.float32) for o in out))


def load(req: LoadRequest) -> OnnxEvaluator:
    path, manifest, device, threads, opts = req.path, req.manifest, req.device, req.threads, req.options
    return OnnxEvaluator(path, manifest, device=device, threads=threads, **opts)
