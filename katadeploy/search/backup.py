"""Backing values up the tree: ``recomputeNodeStats`` with noise pruning and value weighting
(``cpp/search/searchupdatehelpers.cpp``).

Contract: :func:`recompute_node_stats` rebuilds a node's averages from its children's (each weighted by its edge
child weight) plus the node's own NN evaluation (weighted by its uncertainty weight), and adds one visit:

* noise pruning (``useNoisePruning``): in child order, a child whose self-utility is below the running weighted
  average of the earlier children loses ``excess * (1 - exp(-gap / noisePruneUtilityScale))`` of the weight above
  twice its raw-policy share (capped by ``noisePruningCap``);
* value weighting (``valueWeightExponent``): each child's weight is multiplied by
  ``(tcdf3((selfUtility - mean) / sqrt(1e-8 + 1 / (1.5 sqrt(weight)))) + 0.0001) ** valueWeightExponent`` and the
  weights renormalised to their previous total (``downweightBadChildrenAndNormalizeWeight``);
* ``weightSqSum`` scales each child's by ``(newWeight / childWeightSum)^2``;
* subtree value bias (:mod:`katadeploy.search.valuebias`): the node's contribution is updated from its children's
  utility and its own NN utility is shifted by its entry's bias.

:func:`downweight_bad_children` and :func:`prune_noise_weight` are also used for reporting.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from katadeploy.search.node import Node
from katadeploy.search.scorevalue import tdist3_cdf

if TYPE_CHECKING:
    from katadeploy.search.params import SearchParams
    from katadeploy.search.search import Search


def prune_noise_weight(
    params: SearchParams, self_utils: list[float], weights: list[float], priors: list[float], total: float
) -> float:
    n = len(weights)
    if n <= 1 or total <= 0.00001:
        return total
    u_sum = 0.0
    w_sum = 0.0
    p_sum = 0.0
    scale = params.noise_prune_utility_scale
    cap = params.noise_pruning_cap
    for i in range(n):
        u = self_utils[i]
        old = weights[i]
        prior = priors[i]
        new = old
        if w_sum > 0 and p_sum > 0:
            gap = u_sum / w_sum - u
            if gap > 0:
                lenient = 2.0 * w_sum * prior / p_sum
                if old > lenient:
                    sub = (old - lenient) * (1.0 - math.exp(-gap / scale))
                    if sub > cap:
                        sub = cap
                    new = old - sub
                    weights[i] = new
        u_sum += u * new
        w_sum += new
        p_sum += prior
    return w_sum


def downweight_bad_children(
    params: SearchParams, self_utils: list[float], weights: list[float], visits: list[int], current_total: float,
    desired_total: float, amount_to_subtract: float = 0.0, amount_to_prune: float = 0.0,
) -> None:  # fmt: skip
    n = len(weights)
    if n <= 0 or current_total <= 0.0:
        return
    exponent = params.value_weight_exponent
    if exponent == 0:
        for i in range(n):
            if weights[i] < amount_to_prune:
                current_total -= weights[i]
                weights[i] = 0.0
                continue
            new = weights[i] - amount_to_subtract
            if new <= 0:
                current_total -= weights[i]
                weights[i] = 0.0
            else:
                current_total -= amount_to_subtract
                weights[i] = new
        if current_total != desired_total:
            factor = desired_total / current_total
            for i in range(n):
                weights[i] *= factor
        return
    stdevs = [0.0] * n
    simple_sum = 0.0
    for i in range(n):
        if visits[i] == 0:
            continue
        w = weights[i]
        precision = 1.5 * math.sqrt(w)
        stdevs[i] = math.sqrt(0.00000001 + 1.0 / precision)
        simple_sum += self_utils[i] * w
    simple = simple_sum / current_total
    total_new = 0.0
    for i in range(n):
        if visits[i] == 0:
            continue
        if weights[i] < amount_to_prune:
            current_total -= weights[i]
            weights[i] = 0.0
            continue
        new = weights[i] - amount_to_subtract
        if new <= 0:
            current_total -= weights[i]
            weights[i] = 0.0
        else:
            current_total -= amount_to_subtract
            weights[i] = new
        z = (self_utils[i] - simple) / stdevs[i]
        pr = tdist3_cdf(z) + 0.0001
        weights[i] *= pr**exponent
        total_new += weights[i]
    factor = desired_total / total_new
    for i in range(n):
        weights[i] *= factor


def recompute_node_stats(s: Search, node: Node, is_root: bool) -> None:
    p = s.params
    white = node.next_pla == 2
    child_prior = node.child_prior
    goods: list[Node] = []
    self_utils: list[float] = []
    weights: list[float] = []
    priors: list[float] = []
    visits: list[int] = []
    total = 0.0
    children = node.children
    edges = node.edge_visits
    for i in range(len(children)):
        c = children[i]
        cv = c.visits
        e = edges[i]
        if cv <= 0 or c.weight_sum <= 0.0 or e <= 0:
            continue
        w = c.weight_sum * (e / (cv if cv > 1 else 1))
        goods.append(c)
        self_utils.append(c.utility if white else -c.utility)
        weights.append(w)
        visits.append(cv)
        if p.use_noise_pruning:
            priors.append(max(1e-30, child_prior[i]))
        total += w
    orig_total = total
    if p.use_noise_pruning and goods:
        total = prune_noise_weight(p, self_utils, weights, priors, total)
    sub = prune = 0.0
    if is_root and p.root_noise_enabled and not p.use_noise_pruning and goods:
        mx = max(weights)
        sub = min(p.chosen_move_subtract, mx / 64.0)
        prune = min(p.chosen_move_prune, mx / 64.0)
    downweight_bad_children(p, self_utils, weights, visits, total, total, sub, prune)

    wl = nr = sm = smsq = ld = u = usq = wsq = 0.0
    for k, c in enumerate(goods):
        w = weights[k]
        scaling = w / c.weight_sum
        wl += w * c.wl
        nr += w * c.nr
        sm += w * c.score_mean
        smsq += w * c.score_mean_sq
        ld += w * c.lead
        u += w * c.utility
        usq += w * c.utility_sq
        wsq += scaling * scaling * c.weight_sq_sum
    nn = node.nn
    assert nn is not None
    own_u, own_w = s.nn_utility_and_weight(nn)
    entry = node.bias_entry
    if entry is not None:
        if total > 1e-10:
            bias_weight = orig_total**p.subtree_value_bias_weight_exponent
            delta = (u / total - own_u) * bias_weight
            entry.delta_utility_sum += delta - node.bias_last_delta
            entry.weight_sum += bias_weight - node.bias_last_weight
            node.bias_last_delta = delta
            node.bias_last_weight = bias_weight
        own_u += entry.bias(p.subtree_value_bias_factor)
    nn_wl = nn.white_win - nn.white_loss
    wl += nn_wl * own_w
    nr += nn.white_no_result * own_w
    sm += nn.white_score_mean * own_w
    smsq += nn.white_score_mean_sq * own_w
    ld += nn.white_lead * own_w
    u += own_u * own_w
    usq += own_u * own_u * own_w
    wsq += own_w * own_w
    wsum = total + own_w
    node.wl = wl / wsum
    node.nr = nr / wsum
    node.score_mean = sm / wsum
    node.score_mean_sq = smsq / wsum
    node.lead = ld / wsum
    node.utility = u / wsum
    node.utility_sq = usq / wsum
    node.weight_sq_sum = wsq
    node.weight_sum = wsum
    node.visits += 1
