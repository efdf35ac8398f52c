"""Search-tree nodes (KataGo's ``SearchNode`` and ``NodeStats`` without the atomics: one thread owns a tree).

Contract: a :class:`Node` is a position with ``next_pla`` to move. Its stats are weighted averages from White's
perspective (``wl`` win-loss in [-1, 1], ``nr`` no-result, ``score_mean``, ``score_mean_sq``, ``lead``,
``utility``, ``utility_sq``) with ``weight_sum``/``weight_sq_sum`` and ``visits``. Children are kept in the order
they were first explored; ``child_locs[i]``/``child_pos[i]``/``child_prior[i]`` are the move, its policy index and
its (root-adjusted) policy prior, and
``edge_visits[i]`` the visits through that edge. ``child_weight`` is KataGo's ``getChildWeight``: the child's weight
scaled by ``edgeVisits / max(childVisits, 1)``. ``nn`` is the node's :class:`NNOutput` (``None`` until evaluated;
``pending`` while an evaluation is in flight), ``next_new`` the index into ``nn.order`` of the next unexplored
policy move. ``bias_entry`` is the node's subtree-value-bias entry (:mod:`katadeploy.search.valuebias`) and
``bias_last_*`` its current contribution to it. ``game_finished`` is whether the game is over at this node (as
the history says when the node is created), and ``snapshot`` the node's own history once it has been evaluated
(see :meth:`katadeploy.search.search.Search._descend`; never mutated, ``None`` beyond the search's budget).
"""

from __future__ import annotations

from katadeploy.go.history import BoardHistory
from katadeploy.search.nnoutput import NNOutput
from katadeploy.search.valuebias import BiasEntry


class Node:
    __slots__ = (
        "next_pla", "nn", "pending", "force_non_terminal", "children", "child_locs", "child_pos", "child_prior",
        "edge_visits", "next_new", "virtual_losses", "visits", "wl", "nr", "score_mean", "score_mean_sq",
        "lead", "utility", "utility_sq", "weight_sum", "weight_sq_sum", "bias_entry", "bias_last_delta",
        "bias_last_weight", "game_finished", "snapshot",
    )  # fmt: skip

    def __init__(self, next_pla: int, force_non_terminal: bool = False, game_finished: bool = False):
        self.next_pla = next_pla
        self.game_finished = game_finished
        self.snapshot: BoardHistory | None = None
        self.nn: NNOutput | None = None
        self.pending = False
        self.force_non_terminal = force_non_terminal
        self.children: list[Node] = []
        self.child_locs: list[int] = []
        self.child_pos: list[int] = []
        self.child_prior: list[float] = []
        self.edge_visits: list[int] = []
        self.next_new = 0
        self.virtual_losses = 0
        self.visits = 0
        self.wl = 0.0
        self.nr = 0.0
        self.score_mean = 0.0
        self.score_mean_sq = 0.0
        self.lead = 0.0
        self.utility = 0.0
        self.utility_sq = 0.0
        self.weight_sum = 0.0
        self.weight_sq_sum = 0.0
        self.bias_entry: BiasEntry | None = None
        self.bias_last_delta = 0.0
        self.bias_last_weight = 0.0

    def child_weight(self, i: int) -> float:
        c = self.children[i]
        v = c.visits
        return c.weight_sum * (self.edge_visits[i] / (v if v > 1 else 1))

    def child_weight_sq(self, i: int) -> float:
        c = self.children[i]
        v = c.visits
        return c.weight_sq_sum * (self.edge_visits[i] / (v if v > 1 else 1))

    def add_leaf_value(
        self, wl: float, nr: float, score_mean: float, score_mean_sq: float, lead: float, utility: float,
        weight: float, assume_no_existing_weight: bool,
    ) -> None:  # fmt: skip
        """``Search::addLeafValue`` (the utility is computed by the caller)."""
        usq = utility * utility
        if assume_no_existing_weight:
            self.wl, self.nr, self.score_mean, self.score_mean_sq, self.lead = (
                wl,
                nr,
                score_mean,
                score_mean_sq,
                lead,
            )
            self.utility, self.utility_sq = utility, usq
            self.weight_sq_sum = weight * weight
            self.weight_sum = weight
        else:
            old = self.weight_sum
            new = old + weight
            self.wl = (self.wl * old + wl * weight) / new
            self.nr = (self.nr * old + nr * weight) / new
            self.score_mean = (self.score_mean * old + score_mean * weight) / new
            self.score_mean_sq = (self.score_mean_sq * old + score_mean_sq * weight) / new
            self.lead = (self.lead * old + lead * weight) / new
            self.utility = (self.utility * old + utility * weight) / new
            self.utility_sq = (self.utility_sq * old + usq * weight) / new
            self.weight_sq_sum += weight * weight
            self.weight_sum = new
        self.visits += 1
