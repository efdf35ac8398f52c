"""Calibration and validation slices shared by the quantizing exporters (ONNX, TFLite, OpenVINO INT8).

Contract: :func:`subset` returns ``(spatial, global, legal)`` of up to ``limit`` positions of a split of the
request's calibration set, evenly spread (full boards only for exact-board graphs), and raises a clear error when
none remain; :func:`meta_rows` gives the SGF-metadata input human-SL nets need (profile :data:`HUMAN_PROFILE`, as
KataGo's testgpuerror uses; ``None`` for other nets); :func:`reference_outputs` runs the torch FP32 graph that was
exported (masked or exact) on such a slice, ``CHUNK`` positions at a time.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from katadeploy.errors import KatadeployError
from katadeploy.export.request import ExportRequest
from katadeploy.model.desc import ModelDesc

HUMAN_PROFILE = "preaz_5k"  # the SGF-metadata profile fed to human-SL nets (as KataGo's testgpuerror)
CHUNK = 8


def full_board(spatial: np.ndarray) -> np.ndarray:
    return spatial[:, 0].reshape(len(spatial), -1).min(axis=1) > 0.5


def meta_rows(model: ModelDesc, spatial: np.ndarray) -> np.ndarray | None:
    if model.meta_encoder_version <= 0:
        return None
    from katadeploy.go.metadata import metadata_row, profile

    prof = profile(HUMAN_PROFILE)
    areas = spatial[:, 0].reshape(len(spatial), -1).sum(axis=1).round().astype(int)
    return np.stack([metadata_row(prof, False, int(a)) for a in areas]).astype(np.float32)


def subset(req: ExportRequest, split: str, limit: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(spatial, global, legal)`` of up to ``limit`` positions of ``split``, evenly spread over the split (full
    boards only for exact-board graphs)."""
    cs = req.calib.subset(split)
    spatial = np.asarray(cs.spatial, dtype=np.float32)
    glob = np.asarray(cs.global_, dtype=np.float32)
    legal = np.asarray(cs.legal, dtype=bool)
    keep = full_board(spatial) if req.exact else np.ones(len(spatial), dtype=bool)
    idx = np.flatnonzero(keep)
    name = "calibration" if split == "calib" else "validation"
    if len(idx) == 0:
        where = req.calib_path or "the calibration data"
        extra = f" that fill the {req.nn_x}x{req.nn_y} tensor" if req.exact else ""
        raise KatadeployError(
            f"{where}: its {name} split has no positions{extra}; rebuild it with `katadeploy calibrate`"
        )
    if len(idx) > limit:
        idx = idx[np.linspace(0, len(idx) - 1, limit).round().astype(int)]
    return spatial[idx], glob[idx], legal[idx]


def reference_outputs(model: ModelDesc, exact: bool, spatial: np.ndarray, glob: np.ndarray) -> Any:
    import torch

    from katadeploy.export.graph import ExportNet
    from katadeploy.runtime.base import RawBatch, concat

    net = ExportNet(model, exact=exact).eval()
    meta = meta_rows(model, spatial)
    parts = []
    with torch.inference_mode():
        for i in range(0, len(spatial), CHUNK):
            args = [torch.from_numpy(spatial[i : i + CHUNK]), torch.from_numpy(glob[i : i + CHUNK])]
            if meta is not None:
                args.append(torch.from_numpy(meta[i : i + CHUNK]))
            parts.append(RawBatch(*(t.numpy() for t in net(*args))))
    return concat(parts)
