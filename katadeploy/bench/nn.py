"""``katadeploy bench nn``: raw neural-net throughput and latency of artifacts, side by side.

Contract
--------
:func:`run_nn_bench` benchmarks each artifact (or ``torch``, the FP32 reference, which needs the net) in its
own child process (``python -m katadeploy.bench.nn_worker``, no shell, JSON on stdout, a timeout), so the peak
resident memory reported for an artifact is that runtime's alone. Per artifact and batch size it reports
evals/s (``batch * calls / seconds`` over a timed loop of ``evaluate`` calls after a warm-up), the P50/P95/P99
latency of one call, and achieved GFLOP/s (``katadeploy.model.stats.flops(net, nn_x, nn_y)`` per eval times
evals/s; only when the net is known: ``--model``, or the artifact's source net already in the model cache).
Inputs are real encoded positions (the bundled ones). A child that fails raises
:class:`~katadeploy.bench.engine.BenchError` naming the artifact and the child's last error line.

With ``katago=`` the real KataGo binary's own ``katago benchmark`` runs on the same net in the same run
(search threads = the batch sizes, or ``katago_threads``; a GTP config with FP32 OpenCL; OpenCL tuning is
ensured first and not timed). Its row is labelled with the backend it actually used (the KaTrain build is
OpenCL; on a CPU-only machine that is the pocl driver, not Eigen), its nnEvals/s come from a full search (not
raw NN calls), and the table gives each artifact's evals/s as a multiple of KataGo's at threads == batch.

``inflight=K`` (or ``"auto"``) times ``evaluate_many`` of K batches in flight for evaluators that have it
(OpenVINO's asynchronous throughput path), the way a search with several NN threads drives the net; a list
(``[1, "auto"]``) benchmarks such an artifact once per mode, side by side (an artifact without an async path is
run once, sync).
``baselines`` are named reference numbers (e.g. ``KataGo v1.17.2 Eigen = 2.31`` evals/s measured elsewhere)
that the report divides by; they are quoted, never measured here, and labelled so.

:mod:`katadeploy.bench.nn_report` renders the result (Markdown tables, an evals/s-against-batch plot);
:meth:`NNBenchResult.to_dict` is the JSON.
"""

from __future__ import annotations

import collections
import json
import os
import re
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from katadeploy.bench.engine import BenchError
from katadeploy.bench.nn_worker import PROGRESS_TAG
from katadeploy.progress import Progress
from katadeploy.subprocess_run import ProcessTimeout, run_process

WORKER_MODULE = "katadeploy.bench.nn_worker"
DEFAULT_BATCHES = (1, 8, 32)
DEFAULT_SECONDS = 5.0
WORKER_TIMEOUT_S = 900.0
KATAGO_VISITS = 200
KATAGO_POSITIONS = 5
KATAGO_TIMEOUT_S = 3600.0

METHOD = (
    "Each artifact runs in its own child process. Per batch size: warm-up (>= 1 call and >= warmup seconds), "
    "then evaluate() is called on real encoded positions until the time budget is spent (>= 3 calls). "
    "evals/s = batch*calls/seconds; latency percentiles are per call; GFLOP/s = flops(net, nn_x, nn_y) * "
    "evals/s / 1e9; "
    "peak RSS = the child's ru_maxrss (base RSS = before the runtime and artifact were loaded)."
)


@dataclass
class BatchResult:
    batch: int
    calls: int
    evals: int
    seconds: float
    evals_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    gflops_per_s: float | None = None
    inflight: int = 1


@dataclass
class Baseline:
    """A reference throughput quoted from elsewhere (not measured in this run)."""

    label: str
    evals_per_s: float


def parse_baseline(text: str) -> Baseline:
    """``LABEL=EVALS_PER_S`` (e.g. ``KataGo v1.17.2 Eigen=2.31``) -> :class:`Baseline`."""
    label, sep, value = text.rpartition("=")
    try:
        evals = float(value)
    except ValueError:
        evals = -1.0
    if not sep or not label.strip() or not evals > 0:
        raise BenchError(f"bad baseline {text!r}: expected LABEL=EVALS_PER_S, e.g. 'KataGo Eigen=2.31'")
    return Baseline(label.strip(), evals)


@dataclass
class ArtifactResult:
    artifact: str
    name: str
    target: str
    precision: str
    evaluator: str
    nn_x: int
    nn_y: int
    exact: bool
    fixed_batch: int | None
    threads: int | None
    load_seconds: float
    base_rss_mb: float
    peak_rss_mb: float
    flops_per_eval: int | None
    batches: list[BatchResult]
    int8_mac_fraction: float | None = None  # INT8 artifacts: the share of MACs that really run int8
    #: onnx-int8 on onnxruntime's CPU provider: the share it runs in int8 (input-only QDQ convolutions run float)
    onnxruntime_cpu_fraction: float | None = None


@dataclass
class KataGoResult:
    label: str  # e.g. "KataGo v1.18.1 benchmark, OpenCL on pocl (CPU: ...)"
    version: str
    backend: str
    device: str
    visits: int
    positions: int
    rows: list[dict[str, float]]  # threads, visits_per_s, nn_evals_per_s, nn_batches_per_s, avg_batch_size


@dataclass
class NNBenchResult:
    model: str | None
    seconds: float
    batches: list[int]
    threads: int | None
    artifacts: list[ArtifactResult]
    katago: KataGoResult | None = None
    baselines: list[Baseline] = field(default_factory=list)
    started_at: str = ""
    wall_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "katadeploy.bench.nn",
            "schema": 1,
            "model": self.model,
            "seconds_per_batch": self.seconds,
            "batches": self.batches,
            "threads": self.threads,
            "cpu_count": os.cpu_count(),
            "started_at": self.started_at,
            "wall_seconds": self.wall_seconds,
            "method": METHOD,
            "artifacts": [asdict(a) for a in self.artifacts],
            "katago": asdict(self.katago) if self.katago is not None else None,
            "baselines": [asdict(b) for b in self.baselines],
            "notes": self.notes,
        }


# ----------------------------------------------------------------------------------------------------------
# Child processes


def _worker_env() -> dict[str, str]:
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parent.parent.parent)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def run_worker(
    spec: str,
    *,
    model_path: str | Path | None,
    batches: list[int],
    seconds: float,
    warmup: float,
    threads: int | None = None,
    nn_size: int = 19,
    timeout: float = WORKER_TIMEOUT_S,
    on_batch: Any = None,
    inflight: int | str = 1,
) -> dict[str, Any]:
    """Run the worker for one artifact; return its JSON. Raises :class:`BenchError` when it fails."""
    argv = [sys.executable, "-m", WORKER_MODULE, "--artifact", str(spec),
            "--batches", ",".join(map(str, batches)), "--seconds", repr(float(seconds)),
            "--warmup", repr(float(warmup)), "--nn-size", str(nn_size), "--inflight", str(inflight)]  # fmt: skip
    if model_path is not None:
        argv += ["--model", str(model_path)]
    if threads:
        argv += ["--threads", str(threads)]
    tail: collections.deque[str] = collections.deque(maxlen=30)

    def _on_stderr(line: str) -> None:
        if line.startswith(PROGRESS_TAG):
            if on_batch is not None:
                on_batch()
        elif line.strip():
            tail.append(line.rstrip())

    name = str(spec)
    try:
        result = run_process(argv, timeout=timeout, env=_worker_env(), on_stderr=_on_stderr, tail_lines=0)
    except ProcessTimeout:
        raise BenchError(f"bench nn: {name} did not finish within {timeout:g} s (raise --timeout)") from None
    out, rc = result.stdout, result.returncode
    payload: dict[str, Any] | None = None
    lines = [ln for ln in out.splitlines() if ln.strip()]
    if lines:
        try:
            payload = json.loads(lines[-1])
        except json.JSONDecodeError:
            payload = None
    if rc == 0 and isinstance(payload, dict) and "batches" in payload:
        return payload
    if isinstance(payload, dict) and "error" in payload:
        raise BenchError(f"bench nn: {name}: {payload['error']}")
    how = f"killed by signal {-rc}" if rc < 0 else f"exit code {rc}"
    last = tail[-1] if tail else "no output"
    raise BenchError(f"bench nn: the worker for {name} died ({how}): {last}")


# ----------------------------------------------------------------------------------------------------------
# KataGo's own benchmark

_KG_LINE = re.compile(
    r"numSearchThreads\s*=\s*(\d+):\s*(\d+)\s*/\s*(\d+) positions, visits/s = ([\d.]+) nnEvals/s = ([\d.]+) "
    r"nnBatches/s = ([\d.]+) avgBatchSize = ([\d.]+)"
)
_KG_DEVICE = re.compile(r"Using OpenCL Device \d+: (.*?) OpenCL")


def parse_katago_benchmark(stdout: str, stderr: str = "") -> tuple[list[dict[str, float]], str, str]:
    """Rows (one per thread count, the finished line) and the backend and device from ``katago benchmark``."""
    rows: dict[int, dict[str, float]] = {}
    for m in _KG_LINE.finditer(stdout):
        t, done, total = int(m.group(1)), int(m.group(2)), int(m.group(3))
        if done == total:
            rows[t] = {
                "threads": t,
                "visits_per_s": float(m.group(4)),
                "nn_evals_per_s": float(m.group(5)),
                "nn_batches_per_s": float(m.group(6)),
                "avg_batch_size": float(m.group(7)),
            }
    text = stdout + "\n" + stderr
    if "OpenCL" in text:
        backend = "OpenCL"
        if "Portable Computing Language" in text or "PoCL" in text or "pocl" in text:
            backend = "OpenCL on pocl, CPU"
    elif "Eigen" in text:
        backend = "Eigen (CPU)"
    elif "CUDA" in text or "TensorRT" in text:
        backend = "CUDA/TensorRT"
    else:
        backend = "unknown backend"
    dev = _KG_DEVICE.search(text)
    return [rows[t] for t in sorted(rows)], backend, dev.group(1).strip() if dev else ""


class _Heartbeat:
    """While a child runs without a progress stream of its own, say every ``every`` seconds that it still runs."""

    def __init__(self, label: str, enabled: bool, every: float = 30.0):
        self.label, self.enabled, self.every = label, enabled, every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _beat(self) -> None:
        t0 = time.perf_counter()
        while not self._stop.wait(self.every):
            elapsed = time.perf_counter() - t0
            print(f"katadeploy: {self.label} still running ({elapsed:.0f} s)", file=sys.stderr, flush=True)

    def __enter__(self) -> _Heartbeat:
        if self.enabled:
            self._thread = threading.Thread(target=self._beat, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1)


def run_katago_benchmark(
    model_path: str | Path,
    threads: list[int],
    *,
    binary: Any = None,
    visits: int = KATAGO_VISITS,
    positions: int = KATAGO_POSITIONS,
    timeout: float = KATAGO_TIMEOUT_S,
    progress: bool = True,
) -> KataGoResult:
    """``katago benchmark -t <threads> -v <visits> -n <positions>`` with an FP32 GTP config; ``binary`` is a
    :class:`~katadeploy.engine.katago.KataGoBinary`, a path, or None for the installed copy."""
    from katadeploy.engine import katago as kg

    exe = binary if isinstance(binary, kg.KataGoBinary) else kg.locate(binary)
    version = exe.version()
    kg.ensure_tuning(model_path, exe, progress=progress)
    with (
        tempfile.TemporaryDirectory(prefix="katadeploy-bench-") as tmp,
        _Heartbeat("katago benchmark", progress),
    ):
        cfg = kg.write_gtp_config(Path(tmp) / "bench.cfg", nnMaxBatchSize=None)
        proc = exe.run(
            "benchmark", "-model", str(model_path), "-config", str(cfg), "-t", ",".join(map(str, threads)),
            "-v", str(visits), "-n", str(positions), timeout=timeout,
        )  # fmt: skip
    rows, backend, device = parse_katago_benchmark(proc.stdout, proc.stderr)
    if proc.returncode != 0 or not rows:
        last = (proc.stderr.strip().splitlines() or proc.stdout.strip().splitlines() or ["no output"])[-1]
        raise BenchError(f"katago benchmark failed (exit {proc.returncode}): {last}")
    label = f"{version} benchmark, {backend}" + (f" [{device}]" if device else "")
    return KataGoResult(label, version, backend, device, visits, positions, rows)


# ----------------------------------------------------------------------------------------------------------
# The benchmark


def _flops_model(model_path: Path | None, source_name: str | None) -> Any:
    """The net's description for FLOP counting: ``--model``, else the artifact's source net if cached."""
    from katadeploy.model.format import load_model

    if model_path is not None:
        return load_model(model_path)
    if source_name:
        from katadeploy.model import hub

        entry = hub.find_entry(source_name)
        if entry is not None and hub.cached_path(entry).is_file():
            return load_model(hub.cached_path(entry))
    return None


def _artifact_result(payload: dict[str, Any], model: Any) -> ArtifactResult:
    from katadeploy.model.stats import flops

    fl = flops(model, payload["nn_x"], payload["nn_y"]) if model is not None else None
    rows = []
    for b in payload["batches"]:
        lat = b["latency_ms"]
        rows.append(
            BatchResult(
                batch=b["batch"], calls=b["calls"], evals=b["evals"], seconds=b["seconds"],
                evals_per_s=b["evals_per_s"], p50_ms=lat["p50"], p95_ms=lat["p95"], p99_ms=lat["p99"],
                gflops_per_s=fl * b["evals_per_s"] / 1e9 if fl is not None else None,
                inflight=int(b.get("inflight", 1)),
            )
        )  # fmt: skip
    return ArtifactResult(
        artifact=payload["artifact"], name=payload["name"], target=payload["target"],
        precision=payload["precision"], evaluator=payload["evaluator"], nn_x=payload["nn_x"],
        nn_y=payload["nn_y"],
        exact=payload["exact"], fixed_batch=payload["fixed_batch"], threads=payload["threads"],
        load_seconds=payload["load_seconds"], base_rss_mb=payload["base_rss_mb"],
        peak_rss_mb=payload["peak_rss_mb"], flops_per_eval=fl, batches=rows,
        int8_mac_fraction=payload.get("int8_mac_fraction"),
        onnxruntime_cpu_fraction=payload.get("onnxruntime_cpu_fraction"),
    )  # fmt: skip


def run_nn_bench(
    artifacts: list[str],
    *,
    model_path: str | Path | None = None,
    batches: list[int] | tuple[int, ...] = DEFAULT_BATCHES,
    seconds: float = DEFAULT_SECONDS,
    warmup: float | None = None,
    threads: int | None = None,
    nn_size: int = 19,
    timeout: float = WORKER_TIMEOUT_S,
    katago: bool = False,
    katago_binary: Any = None,
    katago_visits: int = KATAGO_VISITS,
    katago_threads: list[int] | None = None,
    inflight: int | str | list[int | str] = 1,
    baselines: list[Baseline] | None = None,
    progress: bool = True,
) -> NNBenchResult:
    from katadeploy.runtime.loader import is_torch

    if not artifacts:
        raise BenchError("bench nn: no artifacts given")
    batches = list(batches)
    if not batches or min(batches) < 1:
        raise BenchError("bench nn: batch sizes must be positive")
    if seconds <= 0:
        raise BenchError("bench nn: --seconds must be positive")
    modes = list(inflight) if isinstance(inflight, (list, tuple)) else [inflight]
    for m in modes:
        if m != "auto" and (not isinstance(m, int) or isinstance(m, bool) or m < 1):
            raise BenchError(f"bench nn: --inflight takes positive integers or auto, not {m!r}")
    if not modes:
        raise BenchError("bench nn: --inflight needs at least one value")
    # async modes first: an artifact without an async path reports inflight 1 there and is not run again
    modes = sorted(dict.fromkeys(modes), key=lambda m: m == 1)
    if any(is_torch(a) for a in artifacts) and model_path is None:
        raise BenchError("bench nn: the torch pseudo-artifact needs --model")
    if katago and model_path is None:
        raise BenchError("bench nn: --katago needs --model (the net KataGo should load)")
    for a in artifacts:
        if not is_torch(a) and not Path(a).exists():
            raise BenchError(f"bench nn: {a}: no such artifact")
    warm = min(1.0, seconds / 5) if warmup is None else warmup
    mpath = Path(model_path) if model_path is not None else None
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    t0 = time.perf_counter()
    results: list[ArtifactResult] = []
    cached_models: dict[str | None, Any] = {}
    with Progress(len(artifacts) * len(batches) * len(modes), "bench nn", quiet=not progress) as bar:
        for a in artifacts:
            done: set[int] = set()
            for mode in modes:
                if mode == 1 and 1 in done:
                    bar.advance(len(batches))
                    continue
                payload = run_worker(
                    a, model_path=mpath, batches=batches, seconds=seconds, warmup=warm, threads=threads,
                    nn_size=nn_size, timeout=timeout, on_batch=lambda: bar.advance(1), inflight=mode,
                )  # fmt: skip
                got = max((int(b.get("inflight", 1)) for b in payload["batches"]), default=1)
                if got in done:
                    continue
                done.add(got)
                key = None if mpath is not None else payload.get("source")
                if key not in cached_models:
                    cached_models[key] = _flops_model(mpath, payload.get("source"))
                results.append(_artifact_result(payload, cached_models[key]))
    notes = []
    if any(r.flops_per_eval is None for r in results):
        notes.append("GFLOP/s needs the net: pass --model (or pull the artifact's source net)")
    kg_result = None
    if katago:
        assert mpath is not None
        if progress:
            print("katadeploy: running katago benchmark on the same net...", file=sys.stderr, flush=True)
        kg_result = run_katago_benchmark(
            mpath,
            list(katago_threads or batches),
            binary=katago_binary,
            visits=katago_visits,
            progress=progress,
        )
    name = None
    if mpath is not None:
        name = mpath.name
    return NNBenchResult(
        model=name, seconds=seconds, batches=batches, threads=threads, artifacts=results, katago=kg_result,
        baselines=list(baselines or []), started_at=started, wall_seconds=time.perf_counter() - t0, notes=notes,
    )  # fmt: skip
