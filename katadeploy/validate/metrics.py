"""KataGo's ``testgpuerror`` error statistics between a reference and a test evaluator, and their limits.

Contract: :func:`compare` takes the raw outputs of the FP32 reference and of the artifact under test for the
same batch (:class:`~katadeploy.runtime.base.RawBatch`, side-to-move perspective), the legal-move masks
``legal [N, H*W+1]`` and the net's :class:`~katadeploy.model.desc.ModelDesc`, post-processes both with
:mod:`katadeploy.model.postprocess` exactly as KataGo's NN evaluator does, and returns :class:`Metrics`: per
position (per on-board point for ownership) absolute errors of

- ``winrate``: ``|0.5*(W-L)_ref - 0.5*(W-L)_test| + |NoResult_ref - NoResult_test|`` (a fraction, shown in %),
- ``lead``, ``score_mean``, ``score_stdev`` (points; stdev is ``sqrt(max(0, E[s^2] - E[s]^2))``),
- ``top_policy``: the change in probability of the reference's most likely move (fraction, shown in %),
- ``policy_kl``: ``KL(ref || test)`` over moves the reference gives probability > 1e-30 (nats),
- ``st_winloss`` / ``st_score``: errors of the short-term winloss/score error heads (model v9+ only),
- ``ownership``: per on-board point error of the tanh'd ownership (fraction, shown in %),

each summarised as average, p90, p99 and max, plus ``top1``, the share of positions where both pick the same
move (informational, no limit). :meth:`Metrics.verdicts` judges p99 and max against :func:`limits_for` a
precision; :func:`selection_loss` folds that into one number for automatic selection (0 = comfortably inside).

Where the numbers come from (KataGo v1.17 source, ``cpp/tests/testnnevalcanary.cpp``, ``GpuErrorStats``,
``checkStats99``/``checkStatsMax`` and ``Tests::runBackendErrorTest``, which ``katago testgpuerror``
(``cpp/command/gputest.cpp``) runs):

- the error definitions above are ``GpuErrorStats::appendStats``;
- percentiles are KataGo's: the ``(n-1)*9//10``-th, ``(n-1)*99//100``-th and last element of the sorted
  errors;
- FP32 vs reference: p99 <= 0.45% winrate, 0.34 points, 0.45% top policy, KL 0.0006; max <= 1.35%, 0.90,
  1.35%, 0.0012 (``checkStats99(0.45, 0.34, 0.45, 0.0006)`` / ``checkStatsMax(1.35, 0.900, 1.35, 0.0012)``);
- reduced precision ("current cfg", FP16 there; we apply it to FP16, INT8 and W8 too): p99 <= 2%, 1.0, 2.5%,
  0.002; max <= 5%, 3.0, 6%, 0.004 (``checkStats99(2.0, 1.00, 2.50, 0.0020)`` / ``checkStatsMax(5.0, 3.00,
  6.00, 0.0040)``);
- derived limits, as KataGo scales them: the points limit applies to lead and score mean, 0.6x of it to score
  stdev and 0.75x to the short-term score error; 1.8x the winrate limit to the short-term winloss error;
  ownership gets 1.75x (p99) and 4x (max) the winrate limit.

One deliberate difference: KataGo's ownership statistic runs over every point of the NN tensor, including
off-board points that are 0 on both sides, which dilutes it for boards smaller than the tensor; given
``on_board`` we count on-board points only (stricter, never looser).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from katadeploy.model.desc import ModelDesc
from katadeploy.model.postprocess import PostProcessParams, policy_logits, policy_probs, value_outputs
from katadeploy.runtime.base import RawBatch

#: metric name -> (label, unit shown, display multiplier)
METRICS: dict[str, tuple[str, str, float]] = {
    "winrate": ("winrate error", "%", 100.0),
    "lead": ("lead error", "pts", 1.0),
    "score_mean": ("score mean error", "pts", 1.0),
    "score_stdev": ("score stdev error", "pts", 1.0),
    "top_policy": ("top policy delta", "%", 100.0),
    "policy_kl": ("policy KL divergence", "nats", 1.0),  # KL(ref || test)
    "st_winloss": ("short-term winloss error error", "%", 100.0),
    "st_score": ("short-term score error error", "pts", 1.0),
    "ownership": ("ownership error", "%", 100.0),
}
STATS = ("avg", "p90", "p99", "max")
CHECKED = ("p99", "max")
#: below this fraction of every limit an artifact counts as comfortably inside them (selection_loss == 0)
COMFORT = 0.5
_KL_FLOOR = np.float32(1e-45)  # smallest float32 subnormal: a test probability that underflowed to 0


@dataclass(frozen=True)
class Limits:
    """KataGo's four base limits (winrate %, points, top-policy %, KL) for p99 and for max."""

    name: str
    p99: tuple[float, float, float, float]
    max: tuple[float, float, float, float]

    def limit(self, metric: str, stat: str) -> float:
        """The limit for ``metric``'s ``stat`` (``p99`` or ``max``) in the metric's own units (fractions)."""
        wr, score, tpd, kl = self.p99 if stat == "p99" else self.max
        own_mult = 1.75 if stat == "p99" else 4.0
        return {
            "winrate": wr / 100.0,
            "lead": score,
            "score_mean": score,
            "score_stdev": score * 0.6,
            "top_policy": tpd / 100.0,
            "policy_kl": kl,
            "st_winloss": wr * 1.8 / 100.0,
            "st_score": score * 0.75,
            "ownership": wr * own_mult / 100.0,
        }[metric]


FP32_LIMITS = Limits("fp32", (0.45, 0.34, 0.45, 0.0006), (1.35, 0.900, 1.35, 0.0012))
REDUCED_LIMITS = Limits("reduced precision", (2.0, 1.00, 2.50, 0.0020), (5.0, 3.00, 6.00, 0.0040))
PRECISIONS = ("fp32", "fp16", "int8", "w8")


def limits_for(precision: str) -> Limits:
    """FP32 artifacts are held to KataGo's FP32 limits; FP16, INT8 and weight-only W8 to its FP16 ones."""
    p = precision.lower()
    if p == "fp32":
        return FP32_LIMITS
    if p in ("fp16", "int8", "w8", "bf16", "int4", "mixed"):
        return REDUCED_LIMITS
    raise ValueError(f"unknown precision {precision!r} (expected one of {', '.join(PRECISIONS)})")


def katago_percentile(sorted_errors: np.ndarray, stat: str) -> float:
    """KataGo's order statistic on sorted errors: the element at ``(n-1)*k//100`` (k = 90, 99, 100)."""
    n = len(sorted_errors)
    if n == 0:
        return float("nan")
    if stat == "avg":
        return float(np.mean(sorted_errors, dtype=np.float64))
    k = {"p90": 90, "p99": 99, "max": 100}[stat]
    return float(sorted_errors[(n - 1) * k // 100])


@dataclass(frozen=True)
class Verdict:
    metric: str
    stat: str
    value: float
    limit: float

    @property
    def ratio(self) -> float:
        return self.value / self.limit if math.isfinite(self.value) else math.inf

    @property
    def passed(self) -> bool:
        return bool(self.value <= self.limit)  # NaN fails


@dataclass
class Metrics:
    """Sorted absolute errors per metric (float64), their summaries and the top-1 agreement. ``overall``: when these
    are the statistics of a subset chosen as the worst (one board size, :meth:`~katadeploy.validate.scoring
    .CandidateScorer.score`), the whole set's, which :func:`error_energy` reads."""

    n: int
    errors: dict[str, np.ndarray]
    top1: float
    stats: dict[str, dict[str, float]] = field(default_factory=dict)
    overall: Metrics | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name, err in self.errors.items():
            err = np.sort(np.asarray(err, dtype=np.float64))
            self.errors[name] = err
            self.stats[name] = {s: katago_percentile(err, s) for s in STATS}

    @property
    def metrics(self) -> tuple[str, ...]:
        return tuple(m for m in METRICS if m in self.errors)

    def verdicts(self, precision: str) -> list[Verdict]:
        lim = limits_for(precision)
        return [Verdict(m, s, self.stats[m][s], lim.limit(m, s)) for m in self.metrics for s in CHECKED]

    def passed(self, precision: str) -> bool:
        return all(v.passed for v in self.verdicts(precision))

    def worst(self, precision: str) -> Verdict:
        """The verdict closest to (or furthest past) its limit."""
        return max(self.verdicts(precision), key=lambda v: v.ratio if not math.isnan(v.ratio) else math.inf)

    def to_json(self, precision: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"positions": self.n, "top1_agreement": self.top1, "metrics": {}}
        for m in self.metrics:
            label, unit, scale = METRICS[m]
            out["metrics"][m] = {"label": label, "unit": unit, "display_scale": scale, **self.stats[m]}
        if precision is not None:
            lim = limits_for(precision)
            out["precision"] = precision
            out["limits_name"] = lim.name
            for v in self.verdicts(precision):
                entry = out["metrics"][v.metric]
                entry[f"{v.stat}_limit"] = v.limit
                entry[f"{v.stat}_pass"] = v.passed
            w = self.worst(precision)
            out["worst"] = {"metric": w.metric, "stat": w.stat, "ratio": w.ratio}
            out["passed"] = self.passed(precision)
            out["selection_loss"] = selection_loss(self, precision)
        return out


def no_result_allowed_from_global(global_: np.ndarray) -> np.ndarray:
    """Per position, whether KataGo keeps the no-result output: simple ko or territory scoring (v7 globals:
    channel 6 marks a non-simple ko rule, channel 9 territory scoring)."""
    g = np.asarray(global_)
    return (g[:, 6] == 0) | (g[:, 9] == 1)


@dataclass
class _Post:
    winrate: np.ndarray  # 0.5 * (W - L)
    noresult: np.ndarray
    lead: np.ndarray
    score_mean: np.ndarray
    score_stdev: np.ndarray
    st_winloss: np.ndarray
    st_score: np.ndarray
    probs: np.ndarray  # [N, H*W+1] float32, illegal -1
    ownership: np.ndarray  # [N, H*W] float64 (tanh'd, side to move)


def _postprocess(
    raw: RawBatch, legal: np.ndarray, params: PostProcessParams, nra: np.ndarray, optimism: float
) -> _Post:
    n = len(raw.value)
    cols = {k: np.zeros(n) for k in ("wr", "nr", "lead", "sm", "ssd", "stwl", "stsc")}
    probs = np.empty((n, legal.shape[1]), dtype=np.float32)
    h, w = raw.policy.shape[-2:]
    for i in range(n):
        v = value_outputs(raw.value[i], raw.score[i], params, True, bool(nra[i]), h * w)
        cols["wr"][i] = 0.5 * (v["whiteWin"] - v["whiteLoss"])
        cols["nr"][i] = v["noResult"]
        cols["lead"][i] = v["whiteLead"]
        cols["sm"][i] = v["whiteScoreSelfplay"]
        sm, sq = float(v["whiteScoreSelfplay"]), float(v["whiteScoreSelfplaySq"])
        cols["ssd"][i] = math.sqrt(max(0.0, sq - sm * sm))
        cols["stwl"][i] = v["shorttermWinlossError"]
        cols["stsc"][i] = v["shorttermScoreError"]
        logits = policy_logits(raw.policy[i], raw.policy_pass[i], params, optimism)
        probs[i] = policy_probs(logits, legal[i], params.output_scale)
    own = np.tanh(raw.ownership.reshape(n, -1).astype(np.float64) * params.output_scale)
    own = own.astype(np.float32).astype(np.float64)  # KataGo stores the ownership map as float
    return _Post(
        cols["wr"], cols["nr"], cols["lead"], cols["sm"], cols["ssd"], cols["stwl"], cols["stsc"], probs, own
    )


def _check_shapes(ref: RawBatch, test: RawBatch, legal: np.ndarray) -> None:
    for name, a, b in zip(RawBatch._fields, ref, test):
        if np.shape(a) != np.shape(b):
            raise ValueError(f"reference and test {name} differ in shape: {np.shape(a)} vs {np.shape(b)}")
    n, h, w = len(ref.value), ref.policy.shape[-2], ref.policy.shape[-1]
    if legal.shape != (n, h * w + 1):
        raise ValueError(f"legal mask has shape {legal.shape}, expected {(n, h * w + 1)}")
    if n == 0:
        raise ValueError("no positions to compare")


def compare(
    ref: RawBatch,
    test: RawBatch,
    legal: np.ndarray,
    model: ModelDesc,
    *,
    ref_scale: float = 1.0,
    test_scale: float = 1.0,
    no_result_allowed: bool | np.ndarray = True,
    on_board: np.ndarray | None = None,
    policy_optimism: float = 0.0,
) -> Metrics:
    """KataGo ``testgpuerror`` statistics of ``test`` against ``ref`` (see the module docstring).

    ``ref_scale``/``test_scale`` are the evaluators' ``output_scale``; ``no_result_allowed`` is per position
    (see :func:`no_result_allowed_from_global`; KataGo drops the no-result output unless the rules have simple
    ko or territory scoring); ``on_board`` (``[N, H, W]`` or ``[N, H*W]``, e.g. ``spatial[:, 0]``) restricts
    the ownership statistic to on-board points.
    """
    legal = np.asarray(legal, dtype=bool)
    _check_shapes(ref, test, legal)
    n = len(ref.value)
    nra = np.broadcast_to(np.asarray(no_result_allowed, dtype=bool), (n,))
    a = _postprocess(ref, legal, PostProcessParams.of(model, ref_scale), nra, policy_optimism)
    b = _postprocess(test, legal, PostProcessParams.of(model, test_scale), nra, policy_optimism)

    errors: dict[str, np.ndarray] = {
        "winrate": np.abs(a.winrate - b.winrate) + np.abs(a.noresult - b.noresult),
        "lead": np.abs(a.lead - b.lead),
        "score_mean": np.abs(a.score_mean - b.score_mean),
        "score_stdev": np.abs(a.score_stdev - b.score_stdev),
    }
    top = np.argmax(a.probs, axis=1)  # first maximum, as KataGo's strict '>' scan
    rows = np.arange(n)
    p_ref = a.probs.astype(np.float64)
    p_test = b.probs.astype(np.float64)
    errors["top_policy"] = np.abs(p_ref[rows, top] - p_test[rows, top])
    keep = p_ref > 1e-30
    safe_ref = np.where(keep, p_ref, 1.0)
    safe_test = np.where(keep, np.maximum(p_test, _KL_FLOOR), 1.0)
    errors["policy_kl"] = np.sum(np.where(keep, p_ref * (np.log(safe_ref) - np.log(safe_test)), 0.0), axis=1)
    if model.version >= 9:
        errors["st_winloss"] = np.abs(a.st_winloss - b.st_winloss)
        errors["st_score"] = np.abs(a.st_score - b.st_score)
    own_err = np.abs(a.ownership - b.ownership)
    if on_board is not None:
        mask = np.asarray(on_board).reshape(n, -1) > 0.5
        if mask.shape != own_err.shape:
            raise ValueError(f"on_board mask has shape {np.shape(on_board)}, expected {own_err.shape}")
        own_err = own_err[mask]
    errors["ownership"] = own_err.reshape(-1)
    top1 = float(np.mean(np.argmax(b.probs, axis=1) == top))
    for name, err in errors.items():
        errors[name] = np.where(np.isfinite(err), err, np.inf)  # NaN outputs must fail, not vanish in sorting
    return Metrics(n, errors, top1)


def error_energy(metrics: Metrics, precision: str) -> float:
    """A smooth, additive error budget: the sum over metrics of the mean squared error in units of its p99 limit
    for ``precision`` (``mean((e / limit)^2)``), policy KL counted as ``mean(KL) / limit`` since KL is already
    quadratic in the logit error. Every term is quadratic in small output errors, so the errors of independent
    sources (the rounding noise of different layers) add in expectation: unlike the p99/max verdicts, which a
    128-position split decides by one or two positions, this ranks layers by what they contribute on average
    (``katadeploy.export.int8_fallback``, ``rank="energy"``). A term near 1 means a typical error near the p99
    limit. inf for non-finite outputs. Read over the whole set (``metrics.overall`` when it is there), not a
    worst subset, which changes from one graph to the next."""
    metrics = metrics.overall or metrics
    lim = limits_for(precision)
    total = 0.0
    for m in metrics.metrics:
        err = metrics.errors[m]
        if not np.all(np.isfinite(err)):
            return math.inf
        scaled = err / lim.limit(m, "p99")
        total += float(np.mean(scaled)) if m == "policy_kl" else float(np.mean(scaled * scaled))
    return total


def selection_loss(metrics: Metrics, precision: str, comfort: float = COMFORT) -> float:
    """One number for choosing between candidate artifacts: 0 while every checked statistic (p99 and max of
    every metric) is at most ``comfort`` times its KataGo limit for ``precision``, otherwise the worst
    ``value/limit`` ratio minus ``comfort`` (so > ``1 - comfort`` means a FAIL); lower is better, inf for
    non-finite outputs."""
    worst = metrics.worst(precision).ratio
    if not math.isfinite(worst):
        return math.inf
    return max(0.0, worst - comfort)
