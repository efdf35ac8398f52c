"""Turn a net's raw head outputs into the quantities KataGo's ``kata-raw-nn`` reports.

Contract: :func:`postprocess` takes one position's raw outputs (side-to-move perspective, already mapped back to
the untransformed tensor by the caller) and returns a dict with the keys and order of ``kata-raw-nn``:
``whiteWin, whiteLoss, noResult, whiteLead, whiteScoreSelfplay, whiteScoreSelfplaySq, varTimeLeft,
shorttermWinlossError, shorttermScoreError, policy, policyPass, whiteOwnership`` — all from White's perspective,
per model version, exactly as KataGo's NN evaluator computes them (values in double precision, the policy
softmax in float32, illegal moves as ``None``). ``policy`` and ``whiteOwnership`` cover the real board only,
row-major from the top row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from katadeploy.model.desc import ModelDesc


@dataclass(frozen=True)
class PostProcessParams:
    """What post-processing needs to know about the model (derived from a :class:`ModelDesc`)."""

    version: int
    num_policy_channels: int
    multipliers: tuple[float, ...]
    is_human_sl: bool = False
    output_scale: float = 1.0  # 8 for graphs built with KataGo's GPU scale-8 trick

    @classmethod
    def of(cls, model: ModelDesc, output_scale: float = 1.0) -> PostProcessParams:
        return cls(model.version, model.num_policy_channels, tuple(model.multipliers), model.meta_encoder_version > 0,
                   output_scale)  # fmt: skip


def _softplus(x: float) -> float:
    return x if x > 40.0 else math.log1p(math.exp(x))


def policy_logits(
    policy: np.ndarray, policy_pass: np.ndarray, params: PostProcessParams, optimism: float
) -> np.ndarray:
    """Mix the policy channels into one logit per buffer position + pass: ``[H*W + 1]`` float32."""
    flat = np.concatenate([policy.reshape(policy.shape[0], -1), policy_pass.reshape(-1, 1)], axis=1).astype(
        np.float32
    )
    if params.is_human_sl:
        optimism = 0.0
    if params.num_policy_channels == 2 or (params.num_policy_channels == 4 and params.version >= 16):
        return flat[0] + (flat[1] - flat[0]) * np.float32(optimism)
    return flat[0]


def policy_probs(
    logits: np.ndarray, legal: np.ndarray, scale: float = 1.0, temperature: float = 1.0
) -> np.ndarray:
    """KataGo's masked softmax in float32; illegal entries are -1."""
    z = np.where(
        legal, logits.astype(np.float32) * np.float32(scale / temperature), np.float32(-1e30)
    ).astype(np.float32)
    if not legal.any():
        raise ValueError("no legal move (not even pass)")
    e = np.exp(z - z.max(), dtype=np.float32)
    total = e.sum(dtype=np.float32)
    if not total > 0:
        probs = np.where(legal, np.float32(1.0 / legal.sum()), np.float32(-1.0))
    else:
        probs = np.where(legal, e / total, np.float32(-1.0))
    return probs.astype(np.float32)


def _softmax_wln(w: float, l: float, n: float, no_result_allowed: bool) -> tuple[float, float, float]:
    """KataGo's win/loss/no-result softmax; no-result is zeroed (before normalising) where the rules forbid it."""
    m = max(w, l, n)
    win, loss, nores = math.exp(w - m), math.exp(l - m), math.exp(n - m)
    if not no_result_allowed:
        nores = 0.0
    total = win + loss + nores
    return win / total, loss / total, nores / total


def value_outputs(
    value: np.ndarray, score: np.ndarray, params: PostProcessParams, white_to_move: bool, no_result_allowed: bool,
    board_area: int,
) -> dict[str, float]:  # fmt: skip
    s = params.output_scale
    (td_mult, mean_mult, stdev_mult, lead_mult, vt_mult, st_value_mult, st_score_mult) = params.multipliers
    del td_mult
    w, l, n = (float(x) * s for x in value[:3])
    sc = [float(x) * s for x in score]
    v = params.version
    if v >= 4:
        if not no_result_allowed:
            n -= 100000.0
        win, loss, nores = _softmax_wln(w, l, n, no_result_allowed)
        score_mean = sc[0] * mean_mult
        stdev = _softplus(sc[1]) * stdev_mult
        score_sq = score_mean * score_mean + stdev * stdev
        lead = (sc[2] if v >= 8 else sc[0]) * lead_mult
        var_time = _softplus(sc[3]) * vt_mult if v >= 8 else 0.0
        score_mean *= 1.0 - nores
        score_sq *= 1.0 - nores
        lead *= 1.0 - nores
        if v >= 14:
            st_wl = math.sqrt(_softplus(sc[4] * 0.5) ** 2 * st_value_mult)
            st_sc = math.sqrt(_softplus(sc[5] * 0.5) ** 2 * st_score_mult)
        elif v >= 10:
            st_wl = math.sqrt(_softplus(sc[4]) * st_value_mult)
            st_sc = math.sqrt(_softplus(sc[5]) * st_score_mult)
        elif v >= 9:
            st_wl = _softplus(sc[4])
            st_sc = _softplus(sc[5]) * 10.0
        else:
            st_wl = st_sc = 0.0
    else:  # v3: a single pre-atan score value
        win, loss, nores = _softmax_wln(w, l, n, no_result_allowed)
        score_value = math.atan(sc[0]) * 2 / math.pi
        sqrt_area = math.sqrt(board_area)
        t = max(-1e6, min(1e6, math.tan(score_value * math.pi / 2)))
        score_mean = t * 2 * sqrt_area
        score_sq = score_mean * score_mean
        lead = score_mean
        var_time = st_wl = st_sc = 0.0
    if not white_to_move:
        win, loss = loss, win
        score_mean, lead = -score_mean, -lead
    f32 = lambda x: float(np.float32(x))  # noqa: E731 - KataGo stores these as float
    out = {
        "whiteWin": f32(win),
        "whiteLoss": f32(loss),
        "noResult": f32(nores),
        "whiteLead": f32(lead),
        "whiteScoreSelfplay": f32(score_mean),
        "whiteScoreSelfplaySq": f32(score_sq),
    }
    if v >= 9:
        out.update(
            varTimeLeft=f32(var_time), shorttermWinlossError=f32(st_wl), shorttermScoreError=f32(st_sc)
        )
    else:
        out.update(varTimeLeft=-1.0, shorttermWinlossError=-1.0, shorttermScoreError=-1.0)
    return out


def postprocess(
    policy: np.ndarray,
    policy_pass: np.ndarray,
    value: np.ndarray,
    score: np.ndarray,
    ownership: np.ndarray,
    *,
    params: PostProcessParams,
    white_to_move: bool,
    legal: np.ndarray,
    board_x: int,
    board_y: int,
    no_result_allowed: bool,
    policy_optimism: float = 0.0,
    policy_temperature: float = 1.0,
) -> dict:
    """One position: ``policy [P, H, W]``, ``policy_pass [P]``, ``value [3]``, ``score [S]``, ``ownership [1, H, W]``;
    ``legal`` is a bool array ``[H*W + 1]`` over the tensor (pass last)."""
    nn_y, nn_x = policy.shape[-2], policy.shape[-1]
    logits = policy_logits(policy, policy_pass, params, policy_optimism)
    probs = policy_probs(logits, legal, params.output_scale, policy_temperature)
    board_probs = probs[:-1].reshape(nn_y, nn_x)[:board_y, :board_x].reshape(-1)
    own = np.tanh(ownership.reshape(nn_y, nn_x)[:board_y, :board_x].astype(np.float64) * params.output_scale)
    if not white_to_move:
        own = -own
    out = value_outputs(value, score, params, white_to_move, no_result_allowed, board_x * board_y)
    out["policy"] = [None if p < 0 else float(p) for p in board_probs.tolist()]
    out["policyPass"] = None if probs[-1] < 0 else float(probs[-1])
    out["whiteOwnership"] = [float(np.float32(o)) for o in own.reshape(-1).tolist()]
    return out
