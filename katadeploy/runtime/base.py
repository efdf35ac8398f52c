"""The evaluator interface shared by every runtime.

Contract: an :class:`Evaluator` maps a batch of encoded positions — ``spatial [N, C, H, W]``, ``global_ [N, G]``
and optionally ``meta [N, 192]``, float32 numpy arrays — to :class:`RawBatch`, the net's raw head outputs as
float32 numpy arrays from the side to move's perspective (no post-processing). ``output_scale`` is 1 unless the
artifact bakes in KataGo's GPU scale-8 trick.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

import numpy as np


class RawBatch(NamedTuple):
    policy: np.ndarray  # [N, P, H, W]
    policy_pass: np.ndarray  # [N, P]
    value: np.ndarray  # [N, 3]
    score: np.ndarray  # [N, S]
    ownership: np.ndarray  # [N, 1, H, W]


class Evaluator(Protocol):
    name: str
    output_scale: float

    def evaluate(
        self, spatial: np.ndarray, global_: np.ndarray, meta: np.ndarray | None = None
    ) -> RawBatch: ...
