"""The search's neural-net front end: features, symmetry, NN cache and batching over any ``Evaluator``.

Contract
--------
:class:`NNEvaluator` evaluates :class:`EvalRequest` lists (one search's leaves) into :class:`NNOutput` lists:

* The cache key is KataGo's ``NNInputs::getHash`` content - board Zobrist hash (which includes the size), player
  to move, encore phase, simple-ko and superko-banned points, ko-recapture blocks, rules (with komi), the bonus
  scores, whether a pass ends the phase (and then conservative-pass-at-root, friendly-pass suppression and passing
  hacks), game over, zero-history, playout doubling advantage, policy temperature, policy optimism - plus the tensor
  size and, with a fixed symmetry, that symmetry. As in KataGo, with random symmetries any cached symmetry serves.
  The cache is an LRU of ``2**nnCacheSizePowerOfTwo`` entries.
* Features are KataGo's v7 set (:mod:`katadeploy.go.features`) with ``MiscNNInputParams`` from the request;
  symmetry is random per evaluation (``nnRandomize``) or fixed (``nnForcedSymmetry``, else 0).
* The tensor is the board's own size unless the artifact's inputs fix H and W (then the board sits top-left,
  masked, as in KataGo).
* Misses go through the shared :class:`~katadeploy.search.batcher.NNBatcher` in one call, which may merge them
  with other searches' rows.
"""

from __future__ import annotations

import random
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from katadeploy.errors import KatadeployError
from katadeploy.go import rules as R
from katadeploy.go.board import P_WHITE
from katadeploy.go.features import NNInputParams, fill_v7
from katadeploy.go.history import BoardHistory
from katadeploy.go.symmetry import apply_to_inputs, apply_to_outputs
from katadeploy.model.desc import ModelDesc
from katadeploy.model.postprocess import PostProcessParams
from katadeploy.search.batcher import NNBatcher
from katadeploy.search.legality import legal_mask
from katadeploy.search.nnoutput import NNOutput, nn_output_from_raw


@dataclass(frozen=True)
class NNSettings:
    """Evaluator-level settings (KataGo's ``NNEvaluator`` construction from the config)."""

    max_batch: int = 16
    cache_size_pow2: int = 20
    randomize: bool = True
    forced_symmetry: int | None = None
    seed: int | None = None


@dataclass
class EvalRequest:
    hist: BoardHistory
    pla: int
    max_history: int
    policy_optimism: float
    conservative_pass_and_is_root: bool
    draw_equivalent_wins_for_white: float
    enable_passing_hacks: bool
    nn_policy_temperature: float
    playout_doubling_advantage: float
    pass_alive_override: int = -1
    skip_cache: bool = False


def fixed_tensor_size(evaluator: Any) -> tuple[int, int] | None:
    """(W, H) when an artifact's spatial input has a fixed size, else None (any size goes)."""
    manifest = getattr(evaluator, "manifest", None)
    for spec in getattr(manifest, "inputs", None) or ():
        if getattr(spec, "name", None) == "spatial":
            shape = list(spec.shape)
            if len(shape) == 4 and isinstance(shape[2], int) and isinstance(shape[3], int):
                return int(shape[3]), int(shape[2])
    return None


class NNEvaluator:
    def __init__(self, batcher: NNBatcher, model: ModelDesc, settings: NNSettings):
        if model.num_input_channels != 22 or model.num_input_global_channels != 19:
            raise KatadeployError(
                f"{model.name} is a model v{model.version} net; katadeploy's search encodes only the v7 feature "
                "set (model v8-17)"
            )
        if model.meta_encoder_version > 0:
            raise KatadeployError(
                f"{model.name} is a human-SL net: katadeploy's search does not support those"
            )
        self.batcher = batcher
        self.model = model
        self.settings = settings
        self.pp = PostProcessParams.of(model, getattr(batcher.evaluator, "output_scale", 1.0))
        self.supports_shortterm_error = model.version >= 9
        self.fixed_size = fixed_tensor_size(batcher.evaluator)
        self._cache: OrderedDict[tuple, NNOutput] = OrderedDict()
        self._cache_cap = 1 << max(0, settings.cache_size_pow2) if settings.cache_size_pow2 >= 0 else 0
        self._lock = threading.Lock()
        self._rand = random.Random(settings.seed)
        self.cache_hits = 0
        self.cache_misses = 0

    def clear_cache(self) -> None:
        with self._lock:
            self._cache.clear()

    def tensor_size(self, x_size: int, y_size: int) -> tuple[int, int]:
        if self.fixed_size is None:
            return x_size, y_size
        nx, ny = self.fixed_size
        if x_size > nx or y_size > ny:
            raise KatadeployError(f"a {x_size}x{y_size} board does not fit this artifact's {nx}x{ny} input")
        return nx, ny

    def _key(self, r: EvalRequest, nn_x: int, nn_y: int) -> tuple:
        hist, pla = r.hist, r.pla
        board = hist.board
        encore = hist.encore_phase
        rules = hist.rules
        if encore == 0:
            ko = board.ko_loc
            banned = (
                ()
                if rules.ko_rule == R.KO_SIMPLE
                else tuple(i for i, b in enumerate(hist.super_ko_banned) if b)
            )
            recap: tuple = ()
        else:
            ko = -1
            banned = tuple(i for i, b in enumerate(hist.super_ko_banned) if b)
            recap = tuple(i for i, b in enumerate(hist.ko_recap_blocked) if b)
        ends = hist.pass_would_end_phase(pla)
        pass_bits = (
            (
                r.conservative_pass_and_is_root,
                hist.should_suppress_end_game_from_friendly_pass(pla),
                r.enable_passing_hacks,
            )
            if ends
            else None
        )
        sym = (
            None
            if self.settings.randomize and self.settings.forced_symmetry is None
            else self._fixed_symmetry()
        )
        return (
            board.pos_hash, pla, encore, ko, banned, recap, rules, hist.white_bonus_score,
            hist.white_handicap_bonus_score, r.draw_equivalent_wins_for_white if rules.game_result_will_be_integer() else 0.5,
            ends, pass_bits, hist.is_game_finished or hist.is_past_normal_phase_end, r.max_history <= 0,
            r.playout_doubling_advantage, r.nn_policy_temperature, r.policy_optimism, r.pass_alive_override,
            nn_x, nn_y, sym,
        )  # fmt: skip

    def _fixed_symmetry(self) -> int:
        return self.settings.forced_symmetry if self.settings.forced_symmetry is not None else 0

    def _symmetry(self) -> int:
        if self.settings.forced_symmetry is not None:
            return self.settings.forced_symmetry
        if not self.settings.randomize:
            return 0
        with self._lock:
            return self._rand.randrange(8)

    def evaluate(self, requests: list[EvalRequest]) -> list[NNOutput]:
        out: list[NNOutput | None] = [None] * len(requests)
        misses: list[tuple[int, tuple, int, int]] = []
        for i, r in enumerate(requests):
            nn_x, nn_y = self.tensor_size(r.hist.board.x_size, r.hist.board.y_size)
            key = self._key(r, nn_x, nn_y)
            hit = None
            if not r.skip_cache and self._cache_cap:
                with self._lock:
                    hit = self._cache.get(key)
                    if hit is not None:
                        self._cache.move_to_end(key)
            if hit is not None:
                self.cache_hits += 1
                out[i] = hit
            else:
                misses.append((i, key, nn_x, nn_y))
        # group misses by tensor size (one evaluator call per size)
        by_size: dict[tuple[int, int], list[tuple[int, tuple]]] = {}
        for i, key, nn_x, nn_y in misses:
            by_size.setdefault((nn_x, nn_y), []).append((i, key))
        for (nn_x, nn_y), items in by_size.items():
            results = self._run([requests[i] for i, _ in items], nn_x, nn_y)
            for (i, key), res in zip(items, results):
                out[i] = res
                self.cache_misses += 1
                if self._cache_cap:
                    with self._lock:
                        self._cache[key] = res
                        if len(self._cache) > self._cache_cap:
                            self._cache.popitem(last=False)
        return out  # type: ignore[return-value]

    def _run(self, reqs: list[EvalRequest], nn_x: int, nn_y: int) -> list[NNOutput]:
        n = len(reqs)
        area = nn_x * nn_y
        spatial = np.zeros((n, 22, area), dtype=np.float32)
        glob = np.zeros((n, 19), dtype=np.float32)
        syms = [self._symmetry() for _ in reqs]
        prefer = self.model.prefer_pass_alive_under_suicide
        for k, r in enumerate(reqs):
            params = NNInputParams(
                draw_equivalent_wins_for_white=r.draw_equivalent_wins_for_white,
                conservative_pass_and_is_root=r.conservative_pass_and_is_root,
                enable_passing_hacks=r.enable_passing_hacks,
                playout_doubling_advantage=r.playout_doubling_advantage,
                max_history=r.max_history,
                pass_alive_suicide_rules_override=r.pass_alive_override,
            )
            fill_v7(r.hist, r.pla, nn_x, nn_y, params, spatial[k], glob[k], prefer)
        spatial4 = spatial.reshape(n, 22, nn_y, nn_x)
        for k, s in enumerate(syms):
            if s:
                spatial4[k] = apply_to_inputs(spatial4[k], s)
        raw = self.batcher.run(np.ascontiguousarray(spatial4), glob)
        results = []
        for k, r in enumerate(reqs):
            s = syms[k]
            pol = raw.policy[k]
            own = raw.ownership[k]
            if s:
                pol = apply_to_outputs(pol, s)
                own = apply_to_outputs(own, s)
            rules = r.hist.rules
            results.append(
                nn_output_from_raw(
                    pol,
                    raw.policy_pass[k],
                    raw.value[k],
                    raw.score[k],
                    own,
                    pp=self.pp,
                    white_to_move=r.pla == P_WHITE,
                    legal=legal_mask(r.hist, r.pla, nn_x, nn_y),
                    no_result_allowed=rules.ko_rule == R.KO_SIMPLE
                    or rules.scoring_rule == R.SCORING_TERRITORY,
                    board_area=r.hist.board.x_size * r.hist.board.y_size,
                    policy_optimism=r.policy_optimism,
                    policy_temperature=r.nn_policy_temperature,
                    passing_hacks=r.enable_passing_hacks,
                )  # fmt: skip
            )
        return results
