"""Per-platform KataGo presets for ``katadeploy configure``.

Contract: :data:`PLATFORMS` maps each platform name to a :class:`Platform`: its backends (the first is the
default), the box it stands for (cores, RAM in GiB: the typical board; ``local`` platforms use this machine's),
and preset search/NN-server threads and batch size per backend with the reason for each. :data:`BACKEND_PREFIX`
maps a backend to the config-key prefix KataGo uses for it (``cpp/program/setup.cpp`` ``getBackendPrefixes``).
:data:`KATAGO_DEFAULTS` holds the thread settings of KataGo's own example configs (what ``--tune`` compares
against), with file:line in v1.17.2.
"""

from __future__ import annotations

from dataclasses import dataclass, field

BACKEND_PREFIX = {
    "trt": "trt",
    "cuda": "cuda",
    "opencl": "opencl",
    "eigen": "eigen",
    "metal": "metal",
    "coreml": "metal",  # Core ML runs inside the Metal backend: device index 100 = METAL_MUX_ANE
    "onnx": "onnx",
}

#: metalbackend.h: ``static constexpr int METAL_MUX_ANE = 100;  // CoreML-only (CPU+ANE)``
METAL_MUX_ANE = 100
METAL_MUX_ANE_WHERE = "cpp/neuralnet/metalbackend.h:22 (v1.17.2)"

ONNX_PROVIDERS = ("cpu", "openvino", "cuda", "tensorrt", "migraphx", "coreml")

KATAGO_DEFAULTS = {
    "gtp": {"numSearchThreads": 6, "where": "cpp/configs/gtp_example.cfg:344 (v1.17.2)"},
    "analysis": {
        "numSearchThreads": 16,
        "numAnalysisThreads": 2,
        "where": "cpp/configs/analysis_example.cfg:95-96 (v1.17.2, numSearchThreadsPerAnalysisThread)",
    },
}


@dataclass(frozen=True)
class Preset:
    search_threads: int
    server_threads: int
    batch: int
    why: str


@dataclass(frozen=True)
class Platform:
    name: str
    description: str
    backends: tuple[str, ...]
    cores: int
    ram_gib: float
    presets: dict[str, Preset] = field(default_factory=dict)
    local: bool = False  # a config for the machine katadeploy runs on (RAM/cores read here)
    cache_cap: int = 23  # largest nnCacheSizePowerOfTwo for this box
    fp16: bool = False

    @property
    def default_backend(self) -> str:
        return self.backends[0]


_GPU_BIG = Preset(
    24, 1, 32, "a desktop GPU wants several batches in flight; KataGo's genconfig starts near here"
)

PLATFORMS: dict[str, Platform] = {
    p.name: p
    for p in (
        Platform(
            "rtx",
            "NVIDIA RTX desktop GPU, TensorRT backend (CUDA as the alternative)",
            ("trt", "cuda"),
            cores=8,
            ram_gib=32,
            fp16=True,
            presets={"trt": _GPU_BIG, "cuda": _GPU_BIG},
        ),
        Platform(
            "cuda",
            "NVIDIA GPU with the CUDA backend (TensorRT as the alternative)",
            ("cuda", "trt"),
            cores=8,
            ram_gib=32,
            fp16=True,
            presets={"cuda": _GPU_BIG, "trt": _GPU_BIG},
        ),
        Platform(
            "jetson-orin",
            "Jetson Orin (Ampere iGPU, 8 GB shared), TensorRT or CUDA, FP16",
            ("trt", "cuda"),
            cores=6,
            ram_gib=8,
            cache_cap=19,
            fp16=True,
            presets={
                "trt": Preset(12, 1, 16, "an Orin iGPU saturates at about a dozen threads; batch kept small"),
                "cuda": Preset(
                    12, 1, 16, "an Orin iGPU saturates at about a dozen threads; batch kept small"
                ),
            },
        ),
        Platform(
            "jetson-nano",
            "Jetson Nano (Maxwell, 4 GB shared), CUDA (TensorRT as the alternative), FP16",
            ("cuda", "trt"),
            cores=4,
            ram_gib=4,
            cache_cap=17,
            fp16=True,
            presets={
                "cuda": Preset(
                    4, 1, 8, "128 Maxwell cores: a few threads fill it; small batch saves shared RAM"
                ),
                "trt": Preset(
                    4, 1, 8, "128 Maxwell cores: a few threads fill it; small batch saves shared RAM"
                ),
            },
        ),
        Platform(
            "rpi4",
            "Raspberry Pi 4 (4x Cortex-A72, 4 GB), Eigen (KataGo built from source)",
            ("eigen",),
            cores=4,
            ram_gib=4,
            cache_cap=18,
            presets={
                "eigen": Preset(4, 4, 2, "Eigen: one NN server thread per core, one search thread each")
            },
        ),
        Platform(
            "rpi5",
            "Raspberry Pi 5 (4x Cortex-A76, 8 GB), Eigen (KataGo built from source)",
            ("eigen",),
            cores=4,
            ram_gib=8,
            cache_cap=19,
            presets={
                "eigen": Preset(4, 4, 2, "Eigen: one NN server thread per core, one search thread each")
            },
        ),
        Platform(
            "mac",
            "Apple silicon Mac: Metal GPU (MPSGraph), or Core ML on the Neural Engine",
            ("metal", "coreml"),
            cores=8,
            ram_gib=16,
            fp16=True,
            presets={
                "metal": Preset(16, 1, 16, "Apple GPUs peak with moderate batches; one server thread"),
                "coreml": Preset(8, 2, 8, "two ANE server threads keep the Neural Engine busy"),
            },
        ),
        Platform(
            "cpu",
            "this machine's CPU: Eigen (built with `katadeploy katago build`) or OpenCL (pocl)",
            ("eigen", "opencl"),
            cores=0,
            ram_gib=0,
            local=True,
            presets={},  # derived from the core count (configure._cpu_preset)
        ),
        Platform(
            "onnx",
            "KataGo >= 1.18's ONNX Runtime backend with a katadeploy ONNX artifact",
            ("onnx",),
            cores=0,
            ram_gib=0,
            local=True,
            presets={},
        ),
    )
}
