"""Search formulas against numbers worked out by hand from KataGo's source (cpp/search/*.cpp, setup.cpp)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from katadeploy.search import backup, explore, scorevalue
from katadeploy.search.config import Config, ConfigError, parse_overrides
from katadeploy.search.node import Node
from katadeploy.search.params import SearchParams, load_search_params
from katadeploy.search.utility import Utility, dynamic_score_center


def fake_search(params: SearchParams, nn_utility: float = 0.0) -> SimpleNamespace:
    return SimpleNamespace(params=params, nn_utility=lambda node: nn_utility)


# ---------------------------------------------------------------------------------------------------- params
def test_analysis_defaults_match_setup_cpp():
    p, notes = load_search_params(Config({"numSearchThreads": "1"}))
    assert (p.cpuct_exploration, p.cpuct_exploration_log, p.cpuct_exploration_base) == (1.0, 0.45, 500.0)
    assert (p.cpuct_utility_stdev_prior, p.cpuct_utility_stdev_prior_weight, p.cpuct_utility_stdev_scale) == (
        0.40, 2.0, 0.85,
    )  # fmt: skip
    assert (p.static_score_utility_factor, p.dynamic_score_utility_factor) == (0.1, 0.3)
    assert (p.dynamic_score_center_zero_weight, p.dynamic_score_center_scale) == (0.2, 0.75)
    assert p.fpu_parent_weight_by_visited_policy and p.fpu_parent_weight_by_visited_policy_pow == 2.0
    assert (p.fpu_reduction_max, p.root_fpu_reduction_max) == (0.2, 0.1)
    assert (p.value_weight_exponent, p.use_noise_pruning, p.use_uncertainty) == (0.25, True, True)
    assert (p.lcb_stdevs, p.min_visit_prop_for_lcb, p.use_non_buggy_lcb) == (5.0, 0.15, True)
    assert (p.policy_optimism, p.root_policy_optimism) == (1.0, 0.2)
    assert p.conservative_pass and p.ignore_pre_root_history and p.wide_root_noise == 0.04
    joined = " | ".join(notes)
    assert p.root_symmetry_pruning
    assert p.subtree_value_bias_factor == 0.45 and p.subtree_value_bias_weight_exponent == 0.85
    assert "useGraphSearch" in joined and len(notes) == 1


def test_derived_defaults_and_ranges():
    p, notes = load_search_params(Config({
        "numSearchThreads": "2", "rootNoiseEnabled": "true", "policyOptimism": "0.1", "fpuLossProp": "0.3",
        "useGraphSearch": "false", "subtreeValueBiasFactor": "0", "rootSymmetryPruning": "false",
    }))  # fmt: skip
    assert p.root_fpu_reduction_max == 0.0 and p.root_policy_optimism == 0.1 and p.root_fpu_loss_prop == 0.3
    assert notes == []
    with pytest.raises(ConfigError, match="cpuctExploration"):
        load_search_params(Config({"numSearchThreads": "1", "cpuctExploration": "11"}))
    with pytest.raises(ConfigError, match="numSearchThreads"):
        load_search_params(Config({}))


def test_unused_keys_are_reported():
    cfg = Config({"numSearchThreads": "1", "cpuctExploration": "1.1", "typoKey": "3"})
    load_search_params(cfg)
    assert cfg.unused_keys() == ["typoKey"]
    assert parse_overrides("a=1, b = x") == {"a": "1", "b": "x"}


# ---------------------------------------------------------------------------------------------------- PUCT
def test_cpuct_log_growth_and_scaling():
    p = SearchParams()
    s = fake_search(p)
    # 1 + 0.45 * ln((500 + 500) / 500)
    assert explore.cpuct(s, 500.0) == pytest.approx(1.0 + 0.45 * math.log(2.0), abs=1e-12)
    assert explore.explore_scaling(s, 500.0, 0.5) == pytest.approx(
        (1.0 + 0.45 * math.log(2.0)) * math.sqrt(500.01) * 0.5, abs=1e-12
    )
    # value = scaling * prior / (1 + weight) + self utility; Black flips the utility
    assert explore.explore_value(2.0, 0.25, 3.0, 0.1, True) == pytest.approx(0.225)
    assert explore.explore_value(2.0, 0.25, 3.0, 0.1, False) == pytest.approx(0.025)
    assert explore.explore_value(2.0, -1.0, 0.0, 0.0, True) == explore.POLICY_ILLEGAL_SELECTION_VALUE
    assert explore.explore_value_inverse(0.225, 2.0, 0.25, 0.1, True) == pytest.approx(3.0)


def test_fpu_and_utility_stdev_factor():
    p = SearchParams()
    node = Node(next_pla=2)
    node.visits, node.weight_sum, node.utility, node.utility_sq = 10, 10.0, 0.2, 0.09
    s = fake_search(p, nn_utility=0.5)
    fpu, parent_u, wpv, factor = explore.parent_stats(s, node, True, 0.5)
    # stdev^2 = ((0.04 + 0.16) * 2 + 0.09 * 10) / (2 + 10 - 1) - 0.04 = 0.0781818...
    stdev = math.sqrt(1.3 / 11 - 0.04)
    assert factor == pytest.approx(1 + 0.85 * (stdev / 0.4 - 1), abs=1e-12)
    assert (parent_u, wpv) == (0.2, 1.0)
    # visited-policy weighting: w = 0.5^2; FPU = (0.25*0.2 + 0.75*0.5) - 0.1*sqrt(0.5) for White at the root
    assert fpu == pytest.approx(0.25 * 0.2 + 0.75 * 0.5 - 0.1 * math.sqrt(0.5), abs=1e-12)
    node.next_pla = 1
    fpu_b, *_ = explore.parent_stats(s, node, False, 0.5)
    assert fpu_b == pytest.approx(0.25 * 0.2 + 0.75 * 0.5 + 0.2 * math.sqrt(0.5), abs=1e-12)
    # fpuParentWeight instead of the visited-policy rule, with loss prop
    q = SearchParams(fpu_parent_weight_by_visited_policy=False, fpu_parent_weight=0.5, fpu_loss_prop=0.1)
    node.next_pla = 2
    fpu_q, *_ = explore.parent_stats(fake_search(q, 0.5), node, False, 0.25)
    base = 0.5 * 0.5 + 0.5 * 0.2 - 0.2 * 0.5
    assert fpu_q == pytest.approx(base + (-q.utility_radius - base) * 0.1, abs=1e-12)


# ---------------------------------------------------------------------------------------------------- utility
def test_score_value_table_and_tdist():
    scorevalue.warm_up()
    for mean in (-30.0, -2.5, 0.0, 7.0, 55.0):
        exact = math.atan(mean / (2.0 * 19)) * 2 / math.pi
        assert scorevalue.expected_white_score_value(mean, 0.0, 0.0, 2.0, 19.0) == pytest.approx(
            exact, abs=2e-3
        )
    # a wide distribution pulls the expected value towards 0 (atan is concave for positive scores)
    assert (
        0
        < scorevalue.expected_white_score_value(20.0, 30.0, 0.0, 1.0, 19.0)
        < math.atan(20 / 19) * 2 / math.pi
    )
    assert scorevalue.tdist3_cdf(0.0) == pytest.approx(0.5)
    assert scorevalue.tdist3_cdf(1.0) == pytest.approx(0.80449, abs=1e-4)  # Student t, 3 d.o.f.
    assert scorevalue.tdist3_cdf(-60.0) == 0.0 and scorevalue.tdist3_cdf(60.0) == 1.0
    assert scorevalue.round_half_away(-2.5) == -3 and scorevalue.round_half_away(2.5) == 3


def test_dynamic_score_center_and_uncertainty_weight():
    p = SearchParams()
    assert dynamic_score_center(10.0, p, 19, 19) == pytest.approx(8.0)
    assert dynamic_score_center(100.0, p, 19, 19) == pytest.approx(100.0 - 19 * 0.75)
    u = Utility(p, 19.0, 0.0, has_shortterm_error=True)
    deriv = u.approx_score_utility_derivative(0.0)
    # static: 2/(pi*38) * 0.1; dynamic: 2/(pi*14.25) * 0.3
    assert deriv == pytest.approx(0.1 * 2 / (math.pi * 38) + 0.3 * 2 / (math.pi * 14.25), abs=1e-12)
    w = u.weight_from_nn(0.0, 0.1, 2.0)
    assert w == pytest.approx(0.25 / (0.1 + deriv * 2.0 + 0.25 / 8.0), abs=1e-12)
    assert Utility(p, 19.0, 0.0, has_shortterm_error=False).weight_from_nn(0.0, 0.1, 2.0) == 1.0
    assert u.result_utility(0.5, 0.0) == 0.5


# ---------------------------------------------------------------------------------------------------- weighting
def test_noise_pruning_by_hand():
    p = SearchParams()
    weights = [10.0, 10.0]
    # second child: gap 0.1 below the first, policy share 0.1/0.5 -> lenient share 2 * 10 * 0.1 / 0.5 = 4
    total = backup.prune_noise_weight(p, [0.3, 0.2], weights, [0.5, 0.1], 20.0)
    expected_second = 10.0 - (10.0 - 4.0) * (1 - math.exp(-0.1 / 0.15))
    assert weights[1] == pytest.approx(expected_second) and total == pytest.approx(10.0 + expected_second)


def test_value_weight_exponent_by_hand():
    p = SearchParams(value_weight_exponent=0.5)
    weights = [4.0, 4.0]
    backup.downweight_bad_children(p, [0.1, -0.1], weights, [4, 4], 8.0, 8.0)
    sd = math.sqrt(1e-8 + 1 / (1.5 * 2.0))
    a = (scorevalue.tdist3_cdf(0.1 / sd) + 0.0001) ** 0.5
    b = (scorevalue.tdist3_cdf(-0.1 / sd) + 0.0001) ** 0.5
    assert weights[0] == pytest.approx(8.0 * a / (a + b)) and weights[1] == pytest.approx(8.0 * b / (a + b))
    flat = [4.0, 4.0]
    backup.downweight_bad_children(
        SearchParams(value_weight_exponent=0.0), [0.1, -0.1], flat, [4, 4], 8.0, 8.0
    )
    assert flat == [4.0, 4.0]


def test_node_leaf_values_and_child_weight():
    n = Node(1)
    n.add_leaf_value(0.5, 0.0, 2.0, 8.0, 1.5, 0.4, 2.0, True)
    n.add_leaf_value(-0.5, 0.0, 0.0, 4.0, 0.5, -0.2, 1.0, False)
    assert n.visits == 2 and n.weight_sum == 3.0 and n.weight_sq_sum == 5.0
    assert n.wl == pytest.approx(0.5 / 3) and n.utility == pytest.approx(0.6 / 3 - 0.0)
    parent = Node(2)
    parent.children, parent.child_locs, parent.child_pos, parent.edge_visits = [n], [1], [0], [1]
    assert parent.child_weight(0) == pytest.approx(3.0 * 1 / 2)
