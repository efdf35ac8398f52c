"""Validation positions, encoded for one artifact's tensor.

Contract: :func:`load_validation_set` returns a :class:`ValidationSet` — ``spatial [N, 22, H, W]``, ``global_
[N, 19]``, ``legal [N, H*W+1]`` (bool, pass last), ``meta [N, 192]`` for human-SL nets (KataGo's
``testgpuerror`` profile ``preaz_5k``) else None, and ``no_result_allowed [N]`` — for an ``nn_x`` x ``nn_y``
tensor from one of:

- ``None``: the 80 bundled positions (``katadeploy/data/positions/oracle80.jsonl``, the same as the oracle's);
- a ``.jsonl`` file of analysis-query positions (see :mod:`katadeploy.go.position`);
- a calibration ``.npz`` (``katadeploy data calib``): its validation split, which must match the net and
  tensor.

A position larger than the tensor (a 19x19 one for a ``--nn-size 9`` artifact) is skipped, and for an
exact-board artifact (no mask ops) so is every position whose board does not fill the tensor: ``skipped``
counts them, a note goes to stderr, and none left is an error. Every error is a
:class:`~katadeploy.errors.KatadeployError` with one clear line.
:func:`evaluate` runs an evaluator over a set in batches and returns one :class:`RawBatch` for all positions.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from katadeploy.data.bundled import BUNDLED_SOURCE, bundled_text
from katadeploy.errors import KatadeployError
from katadeploy.model.desc import ModelDesc
from katadeploy.progress import Progress
from katadeploy.runtime.base import Evaluator, RawBatch, concat

#: the SGF metadata profile KataGo's testgpuerror feeds human-SL nets
HUMAN_PROFILE = "preaz_5k"
MAX_BOARD = 37


@dataclass
class ValidationSet:
    source: str
    ids: list[str]
    spatial: np.ndarray
    global_: np.ndarray
    legal: np.ndarray
    no_result_allowed: np.ndarray
    meta: np.ndarray | None = None
    skipped: int = 0

    def __len__(self) -> int:
        return len(self.spatial)

    @property
    def on_board(self) -> np.ndarray:
        """``[N, H, W]`` bool: the board's points inside the tensor (input channel 0)."""
        return self.spatial[:, 0] > 0.5

    def subset(self, index: np.ndarray | slice) -> ValidationSet:
        ids = np.asarray(self.ids, dtype=object)[index].tolist()
        meta = None if self.meta is None else self.meta[index]
        return ValidationSet(
            self.source, ids, self.spatial[index], self.global_[index], self.legal[index],
            self.no_result_allowed[index], meta, self.skipped,
        )  # fmt: skip


def _check_inputs(model: ModelDesc) -> None:
    if model.num_input_channels != 22 or model.num_input_global_channels != 19:
        raise KatadeployError(
            f"{model.name} (model v{model.version}) does not use the v7 inputs; "
            "katadeploy validates model v8-17 nets"
        )


def meta_rows(
    model: ModelDesc, spatial: np.ndarray, white_to_move: Sequence[bool] | None = None
) -> np.ndarray | None:
    """The SGF-metadata input ``[N, 192]`` KataGo's testgpuerror feeds human-SL nets (profile
    :data:`HUMAN_PROFILE`, board area from input channel 0 of ``spatial``), or None for other nets. This is the
    one place validation, calibration and the quantizing exporters build it."""
    if model.meta_encoder_version <= 0:
        return None
    from katadeploy.go.metadata import metadata_row, profile

    prof = profile(HUMAN_PROFILE)
    areas = spatial[:, 0].reshape(len(spatial), -1).sum(axis=1).round().astype(int)
    whites = [False] * len(spatial) if white_to_move is None else list(white_to_move)
    return np.stack([metadata_row(prof, bool(w), int(a)) for w, a in zip(whites, areas)]).astype(np.float32)


def _skip_note(skipped: int, total: int, nn_x: int, nn_y: int, source: str, exact: bool = True) -> None:
    if skipped:
        what = "do not fill" if exact else "are larger than"
        whose = " of this exact-board artifact" if exact else ""
        print(
            f"katadeploy: {skipped} of {total} positions from {source} {what} the {nn_x}x{nn_y} tensor{whose}; "
            "skipped",
            file=sys.stderr,
        )


def _from_queries(
    text: str, source: str, model: ModelDesc, nn_x: int, nn_y: int, exact: bool
) -> ValidationSet:
    from katadeploy.go import rules as R
    from katadeploy.go.board import P_WHITE
    from katadeploy.go.features import encode_batch, legal_policy_mask
    from katadeploy.go.position import parse_positions

    states = parse_positions(text, source, MAX_BOARD)
    if not states:
        raise KatadeployError(f"{source}: no positions")
    total = len(states)
    if exact:
        states = [s for s in states if (s.x_size, s.y_size) == (nn_x, nn_y)]
    else:
        states = [s for s in states if s.x_size <= nn_x and s.y_size <= nn_y]
    _skip_note(total - len(states), total, nn_x, nn_y, source, exact)
    if not states:
        need = "fills" if exact else "fits"
        raise KatadeployError(
            f"none of the {total} positions from {source} {need} the {nn_x}x{nn_y} tensor of this artifact; "
            f"pass --positions with boards of at most {nn_x}x{nn_y}"
        )
    spatial, glob = encode_batch(
        ((s.history, s.next_player) for s in states), nn_x, nn_y,
        prefer_pass_alive_under_suicide=model.prefer_pass_alive_under_suicide,
    )  # fmt: skip
    legal = np.stack([legal_policy_mask(s.history, s.next_player, nn_x, nn_y) for s in states])
    nra = np.array(
        [s.rules.ko_rule == R.KO_SIMPLE or s.rules.scoring_rule == R.SCORING_TERRITORY for s in states],
        dtype=bool,
    )
    meta = meta_rows(model, spatial, [s.next_player == P_WHITE for s in states])
    return ValidationSet(
        source, [s.id for s in states], spatial, glob, legal, nra, meta, skipped=total - len(states)
    )


def full_board(spatial: np.ndarray) -> np.ndarray:
    """``[N]`` bool: the positions whose board fills the whole tensor (input channel 0 all on)."""
    return spatial[:, 0].reshape(len(spatial), -1).min(axis=1) > 0.5


def calibration_split(
    cs: Any,
    split: str,
    model: ModelDesc,
    *,
    exact: bool = False,
    limit: int | None = None,
    source: str = "the calibration data",
    note: bool = False,
) -> ValidationSet:
    """A split (``"calib"`` or ``"val"``) of a calibration set as a :class:`ValidationSet`: full boards only for
    exact-board graphs (``note`` prints how many were skipped), at most ``limit`` positions evenly spread over the
    split. The one selection of calibration slices used by ``validate``, calibration readers and the exporters'
    candidate scoring. Raises a :class:`~katadeploy.errors.KatadeployError` when none remain."""
    from katadeploy.validate.metrics import no_result_allowed_from_global

    part = cs.subset(split)
    name = "calibration" if split == "calib" else "validation"
    spatial = np.asarray(part.spatial, dtype=np.float32)
    n_total = len(spatial)
    nn_y, nn_x = spatial.shape[-2:] if spatial.ndim == 4 else (0, 0)
    if n_total == 0:
        raise KatadeployError(f"{source}: its {name} split is empty; rebuild it with `katadeploy calibrate` (with a {name} share)")
    keep = full_board(spatial) if exact else np.ones(n_total, dtype=bool)
    if note:
        _skip_note(int(n_total - keep.sum()), n_total, nn_x, nn_y, source)
    idx = np.flatnonzero(keep)
    if len(idx) == 0:
        raise KatadeployError(
            f"none of the {n_total} {name} positions in {source} fills the {nn_x}x{nn_y} tensor this "
            "exact-board artifact needs"
        )
    if limit is not None and len(idx) > limit:
        idx = idx[np.linspace(0, len(idx) - 1, limit).round().astype(int)]
    spatial = spatial[idx]
    glob = np.asarray(part.global_, dtype=np.float32)[idx]
    games = np.asarray(getattr(part, "game", np.arange(n_total)))[idx]
    prefix = "val" if split == "val" else "calib"
    # The v7 features carry no colour; KataGo's preaz_5k profile is the same for both players.
    return ValidationSet(
        source, [f"{prefix}{i}-game{int(g)}" for i, g in zip(idx, games)], spatial, glob,
        np.asarray(part.legal, dtype=bool)[idx], no_result_allowed_from_global(glob), meta_rows(model, spatial),
        skipped=int(n_total - keep.sum()),
    )  # fmt: skip


def _from_calibration(path: Path, model: ModelDesc, nn_x: int, nn_y: int, exact: bool) -> ValidationSet:
    from katadeploy.data import calibration as C

    cs = C.load_calibration(path)
    C.check_compatible(cs, model, nn_x, nn_y)
    spatial = cs.subset("val").spatial
    if len(spatial) and tuple(spatial.shape[-2:]) != (nn_y, nn_x):
        raise KatadeployError(
            f"{path}: positions are encoded for a {spatial.shape[-1]}x{spatial.shape[-2]} tensor, "
            f"the artifact uses {nn_x}x{nn_y}"
        )
    return calibration_split(
        cs, "val", model, exact=exact, source=f"{path.name} (validation split)", note=True
    )


def load_validation_set(
    spec: str | Path | None, model: ModelDesc, nn_x: int = 19, nn_y: int = 19, exact: bool = False
) -> ValidationSet:
    """Load and encode validation positions for an ``nn_x`` x ``nn_y`` tensor (see the module docstring)."""
    _check_inputs(model)
    if spec is None:
        return _from_queries(bundled_text(), BUNDLED_SOURCE, model, nn_x, nn_y, exact)
    path = Path(spec)
    if not path.is_file():
        raise KatadeployError(f"positions file {path} does not exist")
    if path.suffix == ".npz":
        return _from_calibration(path, model, nn_x, nn_y, exact)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise KatadeployError(
            f"{path}: not UTF-8 text; --positions takes a JSONL of analysis queries or a calibration .npz"
        ) from None
    return _from_queries(text, path.name, model, nn_x, nn_y, exact)


def evaluate(
    evaluator: Evaluator, vset: ValidationSet, batch: int = 16, *, label: str = "", progress: bool = True
) -> RawBatch:
    """``evaluator``'s raw outputs for every position of ``vset``, ``batch`` positions per call."""
    if batch < 1:
        raise KatadeployError("--batch must be positive")
    parts = []
    with Progress(len(vset), label or getattr(evaluator, "name", "evaluate"), quiet=not progress) as bar:
        for i in range(0, len(vset), batch):
            sl = slice(i, i + batch)
            meta = None if vset.meta is None else vset.meta[sl]
            out = evaluator.evaluate(vset.spatial[sl], vset.global_[sl], meta)
            parts.append(RawBatch(*(np.asarray(a, dtype=np.float32) for a in out)))
            bar.advance(len(vset.spatial[sl]))
    return concat(parts)
