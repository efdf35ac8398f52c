"""Issue 11: are a net's trunk activations smaller in openings (so u8 ranges set by busy positions serve them badly)?

For every 3x3 trunk conv of the torch port, a forward pre-hook records each oracle position's mean |input| per
channel; printed for every fourth conv: that mean over the positions of each kind (19x19 real games by move number,
random play), divided by the input's max |x| over all 80 positions (per tensor) and by each channel's max.

Measured 2026-12-07 on g170e-b15c192 (2 Zen 3 cores, seconds): openings (real games, move < 20) use 0.7-0.95x the
20-59 moves' share of the per-tensor range and 0.5-0.85x the later moves'; random-play positions use less than the
openings (0.45-0.8x of theirs) yet carry 3-4x less policy KL in INT8 (oracle_tail.py), so the openings' KL tail is not
a range problem (scripts/reports/int8/groups/README.md).

Usage: python scripts/reports/int8/opening_acts.py [NET]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

from katadeploy.model.source import open_net
from katadeploy.runtime.torch_runtime import TorchEvaluator
from katadeploy.validate.positions import load_validation_set

POSITIONS = Path(__file__).resolve().parents[4] / "shared" / "oracle" / "positions.jsonl"


def main(name: str) -> None:
    model = open_net(name, quiet=True).model
    vs = load_validation_set(None, model)
    ids = [json.loads(line)["id"] for line in POSITIONS.read_text("utf-8").splitlines() if line.strip()]
    moves = np.array([int(p.split("@")[1]) if "@" in p else -1 for p in ids])
    real = np.array([not p.startswith("rand") for p in ids])
    ev = TorchEvaluator(model)
    stats: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}

    def hook(label: str):
        def record(_mod, inp):
            x = inp[0].detach().abs().flatten(2)  # N, C, HW
            stats.setdefault(label, []).append((x.amax(dim=2).numpy(), x.mean(dim=2).numpy()))

        return record

    handles = [
        m.register_forward_pre_hook(hook(n)) for n, m in ev.net.named_modules()
        if isinstance(m, torch.nn.Conv2d) and ".blocks." in f".{n}" and m.kernel_size == (3, 3)
    ]  # fmt: skip
    ev.evaluate(vs.spatial, vs.global_, vs.meta)
    for h in handles:
        h.remove()
    kinds = [("open<20", real & (moves < 20)), ("20-59", real & (moves >= 20) & (moves < 60)),
             ("60+", real & (moves >= 60)), ("random", ~real)]  # fmt: skip
    for label, chunks in list(stats.items())[::4]:
        amax = np.concatenate([c[0] for c in chunks])
        mean = np.concatenate([c[1] for c in chunks])
        ch_max = amax.max(axis=0)
        live = ch_max > 0
        per_tensor = {k: round(float((mean[m] / amax.max()).mean()), 4) for k, m in kinds}
        per_channel = {k: round(float((mean[m][:, live] / ch_max[live]).mean()), 3) for k, m in kinds}
        print(f"{label}: mean|x| / tensor max {per_tensor}; / channel max {per_channel}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "g170e-b15c192")
