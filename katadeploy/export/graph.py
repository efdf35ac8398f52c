"""The traceable graph every exporter starts from, and its I/O naming.

Contract: :class:`ExportNet` wraps :class:`~katadeploy.model.net.KataGoNet` so that ``forward`` returns a plain
tuple ``(policy, policy_pass, value, score, ownership)``; it takes ``(spatial, global)`` or, for human-SL nets,
``(spatial, global, meta)``. With ``exact=True`` the graph has no mask ops and is valid only for boards that fill
the ``nn_x`` x ``nn_y`` tensor; otherwise channel 0 of ``spatial`` is the on-board mask, so one artifact serves
every board up to the tensor size. :func:`io_specs` gives the names and shapes recorded in manifests;
:func:`example_inputs` gives realistic tensors (bundled real positions, padded by symmetries) for tracing and
smoke checks.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from katadeploy.export.manifest import TensorSpec
from katadeploy.model.desc import ModelDesc
from katadeploy.model.net import KataGoNet

INPUT_NAMES = ("spatial", "global", "meta")
OUTPUT_NAMES = ("policy", "policy_pass", "value", "score", "ownership")


class ExportNet(nn.Module):
    def __init__(self, model: ModelDesc, exact: bool = False):
        super().__init__()
        self.net = KataGoNet(model, use_mask=not exact)
        self.has_meta = model.meta_encoder_version > 0

    def forward(self, spatial: Tensor, global_: Tensor, meta: Tensor | None = None) -> tuple[Tensor, ...]:
        return tuple(self.net(spatial, global_, meta))


def input_names(model: ModelDesc) -> list[str]:
    return list(INPUT_NAMES if model.meta_encoder_version > 0 else INPUT_NAMES[:2])


def io_specs(
    model: ModelDesc, nn_x: int, nn_y: int, batch: int | str = "N"
) -> tuple[list[TensorSpec], list[TensorSpec]]:
    p = model.num_policy_channels
    ins = [
        TensorSpec("spatial", [batch, model.num_input_channels, nn_y, nn_x]),
        TensorSpec("global", [batch, model.num_input_global_channels]),
    ]
    if model.meta_encoder_version > 0:
        ins.append(TensorSpec("meta", [batch, model.num_meta_channels]))
    outs = [
        TensorSpec("policy", [batch, p, nn_y, nn_x]),
        TensorSpec("policy_pass", [batch, p]),
        TensorSpec("value", [batch, 3]),
        TensorSpec("score", [batch, model.num_score_channels]),
        TensorSpec("ownership", [batch, 1, nn_y, nn_x]),
    ]
    return ins, outs


def example_inputs(model: ModelDesc, batch: int, nn_x: int = 19, nn_y: int = 19) -> tuple[Tensor, ...]:
    """``batch`` real positions (bundled oracle positions that fit, cycled through the 8 symmetries)."""
    import json
    from importlib import resources

    from katadeploy.go.features import encode_batch
    from katadeploy.go.position import position_from_query
    from katadeploy.go.symmetry import apply_to_inputs

    text = resources.files("katadeploy.data").joinpath("positions", "oracle80.jsonl").read_text("utf-8")
    states = []
    for line in text.splitlines():
        q = json.loads(line)
        if q["boardXSize"] <= nn_x and q["boardYSize"] <= nn_y:
            states.append(position_from_query(q, max_board_size=max(nn_x, nn_y)))
    full = [s for s in states if s.x_size == nn_x and s.y_size == nn_y] or states
    chosen = [full[i % len(full)] for i in range(batch)]
    spatial, glob = encode_batch(((s.history, s.next_player) for s in chosen), nn_x, nn_y)
    if nn_x == nn_y:
        for i in range(batch):
            spatial[i] = apply_to_inputs(spatial[i : i + 1], (i // len(full)) % 8)[0]
    out: list[Tensor] = [torch.from_numpy(spatial.copy()), torch.from_numpy(glob.copy())]
    if model.meta_encoder_version > 0:
        out.append(torch.zeros(batch, model.num_meta_channels))
    return tuple(out)
