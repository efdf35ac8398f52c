"""KataGo's 8 board symmetries applied to NCHW tensors (numpy arrays or torch tensors).

Contract: a symmetry is 3 bits — flipY (bit 0), flipX (bit 1), transpose (bit 2, ignored when H != W) — and is
applied to the *whole* tensor, as KataGo does (so a small board in a larger tensor moves to another corner).
``apply_to_inputs`` transforms inputs; ``apply_to_outputs`` is its inverse and maps spatial outputs back.
"""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")


def _flip(x, axis: int):
    try:
        import torch

        if isinstance(x, torch.Tensor):
            return torch.flip(x, dims=(axis,))
    except ImportError:  # pragma: no cover
        pass
    import numpy as np

    return np.flip(x, axis=axis)


def _transpose(x):
    return x.transpose(-1, -2) if hasattr(x, "dim") else x.swapaxes(-1, -2)


def _apply(x: T, symmetry: int, reverse: bool) -> T:
    if not 0 <= symmetry < 8:
        raise ValueError(f"symmetry must be in 0..7, got {symmetry}")
    h, w = x.shape[-2], x.shape[-1]  # type: ignore[attr-defined]
    transpose = bool(symmetry & 4) and h == w
    flip_x = bool(symmetry & 2)
    flip_y = bool(symmetry & 1)
    if transpose and not reverse:
        flip_x, flip_y = flip_y, flip_x
    if transpose:
        x = _transpose(x)
    if flip_y:
        x = _flip(x, -2)
    if flip_x:
        x = _flip(x, -1)
    return x


def apply_to_inputs(x: T, symmetry: int) -> T:
    return _apply(x, symmetry, reverse=False)


def apply_to_outputs(x: T, symmetry: int) -> T:
    return _apply(x, symmetry, reverse=True)
