"""Opening positions for a match: the first moves of real games, or short seeded random openings.

Contract: :func:`choose_openings` returns an :class:`OpeningSet`: at least one :class:`Opening` (an id and the
moves, ``[["B", "D4"], ["W", "Q16"], ...]``, Black first) for the requested board size, in a seeded order, plus a
line saying where they came from. The match plays each opening twice, colours swapped (game ``2k`` and ``2k+1``
use opening ``k`` modulo the set's size), so any advantage an opening gives one colour cancels out.

* SGF sources (files or directories, ``*.sgf`` below them) or, by default on 19x19, the bundled real games
  (:func:`katadeploy.data.sampling.bundled_games_dir`): each game is read with
  :func:`katadeploy.data.sampling.read_game` (only boards of the requested size are kept), games with setup or
  handicap stones and games shorter than the opening are skipped, the first ``moves`` moves are taken and must
  be legal under the match's rules, and identical move prefixes are kept once. No usable game is an error.
* 9x9 and 13x13 without ``--openings``: the bundled games are all 19x19, so each opening is ``moves`` random
  legal moves on the third line or above (a point at least two lines from every edge), drawn from the seed,
  duplicates dropped. The net's own first moves then take over: the openings only break the symmetry between
  games (``nnRandomize`` does the rest).

Default length (:data:`DEFAULT_MOVES`): 10 moves of a real game on 19x19, 4 on 13x13, 2 on 9x9; random openings
use the same table.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from katadeploy.data.sampling import GameSkipped, bundled_games_dir, find_sgf_files, read_game
from katadeploy.errors import KatadeployError, PositionError
from katadeploy.go.coords import loc_to_string
from katadeploy.go.position import position_from_query

DEFAULT_MOVES = {9: 2, 13: 4, 19: 10}
RANDOM_ATTEMPTS = 50


@dataclass(frozen=True)
class Opening:
    id: str
    moves: tuple[tuple[str, str], ...]

    def to_dict(self) -> dict[str, object]:
        return {"id": self.id, "moves": [list(m) for m in self.moves]}


@dataclass(frozen=True)
class OpeningSet:
    openings: tuple[Opening, ...]
    source: str

    def for_game(self, index: int) -> Opening:
        """Opening of game ``index``: each is played by a colour-swapped pair of games."""
        return self.openings[(index // 2) % len(self.openings)]


def default_moves(board: int) -> int:
    return DEFAULT_MOVES.get(board, max(1, round(board * board / 36)))


def _query(board: int, moves: Sequence[Sequence[str]], rules: str, komi: float) -> dict[str, object]:
    return {
        "id": "opening", "moves": [list(m) for m in moves], "rules": rules, "komi": komi,
        "boardXSize": board, "boardYSize": board, "initialPlayer": "B",
    }  # fmt: skip


def _legal(board: int, moves: Sequence[Sequence[str]], rules: str, komi: float) -> bool:
    try:
        position_from_query(_query(board, moves, rules, komi), max_board_size=board)
    except PositionError:
        return False
    return True


def sgf_openings(
    sources: Sequence[str | os.PathLike[str]], board: int, moves: int, rules: str, komi: float
) -> list[Opening]:
    """Openings from SGF files/directories (see the module contract); files are read in sorted order."""
    out: list[Opening] = []
    seen: set[tuple[tuple[str, str], ...]] = set()
    for path in find_sgf_files(sources):
        try:
            game = read_game(path, nn_size=board)
        except GameSkipped:
            continue
        if game.size != game.board_y or game.initial_stones or game.n_moves < moves:
            continue
        prefix = tuple((c.upper(), v.upper()) for c, v in game.moves[:moves])
        if prefix in seen or any(c != "BW"[i % 2] for i, (c, _) in enumerate(prefix)):
            continue
        if not _legal(board, prefix, rules, komi):
            continue
        seen.add(prefix)
        out.append(Opening(f"{path.stem}@{moves}", prefix))
    return out


def random_openings(count: int, board: int, moves: int, rules: str, komi: float, seed: int) -> list[Opening]:
    """``count`` distinct random openings of ``moves`` legal moves at least two lines from every edge."""
    rng = np.random.default_rng(seed)
    margin = 2 if board >= 7 else 0
    points = [(x, y) for y in range(margin, board - margin) for x in range(margin, board - margin)]
    out: list[Opening] = []
    seen: set[tuple[tuple[str, str], ...]] = set()
    for _ in range(count * RANDOM_ATTEMPTS):
        if len(out) >= count:
            break
        seq: list[tuple[str, str]] = []
        for i in range(moves):
            for j in rng.permutation(len(points)):
                x, y = points[int(j)]
                vertex = loc_to_string((x + 1) + (y + 1) * (board + 1), board, board)
                cand = (*seq, ("BW"[i % 2], vertex))
                if _legal(board, cand, rules, komi):
                    seq.append(cand[-1])
                    break
            else:
                break
        key = tuple(seq)
        if len(seq) == moves and key not in seen:
            seen.add(key)
            out.append(Opening(f"random-{len(out)}", key))
    return out


def choose_openings(
    board: int,
    pairs: int,
    *,
    sources: Sequence[str | os.PathLike[str]] | None = None,
    moves: int | None = None,
    rules: str = "tromp-taylor",
    komi: float = 7.5,
    seed: int = 0,
) -> OpeningSet:
    """The openings for ``pairs`` colour-swapped game pairs (see the module contract)."""
    n_moves = default_moves(board) if moves is None else moves
    if n_moves < 0:
        raise KatadeployError("--opening-moves must be >= 0")
    if n_moves == 0:
        return OpeningSet((Opening("empty", ()),), "the empty board")
    wanted = max(1, pairs)
    if sources or board == 19:
        srcs = list(sources) if sources else [bundled_games_dir()]
        found = sgf_openings(srcs, board, n_moves, rules, komi)
        where = "the bundled real games" if not sources else ", ".join(os.fspath(s) for s in srcs)
        if not found:
            raise KatadeployError(
                f"no usable {board}x{board} game with at least {n_moves} moves (and no setup stones) in {where}"
            )
        order = np.random.default_rng(seed).permutation(len(found))
        chosen = [found[int(i)] for i in order[:wanted]]
        reuse = "" if len(found) >= wanted else f"; {len(found)} distinct openings, reused in turn"
        return OpeningSet(tuple(chosen), f"first {n_moves} moves of {len(chosen)} games from {where}{reuse}")
    found = random_openings(wanted, board, n_moves, rules, komi, seed)
    if not found:
        raise KatadeployError(f"could not draw a legal {n_moves}-move opening on {board}x{board}")
    return OpeningSet(
        tuple(found), f"{len(found)} random {n_moves}-move openings (third line and above, seed {seed})"
    )
