"""The evaluator interface shared by every runtime.

Contract: an :class:`Evaluator` maps a batch of encoded positions — ``spatial [N, C, H, W]``, ``global_ [N, G]``
and optionally ``meta [N, 192]``, float32 numpy arrays — to :class:`RawBatch`, the net's raw head outputs as
float32 numpy arrays from the side to move's perspective (no post-processing). ``output_scale`` is 1 unless the
artifact bakes in KataGo's GPU scale-8 trick. Evaluators accept any batch size: artifacts with a fixed batch
split and pad with :func:`evaluate_in_chunks`. :func:`check_inputs` holds the inputs against an artifact
manifest's input specs, with one wording of the error for every runtime; :func:`evaluate_checked` is both steps
for fixed-batch artifacts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np

from katadeploy.artifact import OUTPUT_NAMES
from katadeploy.errors import KatadeployError


class RawBatch(NamedTuple):
    policy: np.ndarray  # [N, P, H, W]
    policy_pass: np.ndarray  # [N, P]
    value: np.ndarray  # [N, 3]
    score: np.ndarray  # [N, S]
    ownership: np.ndarray  # [N, 1, H, W]


# RawBatch's fields are the artifact output names, in order (the one definition is katadeploy.artifact)
if RawBatch._fields != OUTPUT_NAMES:  # pragma: no cover - a broken edit, caught on import
    raise ImportError(f"RawBatch fields {RawBatch._fields} differ from the artifact outputs {OUTPUT_NAMES}")


@dataclass(frozen=True)
class LoadRequest:
    """What :func:`katadeploy.runtime.loader.open_evaluator` hands a runtime module's ``load(req)``: the artifact
    file, its manifest (already checked to be of the module's format), the device and thread count asked for
    (None: the runtime's default) and runtime-specific options."""

    path: Path
    manifest: Any  # katadeploy.artifact.ArtifactManifest
    device: str | None = None
    threads: int | None = None
    options: dict[str, Any] = field(default_factory=dict)


class Evaluator(Protocol):
    name: str
    output_scale: float

    def evaluate(
        self, spatial: np.ndarray, global_: np.ndarray, meta: np.ndarray | None = None
    ) -> RawBatch: ...


def check_inputs(
    label: str,
    specs: Sequence[Any],
    spatial: np.ndarray,
    global_: np.ndarray,
    meta: np.ndarray | None = None,
) -> list[np.ndarray]:
    """The inputs as contiguous float32 arrays in the order of ``specs`` (the manifest's input
    :class:`~katadeploy.artifact.TensorSpec` list, named ``spatial``, ``global`` and for human-SL nets
    ``meta``). Every non-batch dimension must match its spec and every input must have the spatial batch's rows;
    a human-SL artifact called without ``meta`` is an error (``meta`` for an artifact without it is ignored).
    Raises :class:`~katadeploy.errors.KatadeployError` naming ``label``."""
    given = {"spatial": spatial, "global": global_, "meta": meta}
    out = []
    n = len(spatial)
    for spec in specs:
        arr = given.get(spec.name)
        if arr is None:
            raise KatadeployError(
                f"{label}: this is a human-SL net: it needs the 192-channel SGF metadata input (meta)"
                if spec.name == "meta"
                else f"{label}: the artifact has an input {spec.name!r} that katadeploy does not know"
            )
        arr = np.ascontiguousarray(arr, dtype=np.float32)
        want = list(spec.shape)
        if arr.ndim != len(want) or any(
            isinstance(w, int) and w != s for w, s in zip(want[1:], arr.shape[1:])
        ):
            raise KatadeployError(
                f"{label}: input {spec.name!r} has shape {list(arr.shape)}, the artifact expects {want} (N = batch)"
            )
        if len(arr) != n:
            raise KatadeployError(f"{label}: input {spec.name!r} has {len(arr)} rows, spatial has {n}")
        out.append(arr)
    return out


def concat(batches: list[RawBatch]) -> RawBatch:
    if len(batches) == 1:
        return batches[0]
    return RawBatch(*(np.concatenate(parts, axis=0) for parts in zip(*batches)))


def evaluate_in_chunks(
    run: Callable[[np.ndarray, np.ndarray, np.ndarray | None], RawBatch],
    chunk: int,
    spatial: np.ndarray,
    global_: np.ndarray,
    meta: np.ndarray | None = None,
    *,
    pad: bool = True,
) -> RawBatch:
    """Evaluate any batch through ``run``, which takes at most ``chunk`` rows (exactly ``chunk`` when ``pad``).

    With ``pad`` a short last chunk is filled up with copies of its first row and the padding is cut off again,
    for artifacts whose batch dimension is fixed.
    """
    n = len(spatial)
    if n == 0:
        raise ValueError("empty batch")
    parts = []
    for i in range(0, n, chunk):
        s, g = spatial[i : i + chunk], global_[i : i + chunk]
        m = None if meta is None else meta[i : i + chunk]
        k = len(s)
        if pad and k < chunk:
            idx = np.concatenate([np.arange(k), np.zeros(chunk - k, dtype=np.int64)])
            s, g = s[idx], g[idx]
            m = None if m is None else m[idx]
        out = run(
            np.ascontiguousarray(s), np.ascontiguousarray(g), None if m is None else np.ascontiguousarray(m)
        )
        parts.append(RawBatch(*(a[:k] for a in out)))
    return concat(parts)


def evaluate_checked(
    label: str,
    specs: Sequence[Any],
    run: Callable[[np.ndarray, np.ndarray, np.ndarray | None], RawBatch],
    chunk: int,
    spatial: np.ndarray,
    global_: np.ndarray,
    meta: np.ndarray | None = None,
) -> RawBatch:
    """:func:`check_inputs` then :func:`evaluate_in_chunks` (padded): the whole ``evaluate`` of a fixed-batch
    artifact whose runner takes ``chunk`` rows."""
    arrays = check_inputs(label, specs, spatial, global_, meta)
    return evaluate_in_chunks(run, chunk, arrays[0], arrays[1], arrays[2] if len(arrays) > 2 else None)
