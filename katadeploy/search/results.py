"""What a finished (or running) search reports: move choice, PV and the analysis JSON
(``cpp/search/searchresults.cpp``, ``analysisdata.cpp``, ``reportedsearchvalues.cpp``).

Contract
--------
* :func:`play_selection_values` is ``getPlaySelectionValues``: child weights; at the root every child but the most
  stably explored one is cut to the weight PUCT would have wanted for it in hindsight (rounded up); then the lower
  confidence bound - ``selfUtility - lcbStdevs * stdev / sqrt(ess)`` with a prior pulling towards the widest
  utility range - promotes the best-LCB child among those with at least ``minVisitPropForLCB`` of the best
  child's weight (``useNonBuggyLcb``); ``chosenMovePrune``/``Subtract`` and scaling as KataGo. The best move is
  the largest value.
* :func:`analysis_json` builds the analysis engine's ``moveInfos``/``rootInfo``/``ownership``/``policy`` with
  KataGo's field names, ordering (visited first, then play-selection value, visits, prior), value rounding
  (``Global::roundDynamic`` to 8 digits) and perspective (``BLACK``, ``WHITE`` or side to move).
* :func:`principal_variation` follows the best play-selection child down the tree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from katadeploy.go import board as B
from katadeploy.go.coords import loc_to_string
from katadeploy.search.explore import (
    POLICY_ILLEGAL_SELECTION_VALUE,
    child_explore_value,
    explore_scaling,
    explore_value_inverse,
    parent_stats,
)
from katadeploy.search.node import Node
from katadeploy.search.rootsymmetry import sym_loc, sym_xy
from katadeploy.search.scorevalue import score_stdev

if TYPE_CHECKING:
    from katadeploy.search.search import Search

PASS_LOC = B.PASS_LOC


def round_dynamic(x: float, precision: int = 8) -> float:
    ax = abs(x)
    if ax <= 1e-60 or not math.isfinite(x):
        return x
    mag = math.floor(math.log10(ax)) - precision
    if mag >= 0:
        return float(round(x))
    scale = 10.0 ** (-mag)
    return math.floor(x * scale + 0.5) / scale if x >= 0 else -math.floor(-x * scale + 0.5) / scale


def self_utility_lcb(s: Search, node: Node, i: int) -> tuple[float, float]:
    """``getSelfUtilityLCBAndRadius``: (lcb from the mover's perspective, radius)."""
    p = s.params
    c = node.children[i]
    radius_range = p.utility_radius
    radius = 2.0 * radius_range * p.lcb_stdevs
    lcb = -radius
    w = node.child_weight(i)
    wsq = node.child_weight_sq(i)
    if c.visits <= 0 or w <= 0.0 or wsq <= 0.0:
        return lcb, radius
    ess = w * w / wsq
    prior_weight = w / (ess * ess * ess)
    usq = max(c.utility_sq, c.utility * c.utility + 1e-8)
    usq = (usq * w + (usq + radius_range * radius_range) * prior_weight) / (w + prior_weight)
    w += prior_weight
    wsq += prior_weight * prior_weight
    ess = w * w / wsq
    bonus = s.ending_bonus(node.child_locs[i]) if node is s.root else 0.0
    u = c.utility + s.util.score_utility_diff(c.score_mean, c.score_mean_sq, bonus)
    self_u = u if node.next_pla == 2 else -u
    variance = usq - c.utility * c.utility
    stdev = math.sqrt(variance / ess)
    r = stdev * p.lcb_stdevs
    return self_u - r, r


@dataclass
class Selection:
    pos: list[int]
    values: list[float]
    lcb: list[float] = field(default_factory=list)
    radius: list[float] = field(default_factory=list)


def play_selection_values(
    s: Search, node: Node, *, allow_direct_policy: bool = True, always_compute_lcb: bool = False,
    never_use_lcb: bool = False,
) -> Selection | None:  # fmt: skip
    p = s.params
    nn = node.nn
    policy = nn.policy if nn is not None else None
    n = len(node.children)
    is_root = node is s.root
    values: list[float] = []
    total_weight = 0.0
    for i in range(n):
        w = node.child_weight(i)
        total_weight += w
        values.append(0.0 if policy is None or policy[node.child_pos[i]] < 0 else w)
    sel = Selection(list(node.child_pos), values)
    best_idx = 0
    best_weight = -1e30
    goodness = -1e30
    for i in range(n):
        e = node.edge_visits[i]
        g = values[i] * max(0.0, e - 1.0) / max(1.0, e) + 2.0 * float(policy[node.child_pos[i]])  # type: ignore[index]
        if g > goodness:
            goodness, best_weight, best_idx = g, values[i], i
    if is_root and n > 0:
        _, _, _, stdev_factor = parent_stats(s, node, True, 1.0)
        fpu = parent_stats(s, node, True, 1.0)[0]
        scaling = explore_scaling(s, total_weight, stdev_factor)
        best_value = child_explore_value(s, node, best_idx, scaling, total_weight, fpu, True, False)
        white = node.next_pla == 2
        for i in range(n):
            if i == best_idx:
                continue
            c = node.children[i]
            w = node.child_weight(i)
            if c.visits <= 0 or w <= 0.0:
                values[i] = 0.0
                continue
            u = c.utility
            bonus = s.ending_bonus(node.child_locs[i])
            if bonus != 0:
                u += s.util.score_utility_diff(c.score_mean, c.score_mean_sq, bonus)
            wanted = explore_value_inverse(best_value, scaling, float(policy[node.child_pos[i]]), u, white)  # type: ignore[index]
            values[i] = float(math.ceil(min(w, wanted)))
    if not never_use_lcb and (always_compute_lcb or (p.use_lcb_for_selection and n > 0)):
        best_lcb = -1e10
        best_lcb_idx = -1
        for i in range(n):
            lcb, radius = self_utility_lcb(s, node, i)
            sel.lcb.append(lcb)
            sel.radius.append(radius)
            w = values[i]
            if w > 0 and w >= p.min_visit_prop_for_lcb * best_weight and lcb > best_lcb:
                best_lcb, best_lcb_idx = lcb, i
        ok = best_lcb_idx >= 0 if p.use_non_buggy_lcb else best_lcb_idx > 0
        if p.use_lcb_for_selection and n > 0 and ok:
            adjusted = values[best_lcb_idx]
            for i in range(n):
                if i == best_lcb_idx:
                    continue
                excess = best_lcb - sel.lcb[i]
                if excess < 0:
                    continue
                r = sel.radius[i]
                factor = (r + excess) / (r + 0.20 * excess)
                lbound = factor * factor * values[i]
                if lbound > adjusted:
                    adjusted = lbound
            values[best_lcb_idx] = adjusted
    if n == 0:
        if nn is None or not is_root or not allow_direct_policy:
            return None
        for obey in (True, False):
            for pos in nn.order:
                pos = int(pos)
                if obey and not s.allowed_root_move(pos):
                    continue
                sel.pos.append(pos)
                values.append(float(nn.policy[pos]))
            if values:
                break
        n = len(values)
        if n == 0:
            return None
    mx = max(values)
    if mx <= 1e-50:
        for i in range(n):
            values[i] = max(0.0, float(policy[sel.pos[i]]))  # type: ignore[index]
        mx = max(values)
        if mx <= 1e-50:
            return None
    sub = min(p.chosen_move_subtract, mx / 64.0)
    prune = min(p.chosen_move_prune, mx / 64.0)
    for i in range(n):
        if values[i] < prune:
            values[i] = 0.0
        else:
            values[i] = max(0.0, values[i] - sub)
    mx = max(values)
    if 0 < mx < 1.0:
        for i in range(n):
            values[i] *= 1.0 / mx
    return sel


def best_move_pos(s: Search) -> int | None:
    """The policy index of the move KataGo would play (largest play-selection value), None if none."""
    sel = play_selection_values(s, s.root)
    if sel is None:
        return None
    best = max(range(len(sel.values)), key=lambda i: (sel.values[i], -i))
    return sel.pos[best]


def principal_variation(
    s: Search, node: Node | None, max_depth: int
) -> tuple[list[int], list[int], list[int]]:
    """(policy positions, child visits, edge visits) of the best line below ``node``."""
    pv: list[int] = []
    visits: list[int] = []
    edges: list[int] = []
    for _ in range(max_depth):
        if node is None:
            break
        sel = play_selection_values(s, node)
        if sel is None:
            break
        best = POLICY_ILLEGAL_SELECTION_VALUE
        idx = -1
        for i, v in enumerate(sel.values):
            if v > best:
                best, idx = v, i
        if idx < 0:
            break
        if idx >= len(node.children):
            pv.append(sel.pos[idx])
            visits.append(0)
            edges.append(0)
            break
        child = node.children[idx]
        pv.append(node.child_pos[idx])
        visits.append(child.visits)
        edges.append(node.edge_visits[idx])
        node = child
    return pv, visits, edges


def _pv_len_up_to_phase_end(s: Search, pv: list[int]) -> int:
    hist = s.root_hist.copy()
    pla = s.root_pla
    phase = hist.encore_phase
    for j, pos in enumerate(pv):
        loc = s.pos_to_loc(pos)
        if not hist.is_legal(loc, pla):
            return j
        hist.make_board_move_assume_legal(loc, pla)
        pla = 3 - pla
        if hist.is_game_finished or hist.encore_phase != phase:
            return j + 1
    return len(pv)


def pruned_root_values(s: Search) -> dict[str, float]:
    """``getPrunedRootValues``: root values re-weighted by play-selection values (no LCB)."""
    root = s.root
    nn = root.nn
    sel = play_selection_values(s, root, allow_direct_policy=False, never_use_lcb=True)
    sums = {"wl": 0.0, "nr": 0.0, "sm": 0.0, "smsq": 0.0, "lead": 0.0, "u": 0.0}
    wsum = 0.0
    if sel is None or nn is None:
        vals = (root.wl, root.nr, root.score_mean, root.score_mean_sq, root.lead, root.utility)
    else:
        for i, c in enumerate(root.children):
            if c.visits <= 0 or c.weight_sum <= 0.0 or root.edge_visits[i] <= 0:
                continue
            w = sel.values[i]
            sums["wl"] += w * c.wl
            sums["nr"] += w * c.nr
            sums["sm"] += w * c.score_mean
            sums["smsq"] += w * c.score_mean_sq
            sums["lead"] += w * c.lead
            sums["u"] += w * c.utility
            wsum += w
        u, w = s.nn_utility_and_weight(nn)
        sums["wl"] += (nn.white_win - nn.white_loss) * w
        sums["nr"] += nn.white_no_result * w
        sums["sm"] += nn.white_score_mean * w
        sums["smsq"] += nn.white_score_mean_sq * w
        sums["lead"] += nn.white_lead * w
        sums["u"] += u * w
        wsum += w
        vals = tuple(sums[k] / wsum for k in ("wl", "nr", "sm", "smsq", "lead", "u"))  # type: ignore[assignment]
    wl, nr, sm, smsq, lead, u = vals
    wl = min(1.0, max(-1.0, wl))
    return {
        "wl": wl,
        "nr": nr,
        "score_mean": sm,
        "score_stdev": score_stdev(sm, smsq),
        "lead": lead,
        "utility": u,
    }


def tree_ownership(s: Search, node: Node | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``getAverageAndStandardDeviationTreeOwnership``: NN ownership averaged over the subtree (each child weighted by
    its squared weight, the node itself by its NN weight, small branches cut), and its standard deviation; White's
    perspective, tensor order."""
    node = node or s.root
    mean = np.zeros(s.nn_x * s.nn_y, dtype=np.float64)
    sq = np.zeros_like(mean)
    min_prop = 0.5 / (max(1.0, node.visits) ** 0.75)
    prune_prop = min_prop * 0.01

    def add(n: Node, prop: float) -> None:
        own = n.nn.ownership.astype(np.float64)  # type: ignore[union-attr]
        np.add(mean, prop * own, out=mean)
        np.add(sq, prop * own * own, out=sq)

    def visit(n: Node, desired: float) -> bool:
        if n.nn is None:
            return False
        if desired < min_prop or not n.children:
            add(n, desired)
            return True
        weights = [n.child_weight(i) for i in range(len(n.children))]
        rel = sum(w * w for w in weights)
        csum = sum(weights)
        parent_w = max(s.nn_utility_and_weight(n.nn)[1], 1e-10)
        from_children = desired * csum / (csum + parent_w)
        self_prop = desired * parent_w / (csum + parent_w)
        if from_children <= 0.0 or rel <= 0.0:
            self_prop += from_children
        else:
            for i, c in enumerate(n.children):
                d = weights[i] * weights[i] / rel * from_children
                if d < prune_prop or not visit(c, d):
                    self_prop += d
        add(n, self_prop)
        return True

    visit(node, 1.0)
    return mean, np.sqrt(np.maximum(sq - mean * mean, 0.0))


def ownership_fields(
    s: Search, node: Node | None, perspective: int, mean: bool, stdev: bool, key_prefix: str = ""
) -> dict[str, list[float]]:
    """``ownership``/``ownershipStdev`` for the board (row-major from the top), in the reporting perspective."""
    if not (mean or stdev):
        return {}
    avg, sd = tree_ownership(s, node)
    sign = _flip(s, perspective)
    idx = [y * s.nn_x + x for y in range(s.y_size) for x in range(s.x_size)]
    out: dict[str, list[float]] = {}
    if mean:
        out["ownership"] = [round_dynamic(float(avg[k]) * sign) for k in idx]
    if stdev:
        out["ownershipStdev"] = [round_dynamic(float(sd[k])) for k in idx]
    return out


def _flip(s: Search, perspective: int) -> float:
    """-1 when values are reported for Black (``perspective`` 1, or 0 = side to move with Black to move)."""
    return -1.0 if perspective == 1 or (perspective not in (1, 2) and s.root_pla == 1) else 1.0


def _root_hashes(s: Search) -> tuple[str, str]:
    board = s.root_board
    this = board.get_sit_hash_with_simple_ko(s.root_pla)
    best = this
    xs, ys = board.x_size, board.y_size
    for sym in range(1, 8):
        transpose = bool(sym & 4)
        if transpose and xs != ys:
            continue
        b2 = B.Board(ys if transpose else xs, xs if transpose else ys)
        stones = []
        for y in range(ys):
            for x in range(xs):
                c = board.colors[(x + 1) + (y + 1) * (xs + 1)]
                if c in (1, 2):
                    nx, ny = x, y
                    if sym & 2:
                        nx = xs - 1 - nx
                    if sym & 1:
                        ny = ys - 1 - ny
                    if transpose:
                        nx, ny = ny, nx
                    stones.append(((nx + 1) + (ny + 1) * (b2.x_size + 1), c))
        b2.set_stones_tolerant(stones)
        if board.ko_loc != B.NULL_LOC:
            kx, ky = board.ko_loc % (xs + 1) - 1, board.ko_loc // (xs + 1) - 1
            if sym & 2:
                kx = xs - 1 - kx
            if sym & 1:
                ky = ys - 1 - ky
            if transpose:
                kx, ky = ky, kx
            b2.set_simple_ko_loc((kx + 1) + (ky + 1) * (b2.x_size + 1))
        h = b2.get_sit_hash_with_simple_ko(s.root_pla)
        if h < best:
            best = h
    return f"{this:032X}", f"{best:032X}"


def _sym_board_list(values: list[float], xs: int, ys: int, sym: int) -> list[float]:
    out = [0.0] * len(values)
    for y in range(ys):
        for x in range(xs):
            nx, ny, w = sym_xy(x, y, xs, ys, sym)
            out[ny * w + nx] = values[y * xs + x]
    return out


def _duplicate_for_symmetries(s: Search, rows: list) -> list:
    """Every symmetric copy of each reported move, with ``isSymmetryOf`` and the PV mapped (KataGo's order)."""
    out = []
    done: set[int] = set()
    xs, ys = s.x_size, s.y_size
    for row in rows:
        edge, psv, prior, info, pv, pv_visits, pv_edges, ew = row
        loc = s.pos_to_loc(pv[0])
        for sym in s.root_symmetries:
            other = sym_loc(loc, xs, ys, sym)
            if other in done:
                continue
            done.add(other)
            new = dict(info)
            new["move"] = loc_to_string(other, xs, ys)
            if sym != 0:
                new["isSymmetryOf"] = info["move"]
            new_pv = [s.loc_to_pos(sym_loc(s.pos_to_loc(q), xs, ys, sym)) for q in pv]
            if sym != 0:
                for key in ("ownership", "ownershipStdev"):
                    if key in info:
                        new[key] = _sym_board_list(info[key], xs, ys, sym)
            out.append((edge, psv, prior, new, new_pv, pv_visits, pv_edges, ew))
    return out


def analysis_json(
    s: Search, *, perspective: int, pv_len: int, include_policy: bool = False, include_ownership: bool = False, include_ownership_stdev: bool = False,
    include_moves_ownership: bool = False, include_moves_ownership_stdev: bool = False,
    include_pv_visits: bool = False, include_no_result_value: bool = False, prevent_encore: bool = True,
) -> dict[str, Any] | None:  # fmt: skip
    """The ``moveInfos``/``rootInfo``/... part of an analysis response; None when there is nothing to report."""
    root = s.root
    nn = root.nn
    if nn is None or root.visits <= 0:
        return None
    p = s.params
    flip = _flip(s, perspective)
    xs, ys = s.x_size, s.y_size

    def move_name(pos: int) -> str:
        return loc_to_string(s.pos_to_loc(pos), xs, ys)

    n = len(root.children)
    infos: list[dict[str, Any]] = []
    if n > 0:
        sel = play_selection_values(s, root, allow_direct_policy=False, always_compute_lcb=True)
        if sel is None:
            radius = 2.0 * p.utility_radius * p.lcb_stdevs
            sel_values, lcbs, radii = [0.0] * n, [-radius] * n, [radius] * n
        else:
            sel_values, lcbs, radii = sel.values, sel.lcb, sel.radius
        mass = sum(max(0.0, float(nn.policy[pos])) for pos in root.child_pos)
        fpu, parent_u, _, _ = parent_stats(s, root, True, mass)
        parent_wl = root.wl
        parent_sm = root.score_mean
        parent_sd = score_stdev(root.score_mean, root.score_mean_sq)
        parent_lead = root.lead
        hack = 0.5 * p.win_loss_utility_factor / (p.utility_radius + 1e-20)
        rows = []
        for i, c in enumerate(root.children):
            edge = root.edge_visits[i]
            prior = float(nn.policy[root.child_pos[i]])
            if c.visits <= 0 or c.weight_sum <= 1e-30:
                utility = fpu
                wl = parent_wl + (fpu - parent_u) if p.win_loss_utility_factor == 1.0 else 0.0
                wl = min(1.0, max(-1.0, wl))
                sm, sd, lead, nr, w, ew = parent_sm, parent_sd, parent_lead, 0.0, 0.0, 0.0
            else:
                utility = c.utility
                wl, nr = c.wl, c.nr
                sm, sd, lead = c.score_mean, score_stdev(c.score_mean, c.score_mean_sq), c.lead
                w, ew = c.weight_sum, root.child_weight(i)
            winrate = 0.5 * (1.0 + wl)
            lcb_wr = winrate - radii[i] * hack if root.next_pla == 2 else winrate + radii[i] * hack
            utility_lcb = -lcbs[i] if root.next_pla == 1 else lcbs[i]
            if flip < 0:
                winrate, lcb_wr, utility, sm, lead, utility_lcb = (
                    1.0 - winrate, 1.0 - lcb_wr, -utility, -sm, -lead, -utility_lcb,
                )  # fmt: skip
            pv, pv_visits, pv_edges = principal_variation(s, c, pv_len)
            pv = [root.child_pos[i], *pv]
            pv_visits = [c.visits, *pv_visits]
            pv_edges = [edge, *pv_edges]
            info: dict[str, Any] = {
                "move": move_name(root.child_pos[i]),
                "visits": c.visits,
                "weight": round_dynamic(w),
                "utility": round_dynamic(utility),
                "winrate": round_dynamic(winrate),
                "scoreMean": round_dynamic(lead),
                "scoreSelfplay": round_dynamic(sm),
                "scoreLead": round_dynamic(lead),
                "scoreStdev": round_dynamic(sd),
            }
            if include_no_result_value:
                info["noResultValue"] = round_dynamic(nr)
            info.update(
                prior=round_dynamic(prior), lcb=round_dynamic(lcb_wr), utilityLcb=round_dynamic(utility_lcb)
            )
            if c.nn is not None:
                info.update(
                    ownership_fields(
                        s, c, perspective, include_moves_ownership, include_moves_ownership_stdev
                    )
                )
            rows.append((edge, sel_values[i], prior, info, pv, pv_visits, pv_edges, ew))
        rows.sort(key=lambda r: (r[0] == 0, -r[1], -r[0], -r[2]))
        if len(s.root_symmetries) > 1:
            rows = _duplicate_for_symmetries(s, rows)
        for order, (edge, psv, _, info, pv, pv_visits, pv_edges, ew) in enumerate(rows):
            info["order"] = order
            info["edgeVisits"] = edge
            info["edgeWeight"] = round_dynamic(ew)
            info["playSelectionValue"] = round_dynamic(psv)
            k = (
                len(pv)
                if not prevent_encore or (s.nn_x * s.nn_y) not in pv
                else _pv_len_up_to_phase_end(s, pv)
            )
            info["pv"] = [move_name(q) for q in pv[:k]]
            if include_pv_visits:
                info["pvVisits"] = pv_visits[:k]
                info["pvEdgeVisits"] = pv_edges[:k]
            infos.append(info)
    rv = pruned_root_values(s)
    this_hash, sym_hash = _root_hashes(s)
    root_info: dict[str, Any] = {
        "visits": root.visits,
        "weight": root.weight_sum,
        "winrate": round_dynamic(0.5 + 0.5 * rv["wl"] * flip),
        "scoreSelfplay": round_dynamic(rv["score_mean"] * flip),
        "scoreLead": round_dynamic(rv["lead"] * flip),
        "scoreStdev": round_dynamic(rv["score_stdev"]),
        "utility": round_dynamic(rv["utility"] * flip),
        "rawWinrate": round_dynamic(0.5 + 0.5 * (nn.white_win - nn.white_loss) * flip),
        "rawLead": round_dynamic(nn.white_lead * flip),
        "rawScoreSelfplay": round_dynamic(nn.white_score_mean * flip),
        "rawScoreSelfplayStdev": round_dynamic(
            math.sqrt(max(0.0, nn.white_score_mean_sq - nn.white_score_mean * nn.white_score_mean))
        ),
        "rawNoResultProb": round_dynamic(nn.white_no_result),
        "rawStWrError": round_dynamic(
            nn.st_winloss_error * 0.5 if s.nneval.supports_shortterm_error else -0.5
        ),
        "rawStScoreError": round_dynamic(nn.st_score_error if s.nneval.supports_shortterm_error else -1.0),
        "rawVarTimeLeft": round_dynamic(nn.var_time_left),
        "thisHash": this_hash,
        "symHash": sym_hash,
        "currentPlayer": "B" if s.root_pla == 1 else "W",
    }
    out: dict[str, Any] = {"moveInfos": infos, "rootInfo": root_info}
    if include_policy:
        pol = [round_dynamic(float(nn.policy[y * s.nn_x + x])) for y in range(ys) for x in range(xs)]
        pol.append(round_dynamic(float(nn.policy[s.nn_x * s.nn_y])))
        out["policy"] = pol
    out.update(ownership_fields(s, root, perspective, include_ownership, include_ownership_stdev))
    return out
