"""Calibration data: real positions encoded as KataGo v7 net inputs, in a checked ``.npz`` file.

Contract
--------
* :func:`build_calibration` reads SGF files/directories (default: the games bundled in ``katadeploy/data/games``:
  real 19x19 games, plus, with ``bundled_selfplay``, the bundled self-play games on 7x7, 9x9, 13x13 and 9x13 that
  fit ``nn_size`` (:func:`katadeploy.data.selfplay.bundled_selfplay_path`); positions shared equally among the
  board sizes by :func:`size_shares`),
  skips unusable games with a counted reason, samples positions (:mod:`katadeploy.data.sampling`) and encodes
  them with :func:`katadeploy.go.features.encode_batch` and :func:`~katadeploy.go.features.legal_policy_mask`.
  Each position's symmetry is applied (:func:`katadeploy.go.symmetry.apply_to_inputs`) to its spatial planes and
  to the board part of its legal mask (pass stays last). It returns ``(arrays, report)``; the same sources, seed
  and parameters give byte-identical arrays.
* File format (version :data:`FORMAT_VERSION`), written by :func:`save_calibration` with
  ``np.savez_compressed`` (no pickled objects) to a temporary file renamed into place:

  * ``spatial`` float32 ``[N, 22, H, W]``: v7 spatial features, symmetry applied;
  * ``global`` float32 ``[N, 19]``: v7 global features;
  * ``legal`` bool ``[N, H*W+1]``: legal policy entries in the same frame as ``spatial``, pass last;
  * ``split`` uint8 ``[N]``: 0 calibration, 1 validation;
  * ``game`` int32 ``[N]``: index into ``games``;
  * ``games`` unicode ``[G]``: sha256 (hex) of each game's normalised content;
  * ``symmetry`` uint8 ``[N]`` (0..7), ``move_number`` int32 ``[N]`` (moves played before the position),
    ``phase`` uint8 ``[N]`` (0 opening, 1 middle, 2 endgame), ``rules`` unicode ``[N]`` (KataGo rules name used),
    ``komi`` float32 ``[N]`` (the game's komi);
  * ``info``: a 0-d unicode array holding JSON (format, format_version, seed, nn_size, katadeploy_version,
    sources, skipped, notes, game_files...).

  No game has positions in both splits.
* :func:`load_calibration` reads a file back as a :class:`CalibrationSet`, re-checking everything above (keys,
  dtypes, shapes, finite values, a 0/1 mask channel, legal-mask size, disjoint splits, format version); any
  problem raises :class:`~katadeploy.errors.KatadeployError` naming the file and saying to re-create it.
  :func:`calibration_set` does the same for arrays in memory.
* :func:`check_compatible` refuses data whose tensor size or channel counts differ from an export's.
* :func:`default_calibration_path` builds the default set from the bundled games once and caches it under
  ``katadeploy.cache.cache_dir("calibration")``, keyed by the parameters, the bundled games and the katadeploy
  version.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from katadeploy import __version__
from katadeploy.data.bundled import position_games
from katadeploy.data.sampling import (
    PHASES,
    RULES_MIX,
    SKIP_REASONS,
    SPLITS,
    GameRecord,
    GameSkipped,
    SampledPosition,
    bundled_games_dir,
    find_sgf_files,
    plan_samples,
    position_of,
    read_game,
)
from katadeploy.errors import KatadeployError
from katadeploy.files import staged
from katadeploy.go.features import NUM_GLOBAL_V7, NUM_SPATIAL_V7, encode_batch, legal_policy_mask
from katadeploy.go.symmetry import apply_to_inputs
from katadeploy.progress import Progress

FORMAT_NAME = "katadeploy-calibration"
FORMAT_VERSION = 1
DEFAULT_POSITIONS = 1024
DEFAULT_VAL_FRACTION = 0.25
DEFAULT_SEED = 0
#: bumped whenever the sampling plan changes (part of the default calibration's cache key; 4 was a short-lived plan
#: with one random-play stratum, 5 has one per size, 6 holds out the games of the 80 bundled test positions)
PLAN_VERSION = 6
#: random legal-play games per small board size in the every-size default calibration (:mod:`.randomplay`)
DEFAULT_RANDOM_GAMES = 32
RANDOM_SOURCE = "random/"
BUNDLED_LABEL = "<bundled games>"

#: key -> (dtype kind: "f4", "bool", "u1", "i4", "U"; number of dimensions)
_SCHEMA: dict[str, tuple[str, int]] = {
    "spatial": ("f4", 4),
    "global": ("f4", 2),
    "legal": ("bool", 2),
    "split": ("u1", 1),
    "game": ("i4", 1),
    "games": ("U", 1),
    "symmetry": ("u1", 1),
    "move_number": ("i4", 1),
    "phase": ("u1", 1),
    "rules": ("U", 1),
    "komi": ("f4", 1),
    "info": ("U", 0),
}
#: written by this katadeploy, optional when reading (older files lack them): each position's board and mover
_OPTIONAL: dict[str, tuple[str, int]] = {"board_x": ("i4", 1), "board_y": ("i4", 1), "to_move": ("U", 1)}
_PER_POSITION = ("global", "legal", "split", "game", "symmetry", "move_number", "phase", "rules", "komi")
_ENCODE_CHUNK = 32  # positions replayed at once (their histories are dropped after encoding)


# ---------------------------------------------------------------------------------------------------- report
@dataclass
class CalibrationReport:
    """What a build did: files read, games kept, positions per split, skip reasons with counts."""

    files: int = 0
    games: int = 0
    positions: int = 0
    requested: int = 0
    positions_per_split: dict[str, int] = field(default_factory=dict)
    games_per_split: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    skip_examples: list[str] = field(default_factory=list)
    notes: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def lines(self) -> list[str]:
        split_text = ", ".join(
            f"{self.positions_per_split.get(s, 0)} {s} from {self.games_per_split.get(s, 0)} games"
            for s in SPLITS
        )
        out = [
            f"{self.positions} positions ({split_text}) from {self.games} usable games in {self.files} files"
            f" [{self.seconds:.1f} s]"
        ]
        if self.positions < self.requested:
            out.append(f"note: {self.requested} positions requested, only {self.positions} available")
        n_skipped = sum(self.skipped.values())
        if n_skipped:
            detail = ", ".join(
                f"{k} ({SKIP_REASONS.get(k, k)}): {v}" for k, v in sorted(self.skipped.items())
            )
            out.append(f"skipped {n_skipped} files: {detail}")
            out.extend(f"  {e}" for e in self.skip_examples)
        else:
            out.append("skipped 0 files")
        if self.notes:
            out.append("notes: " + ", ".join(f"{k}: {v}" for k, v in sorted(self.notes.items())))
        return out


# ---------------------------------------------------------------------------------------------------- data set
@dataclass
class CalibrationSet:
    """Loaded calibration data (see the module contract for the fields). ``sha256`` is the file's hash."""

    spatial: np.ndarray
    global_: np.ndarray
    legal: np.ndarray
    split: np.ndarray
    game: np.ndarray
    games: list[str]
    symmetry: np.ndarray
    move_number: np.ndarray
    phase: np.ndarray
    rules: list[str]
    komi: np.ndarray
    info: dict[str, Any]
    sha256: str | None = None
    path: Path | None = None
    board_x: np.ndarray | None = None  # per position (None in files written before katadeploy recorded it)
    board_y: np.ndarray | None = None
    to_move: list[str] | None = None  # "B" / "W"

    def __len__(self) -> int:
        return int(self.spatial.shape[0])

    @property
    def nn_y(self) -> int:
        return int(self.spatial.shape[2])

    @property
    def nn_x(self) -> int:
        return int(self.spatial.shape[3])

    def subset(self, name: str) -> CalibrationSet:
        """The positions of one split, ``"calib"`` or ``"val"`` (``games`` and provenance are kept)."""
        if name not in SPLITS:
            raise KatadeployError(f"unknown calibration split {name!r}; expected one of {', '.join(SPLITS)}")
        keep = self.split == SPLITS.index(name)
        idx = np.flatnonzero(keep)
        return replace(
            self,
            spatial=self.spatial[keep],
            global_=self.global_[keep],
            legal=self.legal[keep],
            split=self.split[keep],
            game=self.game[keep],
            symmetry=self.symmetry[keep],
            move_number=self.move_number[keep],
            phase=self.phase[keep],
            rules=[self.rules[i] for i in idx],
            komi=self.komi[keep],
            board_x=None if self.board_x is None else self.board_x[keep],
            board_y=None if self.board_y is None else self.board_y[keep],
            to_move=None if self.to_move is None else [self.to_move[i] for i in idx],
        )


# ---------------------------------------------------------------------------------------------------- build
def build_calibration(
    sources: Sequence[str | os.PathLike[str]] | None = None,
    positions: int = DEFAULT_POSITIONS,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    seed: int = DEFAULT_SEED,
    nn_size: int = 19,
    progress: bool = True,
    *,
    selfplay: int = 0,
    board_sizes: Sequence[tuple[int, int]] | None = None,
    model: Any = None,
    temperature: float = 1.0,
    bundled_selfplay: bool = False,
    random_play: int = 0,
) -> tuple[dict[str, np.ndarray], CalibrationReport]:
    """Read games, sample and encode positions; returns the file's arrays and a :class:`CalibrationReport`.

    With ``selfplay`` > 0, ``model`` (a ModelDesc) also plays that many games on each of ``board_sizes``
    (:mod:`katadeploy.data.selfplay`; 19x19 ones continue openings of the SGF games) and the positions are shared
    among the board sizes by :func:`size_shares`, each sampled as above (splits disjoint by game within every size).
    With ``random_play`` > 0, that many random legal-play games per small board size that fits ``nn_size``
    (:mod:`katadeploy.data.randomplay`, seeded by ``seed``) join as strata of their own, one per size."""
    start = time.perf_counter()
    if not 2 <= nn_size <= 19:
        raise KatadeployError(f"--nn-size must be from 2 to 19, got {nn_size}")
    if selfplay:
        board_sizes = _check_selfplay(model, board_sizes, nn_size)
    bundled = not sources
    files = find_sgf_files([bundled_games_dir()] if bundled else sources)
    if not files:
        raise KatadeployError("no .sgf files found in " + ", ".join(map(os.fspath, sources or [])))
    report = CalibrationReport(files=len(files), requested=positions)
    games = _read_games(files, nn_size, bundled, report, progress)
    if bundled and bundled_selfplay:  # the bundled self-play games: the board sizes the real games lack
        games = games + _bundled_selfplay(nn_size)
    if not games and not (selfplay or random_play):  # self-play and random play make games of their own
        raise KatadeployError(
            f"none of the {len(files)} SGF files has a usable {nn_size}x{nn_size} game"
            + (
                f" ({', '.join(f'{k}: {v}' for k, v in sorted(report.skipped.items()))})"
                if report.skipped
                else ""
            )
        )
    if selfplay:
        games = games + _selfplay(model, board_sizes, selfplay, nn_size, games, seed, temperature, progress)
    if random_play:
        games = games + _random_play(random_play, nn_size, seed, progress)
    if not games:
        raise KatadeployError(
            f"no usable {nn_size}x{nn_size} games: the {len(files)} SGF files have none, and self-play and random "
            "play made none for this tensor"
        )
    plan = _plan_by_size(games, positions, val_fraction, seed)
    for k, v in plan.notes.items():
        report.notes[k] = report.notes.get(k, 0) + v

    # Keep only the games that got positions, in plan (hash) order.
    used = sorted({p.game for p in plan.positions})
    new_index = {g: i for i, g in enumerate(used)}
    used_games = [plan.games[g] for g in used]
    spatial, glob, legal = encode_positions(plan.games, plan.positions, nn_size, progress)
    n = len(plan.positions)
    info = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "katadeploy_version": __version__,
        "seed": seed,
        "nn_size": nn_size,
        "positions_requested": positions,
        "val_fraction": val_fraction,
        "sources": [BUNDLED_LABEL] if bundled else [os.fspath(s) for s in sources or []],
        "files": len(files),
        "skipped": dict(sorted(report.skipped.items())),
        "notes": dict(sorted(report.notes.items())),
        "rules_mix": list(RULES_MIX),
        "phases": list(PHASES),
        "splits": list(SPLITS),
        "game_files": [g.source for g in used_games],
        "selfplay": {
            "games_per_size": selfplay, "board_sizes": [f"{x}x{y}" for x, y in board_sizes or ()],
            "model": getattr(model, "name", None), "temperature": temperature,
        } if selfplay else None,
        "random_play": {"games_per_size": random_play} if random_play else None,
    }  # fmt: skip
    arrays: dict[str, np.ndarray] = {
        "spatial": spatial,
        "global": glob,
        "legal": legal,
        "split": np.array([p.split for p in plan.positions], dtype=np.uint8),
        "game": np.array([new_index[p.game] for p in plan.positions], dtype=np.int32),
        "games": np.array([g.sha256 for g in used_games], dtype="<U64"),
        "symmetry": np.array([p.symmetry for p in plan.positions], dtype=np.uint8),
        "move_number": np.array([p.turn for p in plan.positions], dtype=np.int32),
        "phase": np.array([p.phase for p in plan.positions], dtype=np.uint8),
        "rules": np.array([p.rules for p in plan.positions], dtype=f"<U{max(len(r) for r in RULES_MIX)}"),
        "komi": np.array([plan.games[p.game].komi for p in plan.positions], dtype=np.float32),
        "board_x": np.array([plan.games[p.game].x_size for p in plan.positions], dtype=np.int32),
        "board_y": np.array([plan.games[p.game].board_y for p in plan.positions], dtype=np.int32),
        "to_move": np.array([_mover(plan.games[p.game], p.turn) for p in plan.positions], dtype="<U1"),
        "info": np.array(json.dumps(info, sort_keys=True)),
    }
    if n == 0:  # pragma: no cover - plan_samples always yields positions from a usable game
        raise KatadeployError("no positions could be sampled")
    check_arrays(arrays, "new calibration data")
    report.games = len(games)
    report.positions = n
    for s, name in enumerate(SPLITS):
        mask = arrays["split"] == s
        report.positions_per_split[name] = int(mask.sum())
        report.games_per_split[name] = len(set(arrays["game"][mask].tolist()))
    report.seconds = time.perf_counter() - start
    return arrays, report


def _selfplay(
    model: Any,
    board_sizes: Sequence[tuple[int, int]] | None,
    per_size: int,
    nn_size: int,
    openings: list[GameRecord],
    seed: int,
    temperature: float,
    progress: bool,
) -> list[GameRecord]:
    from katadeploy.data.selfplay import selfplay_games

    return selfplay_games(
        model,
        list(board_sizes or ()),
        per_size,
        seed=seed,
        temperature=temperature,
        openings=openings,
        progress=progress,
    )


def _random_play(per_size: int, nn_size: int, seed: int, progress: bool) -> list[GameRecord]:
    from katadeploy.data.randomplay import DEFAULT_SIZES, random_games

    sizes = [s for s in DEFAULT_SIZES if max(s) <= nn_size]
    return random_games(sizes, per_size, seed=seed, progress=progress) if sizes else []


def _stratum(game: GameRecord) -> tuple[int, int, bool]:
    """The sampling stratum of a game: its board size, random-play games apart from played ones (so the default
    every-size set is 3/8 random play). Measured on g170e-b15c192's onnx-int8 at the default 1024 positions: 4.84x
    -> 2.15x KataGo's limit. One random stratum for all sizes (1/6) was worse at 64 positions (g170-b6c96 4.01x
    against 1.57x for this split)."""
    return game.x_size, game.board_y, game.source.startswith(RANDOM_SOURCE)


def _bundled_selfplay(nn_size: int) -> list[GameRecord]:
    from katadeploy.data.selfplay import bundled_selfplay_path, read_games

    path = bundled_selfplay_path()
    return (
        [replace(g, source=f"bundled/{g.source}") for g in read_games(path, nn_size)]
        if path.is_file()
        else []
    )


def _check_selfplay(
    model: Any, board_sizes: Sequence[tuple[int, int]] | None, nn_size: int
) -> list[tuple[int, int]]:
    from katadeploy.data.selfplay import DEFAULT_BOARD_SIZES

    if model is None:
        raise KatadeployError("self-play needs the net (--model)")
    sizes = list(board_sizes or DEFAULT_BOARD_SIZES)
    too_big = [f"{x}x{y}" for x, y in sizes if max(x, y) > nn_size]
    if too_big:
        raise KatadeployError(f"board sizes {', '.join(too_big)} do not fit the {nn_size}x{nn_size} tensor")
    return sizes


def size_shares(sizes: Sequence[tuple[int, ...]], positions: int) -> list[int]:
    """Positions per board size: equal shares, remainders to the first sizes. (Half on 19x19 was tried: on
    g170-b6c96 smooth-gptq INT8 went from 1.18x to 2.36x KataGo's limit, the small boards then short of ranges.)"""
    n = len(sizes)
    return [positions // n + (1 if k < positions % n else 0) for k in range(n)]


def _plan_by_size(games: list[GameRecord], positions: int, val_fraction: float, seed: int) -> Any:
    """:func:`plan_samples` per stratum (:func:`_stratum`: board size, random play apart), ``positions`` shared by
    :func:`size_shares`, merged into one plan (one stratum: the plain plan, so SGF-only builds are unchanged)."""
    from katadeploy.data.sampling import SamplePlan

    strata = sorted({_stratum(g) for g in games})
    if len(strata) == 1:
        return plan_samples(games, positions, val_fraction, seed)
    merged = SamplePlan([], [], [], {})
    for k, (stratum, share) in enumerate(zip(strata, size_shares(strata, positions))):
        group = [g for g in games if _stratum(g) == stratum]
        if share < 1:
            continue
        plan = plan_samples(group, share, val_fraction, seed + k)
        offset = len(merged.games)
        merged.games.extend(plan.games)
        merged.game_split.extend(plan.game_split)
        merged.positions.extend(replace(p, game=p.game + offset) for p in plan.positions)
        for key, v in plan.notes.items():
            merged.notes[key] = merged.notes.get(key, 0) + v
    return merged


def _mover(game: GameRecord, turn: int) -> str:
    """Who moves after ``turn`` moves of ``game``: the colour after the last move, else the initial player."""
    if turn == 0:
        return "W" if str(game.initial_player).upper().startswith("W") else "B"
    return "B" if str(game.moves[turn - 1][0]).upper().startswith("W") else "W"


def _read_games(
    files: list[Path], nn_size: int, bundled: bool, report: CalibrationReport, progress: bool
) -> list[GameRecord]:
    games: list[GameRecord] = []
    seen: set[str] = set()
    skipped: Counter[str] = Counter()
    notes: Counter[str] = Counter()
    held_out = position_games() if bundled else frozenset()
    with Progress(len(files), "reading games", quiet=not progress) as bar:
        for path in files:
            label = f"bundled/{path.name}" if bundled else os.fspath(path)
            if path.name in held_out:  # a game of the 80 test positions: never calibrate or select on it
                skipped["held-out"] += 1
                bar.advance()
                continue
            try:
                game = read_game(path, nn_size, name=label)
            except GameSkipped as exc:
                skipped[exc.reason] += 1
                _example(report, f"{label}: {exc.reason}: {exc.detail}")
            except Exception as exc:  # noqa: BLE001 - one odd file must never stop the build
                skipped["unparsable"] += 1
                _example(report, f"{label}: unparsable: {type(exc).__name__}: {exc}")
            else:
                if game.sha256 in seen:
                    skipped["duplicate"] += 1
                    _example(report, f"{label}: duplicate: same game as an earlier file")
                else:
                    seen.add(game.sha256)
                    games.append(game)
                    notes.update(game.notes)
            bar.advance()
    report.skipped = dict(skipped)
    report.notes = dict(notes)
    return games


def _example(report: CalibrationReport, text: str, limit: int = 5) -> None:
    if len(report.skip_examples) < limit:
        report.skip_examples.append(text)


def encode_positions(
    games: Sequence[GameRecord], samples: Sequence[SampledPosition], nn_size: int = 19, progress: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(spatial, global, legal)`` of ``samples`` (``games[p.game]`` after ``p.turn`` moves under ``p.rules``),
    each with its symmetry applied to the spatial planes and to the board part of the legal mask."""
    n = len(samples)
    area = nn_size * nn_size
    spatial = np.zeros((n, NUM_SPATIAL_V7, nn_size, nn_size), dtype=np.float32)
    glob = np.zeros((n, NUM_GLOBAL_V7), dtype=np.float32)
    legal = np.zeros((n, area + 1), dtype=bool)
    with Progress(n, "encoding positions", quiet=not progress) as bar:
        for lo in range(0, n, _ENCODE_CHUNK):
            chunk = samples[lo : lo + _ENCODE_CHUNK]
            states = [position_of(games[p.game], p.turn, p.rules, nn_size) for p in chunk]
            sp, gl = encode_batch(((s.history, s.next_player) for s in states), nn_size, nn_size)
            for k, (p, s) in enumerate(zip(chunk, states)):
                i = lo + k
                spatial[i] = apply_to_inputs(sp[k : k + 1], p.symmetry)[0]
                glob[i] = gl[k]
                mask = legal_policy_mask(s.history, s.next_player, nn_size, nn_size)
                board = apply_to_inputs(mask[:area].reshape(1, nn_size, nn_size), p.symmetry)
                legal[i, :area] = board.reshape(area)
                legal[i, area] = mask[area]
            bar.advance(len(chunk))
    return spatial, glob, legal


# ---------------------------------------------------------------------------------------------------- checks
def _bad(where: str | Path, problem: str) -> KatadeployError:
    return KatadeployError(
        f"calibration file {os.fspath(where)}: {problem}; re-create it with `katadeploy calibrate`"
    )


def _dtype_ok(arr: np.ndarray, kind: str) -> bool:
    if kind == "U":
        return arr.dtype.kind == "U"
    if kind == "bool":
        return arr.dtype == np.bool_
    return arr.dtype == np.dtype(kind)


def check_arrays(arrays: dict[str, np.ndarray], where: str | Path) -> dict[str, Any]:
    """Check calibration arrays against the format (see the module contract); returns the parsed ``info``."""
    if "info" not in arrays:
        raise _bad(where, "missing key 'info'")
    info_arr = arrays["info"]
    if not isinstance(info_arr, np.ndarray) or info_arr.dtype.kind != "U" or info_arr.ndim != 0:
        raise _bad(where, "'info' must be a 0-d unicode array holding JSON")
    try:
        info = json.loads(str(info_arr[()]))
    except json.JSONDecodeError as exc:
        raise _bad(where, f"'info' is not valid JSON ({exc.msg})") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT_NAME:
        raise _bad(where, f"'info' does not describe a {FORMAT_NAME} file")
    version = info.get("format_version")
    if version != FORMAT_VERSION:
        raise _bad(
            where, f"unknown format version {version!r} (this katadeploy reads version {FORMAT_VERSION})"
        )

    for key, (kind, ndim) in _SCHEMA.items():
        if key not in arrays:
            raise _bad(where, f"missing key {key!r}")
        arr = arrays[key]
        if not isinstance(arr, np.ndarray):
            raise _bad(where, f"{key!r} is not an array")
        if not _dtype_ok(arr, kind):
            want = {"f4": "float32", "u1": "uint8", "i4": "int32", "U": "unicode", "bool": "bool"}[kind]
            raise _bad(where, f"{key!r} has dtype {arr.dtype}, expected {want}")
        if arr.ndim != ndim:
            raise _bad(where, f"{key!r} has shape {arr.shape}, expected {ndim} dimensions")

    spatial = arrays["spatial"]
    n, channels, h, w = spatial.shape
    if n < 1:
        raise _bad(where, "it holds no positions")
    if channels < 1 or h < 2 or w < 2:
        raise _bad(where, f"'spatial' has shape {spatial.shape}, expected [N, C, H, W] with H, W >= 2")
    for key, (kind, _ndim) in _OPTIONAL.items():
        if key in arrays and (not _dtype_ok(arrays[key], kind) or arrays[key].shape != (n,)):
            raise _bad(where, f"{key!r} has dtype {arrays[key].dtype} and shape {arrays[key].shape}")
    if "to_move" in arrays and not np.isin(arrays["to_move"], ("B", "W")).all():
        raise _bad(where, "'to_move' has values other than B and W")
    for key in _PER_POSITION:
        if arrays[key].shape[0] != n:
            raise _bad(where, f"{key!r} has {arrays[key].shape[0]} rows but 'spatial' has {n} positions")
    if arrays["legal"].shape != (n, h * w + 1):
        raise _bad(where, f"'legal' has shape {arrays['legal'].shape}, expected {(n, h * w + 1)} for {h}x{w}")
    if arrays["global"].shape[1] < 1:
        raise _bad(where, "'global' has no channels")
    for key in ("spatial", "global", "komi"):
        if not np.isfinite(arrays[key]).all():
            raise _bad(where, f"{key!r} contains NaN or Inf")
    mask = spatial[:, 0]
    if not np.isin(mask, (0.0, 1.0)).all():
        raise _bad(where, "the on-board mask (spatial channel 0) has values other than 0 and 1")
    if not (mask.reshape(n, -1).max(axis=1) == 1.0).all():
        raise _bad(where, "a position has an empty on-board mask (spatial channel 0)")

    split, game, games = arrays["split"], arrays["game"], arrays["games"]
    if (split > 1).any():
        raise _bad(where, "'split' has values other than 0 (calibration) and 1 (validation)")
    if (arrays["symmetry"] > 7).any():
        raise _bad(where, "'symmetry' has values outside 0..7")
    if (arrays["phase"] > 2).any():
        raise _bad(where, "'phase' has values outside 0..2")
    if (arrays["move_number"] < 0).any():
        raise _bad(where, "'move_number' has negative values")
    if ((game < 0) | (game >= len(games))).any():
        raise _bad(where, f"'game' has indices outside 0..{len(games) - 1}")
    for g in games.tolist():
        if len(g) != 64 or any(c not in "0123456789abcdef" for c in g):
            raise _bad(where, f"'games' entry {g!r} is not a hex sha256")
    if len(set(games.tolist())) != len(games):
        raise _bad(where, "'games' lists the same game twice")
    overlap = set(game[split == 0].tolist()) & set(game[split == 1].tolist())
    if overlap:
        first = games[min(overlap)]
        raise _bad(
            where, f"{len(overlap)} games have positions in both splits (e.g. {first[:16]}...): not disjoint"
        )
    return info


# ---------------------------------------------------------------------------------------------------- files
def save_calibration(arrays: dict[str, np.ndarray], path: str | os.PathLike[str]) -> Path:
    """Check ``arrays`` and write them to ``path`` atomically (temporary file, then rename)."""
    out = Path(path)
    check_arrays(arrays, out)
    with staged(out) as tmp, open(tmp, "xb") as fh:
        np.savez_compressed(fh, **{k: arrays[k] for k in (*_SCHEMA, *_OPTIONAL) if k in arrays})
    return out


def load_calibration(path: str | os.PathLike[str]) -> CalibrationSet:
    """Read and check a calibration file (see the module contract)."""
    from katadeploy.hashing import sha256_file

    p = Path(path)
    if not p.is_file():
        raise KatadeployError(
            f"calibration file {os.fspath(p)} not found; create it with `katadeploy calibrate -o {os.fspath(p)}`"
        )
    if not zipfile.is_zipfile(p):
        raise _bad(p, "not an .npz file (not a zip archive)")
    try:
        with np.load(p, allow_pickle=False) as data:
            if not isinstance(data, np.lib.npyio.NpzFile):  # pragma: no cover - zip files load as NpzFile
                raise _bad(p, "not an .npz file")
            arrays = {k: data[k] for k in data.files if k in _SCHEMA or k in _OPTIONAL}
    except KatadeployError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error, KeyError) as exc:
        raise _bad(p, f"cannot be read ({type(exc).__name__}: {exc})") from None
    return calibration_set(arrays, p, sha256_file(p))


def calibration_set(
    arrays: dict[str, np.ndarray], where: str | os.PathLike[str], sha256: str | None = None
) -> CalibrationSet:
    """Check calibration arrays (as :func:`load_calibration` reads them, or as a build returns them) and wrap them as
    a :class:`CalibrationSet`; ``where`` names them in errors and becomes ``path``."""
    info = check_arrays(arrays, where)
    return CalibrationSet(
        spatial=arrays["spatial"],
        global_=arrays["global"],
        legal=arrays["legal"],
        split=arrays["split"],
        game=arrays["game"],
        games=[str(g) for g in arrays["games"].tolist()],
        symmetry=arrays["symmetry"],
        move_number=arrays["move_number"],
        phase=arrays["phase"],
        rules=[str(r) for r in arrays["rules"].tolist()],
        komi=arrays["komi"],
        info=info,
        sha256=sha256,
        path=Path(where),
        board_x=arrays.get("board_x"),
        board_y=arrays.get("board_y"),
        to_move=[str(c) for c in arrays["to_move"].tolist()] if "to_move" in arrays else None,
    )


def check_compatible(cs: CalibrationSet, model: Any, nn_x: int, nn_y: int) -> None:
    """Raise :class:`KatadeployError` unless ``cs`` fits a ``nn_x`` x ``nn_y`` export of ``model``."""
    where = os.fspath(cs.path) if cs.path is not None else "calibration data"
    if (cs.nn_y, cs.nn_x) != (nn_y, nn_x):
        raise KatadeployError(
            f"{where} holds {cs.nn_x}x{cs.nn_y} positions but the export uses a {nn_x}x{nn_y} tensor; "
            f"re-create it with `katadeploy calibrate --nn-size {nn_x}`"
            if nn_x == nn_y
            else f"{where} holds {cs.nn_x}x{cs.nn_y} positions but the export uses a {nn_x}x{nn_y} tensor"
        )
    want_s = int(model.num_input_channels)
    want_g = int(model.num_input_global_channels)
    have_s, have_g = int(cs.spatial.shape[1]), int(cs.global_.shape[1])
    if (have_s, have_g) != (want_s, want_g):
        raise KatadeployError(
            f"{where} has {have_s} spatial / {have_g} global input channels but "
            f"{getattr(model, 'name', 'the net')} takes {want_s} / {want_g}"
        )


# ---------------------------------------------------------------------------------------------------- default
def _bundled_digest(files: Iterable[Path]) -> str:
    h = hashlib.sha256()
    for f in sorted(files, key=lambda q: q.name):
        h.update(f.name.encode("utf-8") + b"\0")
        h.update(hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()


def default_calibration_path(
    nn_size: int = 19,
    progress: bool = True,
    *,
    positions: int = DEFAULT_POSITIONS,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    seed: int = DEFAULT_SEED,
    every_size: bool = False,
) -> Path:
    """The default calibration file for ``nn_size``, built from the bundled games on first use and cached; with
    ``every_size`` the bundled self-play games (7x7, 9x9, 13x13, 9x13) and :data:`DEFAULT_RANDOM_GAMES` random-play
    games per small size (7x7, 9x9, 13x13) join the 19x19 real games."""
    from katadeploy.cache import cache_dir
    from katadeploy.data.selfplay import bundled_selfplay_path

    files = find_sgf_files([bundled_games_dir()])
    if not files:
        raise KatadeployError(f"no bundled games found in {bundled_games_dir()}")
    selfplay = bundled_selfplay_path()
    digest = _bundled_digest(files + ([selfplay] if every_size and selfplay.is_file() else []))[:12]
    random_play = DEFAULT_RANDOM_GAMES if every_size else 0
    name = (
        f"bundled{f'-all-rand{random_play}' if every_size else ''}-nn{nn_size}-n{positions}-val{val_fraction:g}-seed{seed}"
        f"-fmt{FORMAT_VERSION}-plan{PLAN_VERSION}-kd{__version__}-{digest}.npz"
    )
    path = cache_dir("calibration") / name
    if path.is_file():
        return path
    if progress:
        print(
            f"building default calibration data from {len(files)} bundled games (once) ...", file=sys.stderr
        )
    arrays, report = build_calibration(
        None,
        positions,
        val_fraction,
        seed,
        nn_size,
        progress,
        bundled_selfplay=every_size,
        random_play=random_play,
    )
    save_calibration(arrays, path)
    if progress:
        for line in report.lines():
            print(line, file=sys.stderr)
        print(f"cached at {path}", file=sys.stderr)
    return path
