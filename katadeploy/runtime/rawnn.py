"""Evaluate positions end to end — features, symmetry, net, post-processing — like KataGo's ``kata-raw-nn``.

Contract: :func:`raw_nn` yields, for each :class:`~katadeploy.go.position.GameState`, the dict ``kata-raw-nn``
(or, for human-SL nets given a ``human_profile``, ``kata-raw-human-nn``) prints (keys in its order, White's perspective, see :mod:`katadeploy.model.postprocess`), computed on an
``nn_x`` by ``nn_y`` tensor (a smaller board is masked) with the given symmetry, in batches. Any evaluator with the
:class:`~katadeploy.runtime.base.Evaluator` interface can be used, so every artifact can be held against the oracle.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence

import numpy as np

from katadeploy.errors import KatadeployError
from katadeploy.go import rules as R
from katadeploy.go.board import P_WHITE
from katadeploy.go.features import NNInputParams, encode_batch, legal_policy_mask
from katadeploy.go.metadata import metadata_row, profile
from katadeploy.go.position import GameState
from katadeploy.go.symmetry import apply_to_inputs, apply_to_outputs
from katadeploy.model.desc import ModelDesc
from katadeploy.model.postprocess import PostProcessParams, postprocess
from katadeploy.runtime.base import Evaluator


def check_supported(
    model: ModelDesc, nn_x: int, nn_y: int, states: Sequence[GameState], human_profile: str | None = None
) -> None:
    if model.num_input_channels != 22 or model.num_input_global_channels != 19:
        raise KatadeployError(
            f"{model.name} is a model v{model.version} net with {model.num_input_channels}/"
            f"{model.num_input_global_channels} inputs; katadeploy encodes only the v7 feature set (model v8-17)"
        )
    if model.meta_encoder_version > 0 and human_profile is None:
        raise KatadeployError(
            f"{model.name} is a human-SL net: pass --human-profile (a humanSLProfile such as rank_9d, rank_5k or proyear_1990)"
        )
    for s in states:
        if s.x_size > nn_x or s.y_size > nn_y:
            raise KatadeployError(
                f"position {s.id!r} is {s.x_size}x{s.y_size}, larger than the {nn_x}x{nn_y} tensor"
            )


def _batches(items: Sequence[GameState], size: int) -> Iterator[Sequence[GameState]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def raw_nn(
    evaluator: Evaluator,
    model: ModelDesc,
    states: Iterable[GameState],
    *,
    nn_x: int = 19,
    nn_y: int = 19,
    symmetry: int = 0,
    batch_size: int = 16,
    policy_optimism: float = 0.0,
    params: NNInputParams | None = None,
    human_profile: str | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> Iterator[tuple[GameState, dict]]:
    states = list(states)
    check_supported(model, nn_x, nn_y, states, human_profile)
    sgf_meta = (
        profile(human_profile) if model.meta_encoder_version > 0 and human_profile is not None else None
    )
    pp = PostProcessParams.of(model, evaluator.output_scale)
    for batch in _batches(states, batch_size):
        spatial, glob = encode_batch(
            ((s.history, s.next_player) for s in batch), nn_x, nn_y, params,
            prefer_pass_alive_under_suicide=model.prefer_pass_alive_under_suicide,
        )  # fmt: skip
        spatial = np.ascontiguousarray(apply_to_inputs(spatial, symmetry))
        meta = None
        if sgf_meta is not None:
            meta = np.stack(
                [metadata_row(sgf_meta, s.next_player == P_WHITE, s.x_size * s.y_size) for s in batch]
            )
        out = evaluator.evaluate(spatial, glob, meta)
        policy = apply_to_outputs(out.policy, symmetry)
        ownership = apply_to_outputs(out.ownership, symmetry)
        for i, s in enumerate(batch):
            rules = s.history.rules
            no_result_allowed = rules.ko_rule == R.KO_SIMPLE or rules.scoring_rule == R.SCORING_TERRITORY
            result = postprocess(
                policy[i], out.policy_pass[i], out.value[i], out.score[i], ownership[i],
                params=pp, white_to_move=s.next_player == P_WHITE,
                legal=legal_policy_mask(s.history, s.next_player, nn_x, nn_y),
                board_x=s.x_size, board_y=s.y_size, no_result_allowed=no_result_allowed,
                policy_optimism=policy_optimism,
            )  # fmt: skip
            yield s, {"symmetry": float(symmetry), **result}
        if on_batch is not None:
            on_batch(len(batch))
