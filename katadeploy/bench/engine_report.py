"""Render a ``bench engine --backend`` comparison: a Markdown report and a plot.

Contract
--------
- :func:`format_markdown`: a header (net, visits, positions, batch size, config, OpenCL device, CPU count), one
  table row per engine and thread count - visits/s, playouts/s, NN evals/s, average batch, the search overhead
  in CPU and wall ms per playout (katadeploy's engine only; KataGo reports no timing: ``n/a``) and visits/s as a
  multiple of KataGo's at the same thread count - then the method and the notes.
- :func:`write_plot` ``(result, path)``: a PNG with visits/s against search threads (one line per engine, KataGo
  dashed) and the overhead per playout against search threads for katadeploy's engines. Needs matplotlib (a core
  dependency); written headless (Agg).
"""

from __future__ import annotations

import os
from pathlib import Path

from katadeploy.bench.engine_compare import METHOD, EngineComparison

COLUMNS = ["engine", "threads", "visits/s", "playouts/s", "nnEvals/s", "avg batch", "overhead CPU ms/playout",
           "overhead wall ms/playout", "x KataGo visits/s"]  # fmt: skip


def _f(x: float | None, digits: int = 1) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def table_rows(result: EngineComparison) -> list[list[str]]:
    kg = result.katago
    kg_by_t = {r.threads: r.visits_per_s for r in kg.results} if kg is not None else {}
    rows = []
    for e in result.engines:
        for r in e.results:
            ref = kg_by_t.get(r.threads)
            ratio = "—" if e is kg or not ref else f"{r.visits_per_s / ref:.2f}x"
            rows.append(
                [
                    e.label,
                    str(r.threads),
                    _f(r.visits_per_s),
                    _f(r.playouts_per_s),
                    _f(r.nn_evals_per_s),
                    _f(r.avg_batch_size, 2),
                    _f(r.overhead_cpu_ms_per_playout, 3),
                    _f(r.overhead_wall_ms_per_playout, 3),
                    ratio,
                ]
            )
    return rows


def format_markdown(result: EngineComparison) -> str:
    lines = [
        f"# bench engine: {Path(result.net).name}, {result.visits} visits, {len(result.position_ids)} positions",
        "",
        f"- started {result.started_at}, {result.wall_seconds:.0f} s wall, {os.cpu_count()} CPUs",
        f"- nnMaxBatchSize {result.batch_size}; config: {result.config or 'katadeploy minimal analysis config'}",
    ]
    if result.opencl:
        lines.append(f"- OpenCL: {result.opencl}")
    for e in result.engines:
        lines.append(f"- {e.label}: {e.version}, -model {e.model}")
    lines += ["", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(result)]
    lines += ["", "Method: " + METHOD]
    if result.notes:
        lines += ["", "Notes:"] + [f"- {n}" for n in result.notes]
    return "\n".join(lines) + "\n"


def write_plot(result: EngineComparison, path: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 5), dpi=110)
    for e in result.engines:
        pts = sorted((r.threads, r.visits_per_s) for r in e.results)
        style = "k--" if e.kind == "katago" else "-"
        ax.plot([p[0] for p in pts], [p[1] for p in pts], style, marker="s" if e.kind == "katago" else "o",
                label=e.label)  # fmt: skip
        over = sorted(
            (r.threads, r.overhead_cpu_ms_per_playout)
            for r in e.results
            if r.overhead_cpu_ms_per_playout is not None
        )
        if over:
            ax2.plot([p[0] for p in over], [p[1] for p in over], marker="o", label=e.label)
    for a in (ax, ax2):
        a.set_xscale("log", base=2)
        a.set_xticks(result.threads, [str(t) for t in result.threads])
        a.set_xlabel("search threads")
        a.grid(True, which="both", alpha=0.3)
    ax.set_ylabel("visits/s")
    ax.set_ylim(bottom=0)
    ax.set_title(f"{Path(result.net).name}, {result.visits} visits")
    ax2.set_ylabel("search overhead, CPU ms per playout")
    ax2.set_title("katadeploy search overhead (non-NN CPU)")
    ax2.set_ylim(bottom=0)
    ax.legend(fontsize=7)
    if ax2.lines:
        ax2.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
