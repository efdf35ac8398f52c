"""Sequential probability ratio test for a match: stop as soon as the games decide between two Elo hypotheses.

Test: fishtest's generalized SPRT (GSPRT). H0 says A's logistic Elo over B is ``elo0``, H1 says ``elo1``; an
Elo maps to an expected score ``s = 1 / (1 + 10**(-elo / 400))``. The outcome distribution is estimated from the
data (multinomial MLE) and, for each hypothesis, re-weighted to the closest distribution whose mean score is
``s`` (maximum likelihood under that constraint, :func:`constrained_mle`); the log-likelihood ratio of the two is
``LLR = N * sum_i p_i * log(p1_i / p0_i)``. With two outcomes (no draws) this is exactly Wald's binomial SPRT.

Outcomes: a match is played in colour-swapped pairs (each opening once with A as Black, once as White), so the
test uses the pentanomial distribution of pair scores (0, 1/4, 1/2, 3/4, 1 of A's two games), as fishtest does;
only complete pairs count (:func:`pentanomial`). :func:`trinomial` gives the per-game alternative.

Bounds: Wald's, ``log(beta / (1 - alpha))`` and ``log((1 - beta) / alpha)`` (+-2.94 for the default 5%/5%).
When all outcomes fall in one category no constrained distribution exists; then every empty category gets
``1e-3`` of a count (fishtest's regularisation), only in that case.

Contract: :func:`sprt` returns an :class:`SprtResult` whose ``verdict`` is ``"H1"`` (LLR >= upper), ``"H0"``
(LLR <= lower) or ``None`` (keep playing). :func:`parse_sprt` reads ``"elo0,elo1"`` (elo0 < elo1) or raises
:class:`~katadeploy.errors.KatadeployError`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from katadeploy.errors import KatadeployError
from katadeploy.match.elo import elo_score

REGULARIZE = 1e-3


@dataclass(frozen=True)
class SprtResult:
    elo0: float
    elo1: float
    alpha: float
    beta: float
    llr: float
    lower: float
    upper: float
    samples: int  # pairs (pentanomial) or games (trinomial) in the test

    @property
    def verdict(self) -> str | None:
        if self.llr >= self.upper:
            return "H1"
        if self.llr <= self.lower:
            return "H0"
        return None

    def to_dict(self) -> dict[str, object]:
        return {
            "elo0": self.elo0, "elo1": self.elo1, "alpha": self.alpha, "beta": self.beta, "llr": self.llr,
            "lower": self.lower, "upper": self.upper, "samples": self.samples, "verdict": self.verdict,
        }  # fmt: skip


def parse_sprt(text: str) -> tuple[float, float]:
    try:
        elo0, elo1 = (float(x) for x in text.split(","))
    except ValueError:
        raise KatadeployError(f"--sprt takes elo0,elo1 (e.g. -10,0), got {text!r}") from None
    if not (math.isfinite(elo0) and math.isfinite(elo1)) or elo0 >= elo1:
        raise KatadeployError(f"--sprt {text}: elo0 must be smaller than elo1, both finite")
    return elo0, elo1


def bounds(alpha: float, beta: float) -> tuple[float, float]:
    if not (0 < alpha < 1 and 0 < beta < 1):
        raise ValueError("alpha and beta must lie in (0, 1)")
    return math.log(beta / (1 - alpha)), math.log((1 - beta) / alpha)


def constrained_mle(scores: Sequence[float], probs: Sequence[float], s: float) -> list[float]:
    """The distribution ``q_i = p_i / (1 + lam (a_i - s))`` with mean score ``s`` (the MLE under that constraint);
    ``lam`` solves ``sum p_i (a_i - s) / (1 + lam (a_i - s)) = 0`` (decreasing in ``lam``) by bisection."""
    support = [(a - s, p) for a, p in zip(scores, probs) if p > 0]
    hi_dev = max(x for x, _ in support)
    lo_dev = min(x for x, _ in support)
    if not lo_dev < 0 < hi_dev:
        raise ValueError("the mean score must lie strictly inside the observed outcomes")
    lo, hi = -1.0 / hi_dev, -1.0 / lo_dev  # 1 + lam x > 0 for every x in the support
    for _ in range(200):
        lam = (lo + hi) / 2.0
        g = sum(p * x / (1.0 + lam * x) for x, p in support)
        if g > 0:
            lo = lam
        else:
            hi = lam
    lam = (lo + hi) / 2.0
    return [p / (1.0 + lam * (a - s)) if p > 0 else 0.0 for a, p in zip(scores, probs)]


def llr(counts: Sequence[float], elo0: float, elo1: float) -> float:
    """GSPRT log-likelihood ratio of H1 over H0 for outcome counts on equally spaced scores 0..1."""
    k = len(counts)
    scores = [i / (k - 1) for i in range(k)]
    n = float(sum(counts))
    if n <= 0:
        return 0.0
    s0, s1 = elo_score(elo0), elo_score(elo1)
    seen = [a for a, c in zip(scores, counts) if c > 0]
    if not (min(seen) < min(s0, s1) and max(seen) > max(s0, s1)):
        counts = [c if c > 0 else REGULARIZE for c in counts]
        n = float(sum(counts))
    probs = [c / n for c in counts]
    p0 = constrained_mle(scores, probs, s0)
    p1 = constrained_mle(scores, probs, s1)
    return n * sum(p * math.log(q1 / q0) for p, q0, q1 in zip(probs, p0, p1) if p > 0)


def trinomial(scores: Iterable[float]) -> list[int]:
    """[losses, draws, wins] of A from per-game scores (0, 0.5, 1)."""
    out = [0, 0, 0]
    for s in scores:
        out[int(round(2 * s))] += 1
    return out


def pentanomial(pair_scores: Iterable[tuple[float, float]]) -> list[int]:
    """Counts of A's total score over complete pairs: index ``2 * (s1 + s2)`` in 0..4."""
    out = [0, 0, 0, 0, 0]
    for a, b in pair_scores:
        out[int(round(2 * (a + b)))] += 1
    return out


def sprt(
    counts: Sequence[int], elo0: float, elo1: float, alpha: float = 0.05, beta: float = 0.05
) -> SprtResult:
    """The test on trinomial or pentanomial ``counts`` (see the module docstring)."""
    lower, upper = bounds(alpha, beta)
    return SprtResult(elo0, elo1, alpha, beta, llr(counts, elo0, elo1), lower, upper, int(sum(counts)))
