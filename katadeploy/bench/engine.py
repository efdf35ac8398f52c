"""``katadeploy bench engine``: playouts per second of an analysis engine, measured through our analysis client.

Contract
--------
:func:`bench_engine` benchmarks one engine - an :class:`EngineSpec`: the real KataGo (:func:`katago_spec`) or
``katadeploy analysis`` (:mod:`katadeploy.bench.engine_compare`) - and :func:`run_engine_bench` is that run for
the real KataGo alone. It mirrors ``katago benchmark`` (``cpp/command/benchmark.cpp`` and
``PlayUtils::benchmarkSearchOnPositionsAndPrint``) but drives the engine's ``analysis`` command through
:class:`katadeploy.engine.AnalysisEngine`:

* For each thread setting T a fresh engine is started with ``numAnalysisThreads = 1``, ``numSearchThreads = T``
  and ``nnMaxBatchSize = max(8, 4*ceil(max(T)/4))`` (``katago benchmark``'s default batch size for the largest
  thread count tested), ``searchFactorAfterOnePass = searchFactorAfterTwoPass = 1``.
* One 5-visit warm-up query runs first (``katago benchmark`` does the same in ``warmStartNNEval``) and is not
  counted.
* Each position: ``clear_cache`` (awaited, so the NN cache starts empty as in ``katago benchmark``), then one
  query with ``maxVisits = V``. ``seconds`` is the wall time from sending the query to receiving its final reply,
  so it includes the client and pipe round trip (about 0.1 ms of client CPU, see ``scripts/soak_engine.py``)
  on top of the search time; ``visits`` is ``rootInfo.visits`` (``katago benchmark`` uses the root's visits too).
* NN evals: the analysis reply does not report them, so the engine runs with ``logSearchInfo = true``; after
  each search it writes its search log to stderr *before* the reply - KataGo's ``printGenmoveLog``, which
  ``katadeploy analysis`` reproduces (:mod:`katadeploy.search.searchlog`) - with the cumulative NN counters
  (``NN rows: N``, ``NN batches: M``) and the search's ``New playouts: P``; the benchmark reads them from the
  client's stderr ring. ``nn_evals`` of a setting is the difference of the rows counter after the last position
  and after the warm-up: the same ``numRowsProcessed`` counter ``katago benchmark`` divides by time. (Writing
  that log is a few hundred lines of text per position, small next to a search.)
* ``visits_per_s = sum(visits) / sum(seconds)``, ``nn_evals_per_s = nn_evals / sum(seconds)``,
  ``avg_batch_size = nn_evals / nn_batches`` - the same definitions as ``katago benchmark`` -, and
  ``playouts_per_s = sum(New playouts) / sum(seconds)``.
* Search overhead, for ``katadeploy analysis`` only (KataGo does not report its timing): its log's cumulative
  ``katadeploy timing:`` line is differenced per position. ``overhead_cpu_ms_per_playout`` = CPU time of the
  analysis thread over its searches (``time.thread_time``: the tree, move making, features, NN cache, symmetries
  and post-processing; the thread blocks without spinning while the net runs, so the net is excluded) / playouts;
  ``overhead_wall_ms_per_playout`` = (search wall time - wall time inside the evaluator's ``evaluate`` calls) /
  playouts, which with one analysis thread is the time per playout the search is not waiting for the net (on a
  busy machine it also holds time lost to other processes and to the runtime's own threads).
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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from katadeploy.engine import katago as kg
from katadeploy.errors import KatadeployError
from katadeploy.files import atomic_write_text
from katadeploy.search.searchlog import TIMING_PREFIX

DEFAULT_VISITS = 200
DEFAULT_POSITIONS = 10
WARMUP_VISITS = 5
START_TIMEOUT_S = 1800.0  # first run per net may include OpenCL tuning
POSITION_TIMEOUT_S = 900.0
COUNTER_WAIT_S = 5.0

_ROWS = re.compile(r"NN rows: (\d+)")
_BATCHES = re.compile(r"NN batches: (\d+)")
NOTE_PREFIX = "katadeploy analysis:"  # how ``katadeploy analysis`` starts its notes on stderr
_PLAYOUTS = re.compile(r"New playouts: (\d+)")
_TIMING_KV = re.compile(r"(\w+)=([-+0-9.eE]+)")

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
    playouts: int | None = None
    search_wall_seconds: float | None = None
    search_cpu_seconds: float | None = None
    nn_seconds: float | None = None
    nn_cpu_seconds: float | None = None


def _sum(values: Iterable[float | int | None]) -> float | None:
    vals = list(values)
    if not vals or any(v is None for v in vals):
        return None
    return math.fsum(vals)  # type: ignore[arg-type]


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

    @property
    def playouts(self) -> int | None:
        """Sum of the engines' ``New playouts`` (playouts this search added to the tree)."""
        total = _sum(p.playouts for p in self.per_position)
        return None if total is None else int(total)

    @property
    def playouts_per_s(self) -> float | None:
        n = self.playouts
        return n / self.seconds if n is not None and self.seconds > 0 else None

    @property
    def search_cpu_seconds(self) -> float | None:
        return _sum(p.search_cpu_seconds for p in self.per_position)

    @property
    def nn_seconds(self) -> float | None:
        return _sum(p.nn_seconds for p in self.per_position)

    @property
    def nn_cpu_seconds(self) -> float | None:
        return _sum(p.nn_cpu_seconds for p in self.per_position)

    @property
    def overhead_cpu_ms_per_playout(self) -> float | None:
        """Search CPU time (everything but the net, see ``searchlog``) per playout, in ms (katadeploy only)."""
        cpu, n = self.search_cpu_seconds, self.playouts
        return 1000.0 * cpu / n if cpu is not None and n else None

    @property
    def overhead_wall_ms_per_playout(self) -> float | None:
        """(search wall time - wall time inside the evaluator) per playout, in ms (katadeploy only)."""
        wall, nn, n = _sum(p.search_wall_seconds for p in self.per_position), self.nn_seconds, self.playouts
        return 1000.0 * (wall - nn) / n if wall is not None and nn is not None and n else None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("visits_per_s", "nn_evals_per_s", "avg_batch_size", "playouts", "playouts_per_s",
                    "search_cpu_seconds", "nn_seconds", "nn_cpu_seconds", "overhead_cpu_ms_per_playout",
                    "overhead_wall_ms_per_playout"):  # fmt: skip
            d[key] = getattr(self, key)
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


@dataclass(frozen=True)
class EngineSpec:
    """One analysis engine to benchmark: how to start it with a config and ``-override-config`` text.

    ``kind`` is ``"katago"`` (the real binary) or ``"katadeploy"`` (``katadeploy analysis``, whose search log adds
    the ``katadeploy timing:`` line); ``argv(config, overrides)`` is the command line (never a shell)."""

    label: str
    kind: str
    version: str
    argv: Callable[[Path, str], list[str]]
    env: Mapping[str, str] | None = None


@dataclass
class _LogBlock:
    rows: int
    batches: int | None
    playouts: int | None
    timing: dict[str, float] | None


def _read_log_block(engine: Any, after_rows: int | None, want_timing: bool, wait: float) -> _LogBlock | None:
    """The newest search log in the engine's stderr whose ``NN rows`` exceeds ``after_rows`` (any if None), with
    its ``NN batches``, ``New playouts`` and (``want_timing``) ``katadeploy timing:`` lines; waits up to ``wait``
    seconds for it to arrive (KataGo writes the log before the reply, but stderr is drained by another thread)."""
    deadline = time.monotonic() + wait
    while True:
        lines = engine.stderr_tail(2000)
        for i in range(len(lines) - 1, -1, -1):
            m = _ROWS.search(lines[i])
            if not m:
                continue
            rows = int(m.group(1))
            if after_rows is not None and rows <= after_rows:
                break  # the newest log is stale: wait for the next one
            block = _LogBlock(rows, None, None, None)
            for line in lines[max(0, i - 40) : i]:
                if (mp := _PLAYOUTS.search(line)) is not None:
                    block.playouts = int(mp.group(1))
            for line in lines[i + 1 : i + 40]:
                if block.batches is None and (mb := _BATCHES.search(line)) is not None:
                    block.batches = int(mb.group(1))
                if want_timing and block.timing is None and line.startswith(TIMING_PREFIX):
                    block.timing = {k: float(v) for k, v in _TIMING_KV.findall(line)}
            if block.batches is not None and (block.timing is not None or not want_timing):
                return block
            break  # the block is still being written
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.002)


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


def batch_size_for(threads: Sequence[int]) -> int:
    """``katago benchmark``'s default ``nnMaxBatchSize`` for the largest thread count tested."""
    return max(8, ((max(threads) + 3) // 4) * 4)


def _delta(a: dict[str, float] | None, b: dict[str, float] | None, key: str) -> float | None:
    if a is None or b is None or key not in a or key not in b:
        return None
    return b[key] - a[key]


def bench_engine(
    spec: EngineSpec,
    config: Path,
    *,
    threads: Sequence[int],
    visits: int,
    positions: Sequence[Mapping[str, Any]],
    batch: int | None = None,
    threads_key: str = "numSearchThreads",
    progress: bool = True,
    stream: TextIO | None = None,
    start_timeout: float = START_TIMEOUT_S,
    position_timeout: float = POSITION_TIMEOUT_S,
    stderr_notes: list[str] | None = None,
) -> list[ThreadResult]:
    """Benchmark one engine on ``positions`` at every thread count (see the module contract). ``stderr_notes``
    collects the engine's ``katadeploy analysis:`` stderr lines (its notes on config keys) of the first start."""
    from katadeploy.engine import AnalysisEngine

    out = stream if stream is not None else sys.stderr
    thread_list = parse_threads(threads)
    batch = batch if batch is not None else batch_size_for(thread_list)
    ours = spec.kind == "katadeploy"
    results: list[ThreadResult] = []
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
        bar = ProgressBar(len(positions), label=f"{spec.label} threads={t}", stream=out, enabled=progress)
        per: list[PositionResult] = []
        with AnalysisEngine(
            spec.argv(config, ov),
            env=dict(spec.env) if spec.env is not None else None,
            start_timeout=start_timeout,
            query_timeout=position_timeout,
            max_restarts=0,
            stderr_lines=5000,
        ) as engine:
            engine.analyze(_query(positions[0], WARMUP_VISITS, "warmup"))
            engine.clear_cache()
            first = _read_log_block(engine, None, ours, COUNTER_WAIT_S)
            if stderr_notes is not None and t == thread_list[0]:
                stderr_notes += [ln for ln in engine.stderr_tail(None) if ln.startswith(NOTE_PREFIX)]
            prev = first
            for i, pos in enumerate(positions):
                engine.clear_cache()
                q = _query(pos, visits, f"p{i}")
                t0 = time.perf_counter()
                resp = engine.analyze(q)
                dt = time.perf_counter() - t0
                root = resp.root_info
                v = int(root.visits or 0) if root is not None else 0
                block = _read_log_block(engine, prev.rows, ours, COUNTER_WAIT_S) if prev is not None else None
                pr = PositionResult(id=str(pos.get("id", i)), visits=v, seconds=dt, nn_evals=None)
                if block is not None and prev is not None:
                    pr.nn_evals = block.rows - prev.rows
                    pr.playouts = block.playouts
                    pr.search_cpu_seconds = _delta(prev.timing, block.timing, "search_cpu_s")
                    pr.search_wall_seconds = _delta(prev.timing, block.timing, "search_wall_s")
                    pr.nn_seconds = _delta(prev.timing, block.timing, "nn_wall_s")
                    pr.nn_cpu_seconds = _delta(prev.timing, block.timing, "nn_cpu_s")
                    prev = block
                else:
                    prev = None  # counters lost: report n/a rather than a wrong difference
                per.append(pr)
                bar.update(
                    1,
                    note=f"{sum(p.visits for p in per) / max(1e-9, sum(p.seconds for p in per)):.1f} visits/s",
                )
        bar.close()
        complete = prev is not None and first is not None
        results.append(
            ThreadResult(
                threads=t,
                batch_size=batch,
                positions=len(per),
                visits=sum(p.visits for p in per),
                seconds=math.fsum(p.seconds for p in per),
                nn_evals=(prev.rows - first.rows) if complete else None,  # type: ignore[union-attr]
                nn_batches=(prev.batches - first.batches)  # type: ignore[union-attr,operator]
                if complete and prev.batches is not None and first.batches is not None  # type: ignore[union-attr]
                else None,
                per_position=per,
            )
        )
    return results


def katago_spec(binary: kg.KataGoBinary, model: Path, version: str | None = None) -> EngineSpec:
    """The real KataGo's ``analysis`` on ``model``."""
    version = version or binary.version()
    return EngineSpec(
        label=version,
        kind="katago",
        version=version,
        argv=lambda cfg, ov: binary.argv("analysis", "-config", cfg, "-model", model, "-override-config", ov),
        env=binary.env,
    )


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
    """Run the benchmark of the real KataGo (see module contract) and return its results."""
    model_path = Path(model)
    if not model_path.is_file():
        raise BenchError(f"model {model_path} does not exist")
    check_visits(visits)
    thread_list = parse_threads(threads)
    cfg_path = Path(config) if config is not None else None
    if cfg_path is not None and not cfg_path.is_file():
        raise BenchError(f"config {cfg_path} does not exist")
    binary = binary if binary is not None else kg.locate()
    version = binary.version()
    pos_list = list(positions) if positions is not None else default_positions(DEFAULT_POSITIONS)
    if not pos_list:
        raise BenchError("no positions to benchmark")
    try:
        opencl: str | None = kg.check_opencl().summary()
    except kg.OpenCLMissingError:
        opencl = None

    t_start = time.monotonic()
    started_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    with tempfile.TemporaryDirectory(prefix="katadeploy-bench-") as tmp:
        use_cfg = katago_config(cfg_path, Path(tmp), model_path, binary, progress)
        results = bench_engine(
            katago_spec(binary, model_path, version), use_cfg, threads=thread_list, visits=visits,
            positions=pos_list, threads_key=_search_threads_key(cfg_path), progress=progress, stream=stream,
            start_timeout=start_timeout, position_timeout=position_timeout,
        )  # fmt: skip
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


def check_visits(visits: int) -> None:
    if not 1 <= int(visits) <= 1_000_000:
        raise BenchError(f"--visits must be in 1..1000000, got {visits}")


def katago_config(
    cfg_path: Path | None, tmp: Path, model: Path, binary: kg.KataGoBinary | None, progress: bool
) -> Path:
    """``cfg_path``, or a minimal analysis config written to ``tmp`` (after OpenCL tuning for ``model`` when
    ``binary`` is given; tuning lives in katadeploy's cache, where a crashed tuner can be worked around)."""
    if cfg_path is not None:
        return cfg_path
    if binary is not None:
        kg.ensure_tuning(model, binary=binary, progress=progress)
    return kg.write_analysis_config(tmp / "bench.cfg")


def write_json(result: EngineBenchResult, path: str | os.PathLike[str]) -> Path:
    return atomic_write_text(path, json.dumps(result.to_dict(), indent=1) + "\n")
