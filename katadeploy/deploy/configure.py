"""``katadeploy configure PLATFORM``: a KataGo config for one box, every key checked against KataGo's source.

Contract
--------
* :func:`build_config` returns a :class:`KataGoConfig` for ``platform`` (see
  :data:`katadeploy.deploy.platforms.PLATFORMS`), ``mode`` ``gtp`` or ``analysis`` and ``backend`` (the
  platform's first backend by default; any other raises :class:`~katadeploy.errors.KatadeployError`). It sets
  search threads, ``nnMaxBatchSize`` (not for Eigen, which fixes it at 2), NN server threads with their
  thread-indexed device keys, the backend's FP16/layout keys, ``nnCacheSizePowerOfTwo`` from the box's RAM
  (this machine's for ``cpu``/``onnx``, else the platform's typical RAM or ``ram_gib``), and rules/time/visit
  defaults for the mode. Each key carries a one-line reason. The ``onnx`` platform needs an ``artifact``
  (a katadeploy ONNX artifact, converted with :func:`katadeploy.export.katago_onnx.write_katago_onnx` when it
  does not meet KataGo's ONNX-backend contract yet, or a ``deploy.json`` whose fastest passing ONNX artifact is
  taken) and writes ``onnxProvider``, the node-name keys, ``onnxModelVersion``, the fixed tensor size
  (``maxBoardSizeForNNBuffer``, ``gtpForceMaxNNSize`` in GTP) and ``requireMaxBoardSize`` (false: smaller
  boards run masked; true for exact-board artifacts).
* Every key is held against ``katadeploy/configs/keys.json`` (:func:`katadeploy.deploy.keys.check_config`)
  before anything is written; a key KataGo would not read is a programming error here (``AssertionError``).
* :func:`tune` runs ``bench engine`` (:func:`katadeploy.bench.engine.run_engine_bench`) over a thread sweep on
  this machine with the real binary for the backend, picks the fastest ``numSearchThreads`` and measures, in
  the same run, KataGo's own default (``numSearchThreads`` of its example config) on that binary and on the
  other CPU backend's binary when one is available; :func:`configure` writes the tuned config, whose header
  reports those visits/s. Without tuning the header says the presets were used.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from katadeploy.deploy.keys import check_config, load_table
from katadeploy.deploy.platforms import (
    BACKEND_PREFIX,
    KATAGO_DEFAULTS,
    METAL_MUX_ANE,
    METAL_MUX_ANE_WHERE,
    ONNX_PROVIDERS,
    PLATFORMS,
    Platform,
    Preset,
)
from katadeploy.errors import KatadeployError

MODES = ("gtp", "analysis")
#: bytes per NN cache entry assumed for sizing: policy (362 floats) + ownership (361 floats) + small values
CACHE_ENTRY_BYTES = {"gtp": 1600, "analysis": 3100}
#: share of RAM given to the NN cache (boards with RAM shared by the GPU get less)
CACHE_RAM_SHARE = {"default": 1 / 8, "shared": 1 / 16}
TUNE_VISITS = 100
TUNE_POSITIONS = 3


@dataclass
class KataGoConfig:
    platform: str
    backend: str
    mode: str
    lines: list[tuple[str, Any, str]] = field(default_factory=list)  # key, value, why
    notes: list[str] = field(default_factory=list)
    tuned: dict[str, Any] | None = None

    @property
    def items(self) -> dict[str, str]:
        from katadeploy.engine.katago.configs import format_config_value

        return {k: format_config_value(v) for k, v, _ in self.lines}

    def set(self, key: str, value: Any, why: str) -> None:
        for i, (k, _, _) in enumerate(self.lines):
            if k == key:
                self.lines[i] = (key, value, why)
                return
        self.lines.append((key, value, why))

    def get(self, key: str) -> Any:
        for k, v, _ in self.lines:
            if k == key:
                return v
        return None

    def render(self) -> str:
        from katadeploy.engine.katago.configs import format_config_value

        table = load_table()
        out = [
            f"# KataGo {self.mode} config for platform '{self.platform}' (backend: {self.backend}),",
            f"# written by `katadeploy configure` on {time.strftime('%Y-%m-%d', time.gmtime())}.",
            "# Every key is one KataGo reads (katadeploy/configs/keys.json, transcribed from "
            + ", ".join(table.sources)
            + ").",
        ]
        if self.tuned is None:
            out.append(
                "# Settings: per-platform presets (not measured on the box; `configure --tune` measures them)."
            )
        out += [f"# {n}" for n in self.notes]
        out.append("")
        for key, value, why in self.lines:
            out.append(f"# {why}")
            out.append(f"{key} = {format_config_value(value)}")
        return "\n".join(out) + "\n"

    def problems(self) -> list[str]:
        return check_config(self.items, self.mode, BACKEND_PREFIX[self.backend])


def ram_gib_here() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / (1 << 20)
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / (1 << 30)
    except (ValueError, OSError):
        return 8.0


def cache_power(ram_gib: float, mode: str, cap: int, shared: bool = False) -> int:
    """``nnCacheSizePowerOfTwo``: the largest 2^k entries that fit the RAM share (clamped to [12, cap])."""
    share = CACHE_RAM_SHARE["shared" if shared else "default"]
    entries = ram_gib * (1 << 30) * share / CACHE_ENTRY_BYTES[mode]
    return max(12, min(cap, int(math.floor(math.log2(max(entries, 1))))))


def _cpu_preset(backend: str, cores: int) -> Preset:
    if backend == "onnx":
        return Preset(
            max(2, 2 * cores),
            1,
            max(8, 2 * cores),
            f"ONNX Runtime on a {cores}-core box: batches of about 2x cores",
        )
    if backend == "eigen":
        return Preset(
            cores, cores, 2, f"Eigen on {cores} cores: one NN server thread per core, one search thread each"
        )
    return Preset(
        max(2, 2 * cores),
        1,
        max(8, 2 * cores),
        f"OpenCL on a {cores}-core CPU: a couple of searches per core",
    )


def _resolve_backend(plat: Platform, backend: str | None) -> str:
    if backend is None:
        return plat.default_backend
    if backend not in plat.backends:
        raise KatadeployError(
            f"platform {plat.name} has no backend {backend!r}; choose one of {', '.join(plat.backends)}"
        )
    return backend


def pick_from_deploy(path: Path) -> Path:
    """The fastest ONNX artifact that passed validation in a ``deploy.json``."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise KatadeployError(f"{path}: not a readable deploy.json ({exc})") from None
    best: tuple[float, Path] | None = None
    for t in data.get("targets", []) if isinstance(data, dict) else []:
        art = t.get("artifact")
        if t.get("verdict") != "PASS" or not art or not str(art).endswith(".onnx"):
            continue
        speed = max((float(v) for v in (t.get("evals_per_s") or {}).values()), default=0.0)
        p = Path(art)
        if not p.is_absolute() and not p.exists():
            p = path.parent / p.name if not (path.parent / p).exists() else path.parent / p
        if best is None or speed > best[0]:
            best = (speed, p)
    if best is None:
        raise KatadeployError(
            f"{path}: no ONNX artifact passed validation there (run `katadeploy deploy` first)"
        )
    return best[1]


def _onnx_artifact(artifact: str | os.PathLike[str]) -> tuple[Path, list[str]]:
    from katadeploy.export.katago_onnx import check_contract, katago_onnx_path, write_katago_onnx

    p = Path(artifact)
    notes = []
    if p.name.endswith(".onnx.json"):  # an artifact's sidecar manifest: the artifact itself
        p = p.with_suffix("")
    elif p.suffix == ".json":
        p = pick_from_deploy(p)
        notes.append(
            f"Artifact: {p.name}, the fastest ONNX artifact that passed validation in the deploy.json."
        )
    if not p.is_file():
        raise KatadeployError(f"{p}: no such artifact")
    if check_contract(p):
        out = katago_onnx_path(p)
        if not out.is_file() or out.stat().st_mtime < p.stat().st_mtime or check_contract(out):
            write_katago_onnx(p, out)
        notes.append(f"{out.name}: {p.name} with KataGo's ONNX-backend I/O names and shapes.")
        p = out
    return p, notes


def build_config(
    platform: str,
    mode: str = "gtp",
    backend: str | None = None,
    *,
    artifact: str | os.PathLike[str] | None = None,
    provider: str | None = None,
    ram_gib: float | None = None,
    cores: int | None = None,
    home_data_dir: str | os.PathLike[str] | None = None,
) -> KataGoConfig:
    """The config (not written) for ``platform`` in ``mode`` (see the module contract)."""
    if platform not in PLATFORMS:
        raise KatadeployError(f"unknown platform {platform!r}; choose one of {', '.join(PLATFORMS)}")
    if mode not in MODES:
        raise KatadeployError(f"--mode must be gtp or analysis, got {mode!r}")
    plat = PLATFORMS[platform]
    be = _resolve_backend(plat, backend)
    prefix = BACKEND_PREFIX[be]
    cfg = KataGoConfig(platform, be, mode)
    n_cores = cores or (os.cpu_count() or 1 if plat.local else plat.cores)
    ram = ram_gib or (ram_gib_here() if plat.local else plat.ram_gib)
    preset = plat.presets.get(be) or _cpu_preset(be, n_cores)
    cfg.notes.append(plat.description + ".")

    # ---- logging / protocol conventions
    if mode == "gtp":
        cfg.set("logAllGTPCommunication", False, "GTP traffic not logged (KataGo requires the key in GTP)")
        cfg.set("logSearchInfo", False, "no per-move search dumps in the log (GUIs read GTP, not the log)")
        cfg.set("ponderingEnabled", False, "no thinking on the opponent's time: predictable CPU/GPU use")
    else:
        cfg.set("logToStderr", False, "the analysis protocol owns stdout; keep stderr quiet for the client")
        cfg.set("logAllRequests", False, "do not log every query (large with many clients)")
        cfg.set("logAllResponses", False, "do not log every response")
        cfg.set("logErrorsAndWarnings", True, "keep errors and warnings in the log")
        cfg.set(
            "reportAnalysisWinratesAs",
            "BLACK",
            "values from Black's side, as KaTrain and the protocol docs use",
        )

    # ---- search size and time
    if mode == "gtp":
        cfg.set("rules", "chinese", "area scoring by default; GUIs change it with kata-set-rules")
        cfg.set(
            "maxVisits", 500 if be not in ("eigen",) else 200, "visit cap per move (KataGo's example: 500)"
        )
        cfg.set("maxTime", 10.0, "at most 10 s per move when the GUI sends no time control")
        cfg.set("lagBuffer", 1.0, "seconds kept back for GUI/network lag under time controls")
        cfg.set("allowResignation", True, "resign lost games (as KataGo's example config)")
        cfg.set("resignThreshold", -0.90, "resign below 5% winrate ...")
        cfg.set("resignConsecTurns", 3, "... for 3 turns in a row")
    else:
        cfg.set("maxVisits", 500, "default visits per query; queries override it with maxVisits")
        cfg.set("wideRootNoise", 0.04, "explore more moves at the root, as KataGo's analysis_example.cfg")

    # ---- threads, batch, server threads
    if mode == "gtp":
        cfg.set("numSearchThreads", preset.search_threads, f"search threads: {preset.why}")
    else:
        cfg.set("numAnalysisThreads", 2, "two queries searched at once")
        cfg.set(
            "numSearchThreads",
            max(1, preset.search_threads // 2),
            f"search threads per query (x2 queries = {2 * max(1, preset.search_threads // 2)}): {preset.why}",
        )
    if be != "eigen":
        cfg.set("nnMaxBatchSize", preset.batch, "largest NN batch: about the number of threads feeding it")
    else:
        cfg.set(
            "nnMaxBatchSize",
            preset.batch,
            "ignored by Eigen builds (fixed at 2, cpp/program/setup.cpp:284); other builds need it for analysis",
        )
    if be == "eigen":
        cfg.set(
            "numEigenThreadsPerModel",
            preset.server_threads,
            "Eigen NN threads, one per core (Eigen builds read this, not numNNServerThreadsPerModel: "
            "cpp/program/setup.cpp:176-180; other builds ignore it, setup.cpp:173)",
        )
    else:
        cfg.set("numNNServerThreadsPerModel", preset.server_threads, "NN server threads (one per device)")
    # thread-indexed device keys
    if be in ("trt", "cuda", "opencl", "metal", "coreml"):
        for t in range(preset.server_threads):
            dev = METAL_MUX_ANE if be == "coreml" else 0
            why = (
                f"server thread {t} on the Neural Engine (device {METAL_MUX_ANE} = METAL_MUX_ANE, {METAL_MUX_ANE_WHERE})"
                if be == "coreml"
                else f"server thread {t} on device 0 (add threads/devices here for multi-GPU boxes)"
            )
            cfg.set(f"{prefix}DeviceToUseThread{t}", dev, why)

    # ---- cache
    shared = platform.startswith("jetson")
    power = cache_power(ram, mode, plat.cache_cap, shared=shared)
    cfg.set(
        "nnCacheSizePowerOfTwo",
        power,
        f"2^{power} cached NN results: ~{CACHE_ENTRY_BYTES[mode] * (1 << power) / (1 << 20):.0f} MiB of "
        f"{ram:.1f} GiB RAM{' (shared with the GPU)' if shared else ''}",
    )

    # ---- precision / layout per backend
    if be == "trt":
        cfg.set("trtUseFP16", plat.fp16, "FP16 TensorRT engines: tensor cores, half the memory")
        cfg.set(
            "trtTransformerNHWC", True, "channel-last trunk for transformer nets (faster on tensor cores)"
        )
    elif be == "cuda":
        cfg.set(
            "cudaUseFP16",
            plat.fp16,
            "FP16 compute" + (" (Maxwell: half-rate storage only)" if platform == "jetson-nano" else ""),
        )
        cfg.set(
            "cudaUseNHWC",
            platform != "jetson-nano",
            "NHWC for tensor cores" if platform != "jetson-nano" else "no tensor cores on Maxwell: NCHW",
        )
    elif be == "opencl":
        cfg.set("openclUseFP16", "auto", "let KataGo's tuner decide FP16 (CPU OpenCL devices have none)")
    elif be == "metal":
        cfg.set("metalUseFP16", True, "FP16 on the Apple GPU")
    elif be == "coreml":
        cfg.set("metalUseFP16", True, "FP16 on the Neural Engine (it runs FP16 natively)")
    elif be == "eigen":
        cfg.notes.append("Eigen computes in FP32 on the CPU: no FP16 or layout keys apply.")
    if be == "opencl" or plat.local:
        from katadeploy.engine.katago.installer import katago_home

        cfg.set(
            "homeDataDir",
            str(home_data_dir or katago_home()),
            "KataGo's data dir in katadeploy's cache (OpenCL tuning is done once per machine there)",
        )

    # ---- the ONNX Runtime backend
    if be == "onnx":
        if artifact is None:
            raise KatadeployError(
                "configure onnx needs --artifact (a katadeploy ONNX artifact or a deploy.json)"
            )
        from katadeploy.artifact import read_manifest
        from katadeploy.export.katago_onnx import config_keys

        path, notes = _onnx_artifact(artifact)
        cfg.notes += notes
        cfg.notes.append(
            f"Run: katago {mode} -config THIS.cfg -model {path} (a KataGo built with USE_BACKEND=ONNX)."
        )
        cfg.notes.append(
            "katadeploy checked such files with KataGo's ONNX backend (lightvector/KataGo pull/1171) and "
            "onnxProvider = cpu only."
        )
        prov = provider or "cpu"
        if prov not in ONNX_PROVIDERS:
            raise KatadeployError(f"--provider must be one of {', '.join(ONNX_PROVIDERS)}, got {prov!r}")
        man = read_manifest(path)
        cfg.set("onnxProvider", prov, "ONNX Runtime execution provider (onnxbackend.cpp:365-371)")
        if prov == "openvino":
            cfg.set("onnxOpenVINODeviceType", "CPU", "OpenVINO on the CPU (the backend's default is NPU)")
            cfg.set(
                "onnxOpenVINOPrecision",
                "FP32" if man.precision == "fp32" else "FP16",
                f"the artifact is {man.precision}; let OpenVINO run it at that precision",
            )
        for key, value in config_keys(path).items():
            why = (
                "model version of the net (the backend would guess it from channel counts)"
                if key == "onnxModelVersion"
                else "graph tensor name KataGo binds (exact match)"
            )
            cfg.set(key, value, why)
        if man.nn_x == man.nn_y:
            cfg.set(
                "maxBoardSizeForNNBuffer",
                man.nn_x,
                f"the artifact's fixed {man.nn_x}x{man.nn_y} board tensor",
            )
        else:
            cfg.set("maxBoardXSizeForNNBuffer", man.nn_x, "the artifact's board width")
            cfg.set("maxBoardYSizeForNNBuffer", man.nn_y, "the artifact's board height")
        if mode == "gtp":
            cfg.set(
                "gtpForceMaxNNSize",
                True,
                "one NN buffer at the largest size for every GTP board size (the artifact's tensor is fixed)",
            )
        if man.exact_board:
            cfg.set("requireMaxBoardSize", True, "exact-board artifact (no mask ops): only full-size boards")
        else:
            cfg.set("requireMaxBoardSize", False, "smaller boards run masked inside the fixed tensor")

    problems = cfg.problems()
    assert not problems, f"configure wrote keys KataGo does not read: {problems}"
    return cfg


# ----------------------------------------------------------------------------------------------------------
# Tuning


def _binary_for_backend(backend: str, katago: str | None) -> Any:
    from katadeploy.engine import katago as kg
    from katadeploy.engine.katago.build import built

    if katago:
        return kg.locate(katago)
    if backend == "opencl":
        return kg.install(progress=False, check=False) if kg.installed() is None else kg.installed()
    if backend == "eigen":
        b = built("eigen")
        if b is None:
            raise KatadeployError(
                "no Eigen KataGo build: run `katadeploy katago build --backend eigen` first"
            )
        return b.binary()
    raise KatadeployError(
        f"--tune has no KataGo binary for backend {backend} on this machine (pass --katago)"
    )


def _backend_of_binary(binary: Any) -> str:
    proc = binary.run("version")
    text = proc.stdout.lower()
    for name, word in (
        ("opencl", "opencl"),
        ("eigen", "eigen"),
        ("cuda", "cuda"),
        ("trt", "tensorrt"),
        ("onnx", "onnx"),
    ):
        if f"using {word}" in text:
            return name
    return "?"


def tune(
    cfg: KataGoConfig,
    model: str | os.PathLike[str],
    *,
    katago: str | None = None,
    threads: list[int] | None = None,
    visits: int = TUNE_VISITS,
    positions: int = TUNE_POSITIONS,
    compare_other: bool = True,
    progress: bool = True,
) -> dict[str, Any]:
    """Sweep ``numSearchThreads`` with ``bench engine`` on this machine and write the best into ``cfg``."""
    from katadeploy.bench.engine import default_positions, run_engine_bench

    plat = PLATFORMS[cfg.platform]
    if not plat.local:
        raise KatadeployError(
            f"--tune measures this machine; platform {cfg.platform} is another box (tune `cpu` here, or run "
            "configure --tune on that box)"
        )
    if cfg.backend == "onnx":
        raise KatadeployError("--tune for onnx needs a KataGo ONNX build, which this machine does not have")
    binary = _binary_for_backend(cfg.backend, katago)
    got = _backend_of_binary(binary)
    if got != cfg.backend:
        raise KatadeployError(f"{binary.path} is a {got} build, not {cfg.backend}")
    n = os.cpu_count() or 1
    default_t = KATAGO_DEFAULTS[cfg.mode]["numSearchThreads"]
    sweep = sorted(set(threads or [1, n, 2 * n, 4 * n]))
    all_t = sorted(set(sweep) | {default_t})
    pos = default_positions(positions)

    bench_cfg = build_config(cfg.platform, "analysis", cfg.backend)
    import tempfile

    with tempfile.TemporaryDirectory(prefix="katadeploy-tune-") as tmp:
        cfg_path = Path(tmp) / "tune.cfg"
        # the bench overrides threads/batch itself; drop what it sets so only this box's other keys remain
        for key in ("numAnalysisThreads", "numSearchThreads", "nnMaxBatchSize", "logToStderr"):
            bench_cfg.lines = [ln for ln in bench_cfg.lines if ln[0] != key]
        cfg_path.write_text(bench_cfg.render())
        res = run_engine_bench(
            model,
            threads=all_t,
            visits=visits,
            positions=pos,
            config=cfg_path,
            binary=binary,
            progress=progress,
        )
        other = None
        other_be = {"eigen": "opencl", "opencl": "eigen"}.get(cfg.backend)
        if compare_other and other_be and katago is None:
            try:
                ob = _binary_for_backend(other_be, None)
                ocfg = build_config(cfg.platform, "analysis", other_be)
                for key in ("numAnalysisThreads", "numSearchThreads", "nnMaxBatchSize", "logToStderr"):
                    ocfg.lines = [ln for ln in ocfg.lines if ln[0] != key]
                ocfg_path = Path(tmp) / "other.cfg"
                ocfg_path.write_text(ocfg.render())
                ores = run_engine_bench(
                    model,
                    threads=[default_t],
                    visits=visits,
                    positions=pos,
                    config=ocfg_path,
                    binary=ob,
                    progress=progress,
                )
                other = {"backend": other_be, "katago": ores.katago_version, "threads": default_t,
                         "visits_per_s": ores.results[0].visits_per_s, "nn_evals_per_s": ores.results[0].nn_evals_per_s}  # fmt: skip
            except KatadeployError as exc:
                other = {"backend": other_be, "error": str(exc)}
    rows = {r.threads: r for r in res.results}
    best = max(sweep, key=lambda t: rows[t].visits_per_s)
    batch = rows[best].batch_size
    report = {
        "model": str(model),
        "katago": res.katago_version,
        "backend": cfg.backend,
        "visits": visits,
        "positions": len(pos),
        "sweep": {
            t: {"visits_per_s": rows[t].visits_per_s, "nn_evals_per_s": rows[t].nn_evals_per_s} for t in all_t
        },
        "tuned": {"threads": best, "visits_per_s": rows[best].visits_per_s},
        "katago_default": {
            "threads": default_t,
            "where": KATAGO_DEFAULTS[cfg.mode]["where"],
            "visits_per_s": rows[default_t].visits_per_s,
        },
        "other_backend_default": other,
    }
    why = f"tuned on this box: {rows[best].visits_per_s:.1f} visits/s (bench engine, {visits} visits x {len(pos)} positions)"
    if cfg.mode == "gtp":
        cfg.set("numSearchThreads", best, why)
    else:
        cfg.set(
            "numAnalysisThreads",
            1,
            "tuned for one query at a time (more parallel queries: raise this, lower the next)",
        )
        cfg.set("numSearchThreads", best, why)
    if cfg.backend != "eigen":
        cfg.set("nnMaxBatchSize", batch, "the batch size the tuning ran with")
    cfg.tuned = report
    cfg.notes.append(f"Tuned with {res.katago_version} on {os.cpu_count()} cores, model {Path(model).name}:")
    cfg.notes.append(
        "  numSearchThreads: " + ", ".join(f"{t} -> {rows[t].visits_per_s:.1f}" for t in all_t) + " visits/s"
    )
    ratio = (
        rows[best].visits_per_s / rows[default_t].visits_per_s
        if rows[default_t].visits_per_s
        else float("nan")
    )
    cfg.notes.append(
        f"  tuned {best} threads: {rows[best].visits_per_s:.1f} visits/s vs KataGo's default {default_t} "
        f"({KATAGO_DEFAULTS[cfg.mode]['where']}): {rows[default_t].visits_per_s:.1f} visits/s (x{ratio:.2f})"
    )
    if other and "visits_per_s" in other:
        cfg.notes.append(
            f"  {other['backend']} build ({other['katago']}) at KataGo's default {default_t} threads: "
            f"{other['visits_per_s']:.1f} visits/s"
        )
    elif other:
        cfg.notes.append(f"  {other['backend']} build not measured: {other['error']}")
    problems = cfg.problems()
    assert not problems, problems
    return report


def configure(
    platform: str,
    out: str | os.PathLike[str] | None = None,
    *,
    mode: str = "gtp",
    backend: str | None = None,
    model: str | None = None,
    artifact: str | None = None,
    provider: str | None = None,
    do_tune: bool = False,
    katago: str | None = None,
    threads: list[int] | None = None,
    visits: int = TUNE_VISITS,
    positions: int = TUNE_POSITIONS,
    ram_gib: float | None = None,
    progress: bool = True,
) -> tuple[KataGoConfig, Path | None]:
    """Build (and tune, and write) a config; returns it and the path written (None without ``out``)."""
    cfg = build_config(platform, mode, backend, artifact=artifact, provider=provider, ram_gib=ram_gib)
    if do_tune:
        if not PLATFORMS[platform].local:
            raise KatadeployError(
                f"--tune measures this machine; platform {platform} is another box (tune `cpu` here, or run "
                "configure --tune on that box)"
            )
        if model is None:
            raise KatadeployError("--tune needs --model (the net to measure with)")
        from katadeploy.model.hub import resolve_model

        tune(cfg, resolve_model(model), katago=katago, threads=threads, visits=visits, positions=positions,
             progress=progress)  # fmt: skip
    if model is not None and not do_tune:
        cfg.notes.append(f"Run: katago {mode} -config THIS.cfg -model {model}")
    path = None
    if out is not None:
        from katadeploy.files import atomic_write_text

        path = atomic_write_text(out, cfg.render())
    return cfg, path
