"""The child process of ``katadeploy bench nn``: time one artifact at every batch size, report JSON on stdout.

Contract: ``python -m katadeploy.bench.nn_worker --artifact A [--model M] --batches 1,8,32 --seconds S
[--warmup S] [--threads N] [--nn-size N] [--inflight K|auto]`` opens ``A`` (an artifact with its sidecar, or
``torch``, which needs ``--model``; with ``--model`` an artifact from another net is refused), builds real
encoded positions (the bundled ``oracle80.jsonl`` positions that fit the tensor, full-board ones first, cycled
through board symmetries; zero metadata rows for human-SL inputs), and per batch size warms up (at least one
call and ``--warmup`` seconds) and then calls ``evaluate`` until ``--seconds`` have passed (at least 3 calls),
timing every call. With ``--inflight K`` (K > 1) one call is ``evaluate_many`` of K batches kept in flight
together (the search-style asynchronous path; ``auto`` = the evaluator's number of streams); an evaluator
without ``evaluate_many`` runs sync (inflight 1, said in the JSON). It prints exactly one JSON object on
stdout: artifact facts, ``base_rss_mb`` (peak resident memory before the runtime was imported and the artifact
loaded: interpreter, numpy, the parsed net), ``peak_rss_mb`` (this process's ``ru_maxrss`` at the end) and per
batch the number of calls and evals, seconds, evals/s and latency percentiles per call in ms. After each batch
size it writes ``KDBENCH batch-done <b>`` to stderr so the parent can show progress. A bad input prints
``{"error": "..."}`` and exits 2; anything else is a crash (non-zero exit, traceback on stderr). It never
imports torch unless the artifact is ``torch``, so peak RSS is the artifact's runtime's own.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from katadeploy.argtypes import batch_list, inflight_arg
from katadeploy.artifact import onnxruntime_cpu_fraction
from katadeploy.errors import KatadeployError

PROGRESS_TAG = "KDBENCH"
MIN_CALLS = 3


def rss_mb() -> float:
    """This process's peak resident set size so far in MiB (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024


def bench_inputs(
    batch: int, nn_x: int, nn_y: int, *, meta_channels: int = 0, prefer_pass_alive: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``batch`` real encoded positions for an ``nn_x`` x ``nn_y`` tensor (numpy only, no torch)."""
    from katadeploy.data.bundled import bundled_queries
    from katadeploy.go.features import encode_batch
    from katadeploy.go.position import position_from_query

    states = [position_from_query(q, max_board_size=max(nn_x, nn_y, 19)) for q in bundled_queries(nn_x, nn_y)]
    if not states:
        raise KatadeployError(f"no bundled position fits a {nn_x}x{nn_y} tensor")
    full = [s for s in states if (s.x_size, s.y_size) == (nn_x, nn_y)] or states
    chosen = [full[i % len(full)] for i in range(batch)]
    spatial, glob = encode_batch(
        ((s.history, s.next_player) for s in chosen), nn_x, nn_y,
        prefer_pass_alive_under_suicide=prefer_pass_alive,
    )  # fmt: skip
    for i in range(batch):  # later repeats of a position get another symmetry (a flip keeps the board valid)
        k = (i // len(full)) % 4
        x = spatial[i]
        if k & 1:
            x = x[:, ::-1, :]
        if k & 2:
            x = x[:, :, ::-1]
        spatial[i] = x
    meta = np.zeros((batch, meta_channels), dtype=np.float32) if meta_channels else None
    return np.ascontiguousarray(spatial), np.ascontiguousarray(glob), meta


def _percentiles_ms(lat: list[float]) -> dict[str, float]:
    a = np.asarray(lat) * 1000.0
    return {
        "p50": float(np.percentile(a, 50)),
        "p95": float(np.percentile(a, 95)),
        "p99": float(np.percentile(a, 99)),
        "mean": float(a.mean()),
        "min": float(a.min()),
    }


def inflight_for(evaluator: Any, requested: str | int) -> int:
    """How many batches one timed call keeps in flight: 1 without ``evaluate_many``; ``auto`` = its streams."""
    if not hasattr(evaluator, "evaluate_many"):
        return 1
    if requested == "auto":
        return max(1, int(getattr(evaluator, "streams", 1)))
    return max(1, int(requested))


def time_batch(
    evaluator: Any, inputs: tuple, seconds: float, warmup: float, inflight: int = 1
) -> dict[str, Any]:
    spatial, glob, meta = inputs
    if inflight > 1:
        batches = [inputs] * inflight

        def call() -> None:
            evaluator.evaluate_many(batches)
    else:

        def call() -> None:
            evaluator.evaluate(spatial, glob, meta)

    t0 = time.perf_counter()
    warm_calls = 0
    while warm_calls < 1 or time.perf_counter() - t0 < warmup:
        call()
        warm_calls += 1
    lat: list[float] = []
    start = time.perf_counter()
    while len(lat) < MIN_CALLS or time.perf_counter() - start < seconds:
        t = time.perf_counter()
        call()
        lat.append(time.perf_counter() - t)
    total = time.perf_counter() - start
    evals = len(spatial) * inflight * len(lat)
    return {
        "batch": len(spatial),
        "inflight": inflight,
        "warmup_calls": warm_calls,
        "calls": len(lat),
        "evals": evals,
        "seconds": total,
        "evals_per_s": evals / total,
        "latency_ms": _percentiles_ms(lat),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    from katadeploy.runtime.loader import is_torch

    base_rss = rss_mb()
    model = None
    sha = None
    if args.model:
        from katadeploy.hashing import sha256_file
        from katadeploy.model.format import load_model

        model = load_model(args.model)
        sha = sha256_file(args.model)
    t_load = time.perf_counter()
    if is_torch(args.artifact):
        if model is None:
            raise KatadeployError("the torch pseudo-artifact needs --model")
        from katadeploy.runtime.torch_runtime import TorchEvaluator

        ev: Any = TorchEvaluator(model, threads=args.threads)
        info = {
            "target": "torch-fp32", "format": "torch", "precision": "fp32", "nn_x": args.nn_size,
            "nn_y": args.nn_size, "exact": False, "fixed_batch": None, "source": model.name,
        }  # fmt: skip
        meta_ch = model.num_meta_channels if model.meta_encoder_version > 0 else 0
        prefer = model.prefer_pass_alive_under_suicide
    else:
        from katadeploy.runtime.loader import open_evaluator

        ev = open_evaluator(args.artifact, model=model, model_sha256=sha, threads=args.threads)
        m = ev.manifest
        info = {
            "target": m.target, "format": m.format, "precision": m.precision, "nn_x": m.nn_x, "nn_y": m.nn_y,
            "exact": m.exact_board, "fixed_batch": m.fixed_batch, "source": m.source.get("name"),
            "int8_mac_fraction": (m.quantization or {}).get("int8_mac_fraction"),
            "onnxruntime_cpu_fraction": onnxruntime_cpu_fraction(m.quantization)
            if m.format == "onnx" and getattr(ev, "device", None) == "cpu" else None,
        }  # fmt: skip
        meta_specs = [t for t in m.inputs if t.name == "meta"]
        meta_ch = int(meta_specs[0].shape[-1]) if meta_specs else 0
        prefer = bool(model.prefer_pass_alive_under_suicide) if model is not None else False
    inflight = inflight_for(ev, args.inflight)
    load_s = time.perf_counter() - t_load
    results = []
    for b in args.batches:
        inputs = bench_inputs(b, info["nn_x"], info["nn_y"], meta_channels=meta_ch, prefer_pass_alive=prefer)
        results.append(time_batch(ev, inputs, args.seconds, args.warmup, inflight))
        print(f"{PROGRESS_TAG} batch-done {b}", file=sys.stderr, flush=True)
    return {
        "artifact": args.artifact,
        "name": "torch" if is_torch(args.artifact) else Path(args.artifact).name,
        "evaluator": getattr(ev, "name", type(ev).__name__),
        **info,
        "threads": args.threads,
        "load_seconds": load_s,
        "base_rss_mb": base_rss,
        "peak_rss_mb": rss_mb(),
        "batches": results,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m katadeploy.bench.nn_worker")
    p.add_argument("--artifact", required=True)
    p.add_argument("--model", default=None, help="path of the net (needed for torch)")
    p.add_argument("--batches", type=batch_list, default=[1])
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--nn-size", type=int, default=19)
    p.add_argument("--inflight", type=inflight_arg, default=1)
    args = p.parse_args(argv)
    try:
        result = run(args)
    except KatadeployError as exc:
        print(json.dumps({"error": str(exc)}))
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
