"""Render a ``bench nn`` result: Markdown tables and an evals/s-against-batch plot.

Contract
--------
- :func:`table_rows` / :func:`format_markdown`: one row per artifact and batch size (evals/s, latency
  percentiles, GFLOP/s, peak RSS, calls, and the multiple of every reference: KataGo's own benchmark at
  threads == batch when it ran, and each quoted baseline), then a side-by-side table of evals/s per artifact
  (rows) against batch size (columns) with each artifact's best batch and its multiple of each baseline, then
  the notes. Quoted baselines are labelled "quoted, not measured in this run".
- :func:`write_plot` ``(result, path)``: a PNG of evals/s against batch size (log-log), one line per artifact,
  KataGo's own benchmark as a dashed line over its thread counts and each baseline as a horizontal line.
  Needs matplotlib (a core dependency); written headless (Agg).
"""

from __future__ import annotations

import os
from pathlib import Path

from katadeploy.bench.nn import ArtifactResult, NNBenchResult

COLUMNS = ["artifact", "target", "batch", "evals/s", "P50 ms", "P95 ms", "P99 ms", "GFLOP/s", "peak RSS MB",
           "calls", "x KataGo"]  # fmt: skip


def _f(x: float | None, digits: int = 1) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def _ratio(value: float, ref: float | None) -> str:
    return "—" if not ref else f"{value / ref:.2f}x"


def target_label(a: ArtifactResult) -> str:
    inflight = {b.inflight for b in a.batches}
    return (
        a.target
        + (" exact" if a.exact else "")
        + (f" fixed-batch {a.fixed_batch}" if a.fixed_batch else "")
        + (f" async x{max(inflight)}" if max(inflight, default=1) > 1 else "")
        + (f" ({100 * a.int8_mac_fraction:.0f}% of MACs int8" if a.int8_mac_fraction is not None else "")
        + (f", onnxruntime CPU {100 * a.onnxruntime_cpu_fraction:.0f}%" if a.onnxruntime_cpu_fraction is not None else "")
        + (")" if a.int8_mac_fraction is not None else "")
    )


def _katago_by_threads(result: NNBenchResult) -> dict[int, float]:
    if result.katago is None:
        return {}
    return {
        int(r["threads"]): float(r["nn_evals_per_s"]) for r in result.katago.rows if r["nn_evals_per_s"] > 0
    }


def columns(result: NNBenchResult) -> list[str]:
    return COLUMNS + [f"x {b.label}" for b in result.baselines]


def table_rows(result: NNBenchResult) -> list[list[str]]:
    kg = _katago_by_threads(result)
    rows = []
    for a in result.artifacts:
        target = target_label(a)
        for b in a.batches:
            rows.append(
                [a.name, target, str(b.batch), _f(b.evals_per_s), _f(b.p50_ms, 2), _f(b.p95_ms, 2),
                 _f(b.p99_ms, 2), _f(b.gflops_per_s, 2), _f(a.peak_rss_mb, 0), str(b.calls),
                 _ratio(b.evals_per_s, kg.get(b.batch))]
                + [_ratio(b.evals_per_s, base.evals_per_s) for base in result.baselines]
            )  # fmt: skip
    if result.katago is not None:
        for r in result.katago.rows:
            rows.append(
                [f"KataGo ({result.katago.backend})", "katago benchmark",
                 f"{r['threads']} thr (avg {r['avg_batch_size']:.1f})",
                 _f(r["nn_evals_per_s"]), "—", "—", "—", "—", "—", "—", "1.00x"]
                + [_ratio(r["nn_evals_per_s"], base.evals_per_s) for base in result.baselines]
            )  # fmt: skip
    return rows


def side_by_side(result: NNBenchResult) -> list[str]:
    """Markdown lines: evals/s per artifact against batch size, best batch and its multiple of each baseline."""
    head = ["artifact", "target"] + [f"b{b}" for b in result.batches] + ["best (batch)", "GFLOP/s at best"]
    head += [f"best x {b.label}" for b in result.baselines]
    lines = [
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---", "---"] + ["---:"] * (len(head) - 2)) + "|",
    ]
    for a in result.artifacts:
        by_batch = {b.batch: b for b in a.batches}
        best = max(a.batches, key=lambda b: b.evals_per_s)
        cells = [a.name, target_label(a)]
        cells += [_f(by_batch[b].evals_per_s) if b in by_batch else "—" for b in result.batches]
        cells += [f"{best.evals_per_s:.1f} ({best.batch})", _f(best.gflops_per_s, 1)]
        cells += [_ratio(best.evals_per_s, base.evals_per_s) for base in result.baselines]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def format_markdown(result: NNBenchResult) -> str:
    cols = columns(result)
    lines = [
        f"bench nn: {result.model or 'net from the artifacts'}, {result.seconds:g} s per batch size, "
        f"threads {result.threads or 'runtime default'}, {os.cpu_count()} CPUs",
        "",
        "| " + " | ".join(cols) + " |",
        "|" + "|".join(["---", "---"] + ["---:"] * (len(cols) - 2)) + "|",
    ]
    lines += ["| " + " | ".join(r) + " |" for r in table_rows(result)]
    if len(result.batches) > 1 or result.baselines:
        lines += ["", "evals/s against batch size, side by side:", ""] + side_by_side(result)
    if result.katago is not None:
        k = result.katago
        lines += [
            "",
            f"KataGo row: {k.label}; `katago benchmark` with {k.visits} visits on {k.positions} positions, "
            "search threads = batch sizes; its nnEvals/s come from full searches (NN cache, batching across "
            "threads), not raw NN calls. x KataGo = artifact evals/s / KataGo nnEvals/s at threads == batch.",
        ]
    for base in result.baselines:
        lines += [
            "",
            f"Baseline {base.label}: {base.evals_per_s:g} evals/s, quoted, not measured in this run.",
        ]
    if any(b.inflight > 1 for a in result.artifacts for b in a.batches):
        lines += [
            "",
            "async xK: each timed call keeps K batches in flight (evaluate_many on the runtime's throughput "
            "streams); evals/s counts all of them, latency is per call.",
        ]
    for n in result.notes:
        lines += ["", n]
    return "\n".join(lines) + "\n"


def write_plot(result: NNBenchResult, path: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(8, 6), dpi=110)
    labels = [target_label(a) for a in result.artifacts]
    for a, label in zip(result.artifacts, labels):
        pts = sorted((b.batch, b.evals_per_s) for b in a.batches)
        if labels.count(label) > 1:
            label = f"{label}: {a.name}"
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
    if result.katago is not None and result.katago.rows:
        rows = sorted((int(r["threads"]), float(r["nn_evals_per_s"])) for r in result.katago.rows)
        ax.plot(
            [r[0] for r in rows], [r[1] for r in rows], "k--", marker="s",
            label=f"KataGo ({result.katago.backend}), x = search threads",
        )  # fmt: skip
    for base in result.baselines:
        ax.axhline(base.evals_per_s, linestyle=":", color="gray")
        ax.annotate(
            f"{base.label} (quoted)", (min(result.batches), base.evals_per_s), fontsize=8, va="bottom"
        )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(result.batches, [str(b) for b in result.batches])
    ax.set_xlabel("batch size")
    ax.set_ylabel("evals/s")
    ax.set_title(f"bench nn: {result.model or 'artifacts'}, threads {result.threads or 'default'}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
