"""``katadeploy bench engine``: playouts per second of the real KataGo, measured through our analysis client.

Contract
--------
:func:`run_engine_bench` mirrors ``katago benchmark`` (``cpp/command/benchmark.cpp`` and
``PlayUtils::benchmarkSearchOnPositionsAndPrint``) but drives ``katago analysis`` through
:class:`katadeploy.engine.AnalysisEngine`:

* For each thread setting T a fresh engine is started with ``numAnalysisThreads = 1``, ``numSearchThreads = T``
  and ``nnMaxBatchSize = max(8, 4*ceil(max(T)/4))`` (``katago benchmark``'s default batch size for the largest
  thread count tested), ``searchFactorAfterOnePass = searchFactorAfterTwoPass = 1``.
* One 5-visit warm-up query runs first (``katago benchmark`` does the same in ``warmStartNNEval``) and is not
  counted.
* Each position: ``clear_cache`` (awaited, so the NN cache starts empty as in ``katago benchmark``), then one
  query with ``maxVisits = V``. ``seconds`` is the wall time from sending the query to receiving its final reply,
  so it includes the client and pipe round trip (about 0.1 ms of client CPU, see ``scripts/soak_engine.py``)
  on top of KataGo's search time; ``visits`` is ``rootInfo.visits`` (``katago benchmark`` uses the root's
  visits too).
* NN evals: the analysis reply does not report them, so the engine runs with ``logSearchInfo = true``; after
  each search KataGo writes its cumulative NN counters (``NN rows: N``, ``NN batches: M``) to stderr *before*
  the reply, and the benchmark reads them from the client's stderr ring. ``nn_evals`` of a setting is the
  difference of the counter after the last position and after the warm-up: the same ``numRowsProcessed``
  counter ``katago benchmark`` divides by time. (Writing that log is a few hundred lines of text per
  position, small next to a search.)
* ``visits_per_s = sum(visits) / sum(seconds)``, ``nn_evals_per_s = nn_evals / sum(seconds)``,
  ``avg_batch_size = nn_evals / nn_batches`` — the same definitions as ``katago benchmark``.
* Positions: ``--sgf`` games are sampled like ``katago benchmark`` (``n`` distinct move numbers per game,
  pseudo-random with a fixed seed, Tromp-Taylor rules, the game's komi); without ``--sgf`` the first ``n``
  19x19 positions of katadeploy's bundled ``data/positions/oracle80.jsonl`` are used.

Results are an :class:`EngineBenchResult` (``to_dict`` for JSON, :func:`format_table` for the text table).
Progress goes to stderr. Every wait has a timeout.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from katadeploy.engine import katago as kg
from katadeploy.errors import KatadeployError
from katadeploy.files import atomic_write_text

DEFAULT_VISITS = 200
DEFAULT_POSITIONS = 10
WARMUP_VISITS = 5
START_TIMEOUT_S = 1800.0  # first run per net may include OpenCL tuning
POSITION_TIMEOUT_S = 900.0
COUNTER_WAIT_S = 5.0

_ROWS = re.compile(r"NN rows: (\d+)")
_BATCHES = re.compile(r"NN batches: (\d+)")

METHOD = (
    "Per thread setting: fresh `katago analysis` (numAnalysisThreads=1, numSearchThreads=T, "
    "nnMaxBatchSize=max(8, roundup4(max threads))), 5-visit warm-up, then per position clear_cache + one "
    "maxVisits=V query. seconds = client wall time query->final reply; visits = rootInfo.visits; nn_evals = delta of "
    "KataGo's cumulative 'NN rows' counter (logSearchInfo=true, read from stderr). visits/s = sum(visits)/sum(seconds), "
    "nnEvals/s = nn_evals/sum(seconds), as in katago benchmark."
)


class BenchError(KatadeployError):
    """Bad benchmark input or a failed benchmark run."""


# ----------------------------------------------------------------------------------------------------------
# Results


@dataclass
class PositionResult:
    id: str
    visits: int
    seconds: float
    nn_evals: int | None


@dataclass
class ThreadResult:
    threads: int
    batch_size: int
    positions: int
    visits: int
    seconds: float
    nn_evals: int | None
    nn_batches: int | None
    per_position: list[PositionResult] = field(default_factory=list)

    @property
    def visits_per_s(self) -> float:
        return self.visits / self.seconds if self.seconds > 0 else float("nan")

    @property
    def nn_evals_per_s(self) -> float | None:
        return self.nn_evals / self.seconds if self.nn_evals is not None and self.seconds > 0 else None

    @property
    def avg_batch_size(self) -> float | None:
        if self.nn_evals is None or not self.nn_batches:
            return None
        return self.nn_evals / self.nn_batches

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["visits_per_s"] = self.visits_per_s
        d["nn_evals_per_s"] = self.nn_evals_per_s
        d["avg_batch_size"] = self.avg_batch_size
        return d


@dataclass
class EngineBenchResult:
    model: str
    katago: str
    katago_version: str
    config: str | None
    visits: int
    position_ids: list[str]
    results: list[ThreadResult]
    opencl: str | None = None
    started_at: str = ""
    wall_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "katadeploy.bench.engine",
            "schema": 1,
            "model": self.model,
            "katago": self.katago,
            "katago_version": self.katago_version,
            "config": self.config,
            "visits": self.visits,
            "positions": self.position_ids,
            "opencl": self.opencl,
            "cpu_count": os.cpu_count(),
            "started_at": self.started_at,
            "wall_seconds": self.wall_seconds,
            "method": METHOD,
            "results": [r.to_dict() for r in self.results],
        }


def format_table(result: EngineBenchResult) -> str:
    """Fixed-width text table, one row per thread setting."""
    head = f"{'threads':>7} {'batch':>5} {'positions':>9} {'visits':>8} {'seconds':>9} {'visits/s':>9} {'nnEvals/s':>9} {'avgBatch':>8}"
    lines = [
        f"model {Path(result.model).name}, {result.katago_version}, {result.visits} visits, "
        f"{len(result.position_ids)} positions",
        head,
        "-" * len(head),
    ]
    for r in result.results:
        nps = "n/a" if r.nn_evals_per_s is None else f"{r.nn_evals_per_s:9.2f}"
        ab = "n/a" if r.avg_batch_size is None else f"{r.avg_batch_size:8.2f}"
        lines.append(
            f"{r.threads:>7} {r.batch_size:>5} {r.positions:>9} {r.visits:>8} {r.seconds:>9.2f} "
            f"{r.visits_per_s:>9.2f} {nps:>9} {ab:>8}"
        )
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------------
# Progress bar (stderr; tiny, no dependency)


class ProgressBar:
    """``label [#####.....] 12/30 0:34``: redrawn in place on a TTY, else one line every 10% (or never)."""

    def __init__(
        self, total: int, label: str = "", stream: TextIO | None = None, enabled: bool = True, width: int = 30
    ):
        self.total = max(1, total)
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.width = width
        self.done = 0
        self.start = time.monotonic()
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last_decile = -1

    def update(self, n: int = 1, note: str = "") -> None:
        self.done = min(self.total, self.done + n)
        if not self.enabled:
            return
        elapsed = time.monotonic() - self.start
        filled = int(self.width * self.done / self.total)
        bar = "#" * filled + "." * (self.width - filled)
        text = f"{self.label} [{bar}] {self.done}/{self.total} {int(elapsed) // 60}:{int(elapsed) % 60:02d} {note}"
        if self._tty:
            self.stream.write("\r" + text.ljust(100)[:150])
            if self.done >= self.total:
                self.stream.write("\n")
        else:
            decile = (10 * self.done) // self.total
            if decile != self._last_decile:
                self._last_decile = decile
                self.stream.write(text.rstrip() + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self._tty and self.done < self.total:
            self.stream.write("\n")
            self.stream.flush()


# ----------------------------------------------------------------------------------------------------------
# Positions


def parse_threads(text: str | Iterable[int]) -> list[int]:
    """``"1,2,4"`` -> ``[1, 2, 4]`` (each 1..1024)."""
    if isinstance(text, str):
        try:
            values = [int(t) for t in text.replace(" ", "").split(",") if t]
        except ValueError:
            raise BenchError(f"--threads must be comma-separated integers, not {text!r}") from None
    else:
        values = [int(t) for t in text]
    if not values or any(not 1 <= t <= 1024 for t in values):
        raise BenchError(f"thread counts must be 1..1024, got {values}")
    return values


def default_positions(n: int) -> list[dict[str, Any]]:
    """The first ``n`` 19x19 positions of the bundled oracle set."""
    from katadeploy.data.bundled import bundled_queries

    out = bundled_queries(19, 19, exact=True)[:n]
    if not out:
        raise BenchError("no bundled positions found (katadeploy/data/positions/oracle80.jsonl)")
    return out


def positions_from_sgf(
    files: Sequence[str | os.PathLike[str]], per_game: int, seed: str = "katadeploy-bench"
) -> list[dict[str, Any]]:
    """``per_game`` positions from each game, sampled like ``katago benchmark`` (Tromp-Taylor, game komi)."""
    from katadeploy.engine.sgf import query_from_sgf

    out: list[dict[str, Any]] = []
    for name in files:
        path = Path(name)
        if not path.is_file():
            raise BenchError(f"SGF file {path} does not exist")
        q = query_from_sgf(path, rules="tromp-taylor", default_komi=7.5).to_dict()
        moves = list(q.get("moves") or [])
        rng = random.Random(f"{seed}|{path.name}")
        candidates = list(range(len(moves) + 1))
        picks = sorted(rng.sample(candidates, min(per_game, len(candidates))))
        for idx in picks:
            pos = {k: v for k, v in q.items() if k not in ("id", "moves", "analyzeTurns")}
            pos["moves"] = moves[:idx]
            pos["id"] = f"{path.name}@{idx}"
            out.append(pos)
    if not out:
        raise BenchError("no positions in the given SGF files")
    return out


# ----------------------------------------------------------------------------------------------------------
# The benchmark


def _read_counter(engine: Any, regex: re.Pattern[str], after: int | None, wait: float) -> int | None:
    """Newest value of a cumulative counter in the engine's stderr that is > ``after`` (or any if None)."""
    deadline = time.monotonic() + wait
    while True:
        for line in reversed(engine.stderr_tail(2000)):
            m = regex.search(line)
            if m:
                value = int(m.group(1))
                if after is None or value > after:
                    return value
                break  # newest counter line is stale: wait for the next one
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.002)


def _search_threads_key(config: Path | None) -> str:
    if config is None:
        return "numSearchThreads"
    text = config.read_text(encoding="utf-8", errors="replace")
    if re.search(r"^\s*numSearchThreadsPerAnalysisThread\s*=", text, re.M):
        return "numSearchThreadsPerAnalysisThread"
    return "numSearchThreads"


def _query(pos: Mapping[str, Any], visits: int, qid: str) -> dict[str, Any]:
    keep = (
        "moves",
        "initialStones",
        "initialPlayer",
        "rules",
        "komi",
        "boardXSize",
        "boardYSize",
        "whiteHandicapBonus",
    )
    q = {k: pos[k] for k in keep if k in pos and pos[k] is not None}
    q.setdefault("moves", [])
    q.setdefault("rules", "tromp-taylor")
    q.setdefault("boardXSize", 19)
    q.setdefault("boardYSize", q["boardXSize"])
    q["id"] = qid
    q["maxVisits"] = int(visits)
    q["includeOwnership"] = False
    q["includePolicy"] = False
    return q


def run_engine_bench(
    model: str | os.PathLike[str],
    *,
    threads: Sequence[int] = (1,),
    visits: int = DEFAULT_VISITS,
    positions: Sequence[Mapping[str, Any]] | None = None,
    config: str | os.PathLike[str] | None = None,
    binary: kg.KataGoBinary | None = None,
    progress: bool = True,
    start_timeout: float = START_TIMEOUT_S,
    position_timeout: float = POSITION_TIMEOUT_S,
    stream: TextIO | None = None,
) -> EngineBenchResult:
    """Run the benchmark (see module contract) and return its results."""
    from katadeploy.engine import AnalysisEngine

    model_path = Path(model)
    if not model_path.is_file():
        raise BenchError(f"model {model_path} does not exist")
    if not 1 <= int(visits) <= 1_000_000:
        raise BenchError(f"--visits must be in 1..1000000, got {visits}")
    thread_list = parse_threads(threads)
    cfg_path = Path(config) if config is not None else None
    if cfg_path is not None and not cfg_path.is_file():
        raise BenchError(f"config {cfg_path} does not exist")
    binary = binary if binary is not None else kg.locate()
    version = binary.version()
    pos_list = list(positions) if positions is not None else default_positions(DEFAULT_POSITIONS)
    if not pos_list:
        raise BenchError("no positions to benchmark")
    out = stream if stream is not None else sys.stderr
    batch = max(8, ((max(thread_list) + 3) // 4) * 4)
    threads_key = _search_threads_key(cfg_path)
    try:
        opencl: str | None = kg.check_opencl().summary()
    except kg.OpenCLMissingError:
        opencl = None

    t_start = time.monotonic()
    started_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    results: list[ThreadResult] = []
    with tempfile.TemporaryDirectory(prefix="katadeploy-bench-") as tmp:
        if cfg_path is None:
            # our own config: tuning lives in katadeploy's cache, where a crashed tuner can be worked around
            kg.ensure_tuning(model_path, binary=binary, progress=progress)
            use_cfg = kg.write_analysis_config(Path(tmp) / "bench.cfg")
        else:
            use_cfg = cfg_path
        for t in thread_list:
            overrides = {
                "numAnalysisThreads": 1,
                threads_key: t,
                "nnMaxBatchSize": batch,
                "logSearchInfo": True,
                "logToStderr": True,
                "searchFactorAfterOnePass": 1.0,
                "searchFactorAfterTwoPass": 1.0,
            }
            ov = ",".join(f"{k}={kg.format_config_value(v)}" for k, v in overrides.items())
            argv = binary.argv("analysis", "-config", use_cfg, "-model", model_path, "-override-config", ov)
            bar = ProgressBar(len(pos_list), label=f"threads={t}", stream=out, enabled=progress)
            per: list[PositionResult] = []
            with AnalysisEngine(
                argv,
                env=binary.env,
                start_timeout=start_timeout,
                query_timeout=position_timeout,
                max_restarts=0,
                stderr_lines=5000,
            ) as engine:
                engine.analyze(_query(pos_list[0], WARMUP_VISITS, "warmup"))
                engine.clear_cache()
                rows0 = _read_counter(engine, _ROWS, None, COUNTER_WAIT_S)
                batches0 = _read_counter(engine, _BATCHES, None, COUNTER_WAIT_S)
                rows_prev = rows0
                for i, pos in enumerate(pos_list):
                    engine.clear_cache()
                    q = _query(pos, visits, f"p{i}")
                    t0 = time.perf_counter()
                    resp = engine.analyze(q)
                    dt = time.perf_counter() - t0
                    root = resp.root_info
                    v = int(root.visits or 0) if root is not None else 0
                    rows = (
                        _read_counter(engine, _ROWS, rows_prev, COUNTER_WAIT_S)
                        if rows_prev is not None
                        else None
                    )
                    per.append(
                        PositionResult(
                            id=str(pos.get("id", i)),
                            visits=v,
                            seconds=dt,
                            nn_evals=(rows - rows_prev)
                            if rows is not None and rows_prev is not None
                            else None,
                        )
                    )
                    if rows is not None:
                        rows_prev = rows
                    bar.update(
                        1,
                        note=f"{sum(p.visits for p in per) / max(1e-9, sum(p.seconds for p in per)):.1f} visits/s",
                    )
                batches1 = (
                    _read_counter(engine, _BATCHES, batches0, COUNTER_WAIT_S)
                    if batches0 is not None
                    else None
                )
            bar.close()
            nn = (rows_prev - rows0) if rows_prev is not None and rows0 is not None else None
            results.append(
                ThreadResult(
                    threads=t,
                    batch_size=batch,
                    positions=len(per),
                    visits=sum(p.visits for p in per),
                    seconds=math.fsum(p.seconds for p in per),
                    nn_evals=nn,
                    nn_batches=(batches1 - batches0)
                    if batches1 is not None and batches0 is not None
                    else None,
                    per_position=per,
                )
            )
    return EngineBenchResult(
        model=str(model_path),
        katago=str(binary.path),
        katago_version=version,
        config=str(cfg_path) if cfg_path else None,
        visits=int(visits),
        position_ids=[str(p.get("id", i)) for i, p in enumerate(pos_list)],
        results=results,
        opencl=opencl,
        started_at=started_at,
        wall_seconds=time.monotonic() - t_start,
    )


def write_json(result: EngineBenchResult, path: str | os.PathLike[str]) -> Path:
    return atomic_write_text(path, json.dumps(result.to_dict(), indent=1) + "\n")
