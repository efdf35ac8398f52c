"""Time one ranking trial: the switched session (katadeploy.export.int8_switch) against the QDQ and float graphs.

Usage: python switch_speed.py QDQ.onnx FLOAT.onnx [MORE.onnx ...] [--threads 2] [--positions 8]

QDQ.onnx and FLOAT.onnx are an onnx-int8 export's ``int8-smooth-gptq.onnx`` and ``pre-smoothed.onnx`` (its temporary
folder, ``katadeploy-int8-*``, while the export runs). Prints, per graph, the session start and one run of random
19x19 inputs (second run timed), with every switch on (all int8) for the switched graph. Session 34 numbers:
README.md beside this folder.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from katadeploy.export import int8_switch
from katadeploy.export.int8_repair import layer_of


def quantized_layers(qdq: onnx.ModelProto) -> list[str]:
    prod = {o: n for n in qdq.graph.node for o in n.output}
    return sorted({layer_of(n.name) for n in qdq.graph.node if n.op_type in ("Conv", "MatMul", "Gemm")
                   and (p := prod.get(n.input[0])) is not None and p.op_type == "DequantizeLinear"})  # fmt: skip


def time_graph(path: str, threads: int, positions: int) -> tuple[float, float]:
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.log_severity_level = 3
    t0 = time.perf_counter()
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    t1 = time.perf_counter()
    rng = np.random.default_rng(0)
    feed = {}
    for i in sess.get_inputs():
        if i.name.startswith(int8_switch.SWITCH_PREFIX):
            feed[i.name] = np.array(True)
        else:
            shape = [positions if not isinstance(d, int) else d for d in i.shape]
            feed[i.name] = rng.random(shape, dtype=np.float32)
    sess.run(None, feed)
    t2 = time.perf_counter()
    sess.run(None, feed)
    return t1 - t0, time.perf_counter() - t2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("qdq")
    ap.add_argument("float")
    ap.add_argument("more", nargs="*")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--positions", type=int, default=8)
    a = ap.parse_args()
    qdq, flt = onnx.load(a.qdq), onnx.load(a.float)
    layers = quantized_layers(qdq)
    t0 = time.perf_counter()
    switched, _ = int8_switch.switched_graph(qdq, flt, layers)
    built = time.perf_counter() - t0
    print(f"{platform.processor() or platform.machine()}; {len(layers)} layers; switched graph built in {built:.1f} s")
    with tempfile.TemporaryDirectory() as tmp:
        sw = str(Path(tmp) / "switched.onnx")
        onnx.save(switched, sw)
        for path in (*a.more, a.float, a.qdq, sw):
            start, run = time_graph(path, a.threads, a.positions)
            print(f"{Path(path).name}: session {start:.1f} s, run {a.positions} positions {run:.2f} s")


if __name__ == "__main__":
    main()
