"""The traceable graph every exporter starts from, and its I/O naming.

Contract: :class:`ExportNet` wraps :class:`~katadeploy.model.net.KataGoNet` so that ``forward`` returns a plain
tuple ``(policy, policy_pass, value, score, ownership)``; it takes ``(spatial, global)`` or, for human-SL nets,
``(spatial, global, meta)``. With ``exact=True`` the graph has no mask ops and is valid only for boards that fill
the ``nn_x`` x ``nn_y`` tensor; otherwise channel 0 of ``spatial`` is the on-board mask, so one artifact serves
every board up to the tensor size. Its I/O names and the shapes recorded in manifests are the artifact contract's
(:mod:`katadeploy.artifact`); :func:`example_inputs` gives realistic tensors (bundled real positions, padded by symmetries) for tracing and
smoke checks.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from katadeploy.model.desc import ModelDesc
from katadeploy.model.net import KataGoNet


class ExportNet(nn.Module):
    def __init__(self, model: ModelDesc, exact: bool = False):
        super().__init__()
        self.net = KataGoNet(model, use_mask=not exact)
        self.has_meta = model.meta_encoder_version > 0

    def forward(self, spatial: Tensor, global_: Tensor, meta: Tensor | None = None) -> tuple[Tensor, ...]:
        return tuple(self.net(spatial, global_, meta))


def example_inputs(model: ModelDesc, batch: int, nn_x: int = 19, nn_y: int = 19) -> tuple[Tensor, ...]:
    """``batch`` real positions (bundled oracle positions that fit, cycled through the 8 symmetries)."""
    from katadeploy.data.bundled import bundled_queries
    from katadeploy.go.features import encode_batch
    from katadeploy.go.position import position_from_query
    from katadeploy.go.symmetry import apply_to_inputs

    states = [position_from_query(q, max_board_size=max(nn_x, nn_y)) for q in bundled_queries(nn_x, nn_y)]
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
