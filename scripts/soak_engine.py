#!/usr/bin/env python3
"""Soak benchmark of the analysis client against the real KataGo: many quick queries, many in flight.

What it does
------------
Starts ``katago analysis`` (the installed v1.18.1 OpenCL binary, katadeploy's minimal config) through
:class:`katadeploy.engine.AnalysisEngine`, sends a warm-up round, then ``--queries`` (default 10,000) queries with
``maxVisits`` 1, keeping at most ``--window`` (default 1,000) in flight, and checks that every query got exactly
one final reply with its own id, turn number and at least one visit (nothing lost, nothing duplicated, no errors,
no restarts). Positions are prefixes of the 60 bundled 19x19 oracle games (4,789 distinct positions, cycled):
in the first round about half the queries need an NN eval and the rest hit KataGo's NN cache; later rounds are
all cache hits, so KataGo answers as fast as it can and the client carries its highest load.

What it reports (stdout; ``--json OUT`` writes the same as JSON)
----------------------------------------------------------------
* queries/s over the soak (wall clock from first submit to last reply) and the peak number in flight;
* client overhead per query = CPU time of *this whole Python process* (main thread building and submitting
  queries, the client's writer/reader threads encoding, parsing and dispatching replies, future callbacks) during
  the soak, divided by the number of queries. It is an upper bound of the client's own cost, measured with
  ``time.process_time()``; KataGo runs in another process and is not included;
* the engine's time per query beside it: wall time per query and KataGo's own CPU time per query (from
  ``/proc/<pid>/stat``), so the client's share is visible;
* latency percentiles (submit -> final reply; dominated by queueing at 1,000 in flight);
* memory: client RSS and live Python objects (after ``gc.collect()``) after the warm-up and after the soak, and
  after a second, equal soak with ``--rounds 2`` (a leak grows each round; a warm-up plateau does not),
  and KataGo's RSS.
Exit code 1 if anything was lost or an invariant failed; the 1 ms/query goal is reported, not enforced.

Usage: python scripts/soak_engine.py [--model M] [--queries 10000] [--window 1000] [--rounds 1]
       [--analysis-threads 8] [--json OUT]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from katadeploy.bench.engine import default_positions
from katadeploy.engine import AnalysisEngine
from katadeploy.engine import katago as kg

REPO = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = (
    Path(os.environ.get("KATADEPLOY_SHARED", REPO.parent / "shared"))
    / "models"
    / "g170-b6c96-s175395328-d26788732.bin.gz"
)
GOAL_MS = 1.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int | str = "self") -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def proc_cpu_s(pid: int) -> float:
    """utime + stime of a process (seconds) from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def make_queries(n: int, visits: int, tag: str) -> list[dict[str, Any]]:
    """``n`` queries: prefixes of the bundled 19x19 games (distinct positions, cycling when exhausted)."""
    games = default_positions(60)
    out: list[dict[str, Any]] = []
    i = 0
    while len(out) < n:
        g = games[i % len(games)]
        cut = (i // len(games)) % (len(g["moves"]) + 1)
        out.append(
            {
                "id": f"{tag}{len(out)}",
                "moves": g["moves"][:cut],
                "initialStones": g.get("initialStones") or [],
                "rules": g["rules"],
                "komi": g["komi"],
                "boardXSize": 19,
                "boardYSize": 19,
                "maxVisits": visits,
            }
        )
        i += 1
    return out


class Soak:
    def __init__(self, engine: AnalysisEngine, window: int):
        self.engine = engine
        self.window = threading.BoundedSemaphore(window)
        self.lock = threading.Lock()
        self.in_flight = 0
        self.peak = 0
        self.done = threading.Event()

    def run(self, queries: list[dict[str, Any]], timeout: float) -> dict[str, Any]:
        n = len(queries)
        replies: list[tuple[str, int, int] | None] = [
            None
        ] * n  # (id, turn, visits): bounded, no reply objects kept
        failures: list[str] = []
        latency = [0.0] * n
        sent_at = [0.0] * n
        remaining = [n]
        self.done.clear()

        def on_done(idx: int, fut: Any) -> None:
            latency[idx] = time.perf_counter() - sent_at[idx]
            try:
                resp = fut.result()
                root = resp.root_info
                if replies[idx] is not None:
                    failures.append(f"duplicate reply for {queries[idx]['id']}")
                replies[idx] = (resp.id, resp.turn_number, int(root.visits or 0) if root is not None else 0)
            except BaseException as exc:  # recorded and reported; fails the run
                failures.append(f"{queries[idx]['id']}: {type(exc).__name__}: {exc}")
            with self.lock:
                self.in_flight -= 1
                remaining[0] -= 1
                if remaining[0] == 0:
                    self.done.set()
            self.window.release()

        cpu0, t0 = time.process_time(), time.perf_counter()
        eng_cpu0 = proc_cpu_s(self.engine.pid) if self.engine.pid else float("nan")
        for idx, q in enumerate(queries):
            if not self.window.acquire(timeout=timeout):
                failures.append(f"window never freed while sending {q['id']}")
                break
            with self.lock:
                self.in_flight += 1
                self.peak = max(self.peak, self.in_flight)
            sent_at[idx] = time.perf_counter()
            handle = self.engine.submit(q)
            (fut,) = handle.futures.values()
            fut.add_done_callback(lambda f, i=idx: on_done(i, f))
        if not self.done.wait(timeout):
            failures.append(f"timed out with {remaining[0]} replies missing")
        wall = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        eng_cpu = (proc_cpu_s(self.engine.pid) - eng_cpu0) if self.engine.pid else float("nan")

        lost = [queries[i]["id"] for i, r in enumerate(replies) if r is None]
        wrong = [
            queries[i]["id"]
            for i, r in enumerate(replies)
            if r is not None and (r[0] != queries[i]["id"] or r[1] != len(queries[i]["moves"]) or r[2] < 1)
        ]
        lat_ms = sorted(x * 1000 for x in latency)
        return {
            "queries": n,
            "replies": n - len(lost),
            "lost": len(lost),
            "wrong": len(wrong),
            "failures": failures[:20],
            "failure_count": len(failures),
            "wall_s": wall,
            "queries_per_s": n / wall if wall > 0 else float("nan"),
            "peak_in_flight": self.peak,
            "client_cpu_s": cpu,
            "client_cpu_ms_per_query": 1000 * cpu / n,
            "engine_cpu_s": eng_cpu,
            "engine_cpu_ms_per_query": 1000 * eng_cpu / n,
            "engine_wall_ms_per_query": 1000 * wall / n,
            "latency_ms": {
                "p50": lat_ms[n // 2],
                "p90": lat_ms[int(n * 0.9)],
                "p99": lat_ms[int(n * 0.99)],
                "max": lat_ms[-1],
                "mean": statistics.fmean(lat_ms),
            },
            "lost_ids": lost[:10],
            "wrong_ids": wrong[:10],
        }


def memory_snapshot(engine: AnalysisEngine) -> dict[str, float]:
    gc.collect()
    return {
        "client_rss_mb": rss_mb(),
        "python_objects": float(len(gc.get_objects())),
        "engine_rss_mb": rss_mb(engine.pid) if engine.pid else float("nan"),
        "client_pending": float(engine.pending_count),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    ap.add_argument("--queries", type=int, default=10_000)
    ap.add_argument("--window", type=int, default=1_000, help="max queries in flight")
    ap.add_argument("--warmup", type=int, default=1_000)
    ap.add_argument("--rounds", type=int, default=1, help="soak rounds (memory is compared between rounds)")
    ap.add_argument("--visits", type=int, default=1)
    ap.add_argument("--analysis-threads", type=int, default=8)
    ap.add_argument("--batch", type=int, default=16, help="nnMaxBatchSize")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds per round")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.queries < 1 or args.window < 1 or args.rounds < 1:
        ap.error("--queries, --window and --rounds must be >= 1")

    binary = kg.locate()
    kg.ensure_tuning(args.model, binary=binary, progress=True)
    report: dict[str, Any] = {
        "katago": binary.version(),
        "model": str(args.model),
        "queries_per_round": args.queries,
        "window": args.window,
        "visits": args.visits,
        "analysis_threads": args.analysis_threads,
        "nn_max_batch": args.batch,
        "cpu_count": os.cpu_count(),
        "goal_client_ms_per_query": GOAL_MS,
        "method": "client overhead = process CPU time of the client process / queries (upper bound; includes "
        "building the queries); engine time = wall/queries and KataGo CPU (/proc) / queries",
    }
    ok = True
    with tempfile.TemporaryDirectory(prefix="katadeploy-soak-") as tmp:
        cfg = kg.write_analysis_config(
            Path(tmp) / "soak.cfg",
            numAnalysisThreads=args.analysis_threads,
            numSearchThreads=1,
            nnMaxBatchSize=args.batch,
            logErrorsAndWarnings=True,
        )
        argv_ = binary.argv("analysis", "-config", cfg, "-model", args.model)
        with AnalysisEngine(argv_, env=binary.env, start_timeout=1800, max_restarts=0) as engine:
            soak = Soak(engine, args.window)
            warm = soak.run(make_queries(args.warmup, args.visits, "w"), args.timeout)
            report["warmup"] = {
                k: warm[k] for k in ("queries", "lost", "wrong", "queries_per_s", "failure_count")
            }
            ok &= warm["lost"] == 0 and warm["wrong"] == 0 and warm["failure_count"] == 0
            report["memory"] = [dict(memory_snapshot(engine), after="warmup")]
            report["rounds"] = []
            for r in range(args.rounds):
                soak.peak = 0
                queries = make_queries(args.queries, args.visits, f"r{r}-")
                res = soak.run(queries, args.timeout)
                del queries
                report["rounds"].append(res)
                report["memory"].append(dict(memory_snapshot(engine), after=f"round {r + 1}"))
                ok &= res["lost"] == 0 and res["wrong"] == 0 and res["failure_count"] == 0
            stats = engine.stats.as_dict()
            report["client_stats"] = stats
            ok &= stats["restarts"] == 0 and stats["junk_lines"] == 0 and stats["unmatched"] == 0
            ok &= engine.pending_count == 0

    for i, res in enumerate(report["rounds"]):
        print(
            f"round {i + 1}: {res['queries']} queries, {res['replies']} replies, lost {res['lost']}, wrong {res['wrong']}, "
            f"failures {res['failure_count']}, peak in flight {res['peak_in_flight']}"
        )
        print(
            f"  {res['queries_per_s']:.1f} queries/s; engine wall {res['engine_wall_ms_per_query']:.3f} ms/query, "
            f"KataGo CPU {res['engine_cpu_ms_per_query']:.3f} ms/query"
        )
        verdict = "meets" if res["client_cpu_ms_per_query"] <= GOAL_MS else "MISSES"
        print(
            f"  client overhead (process CPU) {res['client_cpu_ms_per_query']:.3f} ms/query "
            f"({verdict} the {GOAL_MS:g} ms goal; {100 * res['client_cpu_ms_per_query'] / res['engine_wall_ms_per_query']:.1f}% "
            f"of engine wall time per query)"
        )
        lat = res["latency_ms"]
        print(
            f"  latency ms: p50 {lat['p50']:.1f} p90 {lat['p90']:.1f} p99 {lat['p99']:.1f} max {lat['max']:.1f}"
        )
        for f in res["failures"]:
            print(f"  FAILURE: {f}")
    for snap in report["memory"]:
        print(
            f"memory after {snap['after']}: client RSS {snap['client_rss_mb']:.1f} MB, "
            f"{int(snap['python_objects'])} Python objects, pending {int(snap['client_pending'])}, "
            f"KataGo RSS {snap['engine_rss_mb']:.1f} MB"
        )
    print(f"client stats: {report['client_stats']}")
    print("OK: nothing lost" if ok else "FAILED")
    report["ok"] = ok
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
