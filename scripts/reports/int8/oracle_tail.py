"""Issue 11: where an INT8 graph's error tail sits on the 80 oracle positions (per position, by kind and move number).

KataGo's gate reads p99 and max over the positions; on 80 positions the p99 is the second-worst one, so a graph's
verdict hangs on which positions those are. This compares each graph with torch FP32 one position at a time
(:func:`katadeploy.validate.metrics.compare` on single-position slices, so every number is exactly what the gate
computes for that position) and prints the worst positions of policy KL and score stdev error, then the mean policy
KL over the real-game positions by move number and over the random-play positions.

Measured 2026-12-07 on g170e-b15c192 (scripts/reports/int8/groups/README.md): the policy KL tail is 19x19 real-game
opening positions (DeepZenGo_0022@2, FineArt_0083@11, FineArt_0103@11; moves < 20 carry 3.5x the mid-game mean in the
8-group graph), where the policy is spread over many moves; random-play positions carry the score stdev tail
(rand13_101_17) but 3-4x less policy KL than real ones. The trunk's activations in openings are within ~30% of the
mid-game's, so the opening tail is the head's sensitivity, not a range problem.

Usage: python scripts/reports/int8/oracle_tail.py LABEL=FILE [...] [--net g170e-b15c192]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from katadeploy.model.source import open_net
from katadeploy.runtime.loader import open_evaluator
from katadeploy.runtime.torch_runtime import TorchEvaluator
from katadeploy.validate.metrics import compare
from katadeploy.validate.positions import load_validation_set

POSITIONS = Path(__file__).resolve().parents[4] / "shared" / "oracle" / "positions.jsonl"
MOVE_BUCKETS = ((0, 20), (20, 60), (60, 120), (120, 10_000))


def _one(batch, i: int):
    """Position ``i`` of a RawBatch, as a batch of one."""
    return type(batch)(*[None if v is None else v[i : i + 1] for v in batch])


def per_position(ref, out, vs, model, key: str) -> np.ndarray:
    nra = np.broadcast_to(np.asarray(vs.no_result_allowed), (len(vs.spatial),))
    vals = []
    for i in range(len(vs.spatial)):
        m = compare(_one(ref, i), _one(out, i), vs.legal[i : i + 1], model, no_result_allowed=nra[i : i + 1],
                    on_board=vs.on_board[i : i + 1])  # fmt: skip
        vals.append(float(m.errors[key][0]))
    return np.array(vals)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("graphs", nargs="+", help="LABEL=FILE")
    ap.add_argument("--net", default="g170e-b15c192")
    args = ap.parse_args()
    net = open_net(args.net, quiet=True)
    model = net.model
    vs = load_validation_set(None, model)
    ids = [json.loads(line)["id"] for line in POSITIONS.read_text("utf-8").splitlines() if line.strip()]
    assert len(ids) == len(vs.spatial), "the bundled oracle set and shared/oracle/positions.jsonl differ"
    moves = np.array([int(p.split("@")[1]) if "@" in p else -1 for p in ids])
    real = np.array([not p.startswith("rand") for p in ids])
    ref = TorchEvaluator(model).evaluate(vs.spatial, vs.global_, vs.meta)
    for item in args.graphs:
        label, path = item.split("=", 1)
        out = open_evaluator(path, model=model, model_sha256=net.sha256, threads=2).evaluate(
            vs.spatial, vs.global_, vs.meta
        )
        kl = per_position(ref, out, vs, model, "policy_kl")
        sd = per_position(ref, out, vs, model, "score_stdev")
        print(f"## {label}: mean policy KL {kl.mean():.5f}")
        print("policy KL worst: " + ", ".join(f"{ids[i]} {kl[i]:.4f}" for i in np.argsort(-kl)[:5]))
        print("score stdev worst: " + ", ".join(f"{ids[i]} {sd[i]:.3f}" for i in np.argsort(-sd)[:3]))
        for lo, hi in MOVE_BUCKETS:
            sel = real & (moves >= lo) & (moves < hi)
            if sel.any():
                print(f"real games, moves {lo}-{min(hi, 999)}: n={sel.sum()} mean KL {kl[sel].mean():.5f} max {kl[sel].max():.4f}")
        print(f"random play: n={(~real).sum()} mean KL {kl[~real].mean():.5f} max {kl[~real].max():.4f}")


if __name__ == "__main__":
    main()
