"""Utilities of search values, as ``Search::getResultUtility``/``getScoreUtility``/``computeWeightFromNNOutput``.

Contract: a :class:`Utility` is bound to one search: its params, the root board's ``sqrt(x*y)`` and the dynamic
score centre (:func:`dynamic_score_center`, ``Search::computeRootValues``). All values are from White's
perspective. ``score_utility`` is ``staticScoreUtilityFactor * E[sv(score; centre 0, scale 2)] +
dynamicScoreUtilityFactor * E[sv(score; recentScoreCenter, dynamicScoreCenterScale)]`` with the expectation taken
under a normal of the given mean and ``sqrt(meanSq - mean^2)`` stdev. ``weight_from_nn`` is the uncertainty weight
``uncertaintyCoeff / (u^uncertaintyExponent + uncertaintyCoeff / uncertaintyMaxWeight)`` with ``u`` the
short-term error of the utility, or 1 when uncertainty weighting is off or the net has no short-term error heads.
"""

from __future__ import annotations

import math

from katadeploy.search.params import SearchParams
from katadeploy.search.scorevalue import expected_white_score_value, score_stdev, score_value_derivative


def dynamic_score_center(expected_score: float, params: SearchParams, x_size: int, y_size: int) -> float:
    """``recentScoreCenter``: the expected score shrunk towards 0 by ``dynamicScoreCenterZeroWeight``, capped."""
    center = expected_score * (1.0 - params.dynamic_score_center_zero_weight)
    cap = math.sqrt(x_size * y_size) * params.dynamic_score_center_scale
    if center > expected_score + cap:
        center = expected_score + cap
    if center < expected_score - cap:
        center = expected_score - cap
    return center


class Utility:
    __slots__ = ("params", "sqrt_board_area", "center", "has_uncertainty", "_wl", "_static", "_dynamic",
                 "_dyn_scale", "_nr")  # fmt: skip

    def __init__(
        self, params: SearchParams, sqrt_board_area: float, center: float, has_shortterm_error: bool
    ):
        self.params = params
        self.sqrt_board_area = sqrt_board_area
        self.center = center
        self.has_uncertainty = params.use_uncertainty and has_shortterm_error
        self._wl = params.win_loss_utility_factor
        self._static = params.static_score_utility_factor
        self._dynamic = params.dynamic_score_utility_factor
        self._dyn_scale = params.dynamic_score_center_scale
        self._nr = params.no_result_utility_for_white

    def result_utility(self, win_loss: float, no_result: float) -> float:
        return win_loss * self._wl + no_result * self._nr

    def score_utility(self, score_mean: float, score_mean_sq: float) -> float:
        sd = score_stdev(score_mean, score_mean_sq)
        a = self.sqrt_board_area
        static = expected_white_score_value(score_mean, sd, 0.0, 2.0, a) if self._static else 0.0
        dynamic = (
            expected_white_score_value(score_mean, sd, self.center, self._dyn_scale, a)
            if self._dynamic
            else 0.0
        )
        return static * self._static + dynamic * self._dynamic

    def score_utility_diff(self, score_mean: float, score_mean_sq: float, delta: float) -> float:
        sd = score_stdev(score_mean, score_mean_sq)
        a = self.sqrt_board_area
        ev = expected_white_score_value
        s = ev(score_mean + delta, sd, 0.0, 2.0, a) - ev(score_mean, sd, 0.0, 2.0, a)
        d = ev(score_mean + delta, sd, self.center, self._dyn_scale, a) - ev(
            score_mean, sd, self.center, self._dyn_scale, a
        )
        return s * self._static + d * self._dynamic

    def approx_score_utility_derivative(self, score_mean: float) -> float:
        a = self.sqrt_board_area
        s = score_value_derivative(score_mean, 0.0, 2.0, a)
        d = score_value_derivative(score_mean, self.center, self._dyn_scale, a)
        return s * self._static + d * self._dynamic

    def utility_of(self, win_loss: float, no_result: float, score_mean: float, score_mean_sq: float) -> float:
        return self.result_utility(win_loss, no_result) + self.score_utility(score_mean, score_mean_sq)

    def weight_from_nn(self, score_mean: float, st_winloss_error: float, st_score_error: float) -> float:
        if not self.has_uncertainty:
            return 1.0
        p = self.params
        u = (
            p.win_loss_utility_factor * st_winloss_error
            + self.approx_score_utility_derivative(score_mean) * st_score_error
        )
        if p.uncertainty_exponent == 1.0:
            powered = u
        elif p.uncertainty_exponent == 0.5:
            powered = math.sqrt(u)
        else:
            powered = u**p.uncertainty_exponent
        baseline = p.uncertainty_coeff / p.uncertainty_max_weight
        return p.uncertainty_coeff / (powered + baseline)

    def terminal_weight(self) -> float:
        return self.params.uncertainty_max_weight if self.has_uncertainty else 1.0
