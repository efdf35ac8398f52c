"""Measure katadeploy's search against the real KataGo: same net, same config, same positions.

Contract: ``python -m katadeploy.search.fidelity --visits 100 [--limit N] [--out DIR]`` runs the 19x19 positions of
``shared/oracle/positions.jsonl`` through ``katago analysis`` (the installed v1.18.1, OpenCL FP32) and through
``katadeploy analysis``, both driven by :class:`katadeploy.engine.AnalysisEngine`, with one search thread, a fixed
symmetry (``nnRandomize = false``), no wide root noise, and in both engines graph search and subtree value bias
(which this port lacks) and root symmetry pruning switched off (``--katago-defaults`` leaves subtree value bias and
root symmetry pruning at KataGo's defaults instead). It writes ``fidelity.json`` (per position) and
``fidelity.md`` (summary): best-move agreement, p50/p90/max of the root winrate and scoreLead differences (Black's
view), the total variation distance between the two root visit distributions, and both engines' visits/s.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from katadeploy.search.commands import analysis_argv

SHARED = Path(os.environ.get("KATADEPLOY_SHARED", Path(__file__).resolve().parents[3] / "shared"))
NET = "g170-b6c96-s175395328-d26788732.bin.gz"

CONFIG = {
    "logToStderr": "true",
    "reportAnalysisWinratesAs": "BLACK",
    "numAnalysisThreads": 1,
    "numSearchThreads": 1,
    "nnMaxBatchSize": 1,
    "nnRandomize": "false",
    "wideRootNoise": 0.0,
    "useGraphSearch": "false",
    "subtreeValueBiasFactor": 0.0,
    "rootSymmetryPruning": "false",
    "openclUseFP16": "false",
    "nnCacheSizePowerOfTwo": 18,
}


def write_config(path: Path, visits: int, *, katago_defaults: bool = False, **extra: Any) -> Path:
    keys = {**CONFIG, "maxVisits": visits, **extra}
    if katago_defaults:  # KataGo's own analysis defaults for everything this port implements
        for k in ("subtreeValueBiasFactor", "rootSymmetryPruning"):
            keys.pop(k)
    path.write_text("".join(f"{k} = {v}\n" for k, v in keys.items()), encoding="utf-8")
    return path


def load_positions(shared: Path, limit: int | None) -> list[dict[str, Any]]:
    rows = [
        json.loads(line) for line in (shared / "oracle" / "positions.jsonl").read_text().splitlines() if line
    ]
    rows = [r for r in rows if r["boardXSize"] == 19 and r["boardYSize"] == 19]
    return rows[:limit] if limit else rows


def run_engine(argv: list[str], env: dict[str, str] | None, queries: list[dict[str, Any]], timeout: float):
    from katadeploy.engine import AnalysisEngine

    out = []
    with AnalysisEngine(argv, env=env, start_timeout=1800.0) as eng:
        eng.analyze({**queries[0], "id": "warmup", "maxVisits": 2}, timeout=timeout)
        eng.clear_cache()
        t0 = time.perf_counter()
        for q in queries:
            t = time.perf_counter()
            r = eng.analyze(q, timeout=timeout)
            out.append((r.raw, time.perf_counter() - t))
        total = time.perf_counter() - t0
    return out, total


def tvd(a: dict[str, Any], b: dict[str, Any]) -> float:
    va = {m["move"]: m["visits"] for m in a["moveInfos"]}
    vb = {m["move"]: m["visits"] for m in b["moveInfos"]}
    sa, sb = sum(va.values()) or 1, sum(vb.values()) or 1
    return 0.5 * sum(abs(va.get(k, 0) / sa - vb.get(k, 0) / sb) for k in set(va) | set(vb))


def compare(kg: list, ours: list, positions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for pos, (a, ta), (b, tb) in zip(positions, kg, ours):
        ra, rb = a["rootInfo"], b["rootInfo"]
        rows.append({
            "id": pos["id"],
            "katago_best": a["moveInfos"][0]["move"], "ours_best": b["moveInfos"][0]["move"],
            "winrate_diff": abs(ra["winrate"] - rb["winrate"]), "lead_diff": abs(ra["scoreLead"] - rb["scoreLead"]),
            "raw_winrate_diff": abs(ra["rawWinrate"] - rb["rawWinrate"]),
            "tvd": tvd(a, b), "katago_visits": ra["visits"], "ours_visits": rb["visits"],
            "katago_seconds": ta, "ours_seconds": tb,
        })  # fmt: skip
    return rows


def summarize(rows: list[dict[str, Any]], visits: int, kg_total: float, ours_total: float) -> dict[str, Any]:
    def q(key: str, p: float) -> float:
        return float(np.percentile([r[key] for r in rows], p))

    return {
        "positions": len(rows),
        "visits": visits,
        "best_move_agreement": sum(r["katago_best"] == r["ours_best"] for r in rows) / len(rows),
        "winrate_diff_p50": q("winrate_diff", 50), "winrate_diff_p90": q("winrate_diff", 90),
        "winrate_diff_max": q("winrate_diff", 100),
        "lead_diff_p50": q("lead_diff", 50), "lead_diff_p90": q("lead_diff", 90), "lead_diff_max": q("lead_diff", 100),
        "raw_winrate_diff_max": q("raw_winrate_diff", 100),
        "tvd_mean": float(np.mean([r["tvd"] for r in rows])), "tvd_p90": q("tvd", 90),
        "katago_visits_per_s": sum(r["katago_visits"] for r in rows) / kg_total,
        "ours_visits_per_s": sum(r["ours_visits"] for r in rows) / ours_total,
    }  # fmt: skip


def measure_overhead(
    model: Path, positions: list[dict[str, Any]], visits: int, threads: int = 1
) -> dict[str, float]:
    """In-process: playouts/s and non-NN time per playout (everything but the evaluator call) on ``positions``."""
    from katadeploy.go.position import position_from_query
    from katadeploy.model.format import load_model
    from katadeploy.runtime.torch_runtime import TorchEvaluator
    from katadeploy.search.batcher import NNBatcher
    from katadeploy.search.nneval import NNEvaluator, NNSettings
    from katadeploy.search.params import SearchParams
    from katadeploy.search.scorevalue import warm_up
    from katadeploy.search.search import Search

    warm_up()
    desc = load_model(model)
    batcher = NNBatcher(TorchEvaluator(desc, threads=threads), 16)
    nneval = NNEvaluator(batcher, desc, NNSettings(randomize=False))
    params = SearchParams(wide_root_noise=0.0)
    total = nn = 0.0
    playouts = 0
    try:
        for p in positions:
            st = position_from_query(p, strict=False)
            nn0 = batcher.nn_seconds
            t0 = time.perf_counter()
            s = Search(nneval, params, st.history, st.next_player)
            s.run(max_visits=visits)
            total += time.perf_counter() - t0
            nn += batcher.nn_seconds - nn0
            playouts += s.playouts
    finally:
        batcher.close()
    return {
        "playouts": playouts, "playouts_per_s": playouts / total, "nn_evals": batcher.rows,
        "nn_seconds": nn, "overhead_ms_per_playout": (total - nn) / playouts * 1000.0,
    }  # fmt: skip


def katago_binary(path: str | None) -> tuple[list[str], dict[str, str] | None, Path]:
    """(argv prefix, env, homeDataDir) of the real KataGo: ``path``, else katadeploy's installed copy."""
    if path is None:
        from katadeploy.engine import katago

        b = katago.locate()
        return b.argv(), b.env, Path(katago.katago_home())
    exe = Path(path)
    env = dict(os.environ)
    libdir = exe.parent.parent / "lib"
    if libdir.is_dir():
        env["LD_LIBRARY_PATH"] = str(libdir) + (
            os.pathsep + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else ""
        )
    return [str(exe)], env, Path.home() / ".cache" / "katadeploy" / "katago-home"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--visits", type=int, default=100)
    ap.add_argument("--limit", type=int, default=None, help="only the first N positions")
    ap.add_argument("--model", default=None, help=f"net (default shared/models/{NET})")
    ap.add_argument("--shared", default=str(SHARED))
    ap.add_argument("--out", default="fidelity-out")
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--katago", default=None, help="KataGo executable (default: katadeploy's installed copy)")
    ap.add_argument(
        "--katago-defaults",
        action="store_true",
        help="leave subtreeValueBiasFactor and rootSymmetryPruning at KataGo's analysis defaults",
    )
    ap.add_argument("--skip-speed", action="store_true", help="skip the in-process speed measurement")
    ap.add_argument("--overhead-only", action="store_true", help="only the in-process speed measurement")
    args = ap.parse_args(argv)
    shared = Path(args.shared)
    model = Path(args.model) if args.model else shared / "models" / NET
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = write_config(out / "fidelity.cfg", args.visits, katago_defaults=args.katago_defaults)
    positions = load_positions(shared, args.limit)
    speed = (
        measure_overhead(model, positions, args.visits) if args.overhead_only or not args.skip_speed else {}
    )
    print(json.dumps({"in_process_speed": speed}))
    (out / "speed.json").write_text(json.dumps(speed, indent=1))
    if args.overhead_only:
        return 0
    queries = [
        {**{k: v for k, v in p.items() if k != "id"}, "id": p["id"], "maxVisits": args.visits}
        for p in positions
    ]
    kg_argv, kg_env, kg_home = katago_binary(args.katago)
    kg_cfg = write_config(
        out / "katago.cfg", args.visits, katago_defaults=args.katago_defaults, homeDataDir=kg_home
    )
    kg_argv = [*kg_argv, "analysis", "-config", str(kg_cfg), "-model", str(model)]
    kg, kg_total = run_engine(kg_argv, kg_env, queries, args.timeout)
    ours_argv = analysis_argv(model, cfg)
    ours, ours_total = run_engine(ours_argv, None, queries, args.timeout)
    rows = compare(kg, ours, positions)
    summary = {
        **summarize(rows, args.visits, kg_total, ours_total),
        **{f"inproc_{k}": v for k, v in speed.items()},
    }
    (out / "fidelity.json").write_text(json.dumps({"summary": summary, "positions": rows}, indent=1))
    md = [
        f"# katadeploy search vs KataGo v1.18.1 ({model.name}, {args.visits} visits, {len(rows)} positions)",
        "",
    ]
    md += [f"- {k}: {v:.4g}" if isinstance(v, float) else f"- {k}: {v}" for k, v in summary.items()]
    (out / "fidelity.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
