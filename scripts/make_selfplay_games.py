"""Regenerate ``katadeploy/data/games/selfplay.jsonl``: the bundled self-play games of the default calibration.

The default calibration covers every board size users play: 19x19 from the bundled real games, 7x7, 9x9, 13x13
and the 9x13 rectangle from these games, played by g170-b6c96 (``../shared/models``) sampling its raw policy at
temperature 1 from empty boards (:func:`katadeploy.data.selfplay.selfplay_games`). The positions are what the
calibration needs, not the net's labels, so one small net's games calibrate every net.

    python3 scripts/make_selfplay_games.py [--games-per-size 16] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from katadeploy.data.selfplay import bundled_selfplay_path, read_games, selfplay_games, write_games
from katadeploy.model.format import load_model

NET = "g170-b6c96-s175395328-d26788732.bin.gz"
SIZES = [(7, 7), (9, 9), (13, 13), (9, 13)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--games-per-size", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--temperature", type=float, default=1.0)
    args = ap.parse_args()
    shared = Path(os.environ.get("KATADEPLOY_SHARED", Path(__file__).resolve().parents[2] / "shared"))
    model = load_model(shared / "models" / NET)
    games = selfplay_games(model, SIZES, args.games_per_size, seed=args.seed, temperature=args.temperature)
    out = bundled_selfplay_path()
    write_games(games, out, {"net": NET, "temperature": args.temperature, "seed": args.seed})
    assert len(read_games(out)) == len(games)
    print(f"wrote {len(games)} games to {out}")


if __name__ == "__main__":
    main()
