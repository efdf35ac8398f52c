"""PUCT child selection, first-play urgency and virtual loss (``cpp/search/searchexplorehelpers.cpp``).

Contract (all utilities from White's perspective; the selecting player flips the sign):

* ``cpuct(W) = cpuctExploration + cpuctExplorationLog * ln((W + cpuctExplorationBase) / cpuctExplorationBase)``
  and the exploration scale is ``cpuct(W) * sqrt(W + 0.01) * stdevFactor`` where ``W`` is the total child weight
  and ``stdevFactor = 1 + cpuctUtilityStdevScale * (parentUtilityStdev / cpuctUtilityStdevPrior - 1)``, the parent's
  utility stdev shrunk towards ``cpuctUtilityStdevPrior`` with weight ``cpuctUtilityStdevPriorWeight``.
* A child's value is ``scale * prior / (1 + childWeight) + selfUtility``. Unvisited children get the FPU value:
  the parent utility (mixed with the parent's own NN utility by ``fpuParentWeightByVisitedPolicy`` -
  weight ``min(1, visitedPolicyMass ** pow)`` on the search value - or ``fpuParentWeight``) minus
  ``(root)FpuReductionMax * sqrt(visitedPolicyMass)``, pulled towards a loss by ``(root)FpuLossProp``.
* Virtual losses (other leaves of the same batch) move a child's utility towards a loss with weight
  ``n * numVirtualLossesPerThread / (that + max(0.25, childWeight))`` and add to its weight.
* At the root: the ending-score bonus, ``rootDesiredPerChildVisitsCoeff`` and ``wideRootNoise`` as in KataGo.
* Unexplored moves are considered one at a time in descending policy order (only the best one competes).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from katadeploy.search.node import Node

if TYPE_CHECKING:
    from katadeploy.search.search import Search

POLICY_ILLEGAL_SELECTION_VALUE = -1e50
TOTALCHILDWEIGHT_PUCT_OFFSET = 0.01


def cpuct(s: Search, total_child_weight: float) -> float:
    p = s.params
    return p.cpuct_exploration + p.cpuct_exploration_log * math.log(
        (total_child_weight + p.cpuct_exploration_base) / p.cpuct_exploration_base
    )


def explore_scaling(s: Search, total_child_weight: float, stdev_factor: float) -> float:
    return (
        cpuct(s, total_child_weight)
        * math.sqrt(total_child_weight + TOTALCHILDWEIGHT_PUCT_OFFSET)
        * stdev_factor
    )


def explore_value(
    scaling: float, prior: float, child_weight: float, child_utility: float, white: bool
) -> float:
    if prior < 0:
        return POLICY_ILLEGAL_SELECTION_VALUE
    return scaling * prior / (1.0 + child_weight) + (child_utility if white else -child_utility)


def explore_value_inverse(
    value: float, scaling: float, prior: float, child_utility: float, white: bool
) -> float:
    """The child weight that would give ``value`` (``getExploreSelectionValueInverse``)."""
    if prior < 0:
        return 0.0
    explore = value - (child_utility if white else -child_utility)
    if explore <= 0:
        return 1e100
    w = scaling * prior / explore - 1.0
    return w if w > 0 else 0.0


def parent_stats(
    s: Search, node: Node, is_root: bool, policy_mass_visited: float
) -> tuple[float, float, float, float]:
    """``getFpuValueForChildrenAssumeVisited``: (fpu, parentUtility, parentWeightPerVisit, stdevFactor)."""
    p = s.params
    visits = node.visits
    weight_sum = node.weight_sum
    parent_utility = node.utility
    utility_sq_avg = node.utility_sq
    parent_weight_per_visit = weight_sum / visits
    prior = p.cpuct_utility_stdev_prior
    if visits <= 0 or weight_sum <= 1:
        stdev = prior
    else:
        usq = parent_utility * parent_utility
        if utility_sq_avg < usq:
            utility_sq_avg = usq
        pw = p.cpuct_utility_stdev_prior_weight
        stdev = math.sqrt(
            max(
                0.0,
                ((usq + prior * prior) * pw + utility_sq_avg * weight_sum) / (pw + weight_sum - 1.0) - usq,
            )
        )
    stdev_factor = 1.0 + p.cpuct_utility_stdev_scale * (stdev / prior - 1.0)
    u_fpu = parent_utility
    if p.fpu_parent_weight_by_visited_policy:
        avg_weight = min(1.0, policy_mass_visited**p.fpu_parent_weight_by_visited_policy_pow)
        u_fpu = avg_weight * parent_utility + (1.0 - avg_weight) * s.nn_utility(node)
    elif p.fpu_parent_weight > 0.0:
        u_fpu = p.fpu_parent_weight * s.nn_utility(node) + (1.0 - p.fpu_parent_weight) * parent_utility
    reduction_max = p.root_fpu_reduction_max if is_root else p.fpu_reduction_max
    loss_prop = p.root_fpu_loss_prop if is_root else p.fpu_loss_prop
    radius = p.utility_radius
    reduction = reduction_max * math.sqrt(policy_mass_visited)
    white = node.next_pla == 2
    fpu = u_fpu - reduction if white else u_fpu + reduction
    loss = -radius if white else radius
    fpu = fpu + (loss - fpu) * loss_prop
    return fpu, parent_utility, parent_weight_per_visit, stdev_factor


def child_explore_value(
    s: Search, node: Node, i: int, scaling: float, total_child_weight: float, fpu: float, is_root: bool,
    during_search: bool,
) -> float:  # fmt: skip
    """``getExploreSelectionValueOfChild`` for existing child ``i``."""
    p = s.params
    child = node.children[i]
    prior = node.child_prior[i]
    visits = child.visits
    weight = node.child_weight(i)
    if visits <= 0 or weight <= 0.0:
        utility = fpu
    else:
        utility = child.utility
        if is_root:
            bonus = s.ending_bonus(node.child_locs[i])
            if bonus != 0:
                utility += s.util.score_utility_diff(child.score_mean, child.score_mean_sq, bonus)
    white = node.next_pla == 2
    vl = child.virtual_losses
    if vl > 0:
        vlw = vl * p.num_virtual_losses_per_thread
        radius = p.utility_radius
        vl_utility = -radius if white else radius
        frac = vlw / (vlw + max(0.25, weight))
        utility = utility + (vl_utility - utility) * frac
        weight += vlw
    if during_search and is_root:
        if p.root_desired_per_child_visits_coeff > 0.0:
            if prior > 0 and weight < math.sqrt(
                prior * total_child_weight * p.root_desired_per_child_visits_coeff
            ):
                return 1e20
        if p.wide_root_noise > 0.0 and prior >= 0:
            prior, utility = _wide_root_noise(s, prior, utility, white)
    return explore_value(scaling, prior, weight, utility, white)


def _wide_root_noise(s: Search, prior: float, utility: float, white: bool) -> tuple[float, float]:
    p = s.params
    prior = float(prior ** (1.0 / (4.0 * p.wide_root_noise + 1.0)))
    if s.rng.random() < 0.5:
        bonus = p.wide_root_noise * abs(s.rng.gauss(0.0, 1.0))
        utility = utility + bonus if white else utility - bonus
    return prior, utility


def select_child(s: Search, node: Node, is_root: bool) -> tuple[int, int]:
    """(child index, policy index): an existing child, ``len(children)`` for a new move, or (-1, -1) for none.

    The same computation as :func:`child_explore_value` for every child, inlined for speed.
    """
    nn = node.nn
    assert nn is not None
    p = s.params
    children = node.children
    edges = node.edge_visits
    priors = node.child_prior
    n = len(children)
    weights = [0.0] * n
    total_weight = 0.0
    for i in range(n):
        c = children[i]
        cv = c.visits
        w = c.weight_sum * (edges[i] / (cv if cv > 1 else 1))
        weights[i] = w
        total_weight += w
    mass = sum(priors)
    fpu, _, _, stdev_factor = parent_stats(s, node, is_root, mass)
    scaling = explore_scaling(s, total_weight, stdev_factor)
    white = node.next_pla == 2
    radius = p.utility_radius
    vl_utility = -radius if white else radius
    vl_per = p.num_virtual_losses_per_thread
    root_extras = is_root and (p.root_desired_per_child_visits_coeff > 0.0 or p.wide_root_noise > 0.0)
    best = POLICY_ILLEGAL_SELECTION_VALUE
    best_idx = -1
    best_pos = -1
    for i in range(n):
        c = children[i]
        w = weights[i]
        if c.visits <= 0 or w <= 0.0:
            u = fpu
        else:
            u = c.utility
            if is_root:
                bonus = s.ending_bonus(node.child_locs[i])
                if bonus != 0:
                    u += s.util.score_utility_diff(c.score_mean, c.score_mean_sq, bonus)
        vl = c.virtual_losses
        if vl > 0:
            vlw = vl * vl_per
            u = u + (vl_utility - u) * (vlw / (vlw + max(0.25, w)))
            w += vlw
        prior = priors[i]
        if root_extras:
            cf = p.root_desired_per_child_visits_coeff
            if cf > 0.0 and prior > 0 and w < math.sqrt(prior * total_weight * cf):
                v = 1e20
                if v > best:
                    best, best_idx, best_pos = v, i, node.child_pos[i]
                continue
            if p.wide_root_noise > 0.0:
                prior, u = _wide_root_noise(s, prior, u, white)
        v = scaling * prior / (1.0 + w) + (u if white else -u)
        if v > best:
            best, best_idx, best_pos = v, i, node.child_pos[i]
    order = nn.order
    k = node.next_new
    policy = nn.policy
    while k < len(order):
        pos = int(order[k])
        if is_root and not s.allowed_root_move(pos):
            k += 1
            node.next_new = k
            continue
        prior = float(policy[pos])
        u = fpu
        if is_root and p.wide_root_noise > 0.0:
            prior, u = _wide_root_noise(s, prior, u, white)
        v = scaling * prior + (u if white else -u)
        if v > best:
            best, best_idx, best_pos = v, n, pos
        break
    return best_idx, best_pos
