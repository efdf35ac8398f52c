"""Issue 11: what splitting each conv into activation groups costs in speed, side by side in one process.

Each ONNX file given (FP32, and onnx-int8 QDQ graphs with ``int8_act_groups`` 1 and K) is read by OpenVINO's ONNX
frontend (QuantizeLinear/DequantizeLinear -> FakeQuantize -> u8 x s8 kernels on the CPU plugin, the path
``openvino-int8 --option int8_source=onnx-qdq`` takes) and by onnxruntime's CPU provider, and timed at one batch size
on random-free real inputs (the first positions of the bundled oracle set, repeated). The runs are interleaved
round by round, so machine noise spreads over every graph alike. Prints a Markdown table (evals/s, median of the
rounds) and writes ``groups/group_speed-<tag>.json`` beside this script.

Usage: python scripts/reports/int8/group_speed.py LABEL=FILE.onnx [...] [--batch 8] [--seconds 3] [--rounds 5]
[--threads 2] [--tag NAME]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from katadeploy.model.source import open_net
from katadeploy.runtime.cpu import cpu_name, int8_isa
from katadeploy.validate.positions import load_validation_set


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("graphs", nargs="+", help="LABEL=FILE.onnx")
    ap.add_argument("--net", default="g170e-b15c192")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tag", default="b15")
    args = ap.parse_args()
    import onnxruntime as ort
    import openvino as ov

    model = open_net(args.net).model
    vset = load_validation_set(None, model)
    idx = np.arange(args.batch) % len(vset.spatial)
    feed = {"spatial": vset.spatial[idx], "global": vset.global_[idx]}
    core = ov.Core()
    runners = {}
    for item in args.graphs:
        label, path = item.split("=", 1)
        om = ov.convert_model(path)
        cfg = {"INFERENCE_NUM_THREADS": args.threads, "INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"}
        compiled = core.compile_model(om, "CPU", cfg)
        req = compiled.create_infer_request()
        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads = args.threads, 1
        sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        runners[f"{label} openvino"] = lambda req=req: req.infer(feed)
        runners[f"{label} onnxruntime"] = lambda sess=sess: sess.run(None, feed)
    for fn in runners.values():  # warm-up
        fn()
    rates: dict[str, list[float]] = {k: [] for k in runners}
    for r in range(args.rounds):
        for name, fn in runners.items():
            n, t0 = 0, time.perf_counter()
            while (el := time.perf_counter() - t0) < args.seconds:
                fn()
                n += 1
            rates[name].append(n * args.batch / el)
        print(f"round {r + 1}/{args.rounds}", flush=True)
    out = {
        "net": args.net, "batch": args.batch, "threads": args.threads, "seconds": args.seconds, "rounds": args.rounds,
        "cpu": cpu_name(), "int8_isa": int8_isa(), "openvino": ov.__version__, "onnxruntime": ort.__version__,
        "evals_per_s": {k: round(statistics.median(v), 1) for k, v in rates.items()}, "all": rates,
    }  # fmt: skip
    print(f"| graph | evals/s (batch {args.batch}, {args.threads} threads, median of {args.rounds}) |\n|---|---|")
    for k, v in out["evals_per_s"].items():
        print(f"| {k} | {v} |")
    path = Path(__file__).parent / "groups" / f"group_speed-{args.tag}.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path} ({out['cpu']}, int8 ISA {out['int8_isa']})")


if __name__ == "__main__":
    main()
