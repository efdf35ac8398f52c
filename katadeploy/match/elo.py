"""Elo of player A over player B from win/loss/draw counts, with a 95% interval.

Model (BayesElo's, Rao-Kupper with a draw parameter): with ``f(x) = 1 / (1 + 10**(-x / 400))``,

    P(A wins) = f(elo - draw_elo),  P(A loses) = f(-elo - draw_elo),  P(draw) = 1 - P(win) - P(loss),

``draw_elo >= 0``. Both parameters are fitted by maximum likelihood. With no draws ``draw_elo`` is 0 and this is
the plain logistic Elo (60 wins, 40 losses: ``400 log10(60/40) = +70.4``); with draws the model is saturated, so
the estimate is closed-form (:func:`fit`).

Prior: one virtual win and one virtual loss (``prior=1.0`` of each) are added to the counts, which keeps the
estimate and the interval finite for 10-0 or 0-10 and pulls a small sample toward 0, like BayesElo's default prior
of two virtual draws (with a free draw parameter virtual draws alone would not keep 10-0 finite). ``prior=0``
gives the pure maximum-likelihood fit (infinite for a clean sweep).

Interval: profile likelihood. ``elo_ci95`` holds the Elo values whose profile log-likelihood (``draw_elo``
re-maximised at each) lies within ``chi2(1 dof, 0.95) / 2 = 1.92`` of the maximum; it is asymmetric when the
result is lopsided. The ends are found by bisection and capped at +-:data:`ELO_CAP`.

Contract: :func:`fit` takes counts (A's perspective) and returns an :class:`EloEstimate`; it never returns an
infinity or NaN for any non-negative counts with ``prior > 0``. Negative counts raise ``ValueError``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

CHI2_95_1DOF = 3.841458820694124
ELO_CAP = 4000.0
PRIOR = 1.0
_LN10_400 = math.log(10.0) / 400.0


@dataclass(frozen=True)
class EloEstimate:
    """A's Elo over B and its 95% profile-likelihood interval; ``draw_elo`` is the fitted draw parameter."""

    elo: float
    lo: float
    hi: float
    draw_elo: float
    wins: int
    losses: int
    draws: int

    @property
    def games(self) -> int:
        return self.wins + self.losses + self.draws

    def contains(self, value: float) -> bool:
        return self.lo <= value <= self.hi

    def __str__(self) -> str:
        return f"{self.elo:+.1f} Elo [{self.lo:+.1f}, {self.hi:+.1f}]"


def _log_f(x: float) -> float:
    """log f(x) for the logistic-in-Elo f, stable for large |x|."""
    z = -x * _LN10_400  # f = 1/(1+e^z)
    return -(z + math.log1p(math.exp(-z))) if z > 0 else -math.log1p(math.exp(z))


def _loglik(elo: float, draw_elo: float, w: float, l: float, d: float) -> float:
    out = 0.0
    lw, ll = _log_f(elo - draw_elo), _log_f(-elo - draw_elo)
    if w:
        out += w * lw
    if l:
        out += l * ll
    if d:
        pd = 1.0 - math.exp(lw) - math.exp(ll)
        if pd <= 0.0:
            return -math.inf
        out += d * math.log(pd)
    return out


def _profile(elo: float, w: float, l: float, d: float) -> float:
    """max over draw_elo >= 0 of the log-likelihood at ``elo`` (golden-section; unimodal in draw_elo)."""
    if not d:
        return _loglik(elo, 0.0, w, l, d)  # a larger draw_elo only moves probability into draws
    a, b = 0.0, 2.0 * ELO_CAP
    g = (math.sqrt(5.0) - 1.0) / 2.0
    c, e = b - g * (b - a), a + g * (b - a)
    fc, fe = _loglik(elo, c, w, l, d), _loglik(elo, e, w, l, d)
    for _ in range(90):
        if fc >= fe:
            b, e, fe = e, c, fc
            c = b - g * (b - a)
            fc = _loglik(elo, c, w, l, d)
        else:
            a, c, fc = c, e, fe
            e = a + g * (b - a)
            fe = _loglik(elo, e, w, l, d)
    return max(fc, fe, _loglik(elo, 0.0, w, l, d))


def _logit_elo(p: float) -> float:
    return 400.0 * math.log10(p / (1.0 - p))


def fit(wins: int, losses: int, draws: int = 0, prior: float = PRIOR) -> EloEstimate:
    """Maximum-likelihood Elo (A over B) with ``prior`` virtual wins and losses, and its 95% interval."""
    if min(wins, losses, draws) < 0 or prior < 0:
        raise ValueError("counts and prior must be non-negative")
    w, l, d = wins + prior, losses + prior, float(draws)
    n = w + l + d
    if w and l:
        a, b = _logit_elo(w / n), _logit_elo(l / n)  # elo - draw_elo, -elo - draw_elo: the saturated fit
        elo = max(-ELO_CAP, min(ELO_CAP, (a - b) / 2.0))
        draw_elo = max(0.0, -(a + b) / 2.0)
        best = _loglik(elo, draw_elo, w, l, d)
    else:  # prior 0 and a clean sweep (or nothing but draws): the supremum lies at the cap
        elo = 0.0 if w == l else math.copysign(ELO_CAP, w - l)
        draw_elo = 0.0
        best = _profile(elo, w, l, d)
    limit = best - CHI2_95_1DOF / 2.0

    def inside(x: float) -> bool:
        return _profile(x, w, l, d) >= limit

    def bound(direction: float) -> float:
        cap = direction * ELO_CAP
        if (cap - elo) * direction <= 0:
            return cap
        near, step = elo, 50.0
        while True:
            far = elo + direction * step
            if (far - cap) * direction >= 0:
                if inside(cap):
                    return cap
                far = cap
                break
            if not inside(far):
                break
            near, step = far, step * 2.0
        while abs(far - near) > 1e-3:
            mid = (near + far) / 2.0
            if inside(mid):
                near = mid
            else:
                far = mid
        return (near + far) / 2.0

    return EloEstimate(elo, bound(-1.0), bound(1.0), draw_elo, wins, losses, draws)


def score_elo(score: float) -> float:
    """Logistic Elo of an expected score in (0, 1): ``400 log10(s / (1 - s))``."""
    return _logit_elo(score)


def elo_score(elo: float) -> float:
    """Expected score of a logistic Elo difference: ``1 / (1 + 10**(-elo / 400))``."""
    return math.exp(_log_f(elo))
