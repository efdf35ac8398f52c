"""One neural-net evaluation as the search sees it (KataGo's ``NNOutput``), built from a row of raw heads.

Contract: :func:`nn_output_from_raw` turns one position's raw heads (side-to-move perspective, already mapped back
through the symmetry) into an :class:`NNOutput` exactly as KataGo's ``NNEvaluator::evaluate`` post-processes them:
policy logits mixed with ``policyOptimism`` (v2 policy heads), scaled by ``outputScale / nnPolicyTemperature``,
softmax in float32 over the legal moves with ``enablePassingHacks`` capping pass at 19x the other moves' mass
(illegal entries are -1); values from White's perspective, stored as float32 like KataGo (via
:func:`katadeploy.model.postprocess.value_outputs`); ownership ``tanh`` from White's perspective. ``policy`` covers
the ``nn_y * nn_x`` tensor row-major from the top row, plus pass last. ``order`` is the legal policy entries by
descending probability (ties: lower index first), which is the order KataGo expands children in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from katadeploy.model.postprocess import PostProcessParams, policy_logits, value_outputs

_F32_NEG = np.float32(-1e30)


@dataclass
class NNOutput:
    policy: np.ndarray  # float32 [nn_y*nn_x + 1], -1 = illegal
    white_win: float
    white_loss: float
    white_no_result: float
    white_score_mean: float
    white_score_mean_sq: float
    white_lead: float
    var_time_left: float
    st_winloss_error: float
    st_score_error: float
    ownership: np.ndarray  # float32 [nn_y*nn_x], White's perspective
    nn_x: int
    nn_y: int
    _order: np.ndarray | None = field(default=None, repr=False)

    @property
    def order(self) -> np.ndarray:
        if self._order is None:
            legal = np.flatnonzero(self.policy >= 0)
            self._order = legal[np.argsort(-self.policy[legal], kind="stable")]
        return self._order

    def with_policy(self, policy: np.ndarray) -> NNOutput:
        """A copy with another policy (root temperature or noise)."""
        return NNOutput(policy, self.white_win, self.white_loss, self.white_no_result, self.white_score_mean,
                        self.white_score_mean_sq, self.white_lead, self.var_time_left, self.st_winloss_error,
                        self.st_score_error, self.ownership, self.nn_x, self.nn_y)  # fmt: skip


def masked_softmax(logits: np.ndarray, legal: np.ndarray, scale: float, passing_hacks: bool) -> np.ndarray:
    """KataGo's policy softmax (float32) with its pass cap under ``enablePassingHacks``; illegal entries -1."""
    z = np.where(legal, logits.astype(np.float32) * np.float32(scale), _F32_NEG).astype(np.float32)
    legal_count = int(legal.sum())
    if legal_count == 0:
        raise ValueError("no legal move (not even pass)")
    e = np.exp(z - z.max(), dtype=np.float32)
    if passing_hacks:
        total = e[:-1].sum(dtype=np.float32)
        e[-1] = max(np.float32(1e-20), min(e[-1], total * np.float32(19.0)))
        total = np.float32(total + e[-1])
    else:
        total = e.sum(dtype=np.float32)
    if not np.isfinite(total):
        raise ValueError("non-finite policy sum")
    if total <= 0:
        return np.where(legal, np.float32(1.0 / legal_count), np.float32(-1.0)).astype(np.float32)
    return np.where(legal, e / total, np.float32(-1.0)).astype(np.float32)


def nn_output_from_raw(
    policy: np.ndarray,
    policy_pass: np.ndarray,
    value: np.ndarray,
    score: np.ndarray,
    ownership: np.ndarray,
    *,
    pp: PostProcessParams,
    white_to_move: bool,
    legal: np.ndarray,
    no_result_allowed: bool,
    board_area: int,
    policy_optimism: float,
    policy_temperature: float,
    passing_hacks: bool,
) -> NNOutput:
    """One row: ``policy [P,H,W]``, ``policy_pass [P]``, ``value [3]``, ``score [S]``, ``ownership [1,H,W]``."""
    nn_y, nn_x = policy.shape[-2], policy.shape[-1]
    logits = policy_logits(policy, policy_pass, pp, policy_optimism)
    probs = masked_softmax(logits, legal, pp.output_scale / policy_temperature, passing_hacks)
    v = value_outputs(value, score, pp, white_to_move, no_result_allowed, board_area)
    own = np.tanh(ownership.reshape(-1).astype(np.float32) * np.float32(pp.output_scale))
    if not white_to_move:
        own = -own
    st_wl = v["shorttermWinlossError"] if pp.version >= 9 else 0.0
    st_sc = v["shorttermScoreError"] if pp.version >= 9 else 0.0
    return NNOutput(
        probs, v["whiteWin"], v["whiteLoss"], v["noResult"], v["whiteScoreSelfplay"], v["whiteScoreSelfplaySq"],
        v["whiteLead"], v["varTimeLeft"], st_wl, st_sc, own.astype(np.float32), nn_x, nn_y,
    )  # fmt: skip
