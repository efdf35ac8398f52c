"""The result of validating one artifact, and its text table, Markdown, JSON and plot.

Contract: a :class:`ValidationResult` holds what was compared (artifact, target, precision, source net,
tensor, positions) and the :class:`~katadeploy.validate.metrics.Metrics`. :func:`format_table` is the
plain-text table ``katadeploy validate`` prints (one row per metric: avg, p90, p99 and max in display units,
the p99 and max limits and PASS/FAIL). :func:`write_report` writes ``validate-<artifact>.md``, ``.json`` and
``.png`` (the cumulative distribution of every metric's errors on a log axis with its p99 and max limits; Agg
backend) into a directory and returns the paths written. Without matplotlib the PNG is skipped with a note in
the Markdown and on stderr.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from katadeploy.artifact import int8_label
from katadeploy.validate.metrics import CHECKED, METRICS, Metrics, limits_for

SOURCE_NOTE = (
    "Statistics and limits follow KataGo's `testgpuerror` (cpp/tests/testnnevalcanary.cpp: GpuErrorStats, "
    "checkStats99/checkStatsMax). Ownership counts on-board points only (KataGo also counts off-board points "
    "of a larger tensor, which are 0 on both sides)."
)


@dataclass
class ValidationResult:
    artifact: str  # display name: file name of the artifact, or "torch"
    target: str
    precision: str  # precision whose limits were applied
    model: str
    model_sha256: str
    positions: str
    nn_x: int
    nn_y: int
    exact: bool
    batch: int
    metrics: Metrics
    seconds: float = 0.0
    skipped: int = 0
    notes: list[str] = field(default_factory=list)
    #: the manifest's ``quantization`` record for INT8 artifacts (``int8_mac_fraction``, recipe, float layers)
    quantization: dict[str, Any] | None = None

    @property
    def passed(self) -> bool:
        return self.metrics.passed(self.precision)

    @property
    def slug(self) -> str:
        return "".join(c if c.isalnum() or c in "-_." else "_" for c in self.artifact)

    def to_json(self) -> dict[str, Any]:
        return {
            **self.metrics.to_json(self.precision),
            "artifact": self.artifact,
            "target": self.target,
            "precision": self.precision,
            "model": {"name": self.model, "sha256": self.model_sha256},
            "positions": {"source": self.positions, "count": self.metrics.n, "skipped": self.skipped},
            "tensor": {"nn_x": self.nn_x, "nn_y": self.nn_y, "exact": self.exact},
            "batch": self.batch,
            "seconds": self.seconds,
            "notes": self.notes,
            "int8_mac_fraction": (self.quantization or {}).get("int8_mac_fraction"),
            "quantization": self.quantization,
            "method": SOURCE_NOTE,
        }


def _fmt(x: float, scale: float) -> str:
    if not math.isfinite(x):
        return "inf" if x > 0 else "nan"
    v = x * scale
    if abs(v) < 5e-7:  # e.g. a KL of -1e-9 from float rounding
        v = 0.0
    return f"{v:.6f}" if abs(v) < 0.01 else f"{v:.5f}" if abs(v) < 10 else f"{v:.3f}"


def _rows(result: ValidationResult) -> list[list[str]]:
    m, lim = result.metrics, limits_for(result.precision)
    rows = []
    verdicts = {(v.metric, v.stat): v for v in m.verdicts(result.precision)}
    for name in m.metrics:
        label, unit, scale = METRICS[name]
        st = m.stats[name]
        ok = all(verdicts[(name, s)].passed for s in CHECKED)
        rows.append(
            [label, unit, _fmt(st["avg"], scale), _fmt(st["p90"], scale), _fmt(st["p99"], scale),
             _fmt(lim.limit(name, "p99"), scale), _fmt(st["max"], scale), _fmt(lim.limit(name, "max"), scale),
             "PASS" if ok else "FAIL"]
        )  # fmt: skip
    return rows


HEADER = ["metric", "unit", "avg", "p90", "p99", "p99 limit", "max", "max limit", "result"]


def _headline(result: ValidationResult) -> str:
    lim = limits_for(result.precision)
    return (
        f"{result.artifact} ({result.target}) vs torch FP32 on {result.metrics.n} positions "
        f"({result.positions}), {result.nn_x}x{result.nn_y}{' exact' if result.exact else ''} tensor, "
        f"{result.precision} -> KataGo {lim.name} limits"
    )


def _verdict_line(result: ValidationResult) -> str:
    w = result.metrics.worst(result.precision)
    label = METRICS[w.metric][0]
    share = int8_label(result.quantization)
    share = f" [{share}]" if share else ""
    if result.passed:
        return f"PASS{share}: closest to its limit is {label} {w.stat} at {w.ratio:.3g}x of the limit"
    failed = sum(not v.passed for v in result.metrics.verdicts(result.precision))
    return (
        f"FAIL{share}: {failed} check(s) over the limit; worst is {label} {w.stat} at {w.ratio:.3g}x of the limit"
    )


def _top1(result: ValidationResult) -> str:
    m = result.metrics
    return f"top-1 move agreement: {100 * m.top1:.1f}% ({round(m.top1 * m.n)}/{m.n})"


def format_table(result: ValidationResult) -> str:
    rows = [HEADER, *_rows(result)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    lines = [_headline(result)]
    for r in rows:
        lines.append(
            "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
        )
    lines.append(_top1(result))
    lines.append(_verdict_line(result))
    return "\n".join(lines)


def markdown(result: ValidationResult, plot: str | None) -> str:
    out = [
        f"# katadeploy validate: {result.artifact}",
        "",
        f"- target: `{result.target}`, precision `{result.precision}`",
        f"- net: `{result.model}` (sha256 `{result.model_sha256[:16]}…`)",
        f"- positions: {result.metrics.n} from {result.positions}"
        + (f" ({result.skipped} skipped: they do not fit the {result.nn_x}x{result.nn_y} tensor)" if result.skipped else ""),
        f"- tensor: {result.nn_x}x{result.nn_y}{' (exact board)' if result.exact else ''}, "
        f"batch {result.batch}",
        f"- evaluation time: {result.seconds:.2f} s",
        "",
        f"**{_verdict_line(result)}**",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "|".join(["---"] * 2 + ["---:"] * 6 + [":---:"]) + "|",
    ]
    for r in _rows(result):
        out.append("| " + " | ".join(r) + " |")
    out += ["", _top1(result), ""]
    out += [f"- {n}" for n in result.notes]
    if result.notes:
        out.append("")
    if plot:
        out += [f"![error distributions]({plot})", ""]
    out += [SOURCE_NOTE, ""]
    return "\n".join(out)


def write_plot(result: ValidationResult, path: Path) -> Path | None:
    """CDF of each metric's errors with its p99/max limits; None (and a note) without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        note = "matplotlib is not installed: no plot (pip install matplotlib)"
        result.notes.append(note)
        print(f"katadeploy: {note}", file=sys.stderr)
        return None
    m, lim = result.metrics, limits_for(result.precision)
    names = m.metrics
    cols = 3
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        label, unit, scale = METRICS[name]
        p99, mx = lim.limit(name, "p99") * scale, lim.limit(name, "max") * scale
        lo = p99 * 1e-4  # log axis: smaller errors (and zeros) are drawn at its left edge
        err = m.errors[name] * scale
        finite = err[np.isfinite(err)]
        hi = max(mx, float(finite.max()) if len(finite) else 0.0) * 1.5
        err = np.clip(np.where(np.isfinite(err), err, hi), lo, hi)
        y = np.arange(1, len(err) + 1) / len(err)
        ax.step(np.concatenate([[lo], err]), np.concatenate([[0.0], y]), where="post", color="tab:blue",
                label="errors (CDF)")  # fmt: skip
        ax.axvline(p99, color="tab:orange", ls="--", label=f"p99 limit {p99:.4g}")
        ax.axvline(mx, color="tab:red", ls=":", label=f"max limit {mx:.4g}")
        ax.axhline(0.99, color="grey", lw=0.5)
        ax.set_xscale("log")
        ax.set_xlim(lo, hi)
        ax.set_ylim(0, 1.01)
        ok = all(v.passed for v in m.verdicts(result.precision) if v.metric == name)
        ax.set_title(f"{label} [{'PASS' if ok else 'FAIL'}]", fontsize=9, color="black" if ok else "red")
        ax.set_xlabel(unit, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6, loc="lower right")
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    fig.suptitle(f"{result.artifact}: error CDF vs torch FP32 ({result.precision} limits)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _finite(obj: Any) -> Any:
    """Strict JSON: non-finite floats become the strings "inf", "-inf" or "nan"."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def write_report(result: ValidationResult, out_dir: str | Path) -> dict[str, Path]:
    """Write ``validate-<artifact>.{png,md,json}`` into ``out_dir``; return the paths written by kind."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    base = f"validate-{result.slug}"
    paths: dict[str, Path] = {}
    png = write_plot(result, out / f"{base}.png")
    if png is not None:
        paths["png"] = png
    md = out / f"{base}.md"
    md.write_text(markdown(result, png.name if png is not None else None), encoding="utf-8")
    paths["md"] = md
    js = out / f"{base}.json"
    js.write_text(json.dumps(_finite(result.to_json()), indent=2) + "\n", encoding="utf-8")
    paths["json"] = js
    return paths
