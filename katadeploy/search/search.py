"""KataGo's MCTS (``cpp/search/search.cpp``: ``runWholeSearch``, ``playoutDescend``) over katadeploy evaluators.

Contract
--------
A :class:`Search` searches one root position (a :class:`~katadeploy.go.history.BoardHistory` and the player to
move) with :class:`~katadeploy.search.params.SearchParams`:

* Root values first (``computeRootValues``): the root's safe area (pass-alive stones and territory) and the dynamic
  score centre from the root's NN score (``recentScoreCenter``).
* Each playout descends by PUCT (:mod:`katadeploy.search.explore`), making moves with KataGo's rules
  (``makeBoardMoveAssumeLegal``, encore phases and all); a finished game is scored as a terminal leaf (win/loss
  +-1, the final score, grid-adjusted score square, weight ``uncertaintyMaxWeight`` under uncertainty weighting);
  an unevaluated node is evaluated and its NN values become its first visit; each node on the path gets an edge
  visit and its stats recomputed (:mod:`katadeploy.search.backup`). Passing from the root into a finished game is
  non-terminal under ``conservativePass``, as is a pass that friendly-pass rules would suppress.
* ``numSearchThreads`` leaves are collected per round with virtual losses (as KataGo's search threads would see
  each other) and evaluated in one :class:`~katadeploy.search.nneval.NNEvaluator` call; a descent that reaches a
  node already being evaluated is dropped, as in KataGo. With one thread the search is KataGo's single-threaded
  search step for step.
* ``nnBatchesInFlight`` (katadeploy's key, default 1) > 1 pipelines the rounds: a round's batch is evaluated on a
  worker thread while the next rounds descend (their virtual losses see the leaves still pending), up to that
  many batches in flight, the oldest applied first. The runtime's inference releases the GIL, so the tree walk
  and feature encoding of one batch overlap the net's work on another. Visit and playout limits count the rows
  in flight, so ``maxVisits`` is still met exactly. ``nn_seconds`` is then the time the search waited for the
  net, not the net's own time.
* Root policy: ``rootPolicyTemperature`` (and early temperature), Dirichlet ``rootNoiseEnabled``; the root is
  evaluated with ``rootPolicyOptimism`` and, under ``ignorePreRootHistory``, without pre-root history (deeper nodes
  see only the moves since the root).
* :meth:`run` stops at ``maxVisits`` root visits, ``maxPlayouts``, ``maxTime`` seconds or when ``stop`` is set,
  and calls ``on_report`` every ``report_every`` seconds. An evaluator failure propagates out of :meth:`run`.

Also as KataGo: root symmetry pruning (:mod:`katadeploy.search.rootsymmetry`) and subtree value bias
(:mod:`katadeploy.search.valuebias`). Not ported: graph search (transpositions), multi-symmetry root
averaging, anti-mirror, pattern bonuses, human-SL guidance, avoid/allow moves, futile-visit pruning,
``fillDameBeforePass``, time controls.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from katadeploy.go import board as B
from katadeploy.go.history import BoardHistory, get_opp
from katadeploy.search.backup import recompute_node_stats
from katadeploy.search.explore import select_child
from katadeploy.search.nneval import EvalRequest, NNEvaluator
from katadeploy.search.nnoutput import NNOutput
from katadeploy.search.node import Node
from katadeploy.search.params import SearchParams
from katadeploy.search.rootsymmetry import root_symmetries
from katadeploy.search.utility import Utility, dynamic_score_center
from katadeploy.search.valuebias import ValueBiasTable

PASS_LOC = B.PASS_LOC
#: Node histories a search keeps (about 50 kB each), so playouts replay moves from a nearby node, not the root.
SNAPSHOT_BUDGET = 1024


def _replay(base: BoardHistory, moves: list[tuple[int, int]]) -> BoardHistory:
    """A copy of ``base`` with ``moves`` played (``makeBoardMoveAssumeLegal``)."""
    hist = base.copy()
    for loc, pla in moves:
        hist.make_board_move_assume_legal(loc, pla)
    return hist


@dataclass
class _Leaf:
    node: Node
    path: list[tuple[Node, int]]
    hist: BoardHistory
    pla: int
    is_root: bool


class Search:
    def __init__(
        self,
        nneval: NNEvaluator,
        params: SearchParams,
        hist: BoardHistory,
        pla: int,
        *,
        seed: int | None = None,
    ):
        self.nneval = nneval
        self.params = params
        self.root_hist = hist.copy()
        self.root_hist.presumed_next_move_pla = pla
        self.root_pla = pla
        self.root_board = self.root_hist.board
        self.x_size = self.root_board.x_size
        self.y_size = self.root_board.y_size
        self.rng = random.Random(seed)
        self.playouts = 0
        self.nn_seconds = 0.0
        self.search_seconds = 0.0
        self.nn_x, self.nn_y = nneval.tensor_size(self.x_size, self.y_size)
        self._ending_bonus: dict[int, float] = {}
        self._snapshots_left = SNAPSHOT_BUDGET
        self.root = Node(pla, force_non_terminal=self.root_hist.is_game_finished)
        self.bias_table = ValueBiasTable() if params.subtree_value_bias_factor != 0 else None
        self._compute_root_values()

    # ------------------------------------------------------------------------------------------------ setup
    def _compute_root_values(self) -> None:
        self.root_safe_area = self.root_board.calculate_area(
            None, False, False, False, self.root_hist.suicide_legal_for_pass_alive()
        )
        root_nn = self._evaluate([self._request(self.root_hist, self.root_pla, True)])[0]
        self.util = Utility(
            self.params,
            math.sqrt(self.x_size * self.y_size),
            dynamic_score_center(root_nn.white_score_mean, self.params, self.x_size, self.y_size),
            self.nneval.supports_shortterm_error,
        )
        if self.params.root_symmetry_pruning:
            self.root_symmetries, self.root_duplicates = root_symmetries(self.root_hist)
        else:
            self.root_symmetries, self.root_duplicates = [0], set()
        moves = self.root_hist.move_history
        opp = get_opp(self.root_pla)
        self._prune_useless = (
            self.params.root_prune_useless_moves
            and len(moves) >= 7
            and all(moves[-1 - k][0] == PASS_LOC and moves[-1 - k][1] == opp for k in (0, 2, 4, 6))
        )

    def _request(self, hist: BoardHistory, pla: int, is_root: bool) -> EvalRequest:
        p = self.params
        if p.ignore_all_history:
            max_history = 0
        elif p.ignore_pre_root_history:
            max_history = 0 if is_root else max(0, len(hist.move_history) - len(self.root_hist.move_history))
        else:
            max_history = 1000
        pda = 0.0
        if p.playout_doubling_advantage != 0:
            pda_pla = p.playout_doubling_advantage_pla or self.root_pla
            pda = -p.playout_doubling_advantage if get_opp(pla) == pda_pla else p.playout_doubling_advantage
        override = -1
        if p.always_compute_pass_alive_under_suicide_rules is not None:
            override = int(p.always_compute_pass_alive_under_suicide_rules)
        return EvalRequest(
            hist, pla, max_history, p.root_policy_optimism if is_root else p.policy_optimism,
            p.conservative_pass and is_root, p.draw_equivalent_wins_for_white, p.enable_passing_hacks,
            p.nn_policy_temperature, pda, override,
        )  # fmt: skip

    def _evaluate(self, requests: list[EvalRequest]) -> list[NNOutput]:
        t0 = time.perf_counter()
        try:
            return self.nneval.evaluate(requests)
        finally:
            self.nn_seconds += time.perf_counter() - t0

    # ------------------------------------------------------------------------------------------------ helpers
    def pos_to_loc(self, pos: int) -> int:
        if pos == self.nn_x * self.nn_y:
            return PASS_LOC
        x, y = pos % self.nn_x, pos // self.nn_x
        if x >= self.x_size or y >= self.y_size:
            return B.NULL_LOC
        return (x + 1) + (y + 1) * (self.x_size + 1)

    def loc_to_pos(self, loc: int) -> int:
        if loc == PASS_LOC:
            return self.nn_x * self.nn_y
        stride = self.x_size + 1
        return (loc // stride - 1) * self.nn_x + (loc % stride - 1)

    def allowed_root_move(self, pos: int) -> bool:
        """``isAllowedRootMove``: ``rootPruneUselessMoves`` and ``rootSymmetryPruning``."""
        if not self._prune_useless and not self.root_duplicates:
            return True
        loc = self.pos_to_loc(pos)
        if loc == PASS_LOC:
            return True
        if loc in self.root_duplicates:
            return False
        if not self._prune_useless:
            return True
        area = self.root_safe_area[loc]
        return not (area == self.root_pla or area == get_opp(self.root_pla))

    def nn_utility(self, node: Node) -> float:
        nn = node.nn
        assert nn is not None
        return self.util.utility_of(nn.white_win - nn.white_loss, nn.white_no_result, nn.white_score_mean,
                                    nn.white_score_mean_sq)  # fmt: skip

    def nn_utility_and_weight(self, nn: NNOutput) -> tuple[float, float]:
        u = self.util.utility_of(nn.white_win - nn.white_loss, nn.white_no_result, nn.white_score_mean,
                                 nn.white_score_mean_sq)  # fmt: skip
        return u, self.util.weight_from_nn(nn.white_score_mean, nn.st_winloss_error, nn.st_score_error)

    def ending_bonus(self, loc: int) -> float:
        """``getEndingWhiteScoreBonus`` for a root move."""
        b = self._ending_bonus.get(loc)
        if b is None:
            b = self._compute_ending_bonus(loc)
            self._ending_bonus[loc] = b
        return b

    def _compute_ending_bonus(self, loc: int) -> float:
        nn = self.root.nn
        if nn is None or loc == B.NULL_LOC:
            return 0.0
        p = self.params
        board = self.root_board
        rules = self.root_hist.rules
        area_ish = rules.scoring_rule == 0 or (rules.scoring_rule == 1 and self.root_hist.encore_phase >= 2)
        extreme, tail = 0.95, 0.05
        pla = self.root_pla
        opp = get_opp(pla)
        extra = 0.0

        def pla_ownership() -> float:
            w = float(nn.ownership[self.loc_to_pos(loc)])
            return w if pla == 2 else -w

        if area_ish:
            if loc != PASS_LOC and board.ko_loc == B.NULL_LOC:
                own = pla_ownership()
                if own <= -extreme:
                    if not board.would_be_capture(loc, pla):
                        extra -= p.root_ending_bonus_points * ((-extreme - own) / tail)
                elif own >= extreme:
                    if not board.is_adjacent_to_pla(loc, opp) and not board.is_non_pass_alive_self_connection(
                        loc, pla, self.root_safe_area
                    ):
                        extra -= p.root_ending_bonus_points * ((own - extreme) / tail)
            if loc == PASS_LOC and self.root_hist.has_button:
                extra -= p.root_ending_bonus_points * 0.5
        else:
            if loc == PASS_LOC:
                extra -= p.root_ending_bonus_points * (2.0 / 3.0)
            elif board.ko_loc == B.NULL_LOC:
                own = pla_ownership()
                if own <= -extreme:
                    extra -= p.root_ending_bonus_points * ((-extreme - own) / tail)
                elif own >= extreme:
                    if not board.is_adjacent_to_pla(loc, opp) and not board.is_non_pass_alive_self_connection(
                        loc, pla, self.root_safe_area
                    ):
                        extra -= p.root_ending_bonus_points * ((own - extreme) / tail)
        return extra if pla == 2 else -extra

    def _root_policy(self, nn: NNOutput) -> NNOutput:
        """``maybeAddPolicyNoiseAndTemp`` at the root: temperature, then Dirichlet noise."""
        p = self.params
        if (
            not p.root_noise_enabled
            and p.root_policy_temperature == 1.0
            and p.root_policy_temperature_early == 1.0
        ):
            return nn
        probs = nn.policy.copy()
        if p.root_policy_temperature != 1.0 or p.root_policy_temperature_early != 1.0:
            halflives = self.root_hist.current_turn_number() / p.chosen_move_temperature_halflife
            halflives *= 19.0 / math.sqrt(self.x_size * self.y_size)
            temp = p.root_policy_temperature + (
                p.root_policy_temperature_early - p.root_policy_temperature
            ) * (0.5**halflives)
            pos = probs > 0
            logmax = math.log(float(probs.max()))
            probs[pos] = np.exp((np.log(probs[pos].astype(np.float64)) - logmax) / temp).astype(np.float32)
            total = float(probs[pos].astype(np.float64).sum())
            legal = probs >= 0
            probs[legal] = (probs[legal] / total).astype(np.float32)
        if p.root_noise_enabled:
            legal = probs >= 0
            alpha = np.log(np.minimum(0.01, probs[legal].astype(np.float64)) + 1e-20)
            alpha = np.maximum(0.0, alpha - alpha.mean())
            uniform = 1.0 / legal.sum()
            alpha = (
                np.full_like(alpha, uniform) if alpha.sum() <= 0 else 0.5 * (alpha / alpha.sum() + uniform)
            )
            gen = np.random.default_rng(self.rng.getrandbits(63))
            r = gen.gamma(alpha * p.root_dirichlet_noise_total_concentration)
            r /= r.sum()
            w = p.root_dirichlet_noise_weight
            probs[legal] = (r * w + probs[legal] * (1.0 - w)).astype(np.float32)
        return nn.with_policy(probs)

    # ------------------------------------------------------------------------------------------------ playouts
    def _terminal_leaf(self, node: Node, hist: BoardHistory) -> None:
        w = self.util.terminal_weight()
        if hist.is_no_result:
            u = self.util.utility_of(0.0, 1.0, 0.0, 0.0)
            node.add_leaf_value(0.0, 1.0, 0.0, 0.0, 0.0, u, w, False)
            return
        draw = self.params.draw_equivalent_wins_for_white
        winner = hist.winner
        white_wins = 1.0 if winner == 2 else (0.0 if winner == 1 else draw)
        wl = 2.0 * white_wins - 1.0
        final = hist.final_white_minus_black_score
        score = final + hist.white_komi_adjustment_for_draws(draw)
        if final == int(final):
            lower, upper = final - 0.5, final + 0.5
            score_sq = lower * lower + (upper * upper - lower * lower) * draw
        else:
            score_sq = final * final
        u = self.util.utility_of(wl, 0.0, score, score_sq)
        node.add_leaf_value(wl, 0.0, score, score_sq, score, u, w, False)

    def _descend(self) -> _Leaf | bool:
        """One descent: a leaf to evaluate, True when the playout completed, False when it was dropped.

        As KataGo, each playout replays the moves from the root - but from the deepest node on the way that keeps
        a snapshot of its history (evaluated nodes do, up to :data:`SNAPSHOT_BUDGET` per search), and only when a
        history is needed: at the leaf, or to make a new child's move. A copy of a snapshot plus the remaining
        moves is the very history the full replay makes."""
        node = self.root
        base = self.root_hist  # never mutated; copied when a history is needed
        pending: list[tuple[int, int]] = []  # moves from ``base`` to ``node``
        hist: BoardHistory | None = None  # the live history at ``node`` once it was needed
        pla = self.root_pla
        path: list[tuple[Node, int]] = []
        is_root = True
        while True:
            if node.game_finished and not node.force_non_terminal:
                if hist is None:
                    hist = _replay(base, pending)
                self._terminal_leaf(node, hist)
                self._backup(path)
                return True
            if node.nn is None:
                if node.pending:
                    self._undo(path)
                    return False
                node.pending = True
                if hist is None:
                    hist = _replay(base, pending)
                return _Leaf(node, path, hist, pla, is_root)
            idx, pos = select_child(self, node, is_root)
            if idx < 0:
                u, w = self.nn_utility_and_weight(node.nn)
                if node.bias_entry is not None:
                    u += node.bias_entry.bias(self.params.subtree_value_bias_factor)
                nn = node.nn
                node.add_leaf_value(nn.white_win - nn.white_loss, nn.white_no_result, nn.white_score_mean,
                                    nn.white_score_mean_sq, nn.white_lead, u, w, False)  # fmt: skip
                self._backup(path)
                return True
            if idx == len(node.children):
                if hist is None:
                    hist = _replay(base, pending)
                loc = self.pos_to_loc(pos)
                can_force = loc == PASS_LOC and hist.should_suppress_end_game_from_friendly_pass(pla)
                hist.make_board_move_assume_legal(loc, pla)
                pla = get_opp(pla)
                force = (
                    loc == PASS_LOC
                    and hist.is_game_finished
                    and ((self.params.conservative_pass and is_root) or can_force)
                )
                child = Node(pla, force, hist.is_game_finished)
                if self.bias_table is not None:
                    child.bias_entry = self.bias_table.entry_for(hist, loc, get_opp(pla))
                node.children.append(child)
                node.child_locs.append(loc)
                node.child_pos.append(pos)
                node.child_prior.append(float(node.nn.policy[pos]))
                node.edge_visits.append(0)
                node.next_new += 1
            else:
                child = node.children[idx]
                if hist is not None:
                    hist.make_board_move_assume_legal(node.child_locs[idx], pla)
                elif child.snapshot is not None:
                    base = child.snapshot
                    pending = []
                else:
                    pending.append((node.child_locs[idx], pla))
                pla = get_opp(pla)
            child.virtual_losses += 1
            path.append((node, idx))
            node = child
            is_root = False

    def _backup(self, path: list[tuple[Node, int]]) -> None:
        root = self.root
        for node, idx in reversed(path):
            node.edge_visits[idx] += 1
            recompute_node_stats(self, node, node is root)
            node.children[idx].virtual_losses -= 1

    @staticmethod
    def _undo(path: list[tuple[Node, int]]) -> None:
        for node, idx in path:
            node.children[idx].virtual_losses -= 1

    def _collect(self, num_threads: int) -> tuple[list[_Leaf], int]:
        """Up to ``num_threads`` descents: the leaves to evaluate (pending, with virtual losses) and how many
        playouts completed without the net."""
        leaves: list[_Leaf] = []
        counted = 0
        for _ in range(num_threads):
            r = self._descend()
            if isinstance(r, _Leaf):
                leaves.append(r)
            elif r:
                counted += 1
            if self.root.nn is None and leaves:
                break  # the very first playout evaluates the root alone
        return leaves, counted

    def _requests(self, leaves: list[_Leaf]) -> list[EvalRequest]:
        return [self._request(lf.hist, lf.pla, lf.is_root) for lf in leaves]

    def _abandon(self, leaves: list[_Leaf]) -> None:
        """Leaves whose evaluation failed: no longer pending, their virtual losses taken back."""
        for lf in leaves:
            lf.node.pending = False
            self._undo(lf.path)

    def _apply(self, leaves: list[_Leaf], outs: list[NNOutput]) -> int:
        """Give evaluated leaves their NN values as their first visit and back them up; returns the playouts."""
        for lf, nn in zip(leaves, outs):
            node = lf.node
            if lf.is_root:
                nn = self._root_policy(nn)
            node.nn = nn
            node.pending = False
            if not lf.is_root and self._snapshots_left > 0:
                node.snapshot = lf.hist  # nothing mutates a leaf's history after its evaluation
                self._snapshots_left -= 1
            u, w = self.nn_utility_and_weight(nn)
            if node.bias_entry is not None:
                u += node.bias_entry.bias(self.params.subtree_value_bias_factor)
            node.add_leaf_value(nn.white_win - nn.white_loss, nn.white_no_result, nn.white_score_mean,
                                nn.white_score_mean_sq, nn.white_lead, u, w, True)  # fmt: skip
            self._backup(lf.path)
        return len(leaves)

    def _round(self, num_threads: int) -> int:
        """Up to ``num_threads`` playouts whose leaves share one NN call; returns how many counted."""
        leaves, counted = self._collect(num_threads)
        if leaves:
            try:
                outs = self._evaluate(self._requests(leaves))
            except BaseException:
                self._abandon(leaves)
                raise
            counted += self._apply(leaves, outs)
        return counted

    def run(
        self,
        *,
        max_visits: int | None = None,
        stop: threading.Event | None = None,
        report_every: float | None = None,
        first_report_after: float | None = None,
        on_report: Callable[[Search], None] | None = None,
    ) -> None:
        p = self.params
        limit = p.max_visits if max_visits is None else max_visits
        t_start = time.perf_counter()
        next_report = t_start + (
            first_report_after if first_report_after is not None else (report_every or 0.0)
        )
        nn_before = self.nn_seconds
        depth = max(1, p.nn_batches_in_flight)
        pool = ThreadPoolExecutor(depth - 1, "katadeploy-nn") if depth > 1 else None
        inflight: deque[tuple[list[_Leaf], Future]] = deque()
        rows_in_flight = 0
        try:
            while True:
                if stop is not None and stop.is_set():
                    break
                now = time.perf_counter()
                if (
                    self.root.visits + rows_in_flight >= limit
                    or self.playouts + rows_in_flight >= p.max_playouts
                    or now - t_start >= p.max_time
                ):
                    if not inflight:
                        break
                    rows_in_flight -= self._finish_oldest(inflight)
                    continue
                if (
                    on_report is not None
                    and report_every is not None
                    and now >= next_report
                    and self.root.visits > 0
                ):
                    on_report(self)
                    next_report = time.perf_counter() + report_every
                threads = max(1, min(p.num_threads, limit - self.root.visits - rows_in_flight))
                if pool is None:
                    self.playouts += self._round(threads)
                    continue
                leaves, counted = self._collect(threads)
                self.playouts += counted
                if leaves:
                    try:
                        requests = self._requests(leaves)
                    except BaseException:
                        self._abandon(leaves)
                        raise
                    inflight.append((leaves, pool.submit(self.nneval.evaluate, requests)))
                    rows_in_flight += len(leaves)
                if inflight and (len(inflight) >= depth or not leaves):
                    rows_in_flight -= self._finish_oldest(inflight)
        finally:
            if pool is not None:
                pool.shutdown(wait=True)
                while inflight:  # only after an exception or an interrupt: those leaves are given up
                    self._abandon(inflight.popleft()[0])
            self.search_seconds += time.perf_counter() - t_start
            self.last_run_nn_seconds = self.nn_seconds - nn_before

    def _finish_oldest(self, inflight: deque[tuple[list[_Leaf], Future]]) -> int:
        """Wait for the oldest batch in flight (the wait counts as NN time) and apply it; returns its rows."""
        leaves, fut = inflight.popleft()
        t0 = time.perf_counter()
        try:
            outs = fut.result()
        except BaseException:
            self._abandon(leaves)
            raise
        finally:
            self.nn_seconds += time.perf_counter() - t0
        self.playouts += self._apply(leaves, outs)
        return len(leaves)
