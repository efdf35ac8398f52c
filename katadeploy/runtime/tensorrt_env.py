"""The TensorRT environment: which TensorRT is importable, which GPU is present, and cache keys.

Contract: :func:`load_tensorrt` imports full TensorRT (``tensorrt``), else TensorRT-RTX (``tensorrt_rtx`` or the
bare bindings modules the ``*_bindings`` wheels install), honouring ``$KATADEPLOY_TENSORRT`` (:data:`FLAVOUR_ENV`);
with none it raises :class:`TensorRTMissingError` naming the extra. :func:`gpu_info` names the CUDA GPU and its
compute capability (a clear :class:`~katadeploy.errors.KatadeployError` without one). :func:`cache_key` is the
stable key over everything an engine or timing cache depends on; :func:`cache_root` is where they live. Both the
exporter (:mod:`katadeploy.export.tensorrt`) and the runtime (:mod:`katadeploy.runtime.tensorrt_runtime`) use
these; this module imports neither torch (only inside :func:`gpu_info`) nor TensorRT at import time.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from katadeploy.cache import cache_dir
from katadeploy.errors import KatadeployError, MissingExtraError
from katadeploy.hashing import sha256_text

#: import name -> flavour, in order of preference (the bare bindings modules are what the ``*_bindings``
#: wheels install without their pure-Python ``tensorrt``/``tensorrt_rtx`` wrapper packages)
MODULES: tuple[tuple[str, str], ...] = (
    ("tensorrt", "tensorrt"),
    ("tensorrt_rtx", "tensorrt-rtx"),
    ("tensorrt_rtx_bindings", "tensorrt-rtx"),
    ("tensorrt_bindings", "tensorrt"),
)


FLAVOUR_ENV = "KATADEPLOY_TENSORRT"  # "tensorrt" or "tensorrt-rtx": use only that flavour


_DTYPES = {
    "FLOAT": "float32",
    "HALF": "float16",
    "BF16": "bfloat16",
    "INT8": "int8",
    "INT32": "int32",
    "INT64": "int64",
    "BOOL": "bool",
    "UINT8": "uint8",
}


class TensorRTMissingError(MissingExtraError):
    """Neither TensorRT nor TensorRT-RTX can be imported."""

    def __init__(self, reasons: list[str] | None = None):
        super().__init__("tensorrt", "tensorrt")
        msg = (
            f"{self.args[0]} (TensorRT-RTX also works: pip install tensorrt-rtx-cu13, which provides "
            "`tensorrt_rtx`)"
        )
        if reasons:
            msg += "; tried " + "; ".join(reasons)
        self.args = (msg,)


@dataclass(frozen=True)
class TensorRTLib:
    """The imported TensorRT module and what it is."""

    module: ModuleType
    flavour: str  # "tensorrt" | "tensorrt-rtx"
    version: str

    @property
    def is_rtx(self) -> bool:
        return self.flavour == "tensorrt-rtx"

    @property
    def label(self) -> str:
        return f"{'TensorRT-RTX' if self.is_rtx else 'TensorRT'} {self.version}"


def load_tensorrt(flavour: str | None = None) -> TensorRTLib:
    """Import full TensorRT, else TensorRT-RTX (only ``flavour`` when given, or ``$KATADEPLOY_TENSORRT``)."""
    want = flavour or os.environ.get(FLAVOUR_ENV) or None
    if want is not None and want not in ("tensorrt", "tensorrt-rtx"):
        raise KatadeployError(f"unknown TensorRT flavour {want!r}; use 'tensorrt' or 'tensorrt-rtx'")
    reasons: list[str] = []
    for name, kind in MODULES:
        if want is not None and kind != want:
            continue
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            if getattr(exc, "name", None) != name:  # present but broken (e.g. libraries missing)
                reasons.append(f"{name}: {exc}")
            continue
        except Exception as exc:  # a broken install can raise OSError & co from its loader
            reasons.append(f"{name}: {type(exc).__name__}: {exc}")
            continue
        if not hasattr(module, "Builder"):
            reasons.append(f"{name}: imported, but it has no Builder (a stub package?)")
            continue
        return TensorRTLib(module, kind, str(getattr(module, "__version__", "unknown")))
    if flavour is not None:  # an engine asks for the flavour that built it
        err: KatadeployError = (
            KatadeployError("TensorRT-RTX is not installed; install it with: pip install tensorrt-rtx-cu13")
            if flavour == "tensorrt-rtx"
            else MissingExtraError("tensorrt", "tensorrt")
        )
        tried = f"; tried {'; '.join(reasons)}" if reasons else ""
        err.args = (f"this engine was built with {flavour}, which cannot be used here: {err.args[0]}{tried}",)
        raise err
    raise TensorRTMissingError(reasons)


@dataclass(frozen=True)
class GpuInfo:
    name: str
    compute_capability: str  # "9.0"
    index: int = 0

    @property
    def short_name(self) -> str:
        return short_gpu_name(self.name)

    @property
    def sm(self) -> str:
        return "SM" + self.compute_capability.replace(".", "")

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "compute_capability": self.compute_capability}


def short_gpu_name(name: str) -> str:
    """``"NVIDIA H100 80GB HBM3"`` -> ``"H100"``, ``"NVIDIA GeForce RTX 4090"`` -> ``"RTX4090"``."""
    words = [w for w in name.replace("-", " ").split() if w not in ("NVIDIA", "GeForce", "Tesla", "Quadro")]
    if not words:
        return "GPU"
    if words[0] in ("RTX", "GTX", "TITAN") and len(words) > 1:
        return words[0] + words[1]
    return words[0]


def device_index(device: str | int | None) -> int | None:
    """The CUDA device index named by ``device`` (None: the current device)."""
    if device is None or isinstance(device, int):
        return device
    d = str(device).strip().lower()
    if d in ("cuda", "gpu", ""):
        return None
    if d.startswith("cuda:") and d[5:].isdigit():
        return int(d[5:])
    if d.isdigit():
        return int(d)
    raise KatadeployError(f"TensorRT runs on CUDA GPUs: device {device!r} is not one (use cuda or cuda:N)")


def gpu_info(device: str | int | None = None) -> GpuInfo:
    """Name and compute capability of the CUDA GPU ``device``; a clear error when there is none."""
    import torch

    idx = device_index(device)
    if not torch.cuda.is_available():
        raise KatadeployError(
            "TensorRT needs an NVIDIA GPU with a working CUDA driver, and none is visible here "
            "(torch.cuda.is_available() is False); build and run TensorRT engines on the GPU machine"
        )
    count = torch.cuda.device_count()
    if idx is None:
        idx = torch.cuda.current_device()
    if not 0 <= idx < count:
        raise KatadeployError(f"CUDA device {idx} does not exist (this machine has {count})")
    major, minor = torch.cuda.get_device_capability(idx)
    return GpuInfo(torch.cuda.get_device_name(idx), f"{major}.{minor}", idx)


def parse_compute_capabilities(spec: str | list[str] | tuple[str, ...], supported: list[str]) -> list[str]:
    """``"SM89"``, ``"sm_86,8.9"`` or a list -> ``["SM86", "SM89"]`` (members of TensorRT-RTX's
    ``ComputeCapability``, given as ``supported``)."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    out: list[str] = []
    for item in items:
        s = str(item).strip().upper().replace("SM_", "SM").replace(".", "")
        if not s:
            continue
        if not s.startswith("SM"):
            s = "SM" + s
        if s not in supported:
            raise KatadeployError(
                f"compute capability {item!r} is not a TensorRT-RTX target; choose from {', '.join(supported)}"
            )
        if s not in out:
            out.append(s)
    if not out:
        raise KatadeployError("compute_capability option is empty")
    return out


def sm_to_cc(sm: str) -> str:
    """``"SM89"`` -> ``"8.9"``, ``"SM120"`` -> ``"12.0"``."""
    digits = sm[2:]
    return f"{digits[:-1]}.{digits[-1]}"


def rtx_targets(trt: ModuleType) -> list[str]:
    return [m for m in trt.ComputeCapability.__members__ if m.startswith("SM")]


def cache_key(
    *,
    flavour: str,
    version: str,
    gpu: str,
    compute_capability: str,
    model_sha256: str,
    profile: tuple[int, int, int] | list[int],
    **extra: Any,
) -> str:
    """A stable hex key over everything an engine (or timing cache) depends on; ``extra`` adds more parts."""
    parts = {
        "flavour": flavour,
        "version": version,
        "gpu": gpu,
        "compute_capability": compute_capability,
        "model_sha256": model_sha256,
        "profile": [int(p) for p in profile],
        **extra,
    }
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return sha256_text(text)[:32]


def cache_root() -> Path:

    return cache_dir("tensorrt")


def make_logger(trt: ModuleType, echo: bool = False) -> Any:
    """A TensorRT logger that keeps error messages (``.errors``) and echoes warnings to stderr if ``echo``."""
    severity = trt.ILogger.Severity

    class _Logger(trt.ILogger):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.errors: list[str] = []

        def log(self, sev: Any, msg: str) -> None:
            if int(sev) <= int(severity.ERROR):
                self.errors.append(msg)
            if (echo and int(sev) <= int(severity.WARNING)) or int(sev) <= int(severity.ERROR):
                print(f"TensorRT: {msg}", file=sys.stderr, flush=True)

    return _Logger()


def dtype_name(dtype: Any) -> str:
    name = getattr(dtype, "name", str(dtype).rsplit(".", 1)[-1])
    return _DTYPES.get(name, name.lower())
