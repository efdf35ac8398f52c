"""The GSPRT (katadeploy.match.sprt): Wald's binomial test as a special case, decisions on synthetic streams."""

from __future__ import annotations

import math

import numpy as np
import pytest

from katadeploy.errors import KatadeployError
from katadeploy.match.elo import elo_score
from katadeploy.match.sprt import bounds, constrained_mle, llr, parse_sprt, pentanomial, sprt, trinomial


def test_without_draws_it_is_walds_binomial_sprt():
    s0, s1 = elo_score(0.0), elo_score(50.0)
    for wins, losses in ((70, 30), (12, 19), (1, 1)):
        expected = wins * math.log(s1 / s0) + losses * math.log((1 - s1) / (1 - s0))
        assert llr([losses, 0, wins], 0.0, 50.0) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_constrained_mle_has_the_target_mean():
    scores = [0, 0.25, 0.5, 0.75, 1.0]
    probs = [0.1, 0.2, 0.3, 0.25, 0.15]
    for s in (0.3, 0.5, 0.62):
        q = constrained_mle(scores, probs, s)
        assert sum(q) == pytest.approx(1.0, abs=1e-9)
        assert sum(a * p for a, p in zip(scores, q)) == pytest.approx(s, abs=1e-9)
    assert constrained_mle(scores, probs, sum(a * p for a, p in zip(scores, probs))) == pytest.approx(probs)


def test_bounds_and_verdicts():
    lower, upper = bounds(0.05, 0.05)
    assert lower == pytest.approx(-math.log(19)) and upper == pytest.approx(math.log(19))
    assert sprt([0, 0, 500], 0.0, 50.0).verdict == "H1"  # a clean sweep (regularised, still finite)
    assert sprt([500, 0, 0], 0.0, 50.0).verdict == "H0"
    assert sprt([3, 0, 3], 0.0, 50.0).verdict is None
    assert sprt([0, 0, 0], 0.0, 50.0).llr == 0.0


def _stream(true_elo: float, pairs: int, seed: int) -> list[tuple[float, float]]:
    rng = np.random.default_rng(seed)
    p = elo_score(true_elo)
    return [(float(rng.random() < p), float(rng.random() < p)) for _ in range(pairs)]


def _decide(true_elo: float, seed: int) -> tuple[str | None, int]:
    games = _stream(true_elo, 3000, seed)
    for n in range(1, len(games) + 1):
        r = sprt(pentanomial(games[:n]), 0.0, 50.0)
        if r.verdict:
            return r.verdict, n
    return None, len(games)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_synthetic_streams_are_decided_the_right_way(seed):
    verdict, n = _decide(120.0, seed)
    assert verdict == "H1" and n < 400
    verdict, n = _decide(-70.0, seed)
    assert verdict == "H0" and n < 400


def test_counting_helpers_and_parsing():
    assert trinomial([1, 0.5, 0, 1]) == [1, 1, 2]
    assert pentanomial([(1, 1), (0, 1), (0.5, 0), (0, 0)]) == [1, 1, 1, 0, 1]
    assert parse_sprt("-10,0") == (-10.0, 0.0)
    for bad in ("10", "5,5", "a,b", "10,0", "nan,1"):
        with pytest.raises(KatadeployError):
            parse_sprt(bad)
