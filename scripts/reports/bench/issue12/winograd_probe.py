"""Probe: can a Winograd F(4x4,3x3) convolution written in ONNX ops beat OpenVINO's direct convolution on CPU?

KataGo's Eigen backend convolves 3x3 layers with Winograd F(4x4,3x3) (6x6 input tiles, ``eigenbackend.cpp``): 36
multiplies per 4x4 output tile instead of 144, 3.6x fewer on a 19x19 board. openvino-fp32 convolves directly, so the
NN-only ratio to Eigen is bounded by how close OpenVINO's direct kernels already run to the FMA peak. This script
builds one b18c384nbt-sized 3x3 layer (192 -> 192 channels, 19x19, batch 8) four ways, checks each against a float64
convolution, and times it in OpenVINO (2 threads, f32, latency) and onnxruntime (2 threads):

* ``direct``: the plain ``Conv``;
* ``conv``: Winograd with the input transform as one 1-channel stride-4 ``Conv`` (B^T d B as 36 6x6 filters), the
  36 tile GEMMs as one batched ``MatMul`` [36, O, I] x [36, I, N*T], the output transform as a ``MatMul`` by A^T(x)A^T;
* ``gconv``: the same with the input transform as a grouped (per-channel) ``Conv``;
* ``slices``: the same with the 36 tile offsets cut by strided slices and transformed by a ``MatMul``.

Run: ``python winograd_probe.py [CHANNELS] [BATCH] [--profile]`` (the profile prints OpenVINO's per-node times).
Measured 2026-12-06 on 2 cores of an AMD EPYC Zen 3 (AVX2), the match paused: ``winograd_probe.txt``. Best
Winograd (openvino, 1-channel conv transform) 14.3 ms against 16.4 direct in openvino and 13.1 direct in onnxruntime:
at most 1.14x, far from the 3.6x fewer multiplies, because the 36 small tile GEMMs run at half the direct kernel's
rate and the transforms and transposes cost as much again.
"""

from __future__ import annotations

import collections
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

BT = torch.tensor([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0], [0, -2, -1, 2, 1, 0],
                   [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], dtype=torch.float64)  # fmt: skip
G = torch.tensor([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6], [1 / 24, 1 / 12, 1 / 6],
                  [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]], dtype=torch.float64)  # fmt: skip
AT = torch.tensor([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
                  dtype=torch.float64)  # fmt: skip


class Winograd(torch.nn.Module):
    def __init__(self, conv: torch.nn.Conv2d, size: int, variant: str):
        super().__init__()
        w = conv.weight.detach().double()  # [O, I, 3, 3]
        out_ch, in_ch = w.shape[:2]
        self.register_buffer(
            "U", torch.einsum("ak,oikl,bl->aboi", G, w, G).reshape(36, out_ch, in_ch).float()
        )
        self.register_buffer("BB", torch.kron(BT, BT).float())  # [36, 36]
        self.register_buffer("AA", torch.kron(AT, AT).float())  # [16, 36]
        self.register_buffer("WB", self.BB.reshape(36, 1, 6, 6).clone())
        self.register_buffer("WG", self.WB.repeat(in_ch, 1, 1, 1))
        self.register_buffer("bias", conv.bias.detach().reshape(1, out_ch, 1, 1).clone())
        self.size, self.out_ch, self.tiles, self.variant = size, out_ch, (size + 3) // 4, variant

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c, t = x.shape[1], self.tiles
        xp = F.pad(x, (1, 4 * t + 1 - self.size, 1, 4 * t + 1 - self.size))
        if self.variant == "slices":
            tiles = torch.stack([xp[:, :, i : i + 4 * t - 3 : 4, j : j + 4 * t - 3 : 4]
                                 for i in range(6) for j in range(6)])  # fmt: skip
            v = torch.matmul(self.BB, tiles.reshape(36, -1)).reshape(36, -1, c, t * t).permute(0, 2, 1, 3)
        elif self.variant == "gconv":
            v = F.conv2d(xp, self.WG, stride=4, groups=c).reshape(-1, c, 36, t * t).permute(2, 1, 0, 3)
        else:
            v = F.conv2d(xp.reshape(-1, 1, 4 * t + 2, 4 * t + 2), self.WB, stride=4)
            v = v.reshape(-1, c, 36, t * t).permute(2, 1, 0, 3)
        m = torch.matmul(self.U, v.reshape(36, c, -1))  # [36, O, N*T]
        y = torch.matmul(self.AA, m.reshape(36, -1)).reshape(4, 4, self.out_ch, -1, t, t)
        y = y.permute(3, 2, 4, 0, 5, 1).reshape(-1, self.out_ch, 4 * t, 4 * t)[:, :, : self.size, : self.size]
        return y + self.bias


VARIANTS = ("direct", "conv", "gconv", "slices")
ROUNDS = 7


def _time(fn, seconds: float) -> float:
    fn()
    start, n = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        fn()
        n += 1
    return (time.perf_counter() - start) / n * 1e3


def main() -> None:
    import onnxruntime as ort
    import openvino as ov

    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    channels, batch = (int(args[0]) if args else 192), (int(args[1]) if len(args) > 1 else 8)
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(channels, channels, 3, padding=1)
    x = torch.randn(batch, channels, 19, 19)
    with torch.no_grad():
        ref = F.conv2d(x.double(), conv.weight.double(), conv.bias.double(), padding=1).numpy()
    macs = channels * channels * 9 * 19 * 19 * batch
    core, tmp = ov.Core(), Path(tempfile.mkdtemp())
    print(f"3x3 conv {channels}->{channels}, 19x19, batch {batch}: {macs / 1e6:.0f}M MACs direct")
    xn = x.numpy()
    runners: dict[str, dict] = {}
    for name in VARIANTS:
        mod = conv if name == "direct" else Winograd(conv, 19, name)
        path = tmp / f"{name}.onnx"
        torch.onnx.export(mod, (x,), str(path), input_names=["x"], output_names=["y"], opset_version=17,
                          dynamic_axes={"x": {0: "N"}, "y": {0: "N"}}, dynamo=False)  # fmt: skip
        cfg = {"INFERENCE_NUM_THREADS": 2, "INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY",
               "PERF_COUNT": "--profile" in sys.argv}  # fmt: skip
        req = core.compile_model(str(path), "CPU", cfg).create_infer_request()
        req.infer({0: xn})
        so = ort.SessionOptions()
        so.intra_op_num_threads = 2
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        err = float(np.abs(req.get_output_tensor(0).data - ref).max())
        runners[name] = {"ov": (lambda r=req: r.infer({0: xn})), "ort": (lambda s=sess: s.run(None, {"x": xn})),
                         "err": err, "req": req, "times": {"ov": [], "ort": []}}  # fmt: skip
    # Interleaved rounds, medians: this box's speed drifts by 2x between minutes, so variants are compared
    # round by round rather than one after the other.
    for _ in range(ROUNDS):
        for r in runners.values():
            for rt in ("ov", "ort"):
                r["times"][rt].append(_time(r[rt], 0.7))
    for name, r in runners.items():
        ov_ms, ort_ms = (float(np.median(r["times"][k])) for k in ("ov", "ort"))
        print(f"{name:7s} max err vs float64 {r['err']:.1e}  openvino {ov_ms:6.2f} ms ({macs / ov_ms / 1e6:5.1f} "
              f"direct-GMAC/s)  onnxruntime {ort_ms:6.2f} ms  (medians of {ROUNDS} interleaved rounds)")  # fmt: skip
        if "--profile" in sys.argv:
            tot: collections.Counter[str] = collections.Counter()
            for _ in range(10):
                r["req"].infer({0: xn})
                for p in r["req"].get_profiling_info():
                    tot[f"{p.node_type} ({p.exec_type})"] += p.real_time.total_seconds() * 1e2
            print("   " + "; ".join(f"{k} {v:.2f} ms" for k, v in tot.most_common(6)))


if __name__ == "__main__":
    main()
