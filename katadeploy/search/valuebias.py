"""Subtree value bias (``subtreeValueBiasFactor``; ``cpp/search/subtreevaluebiastable.cpp``, ``localpattern.cpp``).

Contract: a :class:`ValueBiasTable` lives for one search. :meth:`ValueBiasTable.entry_for` gives the shared
:class:`BiasEntry` of a new node reached by ``move`` (not a pass) when the game has at least two moves: the key
is what KataGo hashes - the mover, the previous move, this move, the simple-ko point and the colours of the 5x5
window (clipped at the board edge as KataGo clips it) around the move on the board before it. Nodes with the same key pool
``deltaUtilitySum``/``weightSum``: each node contributes ``(childrenUtility - ownNNUtility) *
childWeight ** subtreeValueBiasWeightExponent`` (replacing its previous contribution), and a node's own NN utility is
shifted by ``subtreeValueBiasFactor * deltaUtilitySum / weightSum`` once the pooled weight exceeds 0.001.
"""

from __future__ import annotations

from katadeploy.go import board as B
from katadeploy.go.history import BoardHistory

RADIUS = 2  # KataGo's LocalPatternHasher(5, 5)


class BiasEntry:
    __slots__ = ("delta_utility_sum", "weight_sum")

    def __init__(self) -> None:
        self.delta_utility_sum = 0.0
        self.weight_sum = 0.0

    def bias(self, factor: float) -> float:
        return factor * self.delta_utility_sum / self.weight_sum if self.weight_sum > 0.001 else 0.0


class ValueBiasTable:
    def __init__(self) -> None:
        self._entries: dict[tuple, BiasEntry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def entry_for(self, hist: BoardHistory, move: int, mover: int) -> BiasEntry | None:
        """The entry for the node just reached by ``mover`` playing ``move`` (``hist`` is after the move)."""
        moves = hist.move_history
        if len(moves) < 2 or move == B.PASS_LOC:
            return None
        prev = moves[-2][0]
        if prev == B.NULL_LOC:
            return None
        board = hist.get_recent_board(1)
        xs, ys = board.x_size, board.y_size
        stride = xs + 1
        x, y = move % stride - 1, move // stride - 1
        colors = board.colors
        n = len(colors)
        # KataGo clips one side only (else-if), which matters on boards narrower than the window
        dx0, dx1, dy0, dy1 = -RADIUS, RADIUS, -RADIUS, RADIUS
        if x < RADIUS:
            dx0 = -x
        elif x >= xs - RADIUS:
            dx1 = xs - 1 - x
        if y < RADIUS:
            dy0 = -y
        elif y >= ys - RADIUS:
            dy1 = ys - 1 - y
        window = tuple(
            colors[i] if 0 <= (i := move + dx + dy * stride) < n else B.C_WALL
            for dy in range(dy0, dy1 + 1)
            for dx in range(dx0, dx1 + 1)
        )
        key = (mover, prev, move, board.ko_loc, window)
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = BiasEntry()
        return entry
