"""CLI: ``katadeploy calibrate [SGF|DIR|NPZ ...] -o calib.npz [--positions N] [--val-fraction F] [--seed S]
[--nn-size N] [-q]``.

Contract: samples positions from real games (the bundled ones when no SGF is given; a directory means every
``*.sgf`` below it) with :func:`katadeploy.data.calibration.build_calibration` and writes the file atomically
with :func:`~katadeploy.data.calibration.save_calibration`. Sources ending in ``.npz`` are calibration files: they
are merged (:func:`katadeploy.data.merging.merge_calibrations`) with the set built from the other sources, or,
when every source is one, with each other and nothing is built. Progress goes to stderr (``-q`` turns it off); the
summary — the file, its size and sha256, positions and games per split, skip reasons with counts — goes to
stdout. Bad input raises :class:`~katadeploy.errors.KatadeployError` (printed by the CLI as one line).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from katadeploy.data.calibration import (
    DEFAULT_POSITIONS,
    DEFAULT_RANDOM_GAMES,
    DEFAULT_SEED,
    DEFAULT_VAL_FRACTION,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "calibrate",
        help="sample positions from real SGF games into a calibration file (.npz) for INT8 export and validation",
        description="Sample positions (stratified by game phase, all 8 symmetries, a mix of rules) from real "
        "games and write KataGo v7 net inputs, legal-move masks and a calibration/validation split "
        "(disjoint by game) to an .npz file.",
    )
    p.add_argument(
        "sources",
        nargs="*",
        metavar="SGF|DIR|NPZ",
        help="SGF files or directories (default: the bundled games); .npz calibration files are merged into the "
        "output (only .npz files: they are merged and nothing is built)",
    )
    p.add_argument("-o", "--output", required=True, help="calibration file to write (.npz)")
    p.add_argument(
        "--positions", type=int, default=DEFAULT_POSITIONS, help=f"positions (default {DEFAULT_POSITIONS})"
    )
    p.add_argument(
        "--val-fraction",
        type=float,
        default=DEFAULT_VAL_FRACTION,
        help=f"share of games (and positions) held out for validation (default {DEFAULT_VAL_FRACTION})",
    )
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"sampling seed (default {DEFAULT_SEED})")
    p.add_argument(
        "--nn-size", type=int, default=19, help="square tensor size; only boards this size are used"
    )
    p.add_argument(
        "--selfplay",
        type=int,
        default=0,
        metavar="N",
        help="also play N self-play games per board size with --model (policy sampling at --temperature), "
        "and share the positions equally among the board sizes (default 0: SGF games only)",
    )
    p.add_argument(
        "--board-sizes",
        default=None,
        help="self-play board sizes, N or NxM (default 7,9,13,19,9x13)",
    )
    p.add_argument("--model", default=None, help="the net that plays the self-play games (file, URL or name)")
    p.add_argument("--temperature", type=float, default=1.0, help="self-play policy temperature (default 1)")
    p.add_argument(
        "--random-play",
        type=int,
        default=0,
        metavar="N",
        help="also play N random legal-play games on each of 7x7, 9x9 and 13x13 (odd positions: captures, "
        "broken shapes), each size a stratum of its own (default 0; the every-size default set uses "
        f"{DEFAULT_RANDOM_GAMES})",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_calibrate)


def cmd_calibrate(args: argparse.Namespace) -> int:
    from katadeploy.data.calibration import calibration_set, save_calibration
    from katadeploy.hashing import sha256_file

    is_npz = [str(s).lower().endswith(".npz") for s in args.sources]
    merge = [s for s, npz in zip(args.sources, is_npz) if npz]
    sources = [s for s, npz in zip(args.sources, is_npz) if not npz]
    lines: list[str] = []
    built = []
    if sources or not merge:
        arrays, report = _build(args, sources)
        lines = report.lines()
        built = [calibration_set(arrays, "new calibration data")] if merge else []
    if merge:
        from katadeploy.data.merging import merge_calibrations

        arrays, merged = merge_calibrations([*built, *merge])
        lines += merged.lines()
    path = save_calibration(arrays, Path(args.output))
    size = path.stat().st_size
    print(f"wrote {path} ({size / 1e6:.2f} MB, sha256 {sha256_file(path)})")
    for line in lines:
        print(line)
    return 0


def _build(args: argparse.Namespace, sources: list[str]) -> tuple[Any, Any]:
    from katadeploy.data.calibration import build_calibration
    from katadeploy.data.selfplay import parse_board_sizes

    model = None
    if args.selfplay:
        from katadeploy.model.source import open_net

        model = open_net(args.model, quiet=args.quiet).model
    return build_calibration(
        sources or None,
        positions=args.positions,
        val_fraction=args.val_fraction,
        seed=args.seed,
        nn_size=args.nn_size,
        progress=not args.quiet,
        selfplay=args.selfplay,
        board_sizes=parse_board_sizes(args.board_sizes) if args.board_sizes else None,
        model=model,
        temperature=args.temperature,
        random_play=args.random_play,
    )
