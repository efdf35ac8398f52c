"""Calibrate, export, validate and benchmark one net in one run, with one summary report.

Contract: :func:`run_deploy` takes a net (a :class:`~katadeploy.model.source.Net`, or a name, path or URL opened
once; default: the manifest's default net) and a list of
targets. It builds (or reuses) the calibration set, exports every target (a target that fails to build, for
example for a missing extra or on a machine without a GPU, is recorded with its error and the run goes on),
validates each artifact against the torch FP32 reference with KataGo's ``testgpuerror`` limits (writing the
per-artifact Markdown/JSON/PNG reports), optionally benchmarks every artifact side by side with
``bench nn`` (search-style: runtimes with an async path keep their streams busy, ``inflight="auto"``; the table
and the evals/s-against-batch plot go to ``bench-nn.json``/``bench-nn.png``), and writes ``deploy.md`` and
``deploy.json`` to the output directory. With ``match_games`` and ``match_visits`` it also measures strength: each
reduced-precision artifact that passed plays ``katadeploy match`` against the FP32 artifact of its format (or,
without one, the net through torch), results and Elo in ``OUT/match/<target>/`` and the summary's ``Elo vs FP32``
column (a match that cannot run is recorded with its error). Core ML artifacts are built
and checked structurally but not validated on Linux (predictions need macOS); that is said in the report.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from katadeploy.artifact import onnxruntime_cpu_fraction
from katadeploy.errors import KatadeployError
from katadeploy.model.source import Net, open_net
from katadeploy.progress import log

#: the default run builds what passes KataGo's gates today; onnx-int8 (static PTQ) is known to miss them on every
#: real net (tests/export/test_onnx_real.py measures by how much), so it is built only when asked for (--target)
DEFAULT_TARGETS = ("onnx-fp32", "openvino-fp32", "openvino-int8", "tflite-fp32")


@dataclass
class TargetOutcome:
    target: str
    artifact: str | None = None
    size_mb: float | None = None
    export_seconds: float | None = None
    error: str | None = None
    verdict: str = "not run"  # PASS | FAIL | not run | unverified
    worst: str | None = None
    top1_agreement: float | None = None
    report: str | None = None
    int8_mac_fraction: float | None = None  # INT8 artifacts: the share of MACs that really run int8
    #: onnx-int8: the share onnxruntime's CPU provider runs in int8 (it runs input-only QDQ convolutions in float)
    onnxruntime_cpu_fraction: float | None = None
    evals_per_s: dict[int, float] = field(default_factory=dict)
    match: dict[str, Any] | None = None  # --match-games: Elo against the FP32 artifact (or an error)


@dataclass
class DeployResult:
    model: str
    model_sha256: str
    calibration: str | None
    out_dir: str
    targets: list[TargetOutcome]
    bench_batches: list[int]
    torch_evals_per_s: dict[int, float] = field(default_factory=dict)
    wall_seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return all(t.verdict in ("PASS", "unverified") for t in self.targets if t.error is None) and not any(
            t.error for t in self.targets
        )


def _size_mb(path: Path) -> float:
    files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
    if path.suffix == ".xml" and path.with_suffix(".bin").exists():
        files.append(path.with_suffix(".bin"))
    return sum(f.stat().st_size for f in files) / 1e6


def run_deploy(
    model_spec: str | Path | Net | None,
    targets: list[str],
    out_dir: str | Path,
    *,
    calib: str | Path | None = None,
    positions: str | Path | None = None,
    exact: bool = False,
    bench_batches: list[int] | None = (1, 8),
    bench_seconds: float = 3.0,
    threads: int | None = None,
    progress: bool = True,
    match_visits: int | None = None,
    match_games: int = 0,
    match_board: int = 19,
) -> DeployResult:
    from katadeploy.data.calibration import default_calibration_path, load_calibration
    from katadeploy.export.request import export_artifact
    from katadeploy.export.targets import get_target
    from katadeploy.runtime.loader import open_evaluator
    from katadeploy.runtime.torch_runtime import TorchEvaluator
    from katadeploy.validate.positions import evaluate, load_validation_set
    from katadeploy.validate.report import ValidationResult, write_report
    from katadeploy.validate.scoring import validate_evaluator

    t_start = time.perf_counter()
    for t in targets:
        get_target(t)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    net = open_net(model_spec, quiet=not progress)  # resolved, parsed and hashed once for every step
    model, model_path, sha = net.model, net.path, net.sha256
    # without --calib each target takes its own default set (onnx-int8's covers every board size)
    calib_path = Path(calib) if calib else None
    load_calibration(calib_path or default_calibration_path(19, progress=progress))  # fail early on a bad file
    log(f"{model.name}: {len(targets)} target(s) -> {out}", progress)

    outcomes: list[TargetOutcome] = []
    for t in targets:
        o = TargetOutcome(t)
        outcomes.append(o)
        log(f"[{t}] exporting", progress)
        t0 = time.perf_counter()
        try:
            path = export_artifact(
                net, t, out, calib=calib_path, exact=exact, progress=progress,
                batch=max(bench_batches or [8]),
            )  # fmt: skip
        except KatadeployError as exc:
            o.error = str(exc)
            log(f"[{t}] not built: {exc}", progress)
            continue
        o.export_seconds = time.perf_counter() - t0
        o.artifact, o.size_mb = str(path), _size_mb(path)

    reference = TorchEvaluator(model, threads=threads)
    sets: dict[tuple[int, int, bool], Any] = {}
    refs: dict[tuple[int, int, bool], Any] = {}
    for o in outcomes:
        if o.artifact is None:
            continue
        if o.target.startswith("coreml") and sys.platform != "darwin":
            o.verdict = "unverified"
            o.worst = "Core ML predictions need macOS; checked structurally only"
            continue
        try:
            ev = open_evaluator(o.artifact, model=model, model_sha256=sha, threads=threads)
        except KatadeployError as exc:
            o.error = f"cannot run here: {exc}"
            continue
        m = ev.manifest
        key = (m.nn_x, m.nn_y, m.exact_board)
        if key not in sets:
            sets[key] = load_validation_set(positions, model, *key)
            refs[key] = evaluate(reference, sets[key], 16, label="reference torch fp32", progress=progress)
        metrics, seconds = validate_evaluator(
            ev, sets[key], model, reference_raw=refs[key], batch=16, progress=progress
        )
        result = ValidationResult(
            artifact=Path(o.artifact).name, target=m.target, precision=m.precision, model=model.name,
            model_sha256=sha, positions=sets[key].source, nn_x=key[0], nn_y=key[1], exact=key[2], batch=16,
            metrics=metrics, seconds=seconds, skipped=sets[key].skipped, quantization=m.quantization,
        )  # fmt: skip
        paths = write_report(result, out)
        o.report = str(paths.get("md", ""))
        o.verdict = "PASS" if result.passed else "FAIL"
        o.int8_mac_fraction = (m.quantization or {}).get("int8_mac_fraction")
        o.onnxruntime_cpu_fraction = onnxruntime_cpu_fraction(m.quantization)
        worst = metrics.worst(m.precision)
        o.worst = f"{worst.metric} {worst.stat} {worst.value:.4g} ({worst.ratio:.2f}x limit)"
        o.top1_agreement = metrics.top1
        log(f"[{o.target}] {o.verdict}", progress)

    result = DeployResult(
        model=model.name, model_sha256=sha, calibration=str(calib_path) if calib_path else "bundled default (per target)", out_dir=str(out), targets=outcomes,
        bench_batches=list(bench_batches or []),
    )  # fmt: skip
    runnable = [o for o in outcomes if o.artifact and o.verdict in ("PASS", "FAIL")]
    if bench_batches and runnable:
        from katadeploy.bench.nn import run_nn_bench

        bench = run_nn_bench(
            ["torch"] + [o.artifact for o in runnable if o.artifact], model_path=model_path,
            batches=list(bench_batches), seconds=bench_seconds, threads=threads, inflight="auto",
            progress=progress,
        )  # fmt: skip
        (out / "bench-nn.json").write_text(json.dumps(bench.to_dict(), indent=2) + "\n", encoding="utf-8")
        from katadeploy.bench.nn_report import write_plot

        write_plot(bench, out / "bench-nn.png")
        by_path = {a.artifact: a for a in bench.artifacts}
        for a in bench.artifacts:
            if a.artifact == "torch" or a.target.startswith("torch"):
                result.torch_evals_per_s = {b.batch: b.evals_per_s for b in a.batches}
        for o in runnable:
            a = by_path.get(o.artifact or "")
            if a is not None:
                o.evals_per_s = {b.batch: b.evals_per_s for b in a.batches}
    if match_games and match_visits:
        _match_strength(outcomes, model_path, out, match_visits, match_games, match_board, progress)
    result.wall_seconds = time.perf_counter() - t_start
    write_summary(result, out)
    return result


def _match_strength(
    outcomes: list[TargetOutcome], net_path: Path, out: Path, visits: int, games: int, board: int, progress: bool
) -> None:
    """Each passing reduced-precision artifact against its format's FP32 artifact (else the net), in games."""
    from katadeploy.match.runner import MatchOptions, run_match

    fp32 = {o.target.split("-")[0]: o.artifact for o in outcomes
            if o.target.endswith("-fp32") and o.verdict == "PASS" and o.artifact}  # fmt: skip
    for o in outcomes:
        if o.verdict != "PASS" or not o.artifact or o.target.endswith("-fp32"):
            continue
        ref = fp32.get(o.target.split("-")[0]) or str(net_path)
        where = out / "match" / o.target
        log(f"[{o.target}] match against {Path(ref).name}: {games} games at {visits} visits", progress)
        try:
            s = run_match(MatchOptions(a=o.artifact, b=ref, visits_a=visits, visits_b=visits, games=games,
                                       board=board, out_dir=where, resume=True, net=str(net_path),
                                       progress=progress))  # fmt: skip
        except KatadeployError as exc:
            o.match = {"against": Path(ref).name, "error": str(exc)}
            log(f"[{o.target}] match not run: {exc}", progress)
            continue
        o.match = {"against": Path(ref).name, "games": s["games"], "elo": s["elo"], "elo_ci95": s["elo_ci95"],
                   "report": str(where / "match.md")}  # fmt: skip


def markdown(r: DeployResult) -> str:
    bs = r.bench_batches
    strength = any(t.match for t in r.targets)
    head = ["target", "artifact", "MB", "export s", "validation", "int8 MACs", "worst metric"] + [
        f"evals/s b{b}" for b in bs
    ] + (["Elo vs FP32"] if strength else [])
    lines = [
        f"# katadeploy deploy: {r.model}",
        "",
        f"- net sha256 `{r.model_sha256}`",
        f"- calibration `{r.calibration}`",
        f"- validation: KataGo testgpuerror metrics against the torch FP32 reference (per-artifact reports "
        f"beside this file); wall time {r.wall_seconds:.0f} s",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    if r.torch_evals_per_s:
        row = ["torch-fp32 (reference)", "-", "-", "-", "-", "-", "-"]
        row += [f"{r.torch_evals_per_s.get(b, float('nan')):.1f}" for b in bs] + (["-"] if strength else [])
        lines.append("| " + " | ".join(row) + " |")
    for t in r.targets:
        if t.error:
            row = [t.target, "not built", "-", "-", "-", "-", t.error.replace("|", "/")[:160]] + ["-"] * len(bs)
        else:
            row = [
                t.target, Path(t.artifact or "").name, f"{t.size_mb:.1f}", f"{t.export_seconds:.0f}",
                t.verdict, _share(t.int8_mac_fraction, t.onnxruntime_cpu_fraction), (t.worst or "").replace("|", "/"),
            ]  # fmt: skip
            row += [f"{t.evals_per_s[b]:.1f}" if b in t.evals_per_s else "-" for b in bs]
        if strength:
            row.append(_strength(t.match))
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def _strength(m: dict[str, Any] | None) -> str:
    if not m:
        return "-"
    if "error" in m:
        return "not run: " + m["error"].replace("|", "/")[:80]
    lo, hi = m["elo_ci95"]
    return f"{m['elo']:+.1f} [{lo:+.1f}, {hi:+.1f}] ({m['games']} games vs {m['against']})"


def _share(fraction: float | None, onnxruntime_cpu: float | None = None) -> str:
    """The int8 MAC share for the table: an "int8" artifact that is mostly float says so (and so does one whose
    runtime, onnxruntime's CPU provider, runs less of it in int8 than the graph quantizes)."""
    if fraction is None:
        return "-"
    if fraction == 0:
        return "0% (nothing runs int8: the fallback returned every layer to float)"
    return f"{100 * fraction:.0f}%" + ("" if onnxruntime_cpu is None else f" (onnxruntime CPU {100 * onnxruntime_cpu:.0f}%)")


def write_summary(r: DeployResult, out: Path) -> dict[str, Path]:
    md = out / "deploy.md"
    js = out / "deploy.json"
    md.write_text(markdown(r), encoding="utf-8")
    js.write_text(json.dumps(asdict(r), indent=2, default=str) + "\n", encoding="utf-8")
    return {"md": md, "json": js}
