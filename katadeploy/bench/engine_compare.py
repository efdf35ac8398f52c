"""``katadeploy bench engine --backend ...``: katadeploy's own engine on each backend, beside the real KataGo.

Contract
--------
:func:`run_backend_bench` runs :func:`katadeploy.bench.engine.bench_engine` for each backend - ``katadeploy
analysis -model B`` with ``B`` an exported artifact (searched through its runtime), a net file (through torch) or
``torch`` (the net itself through torch) - and for the real KataGo binary on the same net, one engine after the
other, each thread count in a fresh process, with the same config, positions, visits, thread counts and
``nnMaxBatchSize``:

* The net is ``net`` when given (every artifact must have been exported from it: checked by sha256), else the
  source net the artifacts' manifests name (resolved as ``katadeploy analysis`` resolves it); artifacts from
  different nets are an error. KataGo loads that net.
* The config is ``config``, else katadeploy's minimal KataGo analysis config (after OpenCL tuning when KataGo
  runs). The keys each run overrides are those of ``bench engine`` (one analysis thread, T search threads,
  the batch size, ``logSearchInfo``). The lines ``katadeploy analysis`` prints about config keys it does not
  use (for example ``useGraphSearch``, KataGo's default, which the port lacks) are kept in ``notes``.
* Per engine and thread count: visits/s, playouts/s (``New playouts`` of the search log), NN evals/s and the
  average batch from the ``NN rows``/``NN batches`` counters, and for katadeploy's engine the search overhead:
  ``overhead_cpu_ms_per_playout`` = CPU time of the analysis thread over its searches (``time.thread_time``:
  tree, move making, features, NN cache, symmetries, post-processing; the thread blocks while the net runs) per
  playout, and ``overhead_wall_ms_per_playout`` = (search wall time - wall time inside the evaluator) per
  playout (with one analysis thread: the time the search is not waiting for the net). KataGo does not report
  its timing, so its overhead is n/a. See :mod:`katadeploy.search.searchlog` for the ``katadeploy timing:`` line
  these come from.
* ``katago`` None runs no KataGo (the result says so in ``notes``).

The result is an :class:`EngineComparison` (``to_dict`` for JSON); :mod:`katadeploy.bench.engine_report` renders
it as Markdown and a plot.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from katadeploy import __version__
from katadeploy.bench.engine import (
    DEFAULT_POSITIONS,
    DEFAULT_VISITS,
    NOTE_PREFIX,
    POSITION_TIMEOUT_S,
    START_TIMEOUT_S,
    BenchError,
    EngineSpec,
    ThreadResult,
    batch_size_for,
    bench_engine,
    check_visits,
    default_positions,
    katago_config,
    katago_spec,
    parse_threads,
)
from katadeploy.engine import katago as kg
from katadeploy.errors import KatadeployError
from katadeploy.files import atomic_write_text

METHOD = (
    "Each engine in its own process, one after the other, a fresh process per thread count T: numAnalysisThreads=1, "
    "numSearchThreads=T, the same nnMaxBatchSize, logSearchInfo=true; 5-visit warm-up; per position clear_cache + "
    "one maxVisits=V query. visits/s = sum(rootInfo.visits)/sum(client wall seconds); playouts/s from 'New playouts'; "
    "nnEvals/s and avg batch from the 'NN rows'/'NN batches' counters of the search log. katadeploy only: overhead "
    "CPU = analysis-thread CPU time over its searches (everything but the net) per playout; overhead wall = (search "
    "wall - wall inside the evaluator) per playout."
)


@dataclass
class EngineRun:
    label: str
    kind: str  # "katago" | "katadeploy"
    backend: str  # "katago", "torch" or the artifact's target
    model: str
    version: str
    results: list[ThreadResult] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "kind": self.kind,
            "backend": self.backend,
            "model": self.model,
            "version": self.version,
            "results": [r.to_dict() for r in self.results],
        }


@dataclass
class EngineComparison:
    net: str
    visits: int
    threads: list[int]
    batch_size: int
    config: str | None
    position_ids: list[str]
    engines: list[EngineRun]
    notes: list[str] = field(default_factory=list)
    opencl: str | None = None
    started_at: str = ""
    wall_seconds: float = 0.0

    @property
    def katago(self) -> EngineRun | None:
        return next((e for e in self.engines if e.kind == "katago"), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "katadeploy.bench.engine",
            "schema": 2,
            "net": self.net,
            "visits": self.visits,
            "threads": self.threads,
            "batch_size": self.batch_size,
            "config": self.config,
            "positions": self.position_ids,
            "opencl": self.opencl,
            "cpu_count": os.cpu_count(),
            "started_at": self.started_at,
            "wall_seconds": self.wall_seconds,
            "method": METHOD,
            "notes": self.notes,
            "engines": [e.to_dict() for e in self.engines],
        }


@dataclass(frozen=True)
class Backend:
    """One ``--backend``: what ``katadeploy analysis -model`` gets, its label and its source net (if recorded)."""

    spec: str
    model_arg: str
    backend: str
    label: str
    source: str | None  # an artifact's source net (file or known name); None for nets and torch
    source_sha256: str | None


def parse_backend(spec: str) -> Backend:
    """Classify one ``--backend`` value (a bad value is a one-line :class:`BenchError`)."""
    from katadeploy.runtime.loader import is_torch, open_manifest
    from katadeploy.search.engine import NET_SUFFIXES, artifact_source, is_artifact

    if is_torch(spec):
        return Backend(spec, "", "torch", "katadeploy torch", None, None)
    if is_artifact(spec):
        try:
            _, manifest = open_manifest(spec)
        except KatadeployError as exc:
            raise BenchError(f"--backend {spec}: {exc}") from None
        return Backend(
            spec, spec, manifest.target, f"katadeploy {manifest.target}", artifact_source(manifest),
            manifest.source.get("sha256"),
        )  # fmt: skip
    path = Path(spec)
    if path.is_file() and spec.lower().endswith(NET_SUFFIXES):
        return Backend(spec, spec, "torch", f"katadeploy torch ({path.name})", None, None)
    if not path.exists():
        raise BenchError(f"--backend {spec}: no such artifact or net")
    raise BenchError(f"--backend {spec}: neither an artifact with a sidecar manifest nor a KataGo net")


def resolve_net(backends: Sequence[Backend], net: str | os.PathLike[str] | None, quiet: bool = True) -> Path:
    """The one net every backend (and KataGo) runs (see the module contract)."""
    from katadeploy.hashing import sha256_file
    from katadeploy.model.hub import resolve_model

    if net is not None:
        path = Path(resolve_model(str(net), quiet=quiet))
    else:
        files = sorted({b.model_arg for b in backends if b.backend == "torch" and b.model_arg})
        sources = sorted({b.source for b in backends if b.source is not None})
        if files:
            path = Path(files[0])
        elif sources:
            try:
                path = Path(resolve_model(sources[0], quiet=quiet))
            except KatadeployError as exc:
                raise BenchError(
                    f"cannot open the artifacts' source net {sources[0]} ({exc}); pass --model"
                ) from None
        else:
            raise BenchError("bench engine: --backend torch needs --model (the net)")
    sha = sha256_file(path)
    for b in backends:
        if b.source_sha256 and b.source_sha256 != sha:
            raise BenchError(
                f"--backend {b.spec} was exported from another net than {path.name}; pass --model"
            )
        if b.backend == "torch" and b.model_arg and Path(b.model_arg).resolve() != path.resolve():
            if sha256_file(b.model_arg) != sha:
                raise BenchError(
                    f"--backend {b.spec} is another net than {path.name}: compare one net at a time"
                )
    return path


def katadeploy_spec(backend: Backend, net: Path, nn_threads: int | None = None) -> EngineSpec:
    """``katadeploy analysis`` on one backend (an artifact also gets ``-net`` so it never searches for its net)."""
    from katadeploy.search.commands import analysis_argv

    model = backend.model_arg or str(net)
    extra = ["-net", str(net)] if backend.backend != "torch" else []
    if nn_threads is not None:
        extra += ["-nn-threads", str(nn_threads)]
    return EngineSpec(
        label=backend.label,
        kind="katadeploy",
        version=f"katadeploy {__version__}",
        argv=lambda cfg, ov: analysis_argv(model, cfg, "-override-config", ov, *extra),
    )


def _unique_labels(backends: list[Backend]) -> list[Backend]:
    counts: dict[str, int] = {}
    for b in backends:
        counts[b.label] = counts.get(b.label, 0) + 1
    return [
        Backend(b.spec, b.model_arg, b.backend, f"{b.label} ({Path(b.spec).name})", b.source, b.source_sha256)
        if counts[b.label] > 1 and b.model_arg
        else b
        for b in backends
    ]


def run_backend_bench(
    backends: Sequence[str],
    *,
    net: str | os.PathLike[str] | None = None,
    katago: kg.KataGoBinary | None = None,
    threads: Sequence[int] = (1,),
    visits: int = DEFAULT_VISITS,
    positions: Sequence[Mapping[str, Any]] | None = None,
    config: str | os.PathLike[str] | None = None,
    nn_threads: int | None = None,
    progress: bool = True,
    stream: TextIO | None = None,
    start_timeout: float = START_TIMEOUT_S,
    position_timeout: float = POSITION_TIMEOUT_S,
) -> EngineComparison:
    """Benchmark every backend through ``katadeploy analysis`` and ``katago`` (None: skip it) in one run."""
    if not backends:
        raise BenchError("bench engine: no --backend given")
    check_visits(visits)
    thread_list = parse_threads(threads)
    if nn_threads is not None and nn_threads < 1:
        raise BenchError(f"--nn-threads must be positive, got {nn_threads}")
    parsed = _unique_labels([parse_backend(str(b)) for b in backends])
    cfg_path = Path(config) if config is not None else None
    if cfg_path is not None and not cfg_path.is_file():
        raise BenchError(f"config {cfg_path} does not exist")
    net_path = resolve_net(parsed, net, quiet=not progress)
    pos_list = list(positions) if positions is not None else default_positions(DEFAULT_POSITIONS)
    if not pos_list:
        raise BenchError("no positions to benchmark")
    batch = batch_size_for(thread_list)
    notes: list[str] = []
    opencl = None
    if katago is None:
        notes.append("KataGo not run (not installed, or --no-katago)")
    else:
        try:
            opencl = kg.check_opencl().summary()
        except kg.OpenCLMissingError:
            opencl = None
    t_start = time.monotonic()
    started_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    runs: list[EngineRun] = []
    engine_notes: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory(prefix="katadeploy-bench-") as tmp:
        use_cfg = katago_config(cfg_path, Path(tmp), net_path, katago, progress)
        specs: list[tuple[EngineSpec, str, str]] = []
        if katago is not None:
            specs.append((katago_spec(katago, net_path), "katago", str(net_path)))
        specs += [
            (katadeploy_spec(b, net_path, nn_threads), b.backend, b.model_arg or str(net_path))
            for b in parsed
        ]
        for spec, backend, model in specs:
            seen: list[str] = []
            results = bench_engine(
                spec, use_cfg, threads=thread_list, visits=visits, positions=pos_list, batch=batch,
                progress=progress, stream=stream, start_timeout=start_timeout, position_timeout=position_timeout,
                stderr_notes=seen if spec.kind == "katadeploy" else None,
            )  # fmt: skip
            for line in seen:
                engine_notes.setdefault(line[len(NOTE_PREFIX) :].strip(), []).append(spec.label)
            runs.append(EngineRun(spec.label, spec.kind, backend, model, spec.version, results))
    notes += [f"{', '.join(dict.fromkeys(who))}: {note}" for note, who in engine_notes.items()]
    return EngineComparison(
        net=str(net_path), visits=int(visits), threads=thread_list, batch_size=batch,
        config=str(cfg_path) if cfg_path else None, position_ids=[str(p.get("id", i)) for i, p in enumerate(pos_list)],
        engines=runs, notes=notes, opencl=opencl, started_at=started_at, wall_seconds=time.monotonic() - t_start,
    )  # fmt: skip


def write_json(result: EngineComparison, path: str | os.PathLike[str]) -> Path:
    import json

    return atomic_write_text(path, json.dumps(result.to_dict(), indent=1) + "\n")


__all__ = ["EngineComparison", "EngineRun", "run_backend_bench", "write_json"]
