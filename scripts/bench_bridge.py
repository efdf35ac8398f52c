#!/usr/bin/env python3
"""Benchmark the bridge's speed goals and print Markdown + JSON.

- model load: parse a net and build the torch module (goal for kata1-b18c384nbt: <= 3 s);
- feature encoder: v7 features per 19x19 oracle position (goal: <= 2 ms on average), replay measured separately;
- torch FP32 forward: positions/s at batch 1 and 16 for each net.

Usage: python scripts/bench_bridge.py [--nets kata1-b18c384nbt,...] [--repeats 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from katadeploy.go import features as F
from katadeploy.go.position import load_positions
from katadeploy.model.format import load_model
from katadeploy.model.hub import resolve_model
from katadeploy.model.net import KataGoNet


def bench_load(name: str, repeats: int) -> dict:
    path = resolve_model(name, quiet=True)
    parse, build = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model = load_model(path)
        t1 = time.perf_counter()
        KataGoNet(model)
        t2 = time.perf_counter()
        parse.append(t1 - t0)
        build.append(t2 - t1)
    return {
        "net": name,
        "parse_s": min(parse),
        "build_s": min(build),
        "total_s": min(p + b for p, b in zip(parse, build)),
    }


def bench_encoder(positions: Path, repeats: int) -> dict:
    t0 = time.perf_counter()
    states = load_positions(positions)
    replay_ms = (time.perf_counter() - t0) / len(states) * 1e3
    big = [s for s in states if s.x_size == 19]
    runs = []
    for _ in range(repeats):
        F._LADDER_CACHE.clear()  # measure cold: no ladder results carried between runs
        t = time.perf_counter()
        for s in big:
            F.encode_v7(s.history, s.next_player, 19, 19)
        runs.append((time.perf_counter() - t) / len(big) * 1e3)
    return {"positions": len(big), "encode_ms_best": min(runs), "encode_ms_median": statistics.median(runs),
            "replay_ms_per_position": replay_ms}  # fmt: skip


def bench_forward(name: str, batch: int, seconds: float) -> dict:
    model = load_model(resolve_model(name, quiet=True))
    net = KataGoNet(model)
    sp = torch.zeros(batch, 22, 19, 19)
    sp[:, 0] = 1
    sp[:, 1:3] = (torch.rand(batch, 2, 19, 19) > 0.8).float()
    gl = torch.zeros(batch, 19)
    with torch.inference_mode():
        net(sp, gl)
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            net(sp, gl)
            n += 1
        dt = time.perf_counter() - t0
    return {"net": name, "batch": batch, "evals_per_s": n * batch / dt, "threads": torch.get_num_threads()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nets", default="kata1-b18c384nbt,g170e-b15c192,b10c384h6nbttflrs")
    ap.add_argument(
        "--positions",
        default=str(Path(__file__).resolve().parent.parent / "katadeploy/data/positions/oracle80.jsonl"),
    )
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--forward-seconds", type=float, default=5.0)
    ap.add_argument("--json")
    args = ap.parse_args()
    nets = [n for n in args.nets.split(",") if n]
    report = {"load": [bench_load(n, args.repeats) for n in nets], "encoder": bench_encoder(Path(args.positions), args.repeats),
              "forward": [bench_forward(n, b, args.forward_seconds) for n in nets for b in (1, 16)]}  # fmt: skip
    print("| net | parse s | build s | total s |\n|---|---|---|---|")
    for r in report["load"]:
        print(f"| {r['net']} | {r['parse_s']:.2f} | {r['build_s']:.2f} | {r['total_s']:.2f} |")
    e = report["encoder"]
    print(f"\nv7 encoder: {e['encode_ms_best']:.2f} ms best / {e['encode_ms_median']:.2f} ms median per 19x19 position "
          f"({e['positions']} positions); replay {e['replay_ms_per_position']:.2f} ms per position\n")  # fmt: skip
    print("| net | batch | evals/s (torch FP32) | threads |\n|---|---|---|---|")
    for r in report["forward"]:
        print(f"| {r['net']} | {r['batch']} | {r['evals_per_s']:.1f} | {r['threads']} |")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    sys.exit(main())
