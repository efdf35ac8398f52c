"""Merging calibration files: one file from several ``katadeploy calibrate`` outputs of the same tensor, so an export
can calibrate on several distributions at once (the bundled every-size set plus a user's own games, say).

Contract: :func:`merge_calibrations` takes calibration files, loaded with
:func:`~katadeploy.data.calibration.load_calibration` (every check of the format applies), or sets already in memory
(:class:`~katadeploy.data.calibration.CalibrationSet`), and returns ``(arrays, report)`` in the calibration file format, which
:func:`~katadeploy.data.calibration.save_calibration` writes.

* The files must hold the same tensor (channels, height, width) and global channels; otherwise a
  :class:`~katadeploy.errors.KatadeployError` names the two files.
* Positions are concatenated in file order. Games are identified by their sha256, so a game in several files is one
  game: its split is the one the first file holding it gave it, and its positions from later files join that split
  (counted as ``resplit``), which keeps the splits disjoint by game. A position that repeats an earlier one exactly
  (same game, move number, symmetry and rules) is dropped (counted as ``duplicate``).
* The per-position board size and mover (optional fields) are kept only when every file has them.
* ``info`` records the inputs (path, sha256, positions, seed, sources) under ``merged_from``; ``sources`` are the
  inputs' in order and ``game_files`` names each merged game as its first input did.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from katadeploy import __version__
from katadeploy.data.calibration import (
    FORMAT_NAME,
    FORMAT_VERSION,
    CalibrationSet,
    check_arrays,
    load_calibration,
)
from katadeploy.data.sampling import SPLITS
from katadeploy.errors import KatadeployError


@dataclass
class MergeReport:
    """What a merge did: positions per input and split, games, and what was dropped or moved."""

    inputs: list[tuple[str, int]] = field(default_factory=list)  # (path, positions)
    positions_per_split: dict[str, int] = field(default_factory=dict)
    games: int = 0
    duplicate: int = 0
    resplit: int = 0

    def lines(self) -> list[str]:
        n = sum(self.positions_per_split.values())
        out = [f"merged {len(self.inputs)} calibration files into {n} positions ("
               + ", ".join(f"{self.positions_per_split.get(s, 0)} {s}" for s in SPLITS)
               + f") from {self.games} games"]  # fmt: skip
        out.extend(f"  {path}: {k} positions" for path, k in self.inputs)
        if self.duplicate or self.resplit:
            out.append(
                f"notes: duplicate (positions already in an earlier file, dropped): {self.duplicate}, "
                f"resplit (positions of a game an earlier file put in the other split, moved to it): {self.resplit}"
            )
        return out


def _shape(cs: CalibrationSet) -> tuple[int, ...]:
    return (*cs.spatial.shape[1:], cs.global_.shape[1])


def merge_calibrations(
    inputs: Sequence[CalibrationSet | str | os.PathLike[str]],
) -> tuple[dict[str, np.ndarray], MergeReport]:
    """Merge calibration files or sets (see the module contract); needs at least one."""
    if not inputs:
        raise KatadeployError("no calibration files to merge")
    sets = [p if isinstance(p, CalibrationSet) else load_calibration(p) for p in inputs]
    first = sets[0]
    for cs in sets[1:]:
        if _shape(cs) != _shape(first):
            raise KatadeployError(
                f"calibration files {os.fspath(first.path or '')} and {os.fspath(cs.path or '')} hold different "
                f"tensors ([C, H, W, global] {list(_shape(first))} vs {list(_shape(cs))}); merge files made for the "
                "same --nn-size and net version"
            )
    report = MergeReport()
    game_index: dict[str, int] = {}
    game_split: dict[str, int] = {}
    seen: set[tuple[str, int, int, str]] = set()
    rows: list[list[int]] = [[] for _ in sets]  # the kept rows of each input, in order
    splits: list[int] = []
    game_of: list[int] = []  # each kept position's index into games
    games: list[str] = []
    game_files: list[str] = []
    for k, cs in enumerate(sets):
        report.inputs.append((os.fspath(cs.path or f"input {k}"), len(cs)))
        for i in range(len(cs)):
            sha = cs.games[int(cs.game[i])]
            key = (sha, int(cs.move_number[i]), int(cs.symmetry[i]), cs.rules[i])
            if key in seen:
                report.duplicate += 1
                continue
            seen.add(key)
            split = game_split.setdefault(sha, int(cs.split[i]))
            if split != int(cs.split[i]):
                report.resplit += 1
            if sha not in game_index:
                game_index[sha] = len(games)
                games.append(sha)
                files = cs.info.get("game_files") or []
                game_files.append(str(files[int(cs.game[i])]) if len(files) == len(cs.games) else "")
            rows[k].append(i)
            splits.append(split)
            game_of.append(game_index[sha])

    picks = [np.array(r, dtype=np.int64) for r in rows]  # once, for every gathered field

    def gather(get: Any, dtype: Any = None) -> np.ndarray:
        parts = [np.asarray(get(cs))[picks[k]] for k, cs in enumerate(sets)]
        out = np.concatenate(parts)
        return out.astype(dtype) if dtype is not None else out

    arrays: dict[str, np.ndarray] = {
        "spatial": gather(lambda cs: cs.spatial),
        "global": gather(lambda cs: cs.global_),
        "legal": gather(lambda cs: cs.legal),
        "split": np.array(splits, dtype=np.uint8),
        "game": np.array(game_of, dtype=np.int32),
        "games": np.array(games, dtype="<U64"),
        "symmetry": gather(lambda cs: cs.symmetry, np.uint8),
        "move_number": gather(lambda cs: cs.move_number, np.int32),
        "phase": gather(lambda cs: cs.phase, np.uint8),
        "rules": gather(lambda cs: cs.rules, str),
        "komi": gather(lambda cs: cs.komi, np.float32),
    }
    if all(cs.board_x is not None and cs.board_y is not None and cs.to_move is not None for cs in sets):
        arrays["board_x"] = gather(lambda cs: cs.board_x, np.int32)
        arrays["board_y"] = gather(lambda cs: cs.board_y, np.int32)
        arrays["to_move"] = gather(lambda cs: cs.to_move, "<U1")
    info = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "katadeploy_version": __version__,
        "nn_size": first.nn_x if first.nn_x == first.nn_y else [first.nn_x, first.nn_y],
        "sources": [s for cs in sets for s in cs.info.get("sources", [])],
        "game_files": game_files,
        "splits": list(SPLITS),
        "merged_from": [
            {
                "path": os.fspath(cs.path or ""),
                "sha256": cs.sha256,
                "positions": len(cs),
                "seed": cs.info.get("seed"),
                "sources": cs.info.get("sources", []),
            }
            for cs in sets
        ],
        "notes": {"duplicate": report.duplicate, "resplit": report.resplit},
    }
    arrays["info"] = np.array(json.dumps(info, sort_keys=True))
    check_arrays(arrays, "merged calibration data")
    report.games = len(games)
    for s, name in enumerate(SPLITS):
        report.positions_per_split[name] = int((arrays["split"] == s).sum())
    return arrays, report
