"""KataGo's score-value and value-weighting tables (``ScoreValue`` in ``cpp/neuralnet/nninputs.cpp``,
``DistributionTable`` and ``FancyMath::tdistcdf`` in ``cpp/search``/``cpp/core``).

Contract: :func:`expected_white_score_value` equals ``ScoreValue::expectedWhiteScoreValue`` - the expectation of
``atan(score / (scale * sqrtBoardArea)) * 2/pi`` under a normal score distribution, read by bilinear interpolation
from the same precomputed table (built for 19x19, ``EXTRA_SCORE_DISTR_RADIUS = 60``, 10 steps per point, +-5
stdevs). :func:`score_value_derivative` is ``whiteDScoreValueDScoreSmoothNoDrawAdjust``. :func:`tdist3_cdf` is the
linearly interpolated 2000-point table of the Student-t CDF with 3 degrees of freedom over [-50, 50] that KataGo's
``valueWeightDistribution`` uses. Tables are built lazily once per process (about a second).
"""

from __future__ import annotations

import math
import threading

import numpy as np

TWO_OVER_PI = 0.63661977236758134308
SV_TABLE_BSIZE = 19  # KataGo's compile-time MAX_BOARD_LEN
_EXTRA_RADIUS = 60
_MEAN_RADIUS = SV_TABLE_BSIZE * SV_TABLE_BSIZE + _EXTRA_RADIUS
_MEAN_LEN = _MEAN_RADIUS * 2
_STDEV_LEN = SV_TABLE_BSIZE * SV_TABLE_BSIZE + _EXTRA_RADIUS

_lock = threading.Lock()
_sv_table: list[list[float]] | None = None
_t_cdf: list[float] | None = None

T_MIN_Z, T_MAX_Z, T_SIZE = -50.0, 50.0, 2000


def _build_sv_table() -> list[list[float]]:
    steps = 10
    bound = 5
    i_range = np.arange(-bound * steps, bound * steps + 1)
    x = i_range / steps
    w = np.exp(-0.5 * x * x)
    min_sv = -(_MEAN_RADIUS * steps + steps // 2 + bound * _STDEV_LEN * steps)
    n_sv = -2 * min_sv + 1
    sv = np.arctan((np.arange(n_sv) + min_sv) / steps / SV_TABLE_BSIZE) * TWO_OVER_PI
    mean_steps = (np.arange(_MEAN_LEN) - _MEAN_RADIUS) * steps - steps // 2
    table = np.empty((_MEAN_LEN, _STDEV_LEN), dtype=np.float64)
    wsum = w.sum()
    for s in range(_STDEV_LEN):
        idx = mean_steps[:, None] + s * i_range[None, :] - min_sv
        table[:, s] = sv[idx] @ w / wsum
    return table.tolist()


def _tables() -> list[list[float]]:
    global _sv_table
    if _sv_table is None:
        with _lock:
            if _sv_table is None:
                _sv_table = _build_sv_table()
    return _sv_table


def expected_white_score_value(
    score_mean: float, score_stdev: float, center: float, scale: float, sqrt_board_area: float
) -> float:
    table = _sv_table if _sv_table is not None else _tables()
    scale_factor = SV_TABLE_BSIZE / (scale * sqrt_board_area)
    mean_scaled = (score_mean - center) * scale_factor
    stdev_scaled = score_stdev * scale_factor
    mean_rounded = round_half_away(mean_scaled)
    stdev_floored = math.floor(stdev_scaled)
    m0 = int(mean_rounded) + _MEAN_RADIUS
    s0 = int(stdev_floored)
    m1 = m0 + 1
    s1 = s0 + 1
    if m0 < 0:
        m0 = m1 = 0
    if m1 >= _MEAN_LEN:
        m0 = m1 = _MEAN_LEN - 1
    if s1 >= _STDEV_LEN:
        s0 = s1 = _STDEV_LEN - 1
    lm = mean_scaled - mean_rounded + 0.5
    ls = stdev_scaled - stdev_floored
    r0 = table[m0]
    r1 = table[m1]
    b0 = r0[s0] + ls * (r0[s1] - r0[s0])
    b1 = r1[s0] + ls * (r1[s1] - r1[s0])
    return b0 + lm * (b1 - b0)


def round_half_away(x: float) -> float:
    """C's ``round``: halves away from zero (Python's ``round`` is banker's rounding)."""
    return math.floor(x + 0.5) if x >= 0 else -math.floor(-x + 0.5)


def score_value_derivative(score: float, center: float, scale: float, sqrt_board_area: float) -> float:
    adjusted = score - center
    sf = scale * sqrt_board_area
    return sf / (sf * sf + adjusted * adjusted) * TWO_OVER_PI


def score_stdev(score_mean: float, score_mean_sq: float) -> float:
    variance = score_mean_sq - score_mean * score_mean
    return math.sqrt(variance) if variance > 0.0 else 0.0


def _tdist3_cdf_exact(t: float) -> float:
    s3 = math.sqrt(3.0)
    return 0.5 + (t / (s3 * (1.0 + t * t / 3.0)) + math.atan(t / s3)) / math.pi


def _t_table() -> list[float]:
    global _t_cdf
    if _t_cdf is None:
        vals = [0.0] * T_SIZE
        for i in range(1, T_SIZE - 1):
            vals[i] = _tdist3_cdf_exact(T_MIN_Z + i * (T_MAX_Z - T_MIN_Z) / (T_SIZE - 1))
        vals[-1] = 1.0
        _t_cdf = vals
    return _t_cdf


def tdist3_cdf(z: float) -> float:
    table = _t_cdf if _t_cdf is not None else _t_table()
    d = (T_SIZE - 1) * (z - T_MIN_Z) / (T_MAX_Z - T_MIN_Z)
    if d <= 0:
        return 0.0
    idx = int(d)
    if idx >= T_SIZE - 1:
        return 1.0
    lam = d - idx
    return table[idx] + lam * (table[idx + 1] - table[idx])


def warm_up() -> None:
    """Build the tables now (the engine does this before it reports ready)."""
    _tables()
    _t_table()
