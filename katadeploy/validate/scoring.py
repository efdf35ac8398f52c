"""Scoring an evaluator against the FP32 reference: the one path ``validate`` and every exporter's candidate
choice (FP16 execution checks, INT8 recipes, mixed-precision searches) go through.

Contract:

- :func:`validate_evaluator` evaluates a :class:`~katadeploy.validate.positions.ValidationSet` with the evaluator
  under test and with the FP32 torch reference (or reuses reference outputs already computed) and returns KataGo
  ``testgpuerror`` :class:`~katadeploy.validate.metrics.Metrics` and the seconds the test evaluator took.
- :class:`CandidateScorer` holds a validation set and its reference outputs, computed once, and scores any
  number of candidate evaluators with :meth:`CandidateScorer.score` → ``(selection_loss, metrics)`` under one
  precision's limits; :meth:`CandidateScorer.sample` is the same on fewer positions, for cheap rankings.
  :func:`calibration_scorer` builds one from a calibration set's split (the torch FP32 net
  as the reference); :func:`summarize` is the JSON record of a candidate's metrics that manifests keep.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from katadeploy.model.desc import ModelDesc
from katadeploy.runtime.base import Evaluator, RawBatch
from katadeploy.validate.metrics import Metrics, compare, selection_loss
from katadeploy.validate.positions import ValidationSet, calibration_split, evaluate


def validate_evaluator(
    test: Evaluator,
    vset: ValidationSet,
    model: ModelDesc,
    *,
    reference: Evaluator | None = None,
    reference_raw: RawBatch | None = None,
    batch: int = 16,
    test_batch: int | None = None,
    progress: bool = False,
) -> tuple[Metrics, float]:
    """Metrics of ``test`` against the torch FP32 reference on ``vset``, and the seconds ``test`` took.

    ``reference_raw`` (outputs of the reference on ``vset``) avoids re-running the reference; otherwise
    ``reference`` (default: a new :class:`~katadeploy.runtime.torch_runtime.TorchEvaluator`) is run.
    """
    if reference_raw is None:
        if reference is None:
            from katadeploy.runtime.torch_runtime import TorchEvaluator

            reference = TorchEvaluator(model)
        reference_raw = evaluate(reference, vset, batch, label="reference torch fp32", progress=progress)
    t0 = time.perf_counter()
    raw = evaluate(test, vset, test_batch or batch, label=getattr(test, "name", "test"), progress=progress)
    seconds = time.perf_counter() - t0
    ref_scale = 1.0 if reference is None else float(getattr(reference, "output_scale", 1.0))
    metrics = compare_on(vset, reference_raw, raw, model, ref_scale=ref_scale,
                         test_scale=float(getattr(test, "output_scale", 1.0)))  # fmt: skip
    return metrics, seconds


def compare_on(
    vset: ValidationSet,
    reference: RawBatch,
    raw: RawBatch,
    model: ModelDesc,
    *,
    ref_scale: float = 1.0,
    test_scale: float = 1.0,
    index: Any = slice(None),
) -> Metrics:
    """:func:`~katadeploy.validate.metrics.compare` of ``raw`` against ``reference`` (both outputs on ``vset``) with
    ``vset``'s legal moves, no-result rule and board mask, over the positions ``index`` selects (default all)."""
    return compare(
        RawBatch(*(a[index] for a in reference)), RawBatch(*(a[index] for a in raw)), vset.legal[index], model,
        ref_scale=ref_scale, test_scale=test_scale, no_result_allowed=vset.no_result_allowed[index],
        on_board=vset.on_board[index],
    )  # fmt: skip


@dataclass
class CandidateScorer:
    """A validation set with its FP32 reference outputs, scoring candidates under ``precision``'s limits."""

    vset: ValidationSet
    reference: RawBatch
    model: ModelDesc
    precision: str
    batch: int = 16

    per_board: bool = False

    def __len__(self) -> int:
        return len(self.vset)

    def sample(self, n: int) -> CandidateScorer:
        """A scorer on ``n`` of these positions, evenly spaced (so every board size's stratum keeps its share),
        reusing the reference outputs; itself when ``n`` is not smaller."""
        if not 0 < n < len(self):
            return self
        index = np.linspace(0, len(self) - 1, n).round().astype(np.int64)
        reference = RawBatch(*(a[index] for a in self.reference))
        return CandidateScorer(self.vset.subset(index), reference, self.model, self.precision, self.batch,
                               self.per_board)  # fmt: skip

    def score(self, evaluator: Evaluator, progress: bool = False) -> tuple[float, Metrics]:
        """``(selection_loss, metrics)`` of ``evaluator`` against the reference (0 loss: comfortably inside).

        With ``per_board``, the statistics are also taken over each board size's positions alone and the worst of
        those and the whole set counts (its metrics are returned): a candidate must pass on 19x19 by itself, not
        only on average with the small boards, where a p99 over hundreds of positions forgives what the oracle's
        60 19x19 positions do not."""
        raw = evaluate(evaluator, self.vset, self.batch, label=getattr(evaluator, "name", "test"), progress=progress)
        scale = float(getattr(evaluator, "output_scale", 1.0))
        groups = [slice(None)]
        if self.per_board:
            area = self.vset.on_board.reshape(len(self.vset), -1).sum(axis=1)
            sizes = np.unique(area)
            groups += [np.flatnonzero(area == a) for a in sizes] if len(sizes) > 1 else []
        worst: tuple[float, float, Metrics] | None = None
        whole: Metrics | None = None
        for idx in groups:
            m = compare_on(self.vset, self.reference, raw, self.model, test_scale=scale, index=idx)
            whole = m if whole is None else whole  # groups[0] is the whole set
            key = (selection_loss(m, self.precision), m.worst(self.precision).ratio, m)
            if worst is None or key[:2] > worst[:2]:
                worst = key
        assert worst is not None and whole is not None
        if worst[2] is not whole:
            worst[2].overall = whole
        return worst[0], worst[2]


def calibration_scorer(
    model: ModelDesc,
    calib: Any,
    precision: str,
    *,
    split: str = "val",
    exact: bool = False,
    limit: int | None = None,
    batch: int = 16,
    threads: int | None = None,
    source: str = "the calibration data",
    progress: bool = False,
    per_board: bool = False,
) -> CandidateScorer:
    """A :class:`CandidateScorer` on up to ``limit`` positions of ``calib``'s ``split`` (full boards only when
    ``exact``), with the torch FP32 net as the reference, run once here; ``per_board``: see
    :meth:`CandidateScorer.score`."""
    from katadeploy.runtime.torch_runtime import TorchEvaluator

    vset = calibration_split(calib, split, model, exact=exact, limit=limit, source=source)
    ref = evaluate(
        TorchEvaluator(model, threads=threads), vset, batch, label="reference torch fp32", progress=progress
    )
    return CandidateScorer(vset, ref, model, precision, batch, per_board)


def finite(x: float) -> float | None:
    """``x`` for JSON: None when it is not finite."""
    return float(x) if math.isfinite(x) else None


def worst_record(metrics: Metrics, precision: str) -> dict[str, Any]:
    """The worst verdict as a record: ``{"metric", "stat", "ratio"}`` (ratio a float, possibly inf or nan)."""
    worst = metrics.worst(precision)
    return {"metric": worst.metric, "stat": worst.stat, "ratio": float(worst.ratio)}


def summarize(metrics: Metrics, precision: str) -> dict[str, Any]:
    """A candidate's record: passed, the worst metric and its limit ratio, p99 and max per metric, top-1."""
    worst = worst_record(metrics, precision)
    return {
        "passed": bool(metrics.passed(precision)),
        "worst": {**worst, "ratio": finite(worst["ratio"])},
        "p99": {m: finite(metrics.stats[m]["p99"]) for m in metrics.metrics},
        "max": {m: finite(metrics.stats[m]["max"]) for m in metrics.metrics},
        "top1": metrics.top1,
    }
