"""Elo and its interval (katadeploy.match.elo) against closed forms and brute-force likelihood grids."""

from __future__ import annotations

import math

import numpy as np
import pytest

from katadeploy.match.elo import CHI2_95_1DOF, ELO_CAP, elo_score, fit, score_elo


def _f(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + 10.0 ** (-x / 400.0))


def _grid_interval(w: float, l: float, d: float) -> tuple[float, float, float]:
    """(argmax, lo, hi) of the profile log-likelihood on a fine grid (draw_elo profiled on its own grid)."""
    elos = np.arange(-800.0, 800.0, 0.05) if d == 0 else np.arange(-250.0, 250.0, 0.1)
    if d == 0:
        ll = w * np.log(_f(elos)) + l * np.log(_f(-elos))
    else:
        e = np.arange(0.0, 700.0, 0.25)[:, None]
        pw, pl = _f(elos[None, :] - e), _f(-elos[None, :] - e)
        pd = np.clip(1.0 - pw - pl, 1e-300, None)
        ll = (w * np.log(pw) + l * np.log(pl) + d * np.log(pd)).max(axis=0)
    inside = elos[ll >= ll.max() - CHI2_95_1DOF / 2]
    return float(elos[ll.argmax()]), float(inside.min()), float(inside.max())


def test_sixty_forty_without_draws_is_about_plus_70():
    pure = fit(60, 40, 0, prior=0)
    assert pure.elo == pytest.approx(400 * math.log10(60 / 40), abs=1e-9)  # +70.4
    with_prior = fit(60, 40)
    assert with_prior.elo == pytest.approx(400 * math.log10(61 / 41), abs=1e-9)  # +69.0: the prior pulls to 0
    assert 60 < with_prior.elo < 75 and with_prior.draw_elo == 0.0


@pytest.mark.parametrize("counts", [(60, 40, 0), (7, 3, 0), (200, 180, 0), (1, 0, 0)])
def test_interval_is_the_profile_likelihood_interval(counts):
    w, l, d = counts
    est = fit(w, l, d)
    top, lo, hi = _grid_interval(w + 1, l + 1, d)
    assert est.elo == pytest.approx(top, abs=0.05)
    assert est.lo == pytest.approx(lo, abs=0.1) and est.hi == pytest.approx(hi, abs=0.1)
    assert est.lo < est.elo < est.hi


def test_sixty_forty_interval_matches_the_normal_approximation_roughly():
    est = fit(60, 40)
    se = 400 / math.log(10) / (0.6 * 0.4) * math.sqrt(0.6 * 0.4 / 100)  # delta method on the score
    assert (est.hi - est.lo) / 2 == pytest.approx(1.96 * se, rel=0.05)
    assert 0 < est.lo < 10 and 130 < est.hi < 150  # just excludes 0


@pytest.mark.parametrize("counts", [(40, 30, 30), (5, 2, 13), (12, 20, 3)])
def test_draws_match_a_two_parameter_grid(counts):
    w, l, d = counts
    est = fit(w, l, d)
    top, lo, hi = _grid_interval(w + 1, l + 1, d)
    assert est.elo == pytest.approx(top, abs=0.1)
    assert est.lo == pytest.approx(lo, abs=0.3) and est.hi == pytest.approx(hi, abs=0.3)
    assert est.draw_elo > 0


@pytest.mark.parametrize("counts", [(50, 50, 0), (30, 30, 40), (0, 0, 0), (0, 0, 12), (1000, 1000, 0)])
def test_symmetric_results_are_centred_on_zero(counts):
    est = fit(*counts)
    assert est.elo == pytest.approx(0.0, abs=1e-9)
    assert est.lo == pytest.approx(-est.hi, abs=1e-3) and est.contains(0.0)


def test_clean_sweeps_stay_finite():
    up, down = fit(10, 0), fit(0, 10)
    for est in (up, down):
        assert all(math.isfinite(v) for v in (est.elo, est.lo, est.hi, est.draw_elo))
    assert up.lo > 0 and up.elo == pytest.approx(-down.elo) and up.hi == pytest.approx(-down.lo)
    capped = fit(10, 0, prior=0)  # pure ML: the supremum lies at the cap, never an infinity
    assert capped.elo == ELO_CAP and capped.hi == ELO_CAP and 0 < capped.lo < ELO_CAP


def test_interval_shrinks_like_one_over_root_n():
    small, large = fit(100, 100), fit(10000, 10000)
    assert (small.hi - small.lo) / (large.hi - large.lo) == pytest.approx(10.0, rel=0.02)


def test_score_and_elo_are_inverses_and_bad_counts_raise():
    for elo in (-300.0, -20.0, 0.0, 70.0, 500.0):
        assert score_elo(elo_score(elo)) == pytest.approx(elo)
    assert elo_score(0.0) == 0.5
    with pytest.raises(ValueError):
        fit(-1, 3)
