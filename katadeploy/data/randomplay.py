"""Random-play games for calibration: the odd positions (captures, broken shapes, late fills) that no strong game
reaches, on the small boards where INT8 ranges are most fragile.

Why: positions from real and self-play games keep activations inside a narrow band. A user who sets up an
arbitrary position, or analyses a beginner's game, drives the net outside it. Calibration and QAT that never see
such positions clip them, and the error lands on exactly those positions (measured on g170e-b15c192: the worst
INT8 lead errors were on random small-board positions). Why hand-written: random *legal* play under KataGo's
rules needs katadeploy's own board (superko, suicide); no library plays them.

Contract: :func:`random_games` plays ``games_per_size`` games on each of ``sizes`` from empty boards. Every move
is uniform over the legal board moves (pass only when no board move is legal); a game ends after two passes in a
row, when the history says it is finished, or at :data:`MAX_MOVES_PER_POINT` x area moves. Komi is drawn per
game from :data:`KOMIS`. Returns :class:`~katadeploy.data.sampling.GameRecord` objects (``source``
``random/<x>x<y>/<n>``, Chinese rules during play; the calibration sampler assigns its own rule mix), so splits
stay disjoint by game. The same sizes, counts and seed give the same games; no net is needed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from katadeploy.data.sampling import GameRecord, game_identity
from katadeploy.data.selfplay import play_move
from katadeploy.errors import KatadeployError
from katadeploy.go.board import PASS_LOC
from katadeploy.go.coords import get_loc
from katadeploy.go.features import legal_policy_mask
from katadeploy.go.position import position_from_query
from katadeploy.progress import Progress

DEFAULT_SIZES = ((7, 7), (9, 9), (13, 13))
MAX_MOVES_PER_POINT = 1.2
RULES = "chinese"
#: komi of a random game: any half or whole point from -8 to +10 (the net's komi input sees the whole usual range)
KOMIS = tuple(k / 2 for k in range(-16, 21))


def random_games(
    sizes: Sequence[tuple[int, int]], games_per_size: int, *, seed: int = 0, progress: bool = True
) -> list[GameRecord]:
    if games_per_size < 1:
        raise KatadeployError("random play needs a positive number of games per board size")
    rng = np.random.default_rng(seed)
    records: list[GameRecord] = []
    with Progress(games_per_size * len(sizes), "random-play games", quiet=not progress) as bar:
        for x, y in sizes:
            for g in range(games_per_size):
                komi = float(KOMIS[int(rng.integers(len(KOMIS)))])
                moves = _play(x, y, komi, rng)
                records.append(
                    GameRecord(
                        source=f"random/{x}x{y}/{g}", sha256=game_identity(x, (), moves, y_size=y), size=x,
                        initial_stones=(), moves=moves, initial_player="B", komi=komi, game_rules=RULES, y_size=y,
                    )  # fmt: skip
                )
                bar.advance()
    return records


def _play(x: int, y: int, komi: float, rng: np.random.Generator) -> tuple[tuple[str, str], ...]:
    query = {"id": "random", "moves": [], "rules": RULES, "komi": komi, "boardXSize": x, "boardYSize": y}
    state = position_from_query(query, max_board_size=19, strict=False)
    moves: list[tuple[str, str]] = []
    passes = 0
    cap = int(MAX_MOVES_PER_POINT * x * y)
    while len(moves) < cap and passes < 2 and not state.history.is_game_finished:
        legal = legal_policy_mask(state.history, state.next_player, x, y)
        board = np.flatnonzero(legal[:-1])
        if len(board):
            pos = int(board[int(rng.integers(len(board)))])
            loc = get_loc(pos % x, pos // x, x)
        else:
            loc = PASS_LOC
        passes = passes + 1 if loc == PASS_LOC else 0
        moves.append(play_move(state, loc))
    return tuple(moves)


__all__ = ["DEFAULT_SIZES", "KOMIS", "random_games"]
